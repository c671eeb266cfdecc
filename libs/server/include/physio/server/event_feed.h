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
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "physio/auth/token_verifier.h"
#include "physio/common/v1/common.pb.h"
#include "physio/db/audit.h"
#include "physio/db/events.h"
#include "physio/db/pg.h"
#include "physio/server/grpc_context.h"

namespace physio {

struct EventFeedSettings {
  int max_streams = 64;                       // open streams per process; past it RESOURCE_EXHAUSTED
  std::chrono::milliseconds poll{200};        // how often a caught-up stream looks for new events
  int page = 100;                             // events read per query
};

class EventFeed {
 public:
  // `roles` is the service's method-to-roles table; its "WatchEvents" entry says who may watch.
  EventFeed(PgPool& pg, std::string schema, const TokenVerifier& verifier, const MethodRoles& roles,
            ServiceIdentityPolicy services, AuditTrail& audit, EventFeedSettings settings);
  ~EventFeed();

  // The handler of a generated service's WatchEvents (request: after_cursor, kinds;
  // response: event).
  template <typename Response, typename Request>
  grpc::ServerWriteReactor<Response>* Watch(grpc::CallbackServerContext* context, const Request& request);

  // Ends every stream (UNAVAILABLE: resume elsewhere from the last cursor) and waits for them.
  void Stop();

  // Runs one stream to its end; `write` sends one event (false: the client went
  // away), `wait` sleeps up to the given time (false: cancelled).
  grpc::Status Serve(const grpc::CallbackServerContext& context, const std::string& after_cursor,
                     const std::vector<std::string>& kinds, const std::function<bool(const common::v1::Event&)>& write,
                     const std::function<bool(std::chrono::milliseconds)>& wait);

 private:
  template <typename Response>
  class Stream;

  PgPool& pg_;
  std::string schema_;
  const TokenVerifier& verifier_;
  const MethodRoles& roles_;
  ServiceIdentityPolicy services_;
  AuditTrail& audit_;
  EventFeedSettings settings_;
  std::atomic<bool> stopping_{false};
  std::mutex mutex_;
  std::condition_variable streams_ended_;
  int streams_ = 0;
};

template <typename Response>
class EventFeed::Stream final : public grpc::ServerWriteReactor<Response> {
 public:
  Stream(EventFeed& feed, grpc::CallbackServerContext* context, std::string after_cursor,
         std::vector<std::string> kinds)
      : feed_(feed), context_(context), after_cursor_(std::move(after_cursor)), kinds_(std::move(kinds)) {
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
        *context_, after_cursor_, kinds_,
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
  std::string after_cursor_;
  std::vector<std::string> kinds_;
  Response response_;
  std::mutex mutex_;
  std::condition_variable changed_;
  bool writing_ = false;
  bool write_ok_ = true;
  bool cancelled_ = false;
};

template <typename Response, typename Request>
grpc::ServerWriteReactor<Response>* EventFeed::Watch(grpc::CallbackServerContext* context, const Request& request) {
  std::vector<std::string> kinds;
  for (int kind : request.kinds()) {
    kinds.push_back(common::v1::EventKind_IsValid(kind) ? common::v1::EventKind_Name(static_cast<common::v1::EventKind>(kind))
                                                        : "invalid:" + std::to_string(kind));
  }
  return new Stream<Response>(*this, context, request.after_cursor(), std::move(kinds));  // deleted in OnDone
}

}  // namespace physio

// The WatchEvents handler of a generated `CallbackService` class whose `runtime_`
// is a ServiceRuntime (and namespace alias `pb`), as PHYSIO_UNARY_RPC does for unary calls.
#define PHYSIO_WATCH_EVENTS_RPC()                                                                          \
  grpc::ServerWriteReactor<pb::WatchEventsResponse>* WatchEvents(grpc::CallbackServerContext* context,   \
                                                                 const pb::WatchEventsRequest* request) override { \
    return runtime_.events().Watch<pb::WatchEventsResponse>(context, *request);                            \
  }

