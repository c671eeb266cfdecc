#include "physio/server/event_feed.h"

#include <google/protobuf/util/time_util.h>
#include <spdlog/spdlog.h>

#include <charconv>
#include <future>
#include <set>

#include "physio/common/error.h"
#include "physio/server/proto_util.h"
#include "physio/server/status_codes.h"

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
                     ServiceIdentityPolicy services, AuditTrail& audit, EventFeedSettings settings, RefusalGuard* guard)
    : pg_(pg),
      schema_(std::move(schema)),
      verifier_(verifier),
      roles_(roles),
      services_(std::move(services)),
      audit_(audit),
      settings_(settings),
      guard_(guard),
      opens_(settings_.opens_per_second, settings_.opens_burst) {}

EventFeed::~EventFeed() { Stop(); }

void EventFeed::Stop() {
  stopping_ = true;
  std::unique_lock lock(mutex_);
  streams_ended_.wait_for(lock, std::chrono::seconds(10), [&] { return streams_ == 0; });
}

namespace {
std::string CallerKey(const CallContext& ctx) { return ctx.tenant + '\x1f' + ctx.principal; }

// The kinds a request asks for, by name: each a defined kind, none twice.
std::vector<std::string> KindNames(const google::protobuf::RepeatedField<int>& kinds) {
  std::vector<std::string> names;
  std::set<int> seen;
  for (int i = 0; i < kinds.size(); ++i) {
    const int kind = kinds.Get(i);
    const std::string field = "kinds[" + std::to_string(i) + "]";
    if (!common::v1::EventKind_IsValid(kind) || kind == common::v1::EVENT_KIND_UNSPECIFIED) {
      ThrowInvalidArgument(field, "unknown event kind " + std::to_string(kind));
    }
    if (!seen.insert(kind).second) ThrowInvalidArgument(field, "event kind named twice");
    names.push_back(common::v1::EventKind_Name(static_cast<common::v1::EventKind>(kind)));
  }
  return names;
}
}  // namespace

bool EventFeed::Admit(const CallContext& ctx, std::string* why) {
  if (const auto wait = opens_.Take(CallerKey(ctx)); wait.count() > 0) {
    *why = "streams opened too often by this caller; retry after " + std::to_string(wait.count()) + " ms";
    return false;
  }
  std::lock_guard lock(mutex_);
  if (tenant_streams_[ctx.tenant] >= settings_.max_streams_per_tenant) {
    *why = "too many event streams open for this tenant; close one or retry with backoff";
    return false;
  }
  if (caller_streams_[CallerKey(ctx)] >= settings_.max_streams_per_caller) {
    *why = "too many event streams open for this caller; close one or retry with backoff";
    return false;
  }
  ++tenant_streams_[ctx.tenant];
  ++caller_streams_[CallerKey(ctx)];
  return true;
}

void EventFeed::Release(const CallContext& ctx) {
  std::lock_guard lock(mutex_);
  if (--tenant_streams_[ctx.tenant] <= 0) tenant_streams_.erase(ctx.tenant);
  if (--caller_streams_[CallerKey(ctx)] <= 0) caller_streams_.erase(CallerKey(ctx));
}

void EventFeed::AuditRefusal(const CallContext& ctx, bool authenticated, const grpc::Status& status) {
  AuditEvent event{"WatchEvents", "", "", StatusCodeName(status.error_code())};
  if (!authenticated && guard_ != nullptr) {
    const std::string address = AddressOfPeer(ctx.peer);
    if (status.error_code() == grpc::StatusCode::UNAUTHENTICATED) guard_->Failed(address);
    if (!guard_->ShouldAudit(address, event.repeats)) return;
  }
  // Nothing is handed out: the stream need not wait for the record.
  audit_.Submit(AuditActorOf(ctx), event, Clock::now(), [](bool) {});
}

grpc::Status EventFeed::Serve(const grpc::CallbackServerContext& context, const google::protobuf::Message& request,
                              const std::string& after_cursor, const google::protobuf::RepeatedField<int>& kind_numbers,
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
  bool authenticated = false, admitted = false;
  struct Admitted {
    EventFeed& feed;
    const CallContext& ctx;
    const bool& admitted;
    ~Admitted() {
      if (admitted) feed.Release(ctx);
    }
  } admitted_slot{*this, ctx, admitted};
  try {
    // Who is asking first; nothing of the request is read before.
    Authenticate(ctx, context, verifier_, services_);
    authenticated = true;
    ctx.patient_clinics = patient_clinics_;
    std::chrono::system_clock::time_point token_expires = verifier_.Verify(ctx.bearer_token).expires;
    roles_.Require(ctx, "WatchEvents");
    CheckRequestBounds(request, settings_.input);
    const std::vector<std::string> kinds = KindNames(kind_numbers);
    std::int64_t cursor = ParseCursor(after_cursor);
    std::string why;
    if (!Admit(ctx, &why)) throw Error(ErrorCode::kResourceExhausted, why);
    admitted = true;
    // The feed names patients: one audit record per stream, committed before the first event.
    std::promise<bool> audited;
    audit_.Submit(AuditActorOf(ctx), AuditEvent{"WatchEvents", "", after_cursor, "OK"}, Clock::now() + std::chrono::seconds(5),
                  [&audited](bool ok) { audited.set_value(ok); });
    if (!audited.get_future().get()) throw Error(ErrorCode::kUnavailable, "audit record could not be written");

    auto next_recheck = Clock::now() + settings_.token_recheck;
    while (!stopping_) {
      // The stream lives no longer than its token: expired, or no longer
      // verifying (its key removed), it ends and the client resumes with a fresh one.
      if (std::chrono::system_clock::now() >= token_expires) {
        throw Error(ErrorCode::kUnauthenticated, "token expired; resume from your last cursor with a fresh token");
      }
      if (Clock::now() >= next_recheck) {
        try {
          token_expires = verifier_.Verify(ctx.bearer_token).expires;
        } catch (const Error&) {
          throw Error(ErrorCode::kUnauthenticated,
                      "token no longer valid; resume from your last cursor with a fresh token");
        }
        next_recheck = Clock::now() + settings_.token_recheck;
      }
      std::vector<EventRecord> page;
      {
        const auto deadline = Clock::now() + std::chrono::seconds(5);
        SequencePendingEvents(pg_, deadline, schema_, ctx.tenant);
        auto lease = pg_.Lease(deadline);
        lease->EnsureConnected(deadline);
        page = EventsAfter(*lease, schema_, ctx.tenant, cursor, kinds, settings_.page);
      }  // the connection goes back before the client is written to
      for (const auto& record : page) {
        // Clinic scoping: events of patients outside the caller's clinics are passed over (the cursor moves on).
        if (IsClinicScoped(ctx) && !record.patient_id.empty() && !SharesClinicWith(ctx, record.patient_id)) {
          cursor = record.sequence;
          continue;
        }
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
    const grpc::Status status = ToStatus(error);
    const auto code = status.error_code();
    if (!admitted && (code == grpc::StatusCode::UNAUTHENTICATED || code == grpc::StatusCode::PERMISSION_DENIED ||
                      code == grpc::StatusCode::RESOURCE_EXHAUSTED)) {
      AuditRefusal(ctx, authenticated, status);
    }
    return status;
  } catch (const std::exception& e) {
    spdlog::error("WatchEvents request_id={} internal: {}", ctx.request_id, e.what());
    return grpc::Status(grpc::StatusCode::INTERNAL, "internal error; request_id " + ctx.request_id);
  }
}

}  // namespace physio
