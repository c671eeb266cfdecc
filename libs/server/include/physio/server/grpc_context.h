#pragma once
// The gRPC edge of every handler: identity in, status out, identity onward.
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "physio/auth/call_context.h"
#include "physio/auth/token_verifier.h"
#include "physio/common/error.h"
#include "physio/db/audit.h"

namespace physio {

// The one function every handler calls first. Reads "authorization: Bearer <jwt>",
// verifies it, and takes tenant/principal/roles only from the verified claims.
// Request id from "x-request-id" (or a new one); deadline from the call.
CallContext MakeCallContext(const grpc::ServerContext& server_context, const TokenVerifier& verifier);

grpc::Status ToStatus(const Error& error);
// A channel to another of our services (plaintext on the private network/loopback),
// with keepalive so a dead peer is noticed between calls.
std::shared_ptr<grpc::Channel> MakePeerChannel(const std::string& address);

// A downstream call's status, turned back into an Error to rethrow.
Error FromDownstream(const std::string& service, const grpc::Status& status);

// Client context for a call to another of our services: forwards the caller's
// token and request id, and sets a deadline of min(caller's deadline, now + cap).
std::unique_ptr<grpc::ClientContext> MakeOutgoingContext(const CallContext& ctx, std::chrono::milliseconds cap);

// Runs one handler: builds the context, runs `body`, maps errors to statuses
// (unexpected exceptions become INTERNAL with a generic message), logs the
// outcome with ids only, and writes an audit event when `audit` is given. A call
// whose audit event cannot be written fails with UNAVAILABLE (fail closed).
// The body fills `AuditTarget` with the patient/resource it touched.
grpc::Status HandleCall(const char* method, grpc::ServerContext* server_context, const TokenVerifier& verifier,
                        AuditTrail* audit, const std::function<void(const CallContext&, AuditTarget&)>& body);

}  // namespace physio

// Defines one unary handler of a generated `Service` class that forwards to
// `app_.Method(ctx, request, audit)` through HandleCall. The class needs members
// `app_` (the use cases) and `runtime_` (a ServiceRuntime) and a namespace alias `pb`.
#define PHYSIO_UNARY_RPC(Method)                                                                   \
  grpc::Status Method(grpc::ServerContext* context, const pb::Method##Request* request,            \
                      pb::Method##Response* response) override {                                  \
    return ::physio::HandleCall(#Method, context, runtime_.verifier(), &runtime_.audit(),           \
                                [&](const ::physio::CallContext& ctx, ::physio::AuditTarget& audit) { \
                                  *response = app_.Method(ctx, *request, audit);                  \
                                });                                                               \
  }
