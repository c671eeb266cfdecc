#pragma once
// Every gRPC status code in one table: its name (logs, metrics, audit), its
// Connect-protocol name and HTTP status (the HTTP port), which of our error
// codes is answered with it, and what it means when a peer service answers it.
#include <grpcpp/support/status.h>

#include <optional>
#include <string>

#include "physio/common/error.h"

namespace physio {

struct StatusCodeRow {
  grpc::StatusCode code;
  const char* name;          // "NOT_FOUND"
  const char* connect_name;  // "not_found" (https://connectrpc.com/docs/protocol/#error-codes)
  int http_status;           // 404
  // The error of ours answered with this code (outgoing), if any.
  std::optional<ErrorCode> answers;
  // What our caller is told when a peer service answers this code (incoming).
  // Transient faults become UNAVAILABLE (retry with the same request_id); a
  // peer's INTERNAL stays INTERNAL (retrying does not help and it is a defect
  // to find by its request id); a peer refusing what we sent from stored data
  // (INVALID_ARGUMENT) is a precondition of the record, not of the caller's request.
  ErrorCode from_peer;
};

// The row of `code`; an unknown number reads as UNKNOWN's row.
const StatusCodeRow& StatusRowOf(grpc::StatusCode code);

grpc::StatusCode ToGrpcCode(ErrorCode code);
const char* StatusCodeName(grpc::StatusCode code);
grpc::Status ToStatus(const Error& error);
// A peer service's failure as our error, its message prefixed with the service.
Error FromDownstream(const std::string& service, const grpc::Status& status);

}  // namespace physio
