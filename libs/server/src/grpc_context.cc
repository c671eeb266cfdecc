#include "physio/server/grpc_context.h"

#include <spdlog/spdlog.h>

#include "physio/common/ids.h"
#include "physio/common/validation.h"

namespace physio {

namespace {
std::string Metadata(const grpc::ServerContext& server_context, const std::string& key) {
  const auto& metadata = server_context.client_metadata();
  auto it = metadata.find(key);
  if (it == metadata.end()) return "";
  return std::string(it->second.data(), it->second.size());
}

grpc::StatusCode ToGrpcCode(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument: return grpc::StatusCode::INVALID_ARGUMENT;
    case ErrorCode::kNotFound: return grpc::StatusCode::NOT_FOUND;
    case ErrorCode::kAlreadyExists: return grpc::StatusCode::ALREADY_EXISTS;
    case ErrorCode::kFailedPrecondition: return grpc::StatusCode::FAILED_PRECONDITION;
    case ErrorCode::kAborted: return grpc::StatusCode::ABORTED;
    case ErrorCode::kPermissionDenied: return grpc::StatusCode::PERMISSION_DENIED;
    case ErrorCode::kUnauthenticated: return grpc::StatusCode::UNAUTHENTICATED;
    case ErrorCode::kUnavailable: return grpc::StatusCode::UNAVAILABLE;
    case ErrorCode::kDeadlineExceeded: return grpc::StatusCode::DEADLINE_EXCEEDED;
    case ErrorCode::kResourceExhausted: return grpc::StatusCode::RESOURCE_EXHAUSTED;
    case ErrorCode::kInternal: return grpc::StatusCode::INTERNAL;
  }
  return grpc::StatusCode::UNKNOWN;
}
}  // namespace

CallContext MakeCallContext(const grpc::ServerContext& server_context, const TokenVerifier& verifier) {
  CallContext ctx;
  std::string request_id = Metadata(server_context, "x-request-id");
  ctx.request_id = (!request_id.empty() && IsOpaqueId(request_id)) ? request_id : NewId("req");
  auto grpc_deadline = server_context.deadline();
  if (grpc_deadline != std::chrono::system_clock::time_point::max()) {
    ctx.deadline = Clock::now() + (grpc_deadline - std::chrono::system_clock::now());
  }
  std::string authorization = Metadata(server_context, "authorization");
  static const std::string kBearer = "Bearer ";
  if (authorization.rfind(kBearer, 0) != 0) {
    throw Error(ErrorCode::kUnauthenticated, "missing 'authorization: Bearer <token>' metadata");
  }
  ctx.bearer_token = authorization.substr(kBearer.size());
  VerifiedClaims claims = verifier.Verify(ctx.bearer_token);
  ctx.tenant = claims.tenant;
  ctx.principal = claims.subject;
  ctx.roles = claims.roles;
  ctx.patient_id = claims.patient_id;
  return ctx;
}

grpc::Status ToStatus(const Error& error) { return grpc::Status(ToGrpcCode(error.code()), error.what()); }

std::shared_ptr<grpc::Channel> MakePeerChannel(const std::string& address) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 30000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
  return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
}

Error FromDownstream(const std::string& service, const grpc::Status& status) {
  const std::string message = service + ": " + status.error_message();
  switch (status.error_code()) {
    case grpc::StatusCode::NOT_FOUND: return Error(ErrorCode::kNotFound, message);
    case grpc::StatusCode::INVALID_ARGUMENT: return Error(ErrorCode::kFailedPrecondition, message);
    case grpc::StatusCode::PERMISSION_DENIED: return Error(ErrorCode::kPermissionDenied, message);
    case grpc::StatusCode::UNAUTHENTICATED: return Error(ErrorCode::kUnauthenticated, message);
    case grpc::StatusCode::DEADLINE_EXCEEDED: return Error(ErrorCode::kDeadlineExceeded, message);
    case grpc::StatusCode::ABORTED: return Error(ErrorCode::kAborted, message);
    case grpc::StatusCode::FAILED_PRECONDITION: return Error(ErrorCode::kFailedPrecondition, message);
    default: return Error(ErrorCode::kUnavailable, message);
  }
}

std::unique_ptr<grpc::ClientContext> MakeOutgoingContext(const CallContext& ctx, std::chrono::milliseconds cap) {
  auto client = std::make_unique<grpc::ClientContext>();
  client->AddMetadata("authorization", "Bearer " + ctx.bearer_token);
  client->AddMetadata("x-request-id", ctx.request_id);
  auto remaining = std::min(ctx.Remaining(), cap);
  client->set_deadline(std::chrono::system_clock::now() + remaining);
  return client;
}

grpc::Status HandleCall(const char* method, grpc::ServerContext* server_context, const TokenVerifier& verifier,
                        AuditTrail* audit, const std::function<void(const CallContext&, AuditTarget&)>& body) {
  CallContext ctx;
  AuditTarget target;
  grpc::Status status;
  std::string outcome = "OK";
  bool authenticated = false;
  try {
    ctx = MakeCallContext(*server_context, verifier);
    authenticated = true;
    body(ctx, target);
  } catch (const Error& error) {
    status = ToStatus(error);
    outcome = ErrorCodeName(error.code());
  } catch (const std::exception& e) {
    spdlog::error("method={} request_id={} unexpected error: {}", method, ctx.request_id, e.what());
    status = grpc::Status(grpc::StatusCode::INTERNAL, "internal error; request_id " + ctx.request_id);
    outcome = ErrorCodeName(ErrorCode::kInternal);
  }
  // Ids and codes only: the message of an error can quote input, so it is not logged.
  spdlog::info("method={} tenant={} principal={} request_id={} outcome={}", method, ctx.tenant, ctx.principal,
               ctx.request_id, outcome);
  if (audit != nullptr && authenticated) {
    const bool recorded = audit->Record(ctx, AuditEvent{method, target.patient_id, target.resource_id, outcome});
    // Fail closed: patient data is not handed out without its audit record. A
    // mutation that already committed is safe to retry (its request_id replays it).
    if (!recorded && status.ok()) {
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, "audit trail unavailable; retry");
    }
  }
  return status;
}

}  // namespace physio
