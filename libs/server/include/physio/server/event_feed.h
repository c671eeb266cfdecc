#pragma once
// WatchEvents, the same for every service: the caller's tenant's events from the
// outbox (libs/db events.h), oldest first from a cursor, then each new one as it
// commits, on a server-streaming call. No stream has a thread of its own: a few
// workers open streams and read pages for all of them, and one notifier reads each
// watched tenant's new events once per poll into a bounded buffer of recent events,
// from which caught-up streams are served (a stream behind the buffer reads pages
// from the outbox, which stays the source of truth). Writes are driven by gRPC's
// callbacks. A PostgreSQL connection is held only while a page or a poll is read.
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "physio/auth/token_verifier.h"
#include "physio/common/error.h"
#include "physio/common/v1/common.pb.h"
#include "physio/db/audit.h"
#include "physio/db/events.h"
#include "physio/db/pg.h"
#include "physio/common/token_buckets.h"
#include "physio/server/grpc_context.h"
#include "physio/server/refusal_guard.h"

namespace physio {

struct EventFeedSettings {
  int max_streams = 4096;                     // open streams per process; past it RESOURCE_EXHAUSTED
  int max_streams_per_tenant = 256;           // open streams of one tenant in this process
  int max_streams_per_caller = 4;             // open streams of one caller (tenant + subject) in this process
  double opens_per_second = 1;                // streams one caller may open per second (after `opens_burst`)
  double opens_burst = 10;
  std::chrono::milliseconds poll{200};        // how often the notifier looks for new events
  std::chrono::milliseconds token_recheck{1000};  // how often an open stream's token is verified again
  int page = 100;                             // events read per query
  int workers = 4;                            // threads opening streams and reading pages, for all streams
  int tenant_buffer = 1024;                   // recent events kept per watched tenant
  InputLimits input;                          // the request's bounds (as CheckRequestBounds for unary calls)
};

class EventFeed {
 public:
  // `roles` is the service's method-to-roles table; its "WatchEvents" entry says who may watch.
  // `guard`, when given, limits unauthenticated attempts per address (as for unary calls).
  EventFeed(PgPool& pg, std::string schema, const TokenVerifier& verifier, const MethodRoles& roles,
            ServiceIdentityPolicy services, AuditTrail& audit, EventFeedSettings settings,
            RefusalGuard* guard = nullptr);
  ~EventFeed();

  // The handler of a generated service's WatchEvents (request: after_cursor, kinds;
  // response: event), served from the request's bytes (a raw method, as every unary RPC is:
  // gRPC would answer bytes that do not parse with a bare UNIMPLEMENTED before any of our code
  // ran). The bytes are parsed once the caller has authenticated; bytes that are not a valid
  // Request are refused INVALID_ARGUMENT naming the message, as a bad cursor is.
  template <typename Response, typename Request>
  grpc::ServerWriteReactor<grpc::ByteBuffer>* Watch(grpc::CallbackServerContext* context,
                                                    const grpc::ByteBuffer& request_bytes);

  // Ends every stream (UNAVAILABLE: resume elsewhere from the last cursor) and waits for them.
  void Stop();
  // Clinic scoping: a clinic-bound caller's stream passes over events of patients outside their clinics.
  void SetPatientClinics(const PatientClinicsSource* source) { patient_clinics_ = source; }
  // Streams open now (for /metrics and tests).
  int open_streams() const;

  // One stream's side of gRPC (the reactor): one write at a time, then Finish once.
  class Sink {
   public:
    virtual ~Sink() = default;
    virtual void Write(const common::v1::Event& event) = 0;
    virtual void Finish(const grpc::Status& status) = 0;
    // The request, parsed from the call's bytes; throws Error (INVALID_ARGUMENT) when they are
    // not a valid request. Called once, by the feed, after the caller has authenticated; what it
    // returns stays valid until the reactor is done.
    struct ParsedRequest {
      const google::protobuf::Message& message;
      const std::string& after_cursor;
      const google::protobuf::RepeatedField<int>& kinds;
    };
    virtual ParsedRequest ParseRequest() = 0;
  };
  struct Stream;
  // Called by the reactor. `context` is gRPC's, valid until the reactor is done; nothing of the
  // request is read (Sink::ParseRequest) before the caller has authenticated.
  std::shared_ptr<Stream> Open(Sink& sink, const grpc::CallbackServerContext& context);
  void WriteDone(const std::shared_ptr<Stream>& stream, bool ok);
  void Cancelled(const std::shared_ptr<Stream>& stream);

 private:
  template <typename Response, typename Request>
  class Reactor;
  class Refused;
  struct Tenant;
  // The caller's slot among the streams of its tenant and its own; false when either is full.
  bool Admit(const CallContext& ctx, std::string* why);
  void Release(const CallContext& ctx);
  static std::optional<CallContext> MarkEnding(Stream& stream, grpc::Status status);
  void AuditRefusal(const CallContext& ctx, bool authenticated, const grpc::Status& status);
  // Authenticates, checks and admits the stream, audits it, and registers it with its tenant.
  void Authorize(const std::shared_ptr<Stream>& stream, const grpc::CallbackServerContext& context);
  // Reads the stream's next events (the tenant's buffer, or a page of the outbox) into its queue.
  void Fill(const std::shared_ptr<Stream>& stream);
  // Starts the next write, a fill, or the finish, whichever the stream is ready for.
  void Pump(const std::shared_ptr<Stream>& stream);
  // Ends the stream with `status` once its write in flight (if any) is done.
  void End(const std::shared_ptr<Stream>& stream, const grpc::Status& status);
  // The stream is finished: its slots and its tenant's registration go.
  void Forget(Stream& stream);
  void Post(std::function<void()> task);
  void WorkerLoop(std::stop_token stop);
  // The notifier: numbers, then reads, the watched tenants' new events; checks tokens.
  void NotifierLoop(std::stop_token stop);
  void Poll();

  PgPool& pg_;
  std::string schema_;
  const TokenVerifier& verifier_;
  const PatientClinicsSource* patient_clinics_ = nullptr;
  const MethodRoles& roles_;
  ServiceIdentityPolicy services_;
  AuditTrail& audit_;
  EventFeedSettings settings_;
  RefusalGuard* guard_;
  TokenBuckets opens_;
  std::atomic<bool> stopping_{false};
  mutable std::mutex mutex_;  // streams_, the admission maps, tenants_
  std::condition_variable streams_ended_;
  int streams_ = 0;
  std::map<std::string, int> tenant_streams_, caller_streams_;
  std::map<std::string, std::shared_ptr<Tenant>> tenants_;  // watched tenants, by id
  std::mutex tasks_mutex_;
  std::condition_variable_any tasks_ready_;
  std::deque<std::function<void()>> tasks_;
  std::vector<std::jthread> workers_;
  std::mutex notifier_mutex_;
  std::condition_variable_any notifier_wake_;
  std::jthread notifier_;
};

// A stream refused before it started (an address over its budget of failed logins).
class EventFeed::Refused final : public grpc::ServerWriteReactor<grpc::ByteBuffer> {
 public:
  explicit Refused(const grpc::Status& status) { this->Finish(status); }
  void OnDone() override { delete this; }
};

template <typename Response, typename Request>
class EventFeed::Reactor final : public grpc::ServerWriteReactor<grpc::ByteBuffer>, public EventFeed::Sink {
 public:
  // `request_bytes` are gRPC's, valid until OnDone; the feed parses them only once the caller has
  // authenticated.
  Reactor(EventFeed& feed, grpc::CallbackServerContext* context, const grpc::ByteBuffer& request_bytes)
      : feed_(feed), request_bytes_(request_bytes) {
    stream_ = feed_.Open(*this, *context);
  }
  ParsedRequest ParseRequest() override {
    if (!ParseByteBuffer(request_bytes_, request_)) {
      request_.Clear();
      throw Error(ErrorCode::kInvalidArgument, UnparsedRequestMessage(*Request::descriptor()));
    }
    return {request_, request_.after_cursor(), request_.kinds()};
  }
  void Write(const common::v1::Event& event) override {
    *response_.mutable_event() = event;
    response_bytes_.Clear();  // the write before it is done (one at a time)
    SerializeToByteBuffer(response_, response_bytes_);
    this->StartWrite(&response_bytes_);
  }
  void Finish(const grpc::Status& status) override { grpc::ServerWriteReactor<grpc::ByteBuffer>::Finish(status); }
  void OnWriteDone(bool ok) override { feed_.WriteDone(stream_, ok); }
  void OnCancel() override { feed_.Cancelled(stream_); }
  void OnDone() override { delete this; }

 private:
  EventFeed& feed_;
  const grpc::ByteBuffer& request_bytes_;
  Request request_;
  std::shared_ptr<EventFeed::Stream> stream_;
  Response response_;
  grpc::ByteBuffer response_bytes_;  // one write at a time
};

template <typename Response, typename Request>
grpc::ServerWriteReactor<grpc::ByteBuffer>* EventFeed::Watch(grpc::CallbackServerContext* context,
                                                             const grpc::ByteBuffer& request_bytes) {
  // An address past its budget of failed logins gets no stream unless its token verifies.
  if (guard_ != nullptr) {
    if (const auto wait = guard_->Blocked(CallerAddress(*context)); wait.count() > 0 && !HasValidToken(*context, verifier_)) {
      guard_->CountBlocked();
      return new Refused(grpc::Status(  // deleted in OnDone
          grpc::StatusCode::RESOURCE_EXHAUSTED,
          "too many unauthenticated calls from this address; retry after " + std::to_string(wait.count()) + " ms"));
    }
  }
  return new Reactor<Response, Request>(*this, context, request_bytes);  // deleted in OnDone
}

}  // namespace physio

// Registers the WatchEvents handler of a generated `CallbackService` class, served from its bytes
// (EventFeed::Watch). The class needs `runtime_` (a ServiceRuntime), `kServiceName` and a namespace
// alias `pb`, as PHYSIO_RAW_UNARY does.
#define PHYSIO_WATCH_EVENTS_RPC()                                                                    \
 private:                                                                                           \
  const bool raw_WatchEvents_ =                                                                     \
      (MarkMethodRawCallback(                                                                       \
           ::physio::MethodIndexOf(kServiceName, "WatchEvents"),                                    \
           ::physio::RawServerStreamingHandler(                                                     \
               [this](grpc::CallbackServerContext* context, const grpc::ByteBuffer* request_bytes) { \
                 return runtime_.events().Watch<pb::WatchEventsResponse, pb::WatchEventsRequest>(   \
                     context, *request_bytes);                                                      \
               })),                                                                                 \
       true);                                                                                       \
                                                                                                    \
 public:
