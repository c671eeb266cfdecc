#include "physio/server/status_codes.h"

#include <array>

namespace physio {

namespace {
using grpc::StatusCode;
constexpr ErrorCode kRetry = ErrorCode::kUnavailable;

// In gRPC's numbering (0 to 16), so a code indexes its row.
const std::array<StatusCodeRow, 17> kRows{{
    {StatusCode::OK, "OK", "", 200, std::nullopt, ErrorCode::kInternal /* never a failure */},
    {StatusCode::CANCELLED, "CANCELLED", "canceled", 499, std::nullopt, kRetry},
    {StatusCode::UNKNOWN, "UNKNOWN", "unknown", 500, std::nullopt, kRetry},
    {StatusCode::INVALID_ARGUMENT, "INVALID_ARGUMENT", "invalid_argument", 400, ErrorCode::kInvalidArgument,
     ErrorCode::kFailedPrecondition},
    {StatusCode::DEADLINE_EXCEEDED, "DEADLINE_EXCEEDED", "deadline_exceeded", 504, ErrorCode::kDeadlineExceeded,
     ErrorCode::kDeadlineExceeded},
    {StatusCode::NOT_FOUND, "NOT_FOUND", "not_found", 404, ErrorCode::kNotFound, ErrorCode::kNotFound},
    {StatusCode::ALREADY_EXISTS, "ALREADY_EXISTS", "already_exists", 409, ErrorCode::kAlreadyExists, kRetry},
    {StatusCode::PERMISSION_DENIED, "PERMISSION_DENIED", "permission_denied", 403, ErrorCode::kPermissionDenied,
     ErrorCode::kPermissionDenied},
    {StatusCode::RESOURCE_EXHAUSTED, "RESOURCE_EXHAUSTED", "resource_exhausted", 429, ErrorCode::kResourceExhausted,
     kRetry},
    {StatusCode::FAILED_PRECONDITION, "FAILED_PRECONDITION", "failed_precondition", 400,
     ErrorCode::kFailedPrecondition, ErrorCode::kFailedPrecondition},
    {StatusCode::ABORTED, "ABORTED", "aborted", 409, ErrorCode::kAborted, ErrorCode::kAborted},
    {StatusCode::OUT_OF_RANGE, "OUT_OF_RANGE", "out_of_range", 400, std::nullopt, kRetry},
    {StatusCode::UNIMPLEMENTED, "UNIMPLEMENTED", "unimplemented", 501, std::nullopt, kRetry},
    {StatusCode::INTERNAL, "INTERNAL", "internal", 500, ErrorCode::kInternal, ErrorCode::kInternal},
    {StatusCode::UNAVAILABLE, "UNAVAILABLE", "unavailable", 503, ErrorCode::kUnavailable, ErrorCode::kUnavailable},
    {StatusCode::DATA_LOSS, "DATA_LOSS", "data_loss", 500, std::nullopt, kRetry},
    {StatusCode::UNAUTHENTICATED, "UNAUTHENTICATED", "unauthenticated", 401, ErrorCode::kUnauthenticated,
     ErrorCode::kUnauthenticated},
}};
}  // namespace

const StatusCodeRow& StatusRowOf(grpc::StatusCode code) {
  const auto index = static_cast<std::size_t>(code);
  return index < kRows.size() ? kRows[index] : kRows[static_cast<std::size_t>(StatusCode::UNKNOWN)];
}

grpc::StatusCode ToGrpcCode(ErrorCode code) {
  for (const auto& row : kRows) {
    if (row.answers == code) return row.code;
  }
  return StatusCode::UNKNOWN;
}

const char* StatusCodeName(grpc::StatusCode code) { return StatusRowOf(code).name; }

grpc::Status ToStatus(const Error& error) { return grpc::Status(ToGrpcCode(error.code()), error.what()); }

Error FromDownstream(const std::string& service, const grpc::Status& status) {
  return Error(StatusRowOf(status.error_code()).from_peer, service + ": " + status.error_message());
}

}  // namespace physio
