#pragma once
// A Redis cache of records a write can change, which never serves a value older than a committed
// change. Each record has an entry key and a generation key. Every write that can change the
// record bumps the generation inside its transaction (so the write fails, uncommitted, when Redis
// is down) and again, with the entry's delete, after its commit. A reader accepts an entry only
// under the current generation, and fills the cache only if the generation did not move while it
// read the record of truth. The active plans (planning) and the assessments (assessment) use it.
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "physio/common/clock.h"
#include "physio/redis/async_redis.h"
#include "physio/redis/redis_pool.h"

namespace physio {

class GenerationCache {
 public:
  struct Keys {
    std::string entry;
    std::string generation;
  };
  // The generation read, and the entry's value when it was stored under that generation.
  struct Values {
    std::string generation;
    std::optional<std::string_view> value;  // a view into the reply
  };

  // `ttl`: how long an entry lives without any write (a bound on what a lost invalidation can
  // cost). `async` (optional): the connection ReadAsync uses; without it ReadAsync is never possible.
  GenerationCache(RedisPool& redis, std::chrono::seconds ttl, AsyncRedis* async = nullptr)
      : redis_(redis), ttl_(ttl), async_(async) {}

  // In the write's transaction, before it commits; throws Error(kUnavailable) without Redis.
  void BumpBeforeCommit(const Keys& keys, Clock::time_point deadline);
  // After the commit; throws Error(kUnavailable) when it could not be done (the caller's retry
  // replays the write and invalidates again; entries also expire).
  void InvalidateAfterCommit(const Keys& keys, Clock::time_point deadline);
  // One round trip (MGET). `use` runs with the values, valid only while it runs, and its result is
  // returned; nullopt when Redis answered something unusable; throws Error(kUnavailable) when Redis
  // cannot be reached.
  template <typename Use>
  auto Read(const Keys& keys, Clock::time_point deadline, Use use) -> std::optional<decltype(use(Values{}))> {
    auto reply = redis_.Command({"MGET", keys.generation, keys.entry}, deadline);
    auto values = ValuesOf(reply.get());
    if (!values) return std::nullopt;
    return use(*values);
  }
  // The same read with no thread waiting for it: true once sent, and `done` then runs once on
  // the loop's thread with the current value (a view, valid only while `done` runs), an empty
  // optional inside for a miss, or nullopt when Redis gave no usable answer; false (`done` never
  // runs) when it cannot be sent now. Never blocks.
  using ReadDone = std::function<void(std::optional<std::optional<std::string_view>> value)>;
  bool ReadAsync(const Keys& keys, Clock::time_point deadline, ReadDone done);
  // Caches `value` only if the generation is still `generation` (as Read gave it).
  void Fill(const Keys& keys, const std::string& generation, std::string_view value, Clock::time_point deadline);

  // The current value of an entry stored as "<generation>\n<value>", given the generation read with it.
  static Values Current(std::optional<std::string_view> generation, std::optional<std::string_view> entry);

 private:
  static std::optional<Values> ValuesOf(const struct redisReply* reply);

  RedisPool& redis_;
  std::chrono::seconds ttl_;
  AsyncRedis* async_;
};

}  // namespace physio
