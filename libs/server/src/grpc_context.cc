#include "physio/server/grpc_context.h"

#include <grpcpp/impl/codegen/proto_utils.h>
#include <grpcpp/impl/codegen/server_callback_handlers.h>
#include <grpcpp/support/proto_buffer_reader.h>
#include <spdlog/spdlog.h>

#include <stdexcept>


#include "physio/common/logging.h"
#include "physio/common/no_blocking.h"

#include "physio/common/ids.h"
#include "physio/common/validation.h"

namespace physio {

namespace {
std::string Metadata(const grpc::ServerContextBase& server_context, const std::string& key) {
  const auto& metadata = server_context.client_metadata();
  auto it = metadata.find(key);
  if (it == metadata.end()) return "";
  return std::string(it->second.data(), it->second.size());
}
}  // namespace

std::set<std::string> CertificateIdentities(const grpc::ServerContextBase& server_context) {
  std::set<std::string> identities;
  auto auth = server_context.auth_context();
  if (!auth || !auth->IsPeerAuthenticated()) return identities;
  for (const char* property : {GRPC_X509_CN_PROPERTY_NAME, GRPC_X509_SAN_PROPERTY_NAME}) {
    for (const auto& value : auth->FindPropertyValues(property)) identities.emplace(value.data(), value.size());
  }
  return identities;
}

bool IsServicePeer(const grpc::ServerContextBase& server_context, const ServiceIdentityPolicy& services) {
  if (!services.require_certificate) return false;
  for (const auto& identity : CertificateIdentities(server_context)) {
    if (services.identities.contains(identity)) return true;
  }
  return false;
}

const std::string& GatewayKey() {
  static const std::string key = RandomHex(16);
  return key;
}

namespace {
// Compares in time independent of where the first difference is.
bool SameSecret(const std::string& given, const std::string& expected) {
  if (given.size() != expected.size()) return false;
  unsigned char difference = 0;
  for (std::size_t i = 0; i < given.size(); ++i) difference |= static_cast<unsigned char>(given[i] ^ expected[i]);
  return difference == 0;
}
}  // namespace

AuditActor AuditActorOf(const CallContext& ctx) {
  std::string roles;
  for (Role role : ctx.roles) roles += (roles.empty() ? "" : ",") + RoleName(role);
  return AuditActor{ctx.tenant, ctx.principal, std::move(roles), ctx.request_id, ctx.peer};
}

namespace {
// The peer as the audit trail records it: "http:<address>:<port>" for a call
// this process's gateway passed on, else gRPC's peer string.
std::string PeerOf(const grpc::ServerContextBase& server_context) {
  // Only this process's HTTP gateway may say who its client was.
  const std::string http_peer = Metadata(server_context, kHttpPeerMetadata);
  if (!http_peer.empty() && SameSecret(Metadata(server_context, kGatewayKeyMetadata), GatewayKey())) {
    return "http:" + http_peer;
  }
  return server_context.peer();
}

const std::string kBearer = "Bearer ";
}  // namespace

std::string CallerAddress(const grpc::ServerContextBase& server_context) {
  return AddressOfPeer(PeerOf(server_context));
}

bool HasValidToken(const grpc::ServerContextBase& server_context, const TokenVerifier& verifier) {
  const std::string authorization = Metadata(server_context, "authorization");
  if (authorization.rfind(kBearer, 0) != 0) return false;
  try {
    verifier.Verify(authorization.substr(kBearer.size()));
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

CallContext IncomingCallContext(const grpc::ServerContextBase& server_context) {
  CallContext ctx;
  std::string request_id = Metadata(server_context, "x-request-id");
  ctx.request_id = (!request_id.empty() && IsOpaqueId(request_id)) ? request_id : NewId("req");
  auto grpc_deadline = server_context.deadline();
  if (grpc_deadline != std::chrono::system_clock::time_point::max()) {
    ctx.deadline = Clock::now() + (grpc_deadline - std::chrono::system_clock::now());
  }
  ctx.peer = PeerOf(server_context);
  AcceptTraceparent(ctx, Metadata(server_context, "traceparent"));
  return ctx;
}

namespace {
bool IsLowerHex(std::string_view text) {
  return !text.empty() && text.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}
}  // namespace

bool IsWellFormedTraceparent(std::string_view traceparent) {
  // version "-" trace-id "-" parent-id "-" flags: 2 + 1 + 32 + 1 + 16 + 1 + 2 = 55.
  if (traceparent.size() != 55 || traceparent.compare(0, 3, "00-") != 0 || traceparent[35] != '-' ||
      traceparent[52] != '-') {
    return false;
  }
  const auto trace_id = traceparent.substr(3, 32), parent_id = traceparent.substr(36, 16),
             flags = traceparent.substr(53, 2);
  if (!IsLowerHex(trace_id) || !IsLowerHex(parent_id) || !IsLowerHex(flags)) return false;
  // All-zero ids are invalid.
  return trace_id.find_first_not_of('0') != std::string_view::npos &&
         parent_id.find_first_not_of('0') != std::string_view::npos;
}

void AcceptTraceparent(CallContext& ctx, const std::string& traceparent) {
  if (!IsWellFormedTraceparent(traceparent)) return;
  ctx.trace_id = traceparent.substr(3, 32);
  ctx.trace_flags = traceparent.substr(53, 2);
}

std::string OutgoingTraceparent(const CallContext& ctx) {
  if (ctx.trace_id.empty()) return "";
  // A new span id for the call this one makes: 16 hex digits, not all zero.
  std::string span = RandomHex(8);
  if (span.find_first_not_of('0') == std::string::npos) span.back() = '1';
  return "00-" + ctx.trace_id + "-" + span + "-" + ctx.trace_flags;
}

void Authenticate(CallContext& ctx, const grpc::ServerContextBase& server_context, const TokenVerifier& verifier,
                  const ServiceIdentityPolicy& services) {
  std::string authorization = Metadata(server_context, "authorization");
  if (authorization.rfind(kBearer, 0) != 0) {
    throw Error(ErrorCode::kUnauthenticated, "missing 'authorization: Bearer <token>' metadata");
  }
  ctx.bearer_token = authorization.substr(kBearer.size());
  VerifiedClaims claims = verifier.Verify(ctx.bearer_token, ctx.deadline);
  ctx.tenant = claims.tenant;
  ctx.principal = claims.subject;
  ctx.roles = claims.roles;
  ctx.patient_id = claims.patient_id;
  ctx.clinics = claims.clinics;
  ctx.all_clinics = claims.all_clinics;
  ctx.smart_scopes = claims.smart_scopes;
  ctx.issuer = claims.issuer;
  ctx.client_id = claims.client_id;
  ctx.platform = claims.platform;
  ctx.platform_consent_required = claims.platform_consent_required;
  // Without mutual TLS no caller can prove it is one of our services: the role is refused then.
  if (ctx.HasRole(Role::kService) && !IsServicePeer(server_context, services)) {
    throw Error(ErrorCode::kPermissionDenied, "the service role needs a service's client certificate");
  }
}

std::shared_ptr<grpc::Channel> MakePeerChannel(const std::string& address, const PeerTls& tls) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 30000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
  // An address may name several replicas ("ipv4:10.0.0.1:50051,10.0.0.2:50051",
  // or a dns:/// name with several records): spread calls over every ready one,
  // so one replica going away moves its share to the others at once.
  args.SetLoadBalancingPolicyName("round_robin");
  // gRPC's default reconnect backoff grows to 120 s, which would keep a peer
  // restarted after a crash out of use for minutes; retry it every second at most.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  // This argument is also the floor of each connection attempt's deadline (gRPC's default 20 s):
  // an attempt caught in a peer's restart (the connection neither refused nor answered) held the
  // channel for up to 20 s (the fault suite once saw 17 s). Two seconds still leaves a handshake
  // under load its time; a timed-out attempt is simply retried.
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 2000);
  if (tls.ca_file.empty()) return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = ReadFileOrThrow(tls.ca_file, "peer-ca-file");
  if (!tls.cert_file.empty()) ssl.pem_cert_chain = ReadFileOrThrow(tls.cert_file, "peer-cert-file");
  if (!tls.key_file.empty()) ssl.pem_private_key = ReadFileOrThrow(tls.key_file, "peer-key-file");
  if (!tls.server_name.empty()) args.SetSslTargetNameOverride(tls.server_name);
  return grpc::CreateCustomChannel(address, grpc::SslCredentials(ssl), args);
}


std::unique_ptr<grpc::ClientContext> MakeOutgoingContext(const CallContext& ctx, std::chrono::milliseconds cap) {
  auto client = std::make_unique<grpc::ClientContext>();
  client->AddMetadata("authorization", "Bearer " + ctx.bearer_token);
  client->AddMetadata("x-request-id", ctx.request_id);
  if (const std::string traceparent = OutgoingTraceparent(ctx); !traceparent.empty()) {
    client->AddMetadata("traceparent", traceparent);
  }
  auto remaining = std::min(ctx.Remaining(), cap);
  client->set_deadline(std::chrono::system_clock::now() + remaining);
  return client;
}


int MethodIndexOf(const char* service_full_name, const char* method) {
  const auto* service = google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(service_full_name);
  const auto* found = service == nullptr ? nullptr : service->FindMethodByName(method);
  if (found == nullptr) throw std::logic_error(std::string("no method ") + method + " in " + service_full_name);
  return found->index();
}

grpc::internal::MethodHandler* RawUnaryHandler(RawUnaryFunction function) {
  // Owned by the grpc::Service it is given to (MarkMethodRawCallback), as generated code does.
  return std::make_unique<grpc::internal::CallbackUnaryHandler<grpc::ByteBuffer, grpc::ByteBuffer>>(std::move(function))
      .release();
}

grpc::internal::MethodHandler* RawServerStreamingHandler(RawServerStreamingFunction function) {
  return std::make_unique<grpc::internal::CallbackServerStreamingHandler<grpc::ByteBuffer, grpc::ByteBuffer>>(
             std::move(function))
      .release();
}

std::string UnparsedRequestMessage(const google::protobuf::Descriptor& request_type) {
  return "request: not a valid " + request_type.name() +
         " message (its bytes are not protobuf, or a string field holds bytes that are not UTF-8)";
}

bool ParseByteBuffer(const grpc::ByteBuffer& bytes, google::protobuf::Message& message) {
  grpc::ByteBuffer copy(bytes);  // the reader consumes its buffer; a copy only takes references
  grpc::ProtoBufferReader reader(&copy);
  return message.ParseFromZeroCopyStream(&reader);
}

void SerializeToByteBuffer(const google::protobuf::Message& message, grpc::ByteBuffer& out) {
  bool own_buffer = false;
  const grpc::Status status = grpc::SerializationTraits<google::protobuf::Message>::Serialize(message, &out, &own_buffer);
  if (!status.ok()) throw Error(ErrorCode::kInternal, "response could not be serialised: " + status.error_message());
}

grpc::ByteBuffer SharedByteBuffer(std::shared_ptr<const std::string> bytes) {
  // The slice's destructor drops the reference: gRPC frees the slice when it has sent it.
  auto owner = std::make_unique<std::shared_ptr<const std::string>>(std::move(bytes));
  const std::string& data = **owner;
  grpc::Slice slice(grpc_slice_new_with_user_data(
                        const_cast<char*>(data.data()), data.size(),
                        [](void* reference) {
                          std::unique_ptr<std::shared_ptr<const std::string>>(
                              static_cast<std::shared_ptr<const std::string>*>(reference));
                        },
                        owner.get()),
                    grpc::Slice::STEAL_REF);
  static_cast<void>(owner.release());  // now the slice's
  return grpc::ByteBuffer(&slice, 1);
}

namespace {
// The patient and the record a request names (top-level fields by their
// conventional names), as far as they are well-formed ids.
void TargetFromRequest(const google::protobuf::Message& request, AuditTarget& target) {
  const auto* descriptor = request.GetDescriptor();
  const auto* reflection = request.GetReflection();
  auto id_field = [&](const char* name) -> std::string {
    const auto* field = descriptor->FindFieldByName(name);
    if (field == nullptr || field->is_repeated() || field->cpp_type() != google::protobuf::FieldDescriptor::CPPTYPE_STRING) {
      return "";
    }
    std::string value = reflection->GetString(request, field);
    return IsOpaqueId(value) ? value : "";
  };
  target.patient_id = id_field("patient_id");
  for (const char* name : {"session_id", "assessment_id", "plan_id", "alert_id", "visit_id"}) {
    if (target.resource_id = id_field(name); !target.resource_id.empty()) break;
  }
}

// What a client is told of an error. Store failures carry libpq and hiredis texts
// (hosts, SQL states, server messages): those go to the log with the request id,
// and the client gets what to do. Every other code's message is written for the
// caller (the field and rule, the record not found, the precondition).
grpc::Status ForClient(const char* method, const std::string& request_id, const Error& error) {
  switch (error.code()) {
    case ErrorCode::kUnavailable:
      spdlog::warn("method={} request_id={} unavailable: {}", method, request_id, error.what());
      return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                          "a store or service is unavailable; retry with the same request_id (request_id " +
                              request_id + ")");
    case ErrorCode::kInternal:
      spdlog::error("method={} request_id={} internal: {}", method, request_id, error.what());
      return grpc::Status(grpc::StatusCode::INTERNAL, "internal error; request_id " + request_id);
    default:
      return ToStatus(error);
  }
}
}  // namespace

grpc::ServerUnaryReactor* CallPipeline::Serve(const char* method, PatientData patient_data,
                                              grpc::CallbackServerContext* server_context,
                                              const google::protobuf::Message& request, Body body) {
  auto* reactor = server_context->DefaultReactor();
  const auto accepted = Clock::now();
  if (metrics_ != nullptr) metrics_->CallStarted(method);
  Enqueue(method, patient_data, server_context, reactor, request, std::move(body), accepted);
  return reactor;
}

void CallPipeline::Enqueue(const char* method, PatientData patient_data, grpc::CallbackServerContext* server_context,
                           grpc::ServerUnaryReactor* reactor, const google::protobuf::Message& request, Body body,
                           Clock::time_point accepted) {
  if (guard_ != nullptr) {
    // An address past its budget of failed logins: only a call whose token
    // verifies goes on; the rest are refused here, before any queue or record.
    if (const auto wait = guard_->Blocked(CallerAddress(*server_context));
        wait.count() > 0 && !HasValidToken(*server_context, verifier_)) {
      guard_->CountBlocked();
      const std::string wait_ms = std::to_string(wait.count());
      server_context->AddTrailingMetadata("retry-after-ms", wait_ms);
      server_context->AddTrailingMetadata("grpc-retry-pushback-ms", wait_ms);
      if (metrics_ != nullptr) metrics_->CallHandled(method, "RESOURCE_EXHAUSTED", 0);
      reactor->Finish(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                                   "too many unauthenticated calls from this address; retry after " + wait_ms + " ms"));
      return;
    }
  }
  const bool queued = workers_.Submit([this, method, patient_data, server_context, reactor, &request, accepted,
                                       body = std::move(body)] {
    Run(method, patient_data, server_context, reactor, request, body, accepted);
  });
  if (!queued) {
    // Only past the configured queue limit (far more calls waiting than the service is sized for).
    spdlog::warn("call queue full; refusing method={}", method);
    if (metrics_ != nullptr) metrics_->CallHandled(method, "RESOURCE_EXHAUSTED", 0);
    reactor->Finish(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "server call queue full; retry with backoff"));
  }
}

struct CallPipeline::FastCall {
  const char* method;
  grpc::CallbackServerContext* server_context;
  const google::protobuf::Message* request;
  Body body;
  CallContext ctx;
  AuditActor actor;
  AuditTarget target;
  std::string named_patient;
};

void CallPipeline::AdmitCaller(const char* method, PatientData patient_data, grpc::CallbackServerContext& server_context,
                               const google::protobuf::Message& request, const AuditTarget& target, CallContext& ctx,
                               AuditActor& actor, bool& authenticated) const {
  Authenticate(ctx, server_context, verifier_, services_);
  authenticated = true;
  actor = AuditActorOf(ctx);  // the identity is final from here on
  if (ctx.deadline <= Clock::now()) {
    throw Error(ErrorCode::kDeadlineExceeded, "deadline passed while the call waited for a worker");
  }
  if (limiter_ != nullptr && limiter_->enabled() && !ctx.HasRole(Role::kService) &&
      !IsServicePeer(server_context, services_)) {
    // Without Redis the limiter decides with this process's buckets (never open).
    const RateDecision quota =
        limiter_->Take(ctx.tenant, ctx.principal, ctx.DeadlineCappedAt(std::chrono::milliseconds(200)));
    if (!quota.allowed) {
      // gRPC's retry pushback (honoured by clients with a retry policy) and a plain hint for everyone else.
      const std::string wait_ms = std::to_string(quota.retry_after.count());
      server_context.AddTrailingMetadata("retry-after-ms", wait_ms);
      server_context.AddTrailingMetadata("grpc-retry-pushback-ms", wait_ms);
      throw Error(ErrorCode::kResourceExhausted, std::string("rate limit of this ") + quota.limit +
                                                     " exceeded; retry after " + wait_ms + " ms");
    }
  }
  CheckRequestBounds(request, input_);
  roles_.Require(ctx, method);
  ctx.patient_clinics = patient_clinics_;
  ctx.consent_call = patient_data == PatientData::kConsent;
  // Clinic scoping, before the use case: staff naming a patient of clinics they do not
  // work at learn nothing more than for a patient of another tenant.
  if (patient_data != PatientData::kEmergencyAccess && IsStaff(ctx) && !target.patient_id.empty() &&
      !SharesClinicWith(ctx, target.patient_id)) {
    throw Error(ErrorCode::kNotFound, "patient not found");
  }
}

bool CallPipeline::ResponseMayGo(PatientData patient_data, const CallContext& ctx, const AuditTarget& target,
                                 const std::string& named_patient) const {
  // A patient is never handed another patient's record, nor staff the record of a patient
  // outside their clinics. The patient the request named was checked before the call (a
  // transfer away from the caller's clinics answers with that patient, and must not be turned
  // into NOT_FOUND after it committed); a record found by id is checked here.
  return patient_data == PatientData::kAuditTrail || target.patient_id.empty() ||
         (target.patient_id == named_patient && IsStaff(ctx)) || CanSeePatient(ctx, target.patient_id);
}

bool CallPipeline::PrepareFastRead(const char* method, grpc::CallbackServerContext* server_context,
                                   const google::protobuf::Message& request, FastCall& call) const {
  // Run's steps up to the use case (AdmitCaller, the same function); any refusal throws, and is
  // then made again and recorded by Run.
  if (server_context->IsCancelled()) return false;
  if (guard_ != nullptr && guard_->Blocked(CallerAddress(*server_context)).count() > 0) return false;
  call.ctx = IncomingCallContext(*server_context);
  TargetFromRequest(request, call.target);
  bool authenticated = false;
  AdmitCaller(method, PatientData::kTouched, *server_context, request, call.target, call.ctx, call.actor,
              authenticated);
  call.named_patient = call.target.patient_id;
  return true;
}

bool CallPipeline::CompleteFastRead(grpc::ServerUnaryReactor* reactor, Clock::time_point accepted, FastCall& call) {
  const CallContext& ctx = call.ctx;
  if (!ResponseMayGo(PatientData::kTouched, ctx, call.target, call.named_patient)) {
    return false;  // Run withholds it, and logs why
  }
  // Answered by the audit writer once the record has committed, as on a worker.
  return audit_.TrySubmit(
      call.actor, AuditEvent{call.method, call.target.patient_id, call.target.resource_id, "OK"},
      [this, reactor, accepted,
       record = AccessRecord{call.method, ctx.tenant, ctx.principal, ctx.request_id, "", {}, ctx.trace_id}](
          bool audited) {
        Answer(reactor, accepted, record,
               audited ? grpc::Status::OK
                       : grpc::Status(grpc::StatusCode::UNAVAILABLE, "audit trail unavailable; retry"));
      });
}

grpc::ServerUnaryReactor* CallPipeline::ServeFastRead(const char* method, grpc::CallbackServerContext* server_context,
                                                      const google::protobuf::Message& request, FastBody start,
                                                      Body body) {
  auto* reactor = server_context->DefaultReactor();
  const auto accepted = Clock::now();
  if (metrics_ != nullptr) metrics_->CallStarted(method);
  if (!fast_reads_ || (limiter_ != nullptr && limiter_->enabled())) {
    Enqueue(method, PatientData::kTouched, server_context, reactor, request, std::move(body), accepted);
    return reactor;
  }
  auto call = std::make_shared<FastCall>();
  call->method = method;
  call->server_context = server_context;
  call->request = &request;
  call->body = std::move(body);
  bool started = false;
  {
    NoBlockingScope no_blocking;
    try {
      started = PrepareFastRead(method, server_context, request, *call) &&
                start(call->ctx, call->target, [this, call, reactor, accepted](bool complete) {
                  bool answered = false;
                  if (complete) {
                    NoBlockingScope still_no_blocking;
                    try {
                      answered = CompleteFastRead(reactor, accepted, *call);
                    } catch (const std::exception&) {
                      answered = false;  // the ordinary path decides, and records, what this was
                    }
                  }
                  (answered ? fast_answered_ : fast_handed_over_).fetch_add(1, std::memory_order_relaxed);
                  if (!answered) {
                    Enqueue(call->method, PatientData::kTouched, call->server_context, reactor, *call->request,
                            std::move(call->body), accepted);
                  }
                });
    } catch (const std::exception&) {
      started = false;  // WouldBlock, or a refusal that Run makes and records
    }
  }
  if (!started) {
    fast_not_started_.fetch_add(1, std::memory_order_relaxed);
    Enqueue(method, PatientData::kTouched, server_context, reactor, request, std::move(call->body), accepted);
  }
  return reactor;
}

void CallPipeline::Run(const char* method, PatientData patient_data, grpc::CallbackServerContext* server_context,
                       grpc::ServerUnaryReactor* reactor, const google::protobuf::Message& request, const Body& body,
                       Clock::time_point accepted) {
  CallContext ctx;
  AuditActor actor;  // who the audit record names; outlives the CallAudit that refers to it
  AuditTarget target;
  grpc::Status status;
  bool authenticated = false;
  bool audited_with_write = false;
  auto finish = [this, method, reactor, accepted](const CallContext& call, const grpc::Status& final_status) {
    Answer(reactor, accepted, AccessRecord{method, call.tenant, call.principal, call.request_id, "", {}, call.trace_id},
           final_status);
  };
  if (server_context->IsCancelled()) {
    finish(ctx, grpc::Status(grpc::StatusCode::CANCELLED, "call cancelled while queued"));
    return;
  }
  ctx = IncomingCallContext(*server_context);
  // What the request names, before any check, so a refused attempt is recorded with its target.
  TargetFromRequest(request, target);
  try {
    AdmitCaller(method, patient_data, *server_context, request, target, ctx, actor, authenticated);
    const std::string named_patient = target.patient_id;  // checked by AdmitCaller, when the request names one
    CallAudit call_audit(audit_, actor, method, target);
    try {
      body(ctx, target);
    } catch (...) {
      audited_with_write = call_audit.committed();
      throw;
    }
    audited_with_write = call_audit.committed();
    if (!ResponseMayGo(patient_data, ctx, target, named_patient)) {
      spdlog::error("method={} request_id={} response named another patient; withheld", method, ctx.request_id);
      throw Error(ErrorCode::kNotFound, "not found");
    }
  } catch (const Error& error) {
    status = ForClient(method, ctx.request_id, error);
  } catch (const std::exception& e) {
    spdlog::error("method={} request_id={} unexpected error: {}", method, ctx.request_id, e.what());
    status = grpc::Status(grpc::StatusCode::INTERNAL, "internal error; request_id " + ctx.request_id);
  }
  // A refused token still leaves a record: the request id and peer are known.
  if (!authenticated) actor = AuditActorOf(ctx);
  AuditEvent event{method, target.patient_id, target.resource_id, StatusCodeName(status.error_code())};
  const bool refused = status.error_code() == grpc::StatusCode::UNAUTHENTICATED ||
                       status.error_code() == grpc::StatusCode::PERMISSION_DENIED;
  if (refused && (patient_data == PatientData::kNone || !authenticated)) {
    if (!authenticated) {
      // Whoever sent it is unknown: the patient it names is a claim, not an access.
      event.claimed_patient_id = std::move(event.patient_id);
      event.patient_id.clear();
      if (guard_ != nullptr) {
        const std::string address = AddressOfPeer(ctx.peer);
        if (status.error_code() == grpc::StatusCode::UNAUTHENTICATED) guard_->Failed(address);
        if (!guard_->ShouldAudit(address, event.repeats)) {  // counted into the address's next row
          finish(ctx, status);
          return;
        }
      }
    }
    // Nothing is handed out, so the call need not wait for the record; under a
    // flood of refusals a full queue drops it (logged) rather than hold workers.
    audit_.Submit(actor, event, Clock::now(), [](bool) {});
    finish(ctx, status);
    return;
  }
  if (patient_data == PatientData::kNone || !authenticated || (audited_with_write && status.ok())) {
    finish(ctx, status);
    return;
  }
  // Its own small budget, so a call that used its whole deadline is still recorded.
  const auto audit_deadline =
      std::min(std::max(ctx.deadline, Clock::now() + std::chrono::milliseconds(500)), Clock::now() + std::chrono::seconds(2));
  // The call is answered when the batch holding its record has committed, by
  // the batch writer's thread (the writers take turns: one commits while the
  // other answers its batch). The worker does not wait for it: it goes on to
  // the next call, which saves each read a sleep and a wake-up (issue 33).
  // Fail closed: patient data is not handed out without its audit record (the
  // writer reports every record, written or not, within its 2.5 s bound). A
  // mutation that already committed is safe to retry (its request_id replays it).
  audit_.Submit(actor, event, audit_deadline,
                [this, reactor, accepted, status,
                 record = AccessRecord{method, ctx.tenant, ctx.principal, ctx.request_id, "", {}, ctx.trace_id}](
                    bool audited) {
                  Answer(reactor, accepted, record,
                         audited || !status.ok()
                             ? status
                             : grpc::Status(grpc::StatusCode::UNAVAILABLE, "audit trail unavailable; retry"));
                });
}

void CallPipeline::Answer(grpc::ServerUnaryReactor* reactor, Clock::time_point accepted, AccessRecord record,
                          const grpc::Status& status) const {
  record.duration = Clock::now() - accepted;
  record.code = StatusCodeName(status.error_code());
  LogAccess(record);
  if (metrics_ != nullptr) {
    metrics_->CallHandled(record.method, record.code, std::chrono::duration<double>(record.duration).count());
  }
  reactor->Finish(status);
}

}  // namespace physio
