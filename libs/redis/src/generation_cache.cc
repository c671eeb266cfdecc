#include "physio/redis/generation_cache.h"

#include <hiredis/hiredis.h>

#include "physio/common/error.h"
#include "physio/redis/redis_script.h"

namespace physio {

namespace {
const RedisScript kInvalidateScript{R"LUA(
redis.call('DEL', KEYS[1])
return redis.call('INCR', KEYS[2])
)LUA"};

// Fills the cache only if the generation is still the one read before the record of truth.
const RedisScript kFillScript{R"LUA(
if (redis.call('GET', KEYS[2]) or '0') ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1] .. '\n' .. ARGV[2], 'EX', ARGV[3])
return 1
)LUA"};
}  // namespace

void GenerationCache::BumpBeforeCommit(const Keys& keys, Clock::time_point deadline) {
  redis_.CommandDurable({"INCR", keys.generation}, deadline);
}

void GenerationCache::InvalidateAfterCommit(const Keys& keys, Clock::time_point deadline) {
  auto reply = redis_.EvalDurable(kInvalidateScript, {keys.entry, keys.generation}, {}, deadline);
  if (IsErrorReply(reply.get())) throw Error(ErrorCode::kUnavailable, "redis: cache invalidation failed; retry");
}

GenerationCache::Values GenerationCache::Current(std::optional<std::string_view> generation,
                                                 std::optional<std::string_view> entry) {
  Values values;
  values.generation = generation ? std::string(*generation) : "0";
  if (entry && entry->size() > values.generation.size() && entry->starts_with(values.generation) &&
      (*entry)[values.generation.size()] == '\n') {
    values.value = entry->substr(values.generation.size() + 1);
  }
  return values;
}

std::optional<GenerationCache::Values> GenerationCache::ValuesOf(const redisReply* reply) {
  if (IsErrorReply(reply) || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2) return std::nullopt;
  auto view = [](const redisReply* element) -> std::optional<std::string_view> {
    // MGET answers bulk strings, or nil for a key not set.
    if (element->type == REDIS_REPLY_STRING) return std::string_view(element->str, element->len);
    return std::nullopt;
  };
  // Views into hiredis's own buffer: a record is several KB, not worth a copy.
  return Current(view(reply->element[0]), view(reply->element[1]));
}

bool GenerationCache::ReadAsync(const Keys& keys, Clock::time_point deadline, ReadDone done) {
  if (async_ == nullptr) return false;
  return async_->Command({"MGET", keys.generation, keys.entry}, deadline,
                         [done = std::move(done)](std::optional<AsyncRedisReply> reply) {
                           if (!reply || reply->size() != 2) {
                             done(std::nullopt);
                             return;
                           }
                           done(Current(reply->value(0), reply->value(1)).value);
                         });
}

void GenerationCache::Fill(const Keys& keys, const std::string& generation, std::string_view value,
                           Clock::time_point deadline) {
  redis_.Eval(kFillScript, {keys.entry, keys.generation}, {generation, std::string(value), std::to_string(ttl_.count())},
              deadline);
}

}  // namespace physio
