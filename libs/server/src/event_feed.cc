#include "physio/server/event_feed.h"

#include <google/protobuf/util/time_util.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <future>
#include <memory>
#include <optional>
#include <set>

#include "physio/common/error.h"
#include "physio/server/event_kinds.h"
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

struct EventFeed::Tenant {
  // Recent events of the tenant: sequences base+1 .. last, in order, gap-free.
  std::deque<EventRecord> buffer;
  std::int64_t base = 0;
  std::int64_t last = 0;
  std::set<std::shared_ptr<Stream>> streams;
};

struct EventFeed::Stream {
  Sink* sink = nullptr;  // not used once finished
  CallContext ctx;
  std::vector<std::string> kinds;
  std::int64_t cursor = 0;  // the last event queued or passed over
  std::chrono::system_clock::time_point token_expires;
  Clock::time_point next_recheck;
  std::mutex mutex;
  std::deque<common::v1::Event> queue;
  bool opened = false;      // authorized and registered with its tenant
  bool admitted = false;    // holds a tenant and a caller slot
  bool counted = false;     // counted in streams_
  bool writing = false, filling = false, finished = false;
  // Authorize is reading gRPC's context and request: the stream is not finished meanwhile
  // (Finish lets gRPC free them), however it ends; Authorize finishes it when done.
  bool authorizing = false;
  std::optional<grpc::Status> ending;
};

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
      opens_(settings_.opens_per_second, settings_.opens_burst) {
  for (int i = 0; i < std::max(1, settings_.workers); ++i) {
    workers_.emplace_back([this](std::stop_token stop) { WorkerLoop(stop); });
  }
  notifier_ = std::jthread([this](std::stop_token stop) { NotifierLoop(stop); });
}

EventFeed::~EventFeed() {
  Stop();
  notifier_.request_stop();
  notifier_wake_.notify_all();
  if (notifier_.joinable()) notifier_.join();
  for (auto& worker : workers_) worker.request_stop();
  tasks_ready_.notify_all();
  workers_.clear();
}

void EventFeed::Stop() {
  stopping_ = true;
  std::vector<std::shared_ptr<Stream>> open;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [id, tenant] : tenants_) open.insert(open.end(), tenant->streams.begin(), tenant->streams.end());
  }
  for (const auto& stream : open) {
    End(stream, grpc::Status(grpc::StatusCode::UNAVAILABLE, "server shutting down; resume from your last cursor"));
  }
  std::unique_lock lock(mutex_);
  streams_ended_.wait_for(lock, std::chrono::seconds(10), [&] { return streams_ == 0; });
}

int EventFeed::open_streams() const {
  std::lock_guard lock(mutex_);
  return streams_;
}

namespace {
std::string CallerKey(const CallContext& ctx) { return ctx.tenant + '\x1f' + ctx.principal; }

common::v1::Event ToEvent(const EventRecord& record) {
  common::v1::Event event;
  event.set_cursor(std::to_string(record.sequence));
  common::v1::EventKind kind = common::v1::EVENT_KIND_UNSPECIFIED;
  common::v1::EventKind_Parse(record.kind, &kind);
  event.set_kind(kind);
  event.set_patient_id(record.patient_id);
  event.set_resource_id(record.resource_id);
  *event.mutable_occur_time() = google::protobuf::util::TimeUtil::MicrosecondsToTimestamp(record.occurred_unix_micros);
  return event;
}

grpc::Status StoreUnavailable(const CallContext& ctx, const std::string& what) {
  spdlog::warn("WatchEvents request_id={} unavailable: {}", ctx.request_id, what);
  return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                      "a store is unavailable; resume from your last cursor (request_id " + ctx.request_id + ")");
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

void EventFeed::Post(std::function<void()> task) {
  {
    std::lock_guard lock(tasks_mutex_);
    tasks_.push_back(std::move(task));
  }
  tasks_ready_.notify_one();
}

void EventFeed::WorkerLoop(std::stop_token stop) {
  while (true) {
    std::function<void()> task;
    {
      std::unique_lock lock(tasks_mutex_);
      if (!tasks_ready_.wait(lock, stop, [&] { return !tasks_.empty(); })) return;
      task = std::move(tasks_.front());
      tasks_.pop_front();
    }
    try {
      task();
    } catch (const std::exception& e) {
      spdlog::error("WatchEvents task failed: {}", e.what());
    }
  }
}

std::shared_ptr<EventFeed::Stream> EventFeed::Open(Sink& sink, const grpc::CallbackServerContext& context) {
  auto stream = std::make_shared<Stream>();
  stream->sink = &sink;
  {
    std::lock_guard lock(mutex_);
    if (stopping_) {
      stream->ending = grpc::Status(grpc::StatusCode::UNAVAILABLE, "server shutting down; resume from your last cursor");
    } else if (streams_ >= settings_.max_streams) {
      stream->ending = grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                                    "too many event streams open on this server; retry with backoff");
    } else {
      ++streams_;
      stream->counted = true;
    }
  }
  if (stream->ending) {
    // Finished from a worker: gRPC's thread only hands the stream over.
    Post([this, stream] { Pump(stream); });
    return stream;
  }
  // gRPC's objects stay valid until the reactor is done, which is after its Finish: none before
  // Authorize is through with them (`authorizing`), even when the client cancels meanwhile.
  stream->authorizing = true;
  Post([this, stream, &context] { Authorize(stream, context); });
  return stream;
}

void EventFeed::Authorize(const std::shared_ptr<Stream>& stream, const grpc::CallbackServerContext& context) {
  // However this returns: gRPC's objects are no longer read, so the stream may be finished now.
  struct Authorized {
    EventFeed& feed;
    const std::shared_ptr<Stream>& stream;
    ~Authorized() {
      {
        std::lock_guard lock(stream->mutex);
        stream->authorizing = false;
      }
      feed.Pump(stream);
    }
  } authorized{*this, stream};
  bool ended = stopping_;
  {
    std::lock_guard lock(stream->mutex);
    ended = ended || stream->ending || stream->finished;
  }
  if (ended) {
    End(stream, grpc::Status(grpc::StatusCode::UNAVAILABLE, "server shutting down; resume from your last cursor"));
    return;  // finished by `authorized`
  }
  CallContext ctx = IncomingCallContext(context);
  bool authenticated = false;
  try {
    // Who is asking first; nothing of the request is read before.
    Authenticate(ctx, context, verifier_, services_);
    authenticated = true;
    ctx.patient_clinics = patient_clinics_;
    const auto token_expires = verifier_.Verify(ctx.bearer_token).expires;
    roles_.Require(ctx, "WatchEvents");
    // The reactor's, valid until it is done (not before this returns: `authorizing`).
    const Sink::ParsedRequest request = stream->sink->ParseRequest();
    const std::string& after_cursor = request.after_cursor;
    CheckRequestBounds(request.message, settings_.input);
    std::vector<std::string> kinds = EventKindNames("kinds", request.kinds);
    const std::int64_t cursor = ParseCursor(after_cursor);
    std::string why;
    if (!Admit(ctx, &why)) throw Error(ErrorCode::kResourceExhausted, why);
    {
      std::lock_guard lock(stream->mutex);
      stream->admitted = true;
      stream->ctx = ctx;
    }
    // The feed names patients: one audit record per stream, committed before the first event.
    // The writer answers within its deadline; the wait has its own bound too (the promise is shared,
    // so an answer after it gave up lands on a promise that still exists).
    auto audited = std::make_shared<std::promise<bool>>();
    auto written = audited->get_future();
    audit_.Submit(AuditActorOf(ctx), AuditEvent{"WatchEvents", "", after_cursor, "OK"},
                  Clock::now() + std::chrono::seconds(5), [audited](bool ok) { audited->set_value(ok); });
    if (written.wait_for(std::chrono::seconds(6)) != std::future_status::ready || !written.get()) {
      throw Error(ErrorCode::kUnavailable, "audit record could not be written");
    }
    // Where the tenant's buffer starts, the first time one of its streams opens.
    const auto latest_sequence = [&] {
      const auto deadline = Clock::now() + std::chrono::seconds(5);
      SequencePendingEvents(pg_, deadline, schema_, ctx.tenant);
      return std::stoll(QueryOnce(pg_, deadline,
                                  {"SELECT coalesce(max(sequence), 0) FROM " + schema_ + ".events WHERE tenant_id = $1",
                                   {ctx.tenant}})
                            .Get(0, 0));
    };
    {
      std::lock_guard lock(stream->mutex);
      stream->kinds = std::move(kinds);
      stream->cursor = cursor;
      stream->token_expires = token_expires;
      stream->next_recheck = Clock::now() + settings_.token_recheck;
    }
    // A tenant with no buffer (none of its streams open, or its last one closed since `latest` was
    // read: then read again) gets one starting at its latest number, never at 0, which would
    // replay its whole history.
    for (std::optional<std::int64_t> latest;; latest = latest_sequence()) {
      std::lock_guard lock(mutex_);
      auto found = tenants_.find(ctx.tenant);
      if (found == tenants_.end() && latest) {
        found = tenants_.emplace(ctx.tenant, std::make_shared<Tenant>()).first;
        found->second->base = found->second->last = *latest;
      }
      if (found != tenants_.end()) {
        found->second->streams.insert(stream);
        break;
      }
    }
    {
      std::lock_guard lock(stream->mutex);
      stream->opened = true;
      stream->filling = true;
    }
    // Stop() may have passed over this stream while it was being registered.
    if (stopping_) End(stream, grpc::Status(grpc::StatusCode::UNAVAILABLE, "server shutting down; resume from your last cursor"));
    Fill(stream);
  } catch (const Error& error) {
    grpc::Status status;
    if (error.code() == ErrorCode::kUnavailable) {
      status = StoreUnavailable(ctx, error.what());
    } else {
      status = ToStatus(error);
    }
    bool admitted = false;
    {
      std::lock_guard lock(stream->mutex);
      admitted = stream->admitted;
      if (!stream->admitted) stream->ctx = ctx;
    }
    const auto code = status.error_code();
    if (!admitted && (code == grpc::StatusCode::UNAUTHENTICATED || code == grpc::StatusCode::PERMISSION_DENIED ||
                      code == grpc::StatusCode::RESOURCE_EXHAUSTED)) {
      AuditRefusal(ctx, authenticated, status);
    }
    End(stream, status);
  } catch (const std::exception& e) {
    spdlog::error("WatchEvents request_id={} internal: {}", ctx.request_id, e.what());
    End(stream, grpc::Status(grpc::StatusCode::INTERNAL, "internal error; request_id " + ctx.request_id));
  }
}

void EventFeed::Fill(const std::shared_ptr<Stream>& stream) {
  std::int64_t cursor = 0;
  std::vector<std::string> kinds;
  CallContext ctx;
  bool ended = false;
  {
    std::lock_guard lock(stream->mutex);
    ended = stream->finished || stream->ending;
    if (ended) {
      stream->filling = false;
    } else {
      cursor = stream->cursor;
      kinds = stream->kinds;
      ctx = stream->ctx;
    }
  }
  if (ended) {
    // Ended while this page waited for a worker: finished here, outside the stream's lock (Pump
    // takes it; under it, this worker and then the notifier, which locks every stream, stopped).
    Pump(stream);
    return;
  }
  std::shared_ptr<Tenant> tenant;
  std::vector<EventRecord> page;
  bool from_buffer = false;
  std::int64_t known_last = 0;  // every event up to here was numbered before the page is read
  {
    std::lock_guard lock(mutex_);
    if (auto found = tenants_.find(ctx.tenant); found != tenants_.end()) tenant = found->second;
    if (tenant) known_last = tenant->last;
    if (tenant && cursor >= tenant->base) {
      // Caught up with the buffer: served from memory, no query.
      from_buffer = true;
      for (const auto& record : tenant->buffer) {
        if (record.sequence <= cursor) continue;
        page.push_back(record);
        if (static_cast<int>(page.size()) >= settings_.page) break;
      }
    }
  }
  try {
    if (!from_buffer) {
      // Behind the buffer: a page of the outbox (kinds filtered by the query).
      page = EventsAfter(pg_, Clock::now() + std::chrono::seconds(5), schema_, ctx.tenant, cursor, kinds,
                         settings_.page);
    }
    std::vector<common::v1::Event> events;
    std::int64_t moved_to = cursor;
    for (const auto& record : page) {
      moved_to = record.sequence;
      if (from_buffer && !kinds.empty() && std::find(kinds.begin(), kinds.end(), record.kind) == kinds.end()) continue;
      // Clinic scoping: events of patients outside the caller's clinics are passed over (the cursor moves on).
      if (IsClinicScoped(ctx) && !record.patient_id.empty() && !SharesClinicWith(ctx, record.patient_id)) continue;
      events.push_back(ToEvent(record));
    }
    // A short page (the query filters by kind) read everything numbered when it started.
    if (!from_buffer && static_cast<int>(page.size()) < settings_.page) moved_to = std::max(moved_to, known_last);
    {
      std::lock_guard lock(stream->mutex);
      stream->filling = false;
      if (stream->cursor == cursor) {
        stream->cursor = moved_to;
        for (auto& event : events) stream->queue.push_back(std::move(event));
      }
    }
  } catch (const Error& error) {
    {
      std::lock_guard lock(stream->mutex);
      stream->filling = false;
    }
    End(stream, error.code() == ErrorCode::kUnavailable ? StoreUnavailable(ctx, error.what()) : ToStatus(error));
    return;
  } catch (const std::exception& e) {
    {
      std::lock_guard lock(stream->mutex);
      stream->filling = false;
    }
    spdlog::error("WatchEvents request_id={} internal: {}", ctx.request_id, e.what());
    End(stream, grpc::Status(grpc::StatusCode::INTERNAL, "internal error; request_id " + ctx.request_id));
    return;
  }
  Pump(stream);
}

void EventFeed::Pump(const std::shared_ptr<Stream>& stream) {
  std::unique_lock lock(stream->mutex);
  if (stream->finished || stream->writing || stream->filling || stream->authorizing) return;
  if (stream->ending) {
    stream->finished = true;
    const grpc::Status status = *stream->ending;
    Sink* sink = stream->sink;
    lock.unlock();
    Forget(*stream);
    sink->Finish(status);  // the last touch of the reactor: it may be deleted from here on
    return;
  }
  if (!stream->queue.empty()) {
    stream->writing = true;
    common::v1::Event event = std::move(stream->queue.front());
    stream->queue.pop_front();
    Sink* sink = stream->sink;
    lock.unlock();
    sink->Write(event);
    return;
  }
  if (!stream->opened) return;
  // Drained: more to read when the tenant has events past the cursor.
  const std::int64_t cursor = stream->cursor;
  const std::string tenant_id = stream->ctx.tenant;
  lock.unlock();
  std::int64_t last = 0;
  {
    std::lock_guard feed_lock(mutex_);
    if (auto found = tenants_.find(tenant_id); found != tenants_.end()) last = found->second->last;
  }
  if (last <= cursor) return;  // caught up: the notifier wakes the stream when more commit
  lock.lock();
  if (stream->filling || stream->finished || stream->ending || stream->writing || !stream->queue.empty()) return;
  stream->filling = true;
  lock.unlock();
  Post([this, stream] { Fill(stream); });
}

// Marks `stream` ending with `status` (its queue dropped) and hands back its tenant and caller
// slots: a stream that is ending delivers nothing more, so they are free now, not once the page,
// write or opening it still waits for is done, and a consumer that hangs up and reconnects at once
// is not refused as if the stream it left were still open. (The process-wide count, `counted`,
// stays until the stream is finished: Stop waits on it.) `stream.mutex` held; the slots to
// Release, without it, if the stream held any.
std::optional<CallContext> EventFeed::MarkEnding(Stream& stream, grpc::Status status) {
  stream.ending = std::move(status);
  stream.queue.clear();
  if (!stream.admitted) return std::nullopt;
  stream.admitted = false;
  return stream.ctx;
}

void EventFeed::End(const std::shared_ptr<Stream>& stream, const grpc::Status& status) {
  std::optional<CallContext> admission;
  {
    std::lock_guard lock(stream->mutex);
    if (stream->finished || stream->ending) return;
    admission = MarkEnding(*stream, status);
  }
  if (admission) Release(*admission);
  Pump(stream);
}

void EventFeed::WriteDone(const std::shared_ptr<Stream>& stream, bool ok) {
  std::optional<CallContext> admission;
  {
    std::lock_guard lock(stream->mutex);
    stream->writing = false;
    // The client went away (in the same lock, so no other write starts meanwhile).
    if (!ok && !stream->ending) admission = MarkEnding(*stream, grpc::Status::CANCELLED);
  }
  if (admission) Release(*admission);
  Pump(stream);
}

void EventFeed::Cancelled(const std::shared_ptr<Stream>& stream) {
  // From gRPC's thread: finishing may release slots and touch the tenant map, which is quick.
  End(stream, grpc::Status::CANCELLED);
}

void EventFeed::Forget(Stream& stream) {
  std::shared_ptr<Stream> self;
  bool admitted = false, counted = false;
  CallContext ctx;
  {
    std::lock_guard lock(stream.mutex);
    admitted = stream.admitted;
    counted = stream.counted;
    stream.admitted = stream.counted = false;
    ctx = stream.ctx;
  }
  if (admitted) Release(ctx);
  std::lock_guard lock(mutex_);
  if (auto found = tenants_.find(ctx.tenant); found != tenants_.end()) {
    auto& streams = found->second->streams;
    for (auto it = streams.begin(); it != streams.end(); ++it) {
      if (it->get() == &stream) {
        streams.erase(it);
        break;
      }
    }
    if (streams.empty()) tenants_.erase(found);
  }
  if (counted) {
    --streams_;
    streams_ended_.notify_all();
  }
}

void EventFeed::NotifierLoop(std::stop_token stop) {
  while (!stop.stop_requested()) {
    try {
      Poll();
    } catch (const std::exception& e) {
      // The streams stay open; a stream that needs a page finds out for itself.
      spdlog::warn("event feed poll of {} failed: {}", schema_, e.what());
    }
    std::unique_lock lock(notifier_mutex_);
    notifier_wake_.wait_for(lock, stop, settings_.poll, [] { return false; });
  }
}

void EventFeed::Poll() {
  std::vector<std::string> ids;
  std::vector<std::string> lasts;
  std::vector<std::shared_ptr<Stream>> streams;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [id, tenant] : tenants_) {
      ids.push_back(id);
      lasts.push_back(std::to_string(tenant->last));
      streams.insert(streams.end(), tenant->streams.begin(), tenant->streams.end());
    }
  }
  // Tokens: a stream lives no longer than its token: expired, or no longer verifying
  // (its key removed), it ends and the client resumes with a fresh one.
  const auto now = std::chrono::system_clock::now();
  for (const auto& stream : streams) {
    std::string token;
    bool expired = false;
    {
      std::lock_guard lock(stream->mutex);
      if (!stream->opened || stream->finished || stream->ending) continue;
      if (now >= stream->token_expires) {
        expired = true;
      } else if (Clock::now() >= stream->next_recheck) {
        token = stream->ctx.bearer_token;
        stream->next_recheck = Clock::now() + settings_.token_recheck;
      }
    }
    if (expired) {
      End(stream, grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                               "token expired; resume from your last cursor with a fresh token"));
    } else if (!token.empty()) {
      try {
        const auto expires = verifier_.Verify(token).expires;
        std::lock_guard lock(stream->mutex);
        stream->token_expires = expires;
      } catch (const Error&) {
        End(stream, grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                                 "token no longer valid; resume from your last cursor with a fresh token"));
      }
    }
    Pump(stream);
  }
  if (ids.empty()) return;
  const auto deadline = Clock::now() + std::chrono::seconds(5);
  // Numbered first (other readers and the background pass may have done it), then read:
  // every watched tenant's new events in one query.
  for (const auto& tenant : TenantsWithPendingEvents(pg_, deadline, schema_, 1000)) {
    if (std::find(ids.begin(), ids.end(), tenant) != ids.end()) SequencePendingEvents(pg_, deadline, schema_, tenant);
  }
  auto rows = QueryOnce(
      pg_, deadline,
      {"SELECT t.tenant_id, e.sequence, e.kind, coalesce(e.patient_id, ''), coalesce(e.resource_id, ''),"
       " (extract(epoch FROM e.occurred_at) * 1000000)::bigint FROM unnest($1::text[], $2::bigint[]) AS t(tenant_id, last)"
       " CROSS JOIN LATERAL (SELECT * FROM " + schema_ + ".events e WHERE e.tenant_id = t.tenant_id"
       " AND e.sequence > t.last ORDER BY e.sequence LIMIT $3::int) e ORDER BY t.tenant_id, e.sequence",
       {PgTextArray(ids), "{" + [&] {
          std::string joined;
          for (const auto& last : lasts) joined += (joined.empty() ? "" : ",") + last;
          return joined;
        }() + "}",
        std::to_string(settings_.tenant_buffer)}});
  std::set<std::string> moved;
  {
    std::lock_guard lock(mutex_);
    for (int i = 0; i < rows.rows(); ++i) {
      auto found = tenants_.find(rows.Get(i, 0));
      if (found == tenants_.end()) continue;
      Tenant& tenant = *found->second;
      EventRecord record{std::stoll(rows.Get(i, 1)), rows.Get(i, 2), rows.Get(i, 3), rows.Get(i, 4),
                         std::stoll(rows.Get(i, 5))};
      if (record.sequence != tenant.last + 1) continue;  // a tenant registered again meanwhile
      tenant.buffer.push_back(std::move(record));
      tenant.last = tenant.buffer.back().sequence;
      while (static_cast<int>(tenant.buffer.size()) > settings_.tenant_buffer) {
        tenant.base = tenant.buffer.front().sequence;
        tenant.buffer.pop_front();
      }
      moved.insert(found->first);
    }
    streams.clear();
    for (const auto& id : moved) {
      const auto& tenant_streams = tenants_[id]->streams;
      streams.insert(streams.end(), tenant_streams.begin(), tenant_streams.end());
    }
  }
  for (const auto& stream : streams) Pump(stream);
}

}  // namespace physio
