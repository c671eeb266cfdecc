#pragma once
// The Redis cache of each patient's active plan, kept by GenerationCache's rule
// (libs/redis generation_cache.h): every write that can change a patient's active
// plan bumps the patient's generation inside its transaction and again with the
// entry's delete after commit, so a reader never brings back a plan older than a
// committed change.
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "physio/auth/call_context.h"
#include "physio/planning/v1/planning.pb.h"
#include "physio/redis/async_redis.h"
#include "physio/redis/generation_cache.h"
#include "physio/redis/redis_pool.h"

namespace physio::planning {

// The use cases' seam: the Redis cache below, or an in-memory fake in tests.
class ActivePlanCache {
 public:
  virtual ~ActivePlanCache() = default;

  // In the write's transaction, before it commits; throws Error(kUnavailable) without Redis.
  virtual void BumpGenerationBeforeCommit(const CallContext& ctx, const std::string& patient_id,
                                          Clock::time_point deadline) = 0;
  // After the commit; throws Error(kUnavailable) when it could not be done (the
  // caller's retry replays the write and invalidates again; entries also expire).
  virtual void InvalidateAfterCommit(const CallContext& ctx, const std::string& patient_id,
                                     Clock::time_point deadline) = 0;

  struct Lookup {
    std::string generation;  // to hand back to Fill
    bool hit = false;        // a current entry was cached, and was taken (ReadBytes' `take`)
  };
  // One round trip; nullopt when Redis answered something unusable; throws
  // Error(kUnavailable) when Redis cannot be reached. A current entry's plan as stored
  // (serialised; a view into the reply, valid only while `take` runs) goes to `take`,
  // which says whether it took it: the lookup's `hit`.
  using TakePlanBytes = std::function<bool(std::string_view plan)>;
  virtual std::optional<Lookup> ReadBytes(const CallContext& ctx, const std::string& patient_id,
                                          Clock::time_point deadline, const TakePlanBytes& take) = 0;
  // The same, a hit parsed straight into `into` (the response's plan, on the call's arena
  // when it has one).
  std::optional<Lookup> Read(const CallContext& ctx, const std::string& patient_id, Clock::time_point deadline,
                             v1::Plan* into) {
    return ReadBytes(ctx, patient_id, deadline, [into](std::string_view plan) {
      if (into->ParseFromArray(plan.data(), static_cast<int>(plan.size()))) return true;
      into->Clear();
      return false;
    });
  }
  // The same read with no thread waiting for it (CallPipeline::ServeFastRead): true
  // once sent, and `done` then runs once on another thread, or false (`done` never
  // runs) when it cannot be sent now. Never blocks. `done` gets the current entry's
  // plan as stored (serialised; a view into the reply, valid only while `done` runs),
  // an empty optional inside for a miss, or nullopt when Redis gave no usable
  // answer. Not parsed here: GetActivePlan's fast path mostly reuses the response it
  // made from the same bytes before (ServedPlanMemo). This default: never possible.
  using ReadDone = std::function<void(std::optional<std::optional<std::string_view>> plan)>;
  virtual bool ReadAsync(const CallContext& /*ctx*/, const std::string& /*patient_id*/, Clock::time_point /*deadline*/,
                         ReadDone /*done*/) {
    return false;
  }
  // Caches `plan` only if the patient's generation is still `generation`.
  virtual void Fill(const CallContext& ctx, const std::string& patient_id, const std::string& generation,
                    const v1::Plan& plan, Clock::time_point deadline) = 0;
};

class RedisActivePlanCache final : public ActivePlanCache {
 public:
  // `ttl`: how long an entry lives without any write (a bound on what a lost invalidation can cost).
  // `async` (optional): the connection ReadAsync uses; without it ReadAsync is never possible.
  RedisActivePlanCache(RedisPool& redis, std::chrono::seconds ttl, AsyncRedis* async = nullptr)
      : cache_(redis, ttl, async) {}

  void BumpGenerationBeforeCommit(const CallContext& ctx, const std::string& patient_id,
                                  Clock::time_point deadline) override;
  void InvalidateAfterCommit(const CallContext& ctx, const std::string& patient_id,
                             Clock::time_point deadline) override;
  std::optional<Lookup> ReadBytes(const CallContext& ctx, const std::string& patient_id, Clock::time_point deadline,
                                  const TakePlanBytes& take) override;
  bool ReadAsync(const CallContext& ctx, const std::string& patient_id, Clock::time_point deadline,
                 ReadDone done) override;
  void Fill(const CallContext& ctx, const std::string& patient_id, const std::string& generation, const v1::Plan& plan,
            Clock::time_point deadline) override;

 private:
  static GenerationCache::Keys KeysOf(const CallContext& ctx, const std::string& patient_id);

  GenerationCache cache_;
};

}  // namespace physio::planning
