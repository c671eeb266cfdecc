#pragma once
// The gRPC edge of every handler: identity in, status out, identity onward.
#include <google/protobuf/arena.h>
#include <google/protobuf/descriptor.h>
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "physio/auth/call_context.h"
#include "physio/auth/method_roles.h"
#include "physio/auth/token_verifier.h"
#include "physio/common/error.h"
#include "physio/common/logging.h"
#include "physio/common/worker_pool.h"
#include "physio/db/audit.h"
#include "physio/redis/rate_limiter.h"
#include "physio/server/metrics.h"
#include "physio/server/proto_util.h"
#include "physio/server/refusal_guard.h"
#include "physio/server/status_codes.h"

namespace physio {

// Who may hold the `service` role. Under mutual TLS a bearer token alone does
// not make a caller a service: the client certificate (its CN or a DNS SAN)
// must name one of `identities` too.
struct ServiceIdentityPolicy {
  bool require_certificate = false;  // set when mutual TLS is configured
  std::set<std::string> identities;  // e.g. physio-progress
};

// How every call's identity is built (by CallPipeline), in two halves. First
// what is known before any check: request id from "x-request-id" (or a new
// one), the deadline, the peer address. Then identity: reads "authorization:
// Bearer <jwt>", verifies it, and takes tenant/principal/roles only from the
// verified claims (throws when refused).
CallContext IncomingCallContext(const grpc::ServerContextBase& server_context);
void Authenticate(CallContext& ctx, const grpc::ServerContextBase& server_context, const TokenVerifier& verifier,
                  const ServiceIdentityPolicy& services);
// The caller as the audit trail records it (tenant, principal, roles, request id, peer).
AuditActor AuditActorOf(const CallContext& ctx);
// The identities the caller's verified client certificate names (CN and DNS SANs); empty without one.
std::set<std::string> CertificateIdentities(const grpc::ServerContextBase& server_context);
// Under mutual TLS: whether the caller's certificate is one of our services'
// (then it calls on behalf of a caller whose quota was already charged).
bool IsServicePeer(const grpc::ServerContextBase& server_context, const ServiceIdentityPolicy& services);

// The caller's address without its port: the HTTP client's when the call came
// through this process's gateway, else the gRPC peer's (see RefusalGuard).
std::string CallerAddress(const grpc::ServerContextBase& server_context);
// Whether the call's bearer token verifies (nothing else is checked).
bool HasValidToken(const grpc::ServerContextBase& server_context, const TokenVerifier& verifier);

// W3C trace context (https://www.w3.org/TR/trace-context/): a valid version-00
// `traceparent` sets ctx.trace_id and ctx.trace_flags; anything else is ignored.
void AcceptTraceparent(CallContext& ctx, const std::string& traceparent);
// Whether `traceparent` is a well-formed version-00 traceparent (lower-case hex, non-zero ids).
bool IsWellFormedTraceparent(std::string_view traceparent);
// The traceparent for a call this one makes: the same trace, a new parent id.
std::string OutgoingTraceparent(const CallContext& ctx);
// One call's request and response on one protobuf arena whose first `kFirstBlock` bytes are part
// of this object, so a call's messages cost one allocation and one free instead of one per string
// and submessage.
template <typename Request, typename Response, std::size_t kFirstBlock>
class CallMessages final {
 public:
  CallMessages()
      : arena_(Options(first_block_)),
        request_(google::protobuf::Arena::CreateMessage<Request>(&arena_)),
        response_(google::protobuf::Arena::CreateMessage<Response>(&arena_)) {}
  Request& request() { return *request_; }
  Response& response() { return *response_; }

 private:
  static google::protobuf::ArenaOptions Options(char (&block)[kFirstBlock]) {
    google::protobuf::ArenaOptions options;
    options.initial_block = block;
    options.initial_block_size = kFirstBlock;
    return options;
  }
  alignas(std::max_align_t) char first_block_[kFirstBlock];
  google::protobuf::Arena arena_;  // after the block it starts in
  Request* request_;
  Response* response_;
};

// A raw method's messages (the generated WithRawCallbackMethod_<Method>, whose handler gets and
// gives serialised bytes): the request parsed here and the response of the ordinary path, owned
// by the call's closures (shared) rather than by gRPC. Its first block holds a request; a
// response built on the ordinary path grows the arena (a fast answer never builds one, and a
// 16 KB block per call cost more than it saved).
template <typename Request, typename Response>
using RawCallMessages = CallMessages<Request, Response, 2 * 1024>;

// `bytes` parsed into `message`; false when they are not one (the caller answers INVALID_ARGUMENT).
bool ParseByteBuffer(const grpc::ByteBuffer& bytes, google::protobuf::Message& message);
// `message` serialised as a raw method's response.
void SerializeToByteBuffer(const google::protobuf::Message& message, grpc::ByteBuffer& out);
// Bytes already serialised, as a raw method's response, without a copy: the buffer holds a
// reference to `bytes` until gRPC has sent them.
grpc::ByteBuffer SharedByteBuffer(std::shared_ptr<const std::string> bytes);

// Metadata the HTTP gateway sets on its in-process calls to carry the HTTP
// client's address into the audit trail. It is believed only together with
// kGatewayKeyMetadata holding GatewayKey(), a random value that never leaves
// the process, so no network caller can claim another address.
inline constexpr const char* kHttpPeerMetadata = "x-physio-http-peer";
inline constexpr const char* kGatewayKeyMetadata = "x-physio-gateway-key";
const std::string& GatewayKey();

// How this service reaches the others: TLS with a client certificate when
// `ca_file` is set (the peer's certificate must chain to it and name the
// address's host, or `server_name` when set), plaintext otherwise.
struct PeerTls {
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  std::string server_name;
};
// A channel to another of our services, with keepalive so a dead peer is noticed between calls.
std::shared_ptr<grpc::Channel> MakePeerChannel(const std::string& address, const PeerTls& tls = {});


// Client context for a call to another of our services: forwards the caller's
// token and request id, and sets a deadline of min(caller's deadline, now + cap).
std::unique_ptr<grpc::ClientContext> MakeOutgoingContext(const CallContext& ctx, std::chrono::milliseconds cap);

// Whether a call reads or writes a patient's data, and so needs an audit record.
// kEmergencyAccess: the call opens access to a patient outside the caller's clinics
// (BreakGlass); it touches patient data, and the clinic check before it is skipped.
// kConsent: a patient records their own consent (RecordConsent) through a telehealth
// platform whether or not they consent to sharing with it yet (CallContext::consent_call).
// kAuditTrail: the call reads the audit trail (an auditor, no clinical access): audited
// with the patient it asks about, scoped by its use case, not by the clinic checks.
enum class PatientData { kNone, kTouched, kEmergencyAccess, kConsent, kAuditTrail };

// How every unary call is served (gRPC callback API). gRPC's own threads only
// accept the call and queue it; a worker of the service's pool runs it:
// deadline check (a call that waited past its deadline ends DEADLINE_EXCEEDED),
// identity, quota, input bounds, the method's roles, the body, status mapping (unexpected exceptions become INTERNAL
// with a generic message), then the audit record: a write made through
// RunIdempotentWrite already committed it with the data; otherwise it goes to
// the batching writer and the call is answered when that batch commits. No
// audit record, no answer: a call whose record cannot be written fails
// UNAVAILABLE (fail closed). One access-log line per call, ids only.
class CallPipeline {
 public:
  using Body = std::function<void(const CallContext&, AuditTarget&)>;
  // `limiter`, when enabled, is consulted after identity and before the body
  // (callers with the service role, and under mutual TLS our services calling
  // on a caller's behalf, are not limited: the caller was charged once, at the edge).
  // Every request is checked against `input` (CheckRequestBounds) after identity,
  // then the caller's roles against `roles` (the service's method-to-roles table).
  // `metrics`, when given, counts every call (started, handled by code, handling time).
  // `guard`, when given, limits and aggregates unauthenticated calls per address (RefusalGuard).
  CallPipeline(const TokenVerifier& verifier, AuditTrail& audit, WorkerPool& workers, const MethodRoles& roles,
               ServiceIdentityPolicy services = {}, RateLimiter* limiter = nullptr, InputLimits input = {},
               Metrics* metrics = nullptr, RefusalGuard* guard = nullptr)
      : verifier_(verifier),
        audit_(audit),
        workers_(workers),
        roles_(roles),
        services_(std::move(services)),
        limiter_(limiter),
        input_(input),
        metrics_(metrics),
        guard_(guard) {}

  grpc::ServerUnaryReactor* Serve(const char* method, PatientData patient_data,
                                  grpc::CallbackServerContext* server_context,
                                  const google::protobuf::Message& request, Body body);

  // A read of patient data that may be answered without a worker thread (issue
  // 33): from a cache in Redis, read with AsyncRedis; or a write to Redis whose
  // second run replays the first (PHYSIO_FAST_UNARY_RPC). On gRPC's thread, inside a
  // NoBlockingScope, the call gets the same checks as every call (identity,
  // bounds, roles, clinic), each answered from memory; then `start` runs, also
  // without blocking. It returns false when it cannot answer this way, or true
  // once it has begun its asynchronous step; then it calls `finish` exactly
  // once, from another thread, with true when the response and the target are
  // complete (checked there as Run checks them, still without blocking), or
  // false. The answer waits for its audit record exactly as on a worker.
  // Whatever cannot be done without blocking (a token or clinic not cached, a
  // quota to take, the cache missed, Redis slow, the audit queue full, any
  // error) sends the call to the ordinary path (Serve) from the start: nothing
  // was handed out or recorded before, and `body` must not rely on the response
  // being empty. Off when the quota limiter is on, or after EnableFastReads(false).
  using Finish = std::function<void(bool complete)>;
  using FastBody = std::function<bool(const CallContext&, AuditTarget&, Finish finish)>;
  grpc::ServerUnaryReactor* ServeFastRead(const char* method, grpc::CallbackServerContext* server_context,
                                          const google::protobuf::Message& request, FastBody start, Body body);
  void EnableFastReads(bool on) { fast_reads_ = on; }
  // ServeFastRead's calls by how they went, for /metrics: answered without a
  // worker, handed to one after the asynchronous step, or never started.
  struct FastReadCounts {
    std::uint64_t answered = 0, handed_over = 0, not_started = 0;
  };
  FastReadCounts fast_read_counts() const {
    return {fast_answered_.load(), fast_handed_over_.load(), fast_not_started_.load()};
  }

  // Clinic scoping: each call's context gets `source` (CallContext::patient_clinics),
  // and a call from staff naming a patient outside their clinics is NOT_FOUND before
  // its use case runs, as is a response naming one. Null: off (every patient of the tenant).
  void SetPatientClinics(const PatientClinicsSource* source) { patient_clinics_ = source; }

 private:
  void Run(const char* method, PatientData patient_data, grpc::CallbackServerContext* server_context,
           grpc::ServerUnaryReactor* reactor, const google::protobuf::Message& request, const Body& body,
           Clock::time_point accepted);
  // The ordinary path once the call is counted: the guard, then a worker runs Run.
  void Enqueue(const char* method, PatientData patient_data, grpc::CallbackServerContext* server_context,
               grpc::ServerUnaryReactor* reactor, const google::protobuf::Message& request, Body body,
               Clock::time_point accepted);
  // The checks every call gets before its use case, in this order, on a worker (Run) and on the
  // fast path alike: the token (`authenticated` and `actor` are set once it verifies), the
  // deadline, the quota, the request's bounds, the roles, then the clinic of the patient the
  // request names. Throws the refusal's Error; on the fast path (inside a NoBlockingScope)
  // anything that would wait throws WouldBlock instead.
  void AdmitCaller(const char* method, PatientData patient_data, grpc::CallbackServerContext& server_context,
                   const google::protobuf::Message& request, const AuditTarget& target, CallContext& ctx,
                   AuditActor& actor, bool& authenticated) const;
  // Second line of defence behind each use case's own check, for both paths: whether the
  // response may go to this caller given the patient it names (`target`, filled in by the
  // use case) and the one the request named (checked by AdmitCaller).
  bool ResponseMayGo(PatientData patient_data, const CallContext& ctx, const AuditTarget& target,
                     const std::string& named_patient) const;
  struct FastCall;
  // ServeFastRead's checks before `start`; false when one cannot be made from memory or refuses.
  bool PrepareFastRead(const char* method, grpc::CallbackServerContext* server_context,
                       const google::protobuf::Message& request, FastCall& call) const;
  // ServeFastRead's checks after `finish(true)`, then the audit record; false: not answered.
  bool CompleteFastRead(grpc::ServerUnaryReactor* reactor, Clock::time_point accepted, FastCall& call);
  // The access-log line, the metrics and the status sent (from a worker, or from
  // the audit writer once the call's record has committed).
  void Answer(grpc::ServerUnaryReactor* reactor, Clock::time_point accepted, AccessRecord record,
              const grpc::Status& status) const;

  const TokenVerifier& verifier_;
  AuditTrail& audit_;
  WorkerPool& workers_;
  const MethodRoles& roles_;
  ServiceIdentityPolicy services_;
  RateLimiter* limiter_;
  InputLimits input_;
  Metrics* metrics_;
  RefusalGuard* guard_;
  const PatientClinicsSource* patient_clinics_ = nullptr;
  bool fast_reads_ = true;
  std::atomic<std::uint64_t> fast_answered_{0}, fast_handed_over_{0}, fast_not_started_{0};
};


// Every unary RPC is served from its bytes (a raw handler), not from the request gRPC parsed:
// gRPC's callback API answers a request that does not parse (bytes that are not protobuf, a
// string field that is not UTF-8, as a C++ client sends Latin-1 text) with a bare UNIMPLEMENTED
// before any of our code runs. Parsed here, such a request goes through the pipeline like any
// other (identity first, audited) and is refused INVALID_ARGUMENT saying what was wrong.
//
// The index of `method` in the service `service_full_name` (its order in the .proto, as the
// generated grpc::Service registers it). Throws std::logic_error for a name the service lacks.
int MethodIndexOf(const char* service_full_name, const char* method);
using RawUnaryFunction =
    std::function<grpc::ServerUnaryReactor*(grpc::CallbackServerContext*, const grpc::ByteBuffer*, grpc::ByteBuffer*)>;
// A handler for grpc::Service::MarkMethodRawCallback, which takes ownership of it (as the
// generated WithRawCallbackMethod_<Method> classes do).
grpc::internal::MethodHandler* RawUnaryHandler(RawUnaryFunction function);
// The same for a server-streaming method (WatchEvents).
using RawServerStreamingFunction =
    std::function<grpc::ServerWriteReactor<grpc::ByteBuffer>*(grpc::CallbackServerContext*, const grpc::ByteBuffer*)>;
grpc::internal::MethodHandler* RawServerStreamingHandler(RawServerStreamingFunction function);
// The refusal of a request whose bytes did not parse, through the pipeline.
std::string UnparsedRequestMessage(const google::protobuf::Descriptor& request_type);

// The call's messages, its request parsed from `request_bytes` onto their arena; or null, with
// `*refused` answering a request that does not parse: through the pipeline (identity first,
// audited) as INVALID_ARGUMENT.
template <typename Request, typename Response>
std::shared_ptr<RawCallMessages<Request, Response>> ParsedCall(CallPipeline& pipeline, const char* method,
                                                               PatientData patient_data,
                                                               grpc::CallbackServerContext* context,
                                                               const grpc::ByteBuffer& request_bytes,
                                                               grpc::ServerUnaryReactor** refused) {
  auto call = std::make_shared<RawCallMessages<Request, Response>>();
  if (ParseByteBuffer(request_bytes, call->request())) return call;
  call->request().Clear();
  *refused = pipeline.Serve(method, patient_data, context, call->request(), [call](const CallContext&, AuditTarget&) {
    throw Error(ErrorCode::kInvalidArgument, UnparsedRequestMessage(*Request::descriptor()));
  });
  return nullptr;
}

// A unary call served from `request_bytes`: parsed (ParsedCall), then `body(ctx, request, audit,
// response)` through the pipeline, its response serialised into `response_bytes`.
template <typename Request, typename Response, typename Body>
grpc::ServerUnaryReactor* ServeUnaryBytes(CallPipeline& pipeline, const char* method, PatientData patient_data,
                                          grpc::CallbackServerContext* context, const grpc::ByteBuffer& request_bytes,
                                          grpc::ByteBuffer* response_bytes, Body body) {
  grpc::ServerUnaryReactor* refused = nullptr;
  auto call = ParsedCall<Request, Response>(pipeline, method, patient_data, context, request_bytes, &refused);
  if (call == nullptr) return refused;
  return pipeline.Serve(method, patient_data, context, call->request(),
                        [call, response_bytes, body = std::move(body)](const CallContext& ctx, AuditTarget& audit) {
                          body(ctx, call->request(), audit, call->response());
                          SerializeToByteBuffer(call->response(), *response_bytes);
                        });
}

}  // namespace physio

// Registers one unary handler of a generated `CallbackService` class, served from its bytes
// (above), that forwards to `app_.Method(ctx, request, audit)` through the service's
// CallPipeline. The class needs members `app_` (the use cases) and `runtime_` (a ServiceRuntime),
// `kServiceName` (its service's full name) and a namespace alias `pb`.
// PHYSIO_UNARY_RPC_NO_PATIENT_DATA is for calls that touch no patient's data (scoring a
// questionnaire, the intervention library): they write no audit record.
#define PHYSIO_RAW_UNARY(Method, handler)                                                           \
 private:                                                                                           \
  const bool raw_##Method##_ =                                                                      \
      (MarkMethodRawCallback(::physio::MethodIndexOf(kServiceName, #Method),                        \
                             ::physio::RawUnaryHandler(handler)),                                   \
       true);                                                                                       \
                                                                                                    \
 public:
#define PHYSIO_UNARY_RPC_WITH(Method, patient_data)                                                 \
  PHYSIO_RAW_UNARY(Method, ([this](grpc::CallbackServerContext* context, const grpc::ByteBuffer* request_bytes, \
                                   grpc::ByteBuffer* response_bytes) {                              \
    return ::physio::ServeUnaryBytes<pb::Method##Request, pb::Method##Response>(                    \
        runtime_.pipeline(), #Method, patient_data, context, *request_bytes, response_bytes,        \
        [this](const ::physio::CallContext& ctx, const pb::Method##Request& request,                \
               ::physio::AuditTarget& audit, pb::Method##Response& response) {                      \
          response = app_.Method(ctx, request, audit);                                              \
        });                                                                                         \
  }))
#define PHYSIO_UNARY_RPC(Method) PHYSIO_UNARY_RPC_WITH(Method, ::physio::PatientData::kTouched)
// For a hot read answered from a Redis cache (issue 33), registered as a raw method (the service
// class derives from pb::<Service>::WithRawCallbackMethod_<Method><...>): CallPipeline::ServeFastRead
// with `app_.Start<Method>(ctx, request, audit, finish)` as the start, which hands `finish` the
// response already serialised (shared, so a response made once is sent many times without a
// copy) or null, and the in-place use case, serialised here, as the ordinary path. A request
// that does not parse goes through the pipeline too (identity first), then INVALID_ARGUMENT.
#define PHYSIO_RAW_FAST_READ_RPC(Method)                                                            \
  grpc::ServerUnaryReactor* Method(grpc::CallbackServerContext* context, const grpc::ByteBuffer* request_bytes, \
                                   grpc::ByteBuffer* response_bytes) override {                    \
    grpc::ServerUnaryReactor* refused = nullptr;                                                    \
    auto call = ::physio::ParsedCall<pb::Method##Request, pb::Method##Response>(                    \
        runtime_.pipeline(), #Method, ::physio::PatientData::kTouched, context, *request_bytes, &refused); \
    if (call == nullptr) return refused;                                                            \
    return runtime_.pipeline().ServeFastRead(                                                       \
        #Method, context, call->request(),                                                          \
        [this, call, response_bytes](const ::physio::CallContext& ctx, ::physio::AuditTarget& audit, \
                                     ::physio::CallPipeline::Finish finish) {                       \
          return app_.Start##Method(                                                                \
              ctx, call->request(), audit,                                                          \
              [response_bytes, finish = std::move(finish)](std::shared_ptr<const std::string> answer) { \
                const bool answered = answer != nullptr;                                            \
                if (answered) *response_bytes = ::physio::SharedByteBuffer(std::move(answer));      \
                finish(answered);                                                                   \
              });                                                                                   \
        },                                                                                          \
        [this, call, response_bytes](const ::physio::CallContext& ctx, ::physio::AuditTarget& audit) { \
          app_.Method(ctx, call->request(), audit, call->response());                               \
          ::physio::SerializeToByteBuffer(call->response(), *response_bytes);                       \
        });                                                                                         \
  }
// For a hot write to Redis that records its outcome under the request's id (issue 33):
// CallPipeline::ServeFastRead with `app_.Start<Method>(ctx, request, audit, finish)` as the
// start, which hands `finish` the response or nullopt; the ordinary use case is the fallback.
// A write whose asynchronous attempt got no usable answer may have been applied: the ordinary
// path runs it again under the same request id and gets the recorded outcome back, so the
// caller sees one outcome and the store holds one change. Served from its bytes, as above.
#define PHYSIO_FAST_UNARY_RPC(Method)                                                               \
  PHYSIO_RAW_UNARY(Method, ([this](grpc::CallbackServerContext* context, const grpc::ByteBuffer* request_bytes, \
                                   grpc::ByteBuffer* response_bytes) {                              \
    grpc::ServerUnaryReactor* refused = nullptr;                                                    \
    auto call = ::physio::ParsedCall<pb::Method##Request, pb::Method##Response>(                    \
        runtime_.pipeline(), #Method, ::physio::PatientData::kTouched, context, *request_bytes, &refused); \
    if (call == nullptr) return refused;                                                            \
    return runtime_.pipeline().ServeFastRead(                                                       \
        #Method, context, call->request(),                                                          \
        [this, call, response_bytes](const ::physio::CallContext& ctx, ::physio::AuditTarget& audit, \
                                     ::physio::CallPipeline::Finish finish) {                       \
          return app_.Start##Method(ctx, call->request(), audit,                                    \
                                    [call, response_bytes, finish = std::move(finish)](             \
                                        std::optional<pb::Method##Response> answer) {               \
                                      const bool answered = answer.has_value();                     \
                                      if (answered) ::physio::SerializeToByteBuffer(*answer, *response_bytes); \
                                      finish(answered);                                             \
                                    });                                                             \
        },                                                                                          \
        [this, call, response_bytes](const ::physio::CallContext& ctx, ::physio::AuditTarget& audit) { \
          call->response() = app_.Method(ctx, call->request(), audit);                              \
          ::physio::SerializeToByteBuffer(call->response(), *response_bytes);                       \
        });                                                                                         \
  }))
#define PHYSIO_UNARY_RPC_NO_PATIENT_DATA(Method) PHYSIO_UNARY_RPC_WITH(Method, ::physio::PatientData::kNone)
#define PHYSIO_UNARY_RPC_EMERGENCY_ACCESS(Method) PHYSIO_UNARY_RPC_WITH(Method, ::physio::PatientData::kEmergencyAccess)
#define PHYSIO_UNARY_RPC_CONSENT(Method) PHYSIO_UNARY_RPC_WITH(Method, ::physio::PatientData::kConsent)
#define PHYSIO_UNARY_RPC_AUDIT_TRAIL(Method) PHYSIO_UNARY_RPC_WITH(Method, ::physio::PatientData::kAuditTrail)
