#pragma once
// Visit sessions in Redis: what a clinician notes during a visit (pain before
// and after, the items delivered, a red-flag check-in) before it becomes a
// visit record. One hash per session in the tenant's key space, changed by Lua
// scripts that check the session exists and is open atomically with the change,
// so concurrent updates merge. The use cases (progress_app.cc) never see Redis.
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "physio/auth/call_context.h"
#include "physio/progress/v1/progress.pb.h"
#include "physio/redis/async_redis.h"
#include "physio/redis/redis_idempotency.h"
#include "physio/redis/redis_pool.h"

namespace physio::progress {

// One update's changes, already validated.
struct VisitSessionChanges {
  std::optional<int> pain_before;
  std::optional<int> pain_after;
  std::vector<std::string> delivered_item_ids;  // added to those already delivered
  const assessment::v1::RedFlagScreen* red_flag_screen = nullptr;
  const v1::SessionRecord* session = nullptr;  // replaces the earlier documentation

  bool empty() const {
    return !pain_before && !pain_after && delivered_item_ids.empty() && red_flag_screen == nullptr &&
           session == nullptr;
  }
};

// The use cases' seam: the Redis store below, or an in-memory fake in tests.
class VisitSessionStore {
 public:
  virtual ~VisitSessionStore() = default;

  // Stores a new open session under `session_id`, started at `started_at_seconds` (Unix time).
  virtual void Create(const CallContext& ctx, const std::string& session_id, const std::string& patient_id,
                      v1::VisitKind kind, const std::string& clinic_id, std::int64_t started_at_seconds,
                      Clock::time_point deadline) = 0;
  // The session, renewing an open one's expiry; NOT_FOUND when it expired or never existed.
  virtual v1::VisitSession Read(const CallContext& ctx, const std::string& session_id, Clock::time_point deadline) = 0;
  // Applies the changes and returns the session as it now is, once per `submission`: a retry
  // (same key, same fingerprint) changes nothing and gets back the session as the first attempt
  // left it, even if it changed since; the same key with another fingerprint is INVALID_ARGUMENT
  // on request_id. Otherwise NOT_FOUND as Read, FAILED_PRECONDITION once completed; a refused
  // update leaves no record.
  virtual v1::VisitSession Update(const CallContext& ctx, const std::string& session_id,
                                  const VisitSessionChanges& changes, const SubmissionId& submission,
                                  Clock::time_point deadline) = 0;
  // Update without a thread waiting for Redis (issue 33), as IntakeStore::SubmitAsync: false when
  // this store cannot (then `done` never runs); otherwise `done` runs once, on another thread and
  // without blocking, with the session as Update would return it, or nullopt for anything else
  // (which does not say the update was not applied: the caller updates again the ordinary way,
  // which replays an applied update's outcome).
  using UpdateDone = std::function<void(std::optional<v1::VisitSession>)>;
  virtual bool UpdateAsync(const CallContext& /*ctx*/, const std::string& /*session_id*/,
                           const VisitSessionChanges& /*changes*/, const SubmissionId& /*submission*/,
                           Clock::time_point /*deadline*/, UpdateDone /*done*/) {
    return false;
  }
  // When the session started (Unix seconds); nullopt when it is gone.
  virtual std::optional<std::int64_t> StartedAt(const CallContext& ctx, const std::string& session_id,
                                                Clock::time_point deadline) = 0;
  // Closes the session as recorded in `visit_id` (kept an hour for retries to read).
  virtual void MarkCompleted(const CallContext& ctx, const std::string& session_id, const std::string& visit_id,
                             Clock::time_point deadline) = 0;
};

class RedisVisitSessionStore final : public VisitSessionStore {
 public:
  // `ttl`: idle time before an open session expires (renewed on every read and write);
  // `retention`: how long an update's outcome is kept for its retries (as RedisIdempotency's records).
  // `async`, when given, serves UpdateAsync (null: it always declines).
  RedisVisitSessionStore(RedisPool& redis, std::chrono::seconds ttl,
                         std::chrono::seconds retention = std::chrono::hours(24), AsyncRedis* async = nullptr)
      : redis_(redis), ttl_(ttl), retention_(retention), async_(async) {}

  void Create(const CallContext& ctx, const std::string& session_id, const std::string& patient_id,
              v1::VisitKind kind, const std::string& clinic_id, std::int64_t started_at_seconds,
              Clock::time_point deadline) override;
  v1::VisitSession Read(const CallContext& ctx, const std::string& session_id, Clock::time_point deadline) override;
  v1::VisitSession Update(const CallContext& ctx, const std::string& session_id, const VisitSessionChanges& changes,
                          const SubmissionId& submission, Clock::time_point deadline) override;
  bool UpdateAsync(const CallContext& ctx, const std::string& session_id, const VisitSessionChanges& changes,
                   const SubmissionId& submission, Clock::time_point deadline, UpdateDone done) override;
  std::optional<std::int64_t> StartedAt(const CallContext& ctx, const std::string& session_id,
                                        Clock::time_point deadline) override;
  void MarkCompleted(const CallContext& ctx, const std::string& session_id, const std::string& visit_id,
                     Clock::time_point deadline) override;

 private:
  std::string Key(const CallContext& ctx, const std::string& session_id) const;
  std::string TtlMs() const { return std::to_string(ttl_.count() * 1000); }

  RedisPool& redis_;
  std::chrono::seconds ttl_;
  std::chrono::seconds retention_;
  AsyncRedis* async_;
};

}  // namespace physio::progress
