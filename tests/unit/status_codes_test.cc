// The one status table: both directions and the HTTP port read it.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "physio/server/http_gateway.h"
#include "physio/server/status_codes.h"

namespace physio {
namespace {

using grpc::StatusCode;

TEST(StatusCodes, EveryErrorOfOursHasItsOwnCodeAndComesBackFromItsName) {
  const ErrorCode ours[] = {ErrorCode::kInvalidArgument,   ErrorCode::kNotFound,       ErrorCode::kAlreadyExists,
                            ErrorCode::kFailedPrecondition, ErrorCode::kAborted,        ErrorCode::kPermissionDenied,
                            ErrorCode::kUnauthenticated,   ErrorCode::kUnavailable,    ErrorCode::kDeadlineExceeded,
                            ErrorCode::kResourceExhausted, ErrorCode::kInternal};
  std::set<StatusCode> seen;
  for (ErrorCode code : ours) {
    const StatusCode grpc_code = ToGrpcCode(code);
    EXPECT_NE(grpc_code, StatusCode::UNKNOWN) << ErrorCodeName(code);
    EXPECT_TRUE(seen.insert(grpc_code).second) << "two errors share " << StatusCodeName(grpc_code);
    EXPECT_EQ(StatusRowOf(grpc_code).answers, code);
  }
  EXPECT_EQ(ToStatus(Error(ErrorCode::kNotFound, "plan not found")).error_code(), StatusCode::NOT_FOUND);
  EXPECT_EQ(ToStatus(Error(ErrorCode::kNotFound, "plan not found")).error_message(), "plan not found");
}

TEST(StatusCodes, RowsAreInGrpcNumberingWithNamesAndHttpStatuses) {
  for (int number = 0; number <= 16; ++number) {
    const auto code = static_cast<StatusCode>(number);
    const StatusCodeRow& row = StatusRowOf(code);
    EXPECT_EQ(row.code, code) << number;
    EXPECT_FALSE(std::string(row.name).empty());
    EXPECT_GE(row.http_status, 200);
  }
  EXPECT_STREQ(StatusCodeName(StatusCode::RESOURCE_EXHAUSTED), "RESOURCE_EXHAUSTED");
  // A code gRPC does not define (20: inside the enum's range of values, so a valid value of the type).
  EXPECT_STREQ(StatusCodeName(static_cast<StatusCode>(20)), "UNKNOWN");
  EXPECT_STREQ(ConnectCodeName(StatusCode::CANCELLED), "canceled");
  EXPECT_EQ(ConnectHttpStatus(StatusCode::NOT_FOUND), 404);
  EXPECT_EQ(ConnectHttpStatus(StatusCode::RESOURCE_EXHAUSTED), 429);
  EXPECT_EQ(ConnectHttpStatus(StatusCode::UNAVAILABLE), 503);
  EXPECT_EQ(ConnectHttpStatus(StatusCode::OK), 200);
}

TEST(StatusCodes, APeersFailureKeepsItsMeaning) {
  const auto from = [](StatusCode code) { return FromDownstream("planning", grpc::Status(code, "why")); };
  // A defect downstream stays a defect: not dressed up as a retryable outage.
  EXPECT_EQ(from(StatusCode::INTERNAL).code(), ErrorCode::kInternal);
  EXPECT_EQ(from(StatusCode::UNAVAILABLE).code(), ErrorCode::kUnavailable);
  EXPECT_EQ(from(StatusCode::CANCELLED).code(), ErrorCode::kUnavailable);
  EXPECT_EQ(from(StatusCode::NOT_FOUND).code(), ErrorCode::kNotFound);
  EXPECT_EQ(from(StatusCode::DEADLINE_EXCEEDED).code(), ErrorCode::kDeadlineExceeded);
  EXPECT_EQ(from(StatusCode::PERMISSION_DENIED).code(), ErrorCode::kPermissionDenied);
  // The peer refused what this service sent from its stored records.
  EXPECT_EQ(from(StatusCode::INVALID_ARGUMENT).code(), ErrorCode::kFailedPrecondition);
  EXPECT_STREQ(from(StatusCode::NOT_FOUND).what(), "planning: why");
}

}  // namespace
}  // namespace physio
