#include "physio/server/event_feed.h"

#include <google/protobuf/util/time_util.h>
#include <spdlog/spdlog.h>

#include <charconv>
#include <future>

#include "physio/common/error.h"

namespace physio {

namespace {
// A cursor is the event's sequence in decimal; clients treat it as opaque.
std::int64_t ParseCursor(const std::string& cursor) {
  if (cursor.empty()) return 0;
  std::int64_t value = 0;
  const auto [end, error] = std::from_chars(cursor.data(), cursor.data() + cursor.size(), value);
  if (error != std::errc() || end != cursor.data() + cursor.size() || value < 0 || cursor.size() > 18) {
    ThrowInvalidArgument("after_cursor", "not a cursor this feed gave out");
  }
  return value;
}
}  // namespace

EventFeed::EventFeed(PgPool& pg, std::string schema, const TokenVerifier& verifier, const MethodRoles& roles,
                     ServiceIdentityPolicy services, AuditTrail& audit, EventFeedSettings settings)
    : pg_(pg),
      schema_(std::move(schema)),
      verifier_(verifier),
      roles_(roles),
      services_(std::move(services)),
      audit_(audit),
      settings_(settings) {}

EventFeed::~EventFeed() { Stop(); }

void EventFeed::Stop() {
  stopping_ = true;
  std::unique_lock lock(mutex_);
  streams_ended_.wait_for(lock, std::chrono::seconds(10), [&] { return streams_ == 0; });
}

grpc::Status EventFeed::Serve(const grpc::CallbackServerContext& context, const std::string& after_cursor,
                              const std::vector<std::string>& kinds,
                              const std::function<bool(const common::v1::Event&)>& write,
                              const std::function<bool(std::chrono::milliseconds)>& wait) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "server shutting down; resume from your last cursor");
    if (streams_ >= settings_.max_streams) {
      return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                          "too many event streams open on this server; retry with backoff");
    }
    ++streams_;
  }
  struct Release {
    EventFeed& feed;
    ~Release() {
      std::lock_guard lock(feed.mutex_);
      --feed.streams_;
      feed.streams_ended_.notify_all();
    }
  } release{*this};

  CallContext ctx = IncomingCallContext(context);
  try {
    Authenticate(ctx, context, verifier_, services_);
    roles_.Require(ctx, "WatchEvents");
    std::int64_t cursor = ParseCursor(after_cursor);
    for (const auto& kind : kinds) {
      if (kind.rfind("invalid:", 0) == 0 || kind == "EVENT_KIND_UNSPECIFIED") {
        ThrowInvalidArgument("kinds", "unknown event kind " + kind);
      }
    }
    // The feed names patients: one audit record per stream, committed before the first event.
    std::promise<bool> audited;
    audit_.Submit(AuditActorOf(ctx), AuditEvent{"WatchEvents", "", after_cursor, "OK"}, Clock::now() + std::chrono::seconds(5),
                  [&audited](bool ok) { audited.set_value(ok); });
    if (!audited.get_future().get()) throw Error(ErrorCode::kUnavailable, "audit record could not be written");

    while (!stopping_) {
      std::vector<EventRecord> page;
      {
        const auto deadline = Clock::now() + std::chrono::seconds(5);
        SequencePendingEvents(pg_, deadline, schema_, ctx.tenant);
        auto lease = pg_.Lease(deadline);
        lease->EnsureConnected(deadline);
        page = EventsAfter(*lease, schema_, ctx.tenant, cursor, kinds, settings_.page);
      }  // the connection goes back before the client is written to
      for (const auto& record : page) {
        common::v1::Event event;
        event.set_cursor(std::to_string(record.sequence));
        common::v1::EventKind kind = common::v1::EVENT_KIND_UNSPECIFIED;
        common::v1::EventKind_Parse(record.kind, &kind);
        event.set_kind(kind);
        event.set_patient_id(record.patient_id);
        event.set_resource_id(record.resource_id);
        *event.mutable_occur_time() = google::protobuf::util::TimeUtil::MicrosecondsToTimestamp(record.occurred_unix_micros);
        if (!write(event)) return grpc::Status::CANCELLED;
        cursor = record.sequence;
      }
      if (static_cast<int>(page.size()) < settings_.page && !wait(settings_.poll)) return grpc::Status::CANCELLED;
    }
    return grpc::Status(grpc::StatusCode::UNAVAILABLE, "server shutting down; resume from your last cursor");
  } catch (const Error& error) {
    if (error.code() == ErrorCode::kUnavailable) {
      spdlog::warn("WatchEvents request_id={} unavailable: {}", ctx.request_id, error.what());
      return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                          "a store is unavailable; resume from your last cursor (request_id " + ctx.request_id + ")");
    }
    return ToStatus(error);
  } catch (const std::exception& e) {
    spdlog::error("WatchEvents request_id={} internal: {}", ctx.request_id, e.what());
    return grpc::Status(grpc::StatusCode::INTERNAL, "internal error; request_id " + ctx.request_id);
  }
}

}  // namespace physio
