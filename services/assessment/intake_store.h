#pragma once
// Intake sessions in Redis: one hash per session in the tenant's key space,
// changed only by Lua scripts that check the session's owner and status
// atomically with the change, so two submissions at once both land and none
// lands on a closed session. The use cases (assessment_app.cc) see sessions,
// never Redis.
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "domain/instruments.h"
#include "physio/assessment/v1/assessment.pb.h"
#include "physio/auth/call_context.h"
#include "physio/redis/async_redis.h"
#include "physio/redis/redis_idempotency.h"
#include "physio/redis/redis_pool.h"

namespace physio::assessment {

// The instruments of an intake that names none (and of sessions stored before intakes named theirs).
inline const std::vector<InstrumentKind> kDefaultIntakeInstruments = {InstrumentKind::kNprs, InstrumentKind::kOdi};

// One submission's changes, already validated.
struct IntakeChanges {
  std::vector<ItemAnswer> answers;  // in request order: a refusal names answers[i]
  const v1::History* history = nullptr;
  const v1::Examination* examination = nullptr;
  const v1::RedFlagScreen* red_flag_screen = nullptr;
};

// The use cases' seam: the Redis store below, or an in-memory fake in tests.
class IntakeStore {
 public:
  virtual ~IntakeStore() = default;

  // Stores a new open session of `patient_id` for `instruments` (in order) under `session_id`.
  virtual void Create(const CallContext& ctx, const std::string& session_id, const std::string& patient_id,
                      const std::vector<InstrumentKind>& instruments, Clock::time_point deadline) = 0;

  // The session as stored, renewing an open one's expiry; its `progress` is
  // left to the caller. NOT_FOUND when it expired, never existed or is another
  // patient's (staff see every session of their tenant).
  virtual v1::IntakeSession Read(const CallContext& ctx, const std::string& session_id,
                                 Clock::time_point deadline) = 0;

  // Adds the answers and sections and returns the session as it now is, once per `submission`:
  // a retry (same key, same fingerprint) changes nothing and gets back the session as the first
  // attempt left it, even if it changed since; the same key with another fingerprint is
  // INVALID_ARGUMENT on request_id. Otherwise NOT_FOUND as Read; FAILED_PRECONDITION once
  // completed; INVALID_ARGUMENT naming answers[i].instrument when an answer's instrument is not
  // the intake's. A refused submission leaves no record: its retry is tried again.
  virtual v1::IntakeSession Submit(const CallContext& ctx, const std::string& session_id,
                                   const IntakeChanges& changes, const SubmissionId& submission,
                                   Clock::time_point deadline) = 0;

  // Submit without a thread waiting for Redis (issue 33): false when this store cannot (then
  // `done` never runs); otherwise `done` runs once, on another thread and without blocking, with
  // the session as Submit would return it, or nullopt for anything else: an error, a refusal,
  // no answer in time. Nullopt does not say the submission was not applied: the caller submits
  // again the ordinary way (Submit), which replays an applied submission's outcome.
  using SubmitDone = std::function<void(std::optional<v1::IntakeSession>)>;
  virtual bool SubmitAsync(const CallContext& /*ctx*/, const std::string& /*session_id*/,
                           const IntakeChanges& /*changes*/, const SubmissionId& /*submission*/,
                           Clock::time_point /*deadline*/, SubmitDone /*done*/) {
    return false;
  }

  // Closes an open session as completed into `assessment_id`.
  virtual void MarkCompleted(const CallContext& ctx, const std::string& session_id, const std::string& assessment_id,
                             Clock::time_point deadline) = 0;
};

class RedisIntakeStore final : public IntakeStore {
 public:
  // `ttl`: idle time before an open session expires (renewed on every read and
  // write); `completed_ttl`: how long a completed one stays readable; `retention`: how long a
  // submission's outcome is kept for its retries (as RedisIdempotency's records).
  // `async`, when given, serves SubmitAsync (null: it always declines).
  RedisIntakeStore(RedisPool& redis, std::chrono::milliseconds ttl, std::chrono::milliseconds completed_ttl,
                   std::chrono::seconds retention = std::chrono::hours(24), AsyncRedis* async = nullptr)
      : redis_(redis), ttl_(ttl), completed_ttl_(completed_ttl), retention_(retention), async_(async) {}

  void Create(const CallContext& ctx, const std::string& session_id, const std::string& patient_id,
              const std::vector<InstrumentKind>& instruments, Clock::time_point deadline) override;
  v1::IntakeSession Read(const CallContext& ctx, const std::string& session_id, Clock::time_point deadline) override;
  v1::IntakeSession Submit(const CallContext& ctx, const std::string& session_id, const IntakeChanges& changes,
                           const SubmissionId& submission, Clock::time_point deadline) override;
  bool SubmitAsync(const CallContext& ctx, const std::string& session_id, const IntakeChanges& changes,
                   const SubmissionId& submission, Clock::time_point deadline, SubmitDone done) override;
  void MarkCompleted(const CallContext& ctx, const std::string& session_id, const std::string& assessment_id,
                     Clock::time_point deadline) override;

 private:
  std::string Key(const CallContext& ctx, const std::string& session_id) const;

  RedisPool& redis_;
  std::chrono::milliseconds ttl_;
  std::chrono::milliseconds completed_ttl_;
  std::chrono::seconds retention_;
  AsyncRedis* async_;
};

}  // namespace physio::assessment
