#pragma once
// WatchEvents, the same for every service: the caller's tenant's events from the
// outbox (libs/db events.h), oldest first from a cursor, then each new one as it
// commits (polled), on a server-streaming call. Each stream runs on its own
// thread, never on gRPC's, and holds a PostgreSQL connection only while it reads
// a page, never while the client reads.
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "physio/auth/token_verifier.h"
#include "physio/common/v1/common.pb.h"
#include "physio/db/audit.h"
#include "physio/db/events.h"
#include "physio/db/pg.h"
#include "physio/common/token_buckets.h"
#include "physio/server/grpc_context.h"
#include "physio/server/refusal_guard.h"

namespace physio {

struct EventFeedSettings {
  int max_streams = 64;                       // open streams per process; past it RESOURCE_EXHAUSTED
  int max_streams_per_tenant = 16;            // open streams of one tenant in this process
  int max_streams_per_caller = 4;             // open streams of one caller (tenant + subject) in this process
  double opens_per_second = 1;                // streams one caller may open per second (after `opens_burst`)
  double opens_burst = 10;
  std::chrono::milliseconds poll{200};        // how often a caught-up stream looks for new events
  std::chrono::milliseconds token_recheck{1000};  // how often an open stream's token is verified again
  int page = 100;                             // events read per query
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
  // response: event).
  template <typename Response, typename Request>
  grpc::ServerWriteReactor<Response>* Watch(grpc::CallbackServerContext* context, const Request& request);

  // Ends every stream (UNAVAILABLE: resume elsewhere from the last cursor) and waits for them.
  void Stop();
  // Clinic scoping: a clinic-bound caller's stream passes over events of patients outside their clinics.
  void SetPatientClinics(const PatientClinicsSource* source) { patient_clinics_ = source; }

  // Runs one stream to its end; `write` sends one event (false: the client went
  // away), `wait` sleeps up to the given time (false: cancelled). `request` is
  // the WatchEvents request (its after_cursor and kinds are passed too), read
  // only once the caller has authenticated. A stream ends UNAUTHENTICATED when
  // its token expires or stops verifying (a key removed): the client resumes
  // from its last cursor with a fresh token.
  grpc::Status Serve(const grpc::CallbackServerContext& context, const google::protobuf::Message& request,
                     const std::string& after_cursor, const google::protobuf::RepeatedField<int>& kinds,
                     const std::function<bool(const common::v1::Event&)>& write,
                     const std::function<bool(std::chrono::milliseconds)>& wait);

 private:
  template <typename Response, typename Request>
  class Stream;
  template <typename Response>
  class Refused;
  // The caller's slot among the streams of its tenant and its own; false when either is full.
  bool Admit(const CallContext& ctx, std::string* why);
  void Release(const CallContext& ctx);
  void AuditRefusal(const CallContext& ctx, bool authenticated, const grpc::Status& status);

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
  std::mutex mutex_;
  std::condition_variable streams_ended_;
  int streams_ = 0;
  std::map<std::string, int> tenant_streams_, caller_streams_;
};

// A stream refused before it started (an address over its budget of failed logins).
template <typename Response>
class EventFeed::Refused final : public grpc::ServerWriteReactor<Response> {
 public:
  explicit Refused(const grpc::Status& status) { this->Finish(status); }
  void OnDone() override { delete this; }
};

template <typename Response, typename Request>
class EventFeed::Stream final : public grpc::ServerWriteReactor<Response> {
 public:
  // `request` is gRPC's, valid until OnDone; nothing of it is copied before the caller has authenticated.
  Stream(EventFeed& feed, grpc::CallbackServerContext* context, const Request& request)
      : feed_(feed), context_(context), request_(request) {
    std::thread([this] { Run(); }).detach();
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard lock(mutex_);
    write_ok_ = ok;
    writing_ = false;
    changed_.notify_all();
  }
  void OnCancel() override {
    std::lock_guard lock(mutex_);
    cancelled_ = true;
    changed_.notify_all();
  }
  void OnDone() override { delete this; }

 private:
  void Run() {
    const grpc::Status status = feed_.Serve(
        *context_, request_, request_.after_cursor(), request_.kinds(),
        [this](const common::v1::Event& event) {
          std::unique_lock lock(mutex_);
          if (cancelled_) return false;
          *response_.mutable_event() = event;
          writing_ = true;
          lock.unlock();
          this->StartWrite(&response_);
          lock.lock();
          changed_.wait(lock, [&] { return !writing_ || cancelled_; });
          return write_ok_ && !cancelled_;
        },
        [this](std::chrono::milliseconds period) {
          std::unique_lock lock(mutex_);
          return !changed_.wait_for(lock, period, [&] { return cancelled_; });
        });
    // The last touch of this object: after Finish, OnDone may delete it at any time.
    this->Finish(status);
  }

  EventFeed& feed_;
  grpc::CallbackServerContext* context_;
  const Request& request_;
  Response response_;
  std::mutex mutex_;
  std::condition_variable changed_;
  bool writing_ = false;
  bool write_ok_ = true;
  bool cancelled_ = false;
};

template <typename Response, typename Request>
grpc::ServerWriteReactor<Response>* EventFeed::Watch(grpc::CallbackServerContext* context, const Request& request) {
  // An address past its budget of failed logins gets no thread unless its token verifies.
  if (guard_ != nullptr) {
    if (const auto wait = guard_->Blocked(CallerAddress(*context)); wait.count() > 0 && !HasValidToken(*context, verifier_)) {
      guard_->CountBlocked();
      return new Refused<Response>(grpc::Status(  // deleted in OnDone
          grpc::StatusCode::RESOURCE_EXHAUSTED,
          "too many unauthenticated calls from this address; retry after " + std::to_string(wait.count()) + " ms"));
    }
  }
  return new Stream<Response, Request>(*this, context, request);  // deleted in OnDone
}

}  // namespace physio

// The WatchEvents handler of a generated `CallbackService` class whose `runtime_`
// is a ServiceRuntime (and namespace alias `pb`), as PHYSIO_UNARY_RPC does for unary calls.
#define PHYSIO_WATCH_EVENTS_RPC()                                                                          \
  grpc::ServerWriteReactor<pb::WatchEventsResponse>* WatchEvents(grpc::CallbackServerContext* context,   \
                                                                 const pb::WatchEventsRequest* request) override { \
    return runtime_.events().Watch<pb::WatchEventsResponse>(context, *request);                            \
  }

