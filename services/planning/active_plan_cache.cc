#include "active_plan_cache.h"

#include <hiredis/hiredis.h>

#include <string_view>

#include "physio/common/error.h"
#include "physio/redis/redis_keys.h"

namespace physio::planning {

namespace {
const RedisScript kInvalidateScript{R"LUA(
redis.call('DEL', KEYS[1])
return redis.call('INCR', KEYS[2])
)LUA"};

// Fills the cache only if the generation is still the one read before PostgreSQL.
const RedisScript kFillScript{R"LUA(
if (redis.call('GET', KEYS[2]) or '0') ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1] .. '\n' .. ARGV[2], 'EX', ARGV[3])
return 1
)LUA"};
}  // namespace

std::string RedisActivePlanCache::EntryKey(const CallContext& ctx, const std::string& patient_id) const {
  return RedisKey("plan", ctx.tenant, {"active", patient_id});
}

std::string RedisActivePlanCache::GenerationKey(const CallContext& ctx, const std::string& patient_id) const {
  return RedisKey("plan", ctx.tenant, {"activegen", patient_id});
}

void RedisActivePlanCache::BumpGenerationBeforeCommit(const CallContext& ctx, const std::string& patient_id,
                                                 Clock::time_point deadline) {
  redis_.CommandDurable({"INCR", GenerationKey(ctx, patient_id)}, deadline);
}

void RedisActivePlanCache::InvalidateAfterCommit(const CallContext& ctx, const std::string& patient_id,
                                            Clock::time_point deadline) {
  auto reply = redis_.EvalDurable(kInvalidateScript, {EntryKey(ctx, patient_id), GenerationKey(ctx, patient_id)}, {},
                           deadline);
  if (IsErrorReply(reply.get())) throw Error(ErrorCode::kUnavailable, "redis: cache invalidation failed; retry");
}

RedisActivePlanCache::Values RedisActivePlanCache::Current(std::optional<std::string_view> generation,
                                                           std::optional<std::string_view> entry) {
  Values values;
  values.generation = generation ? std::string(*generation) : "0";
  if (entry && entry->size() > values.generation.size() && entry->starts_with(values.generation) &&
      (*entry)[values.generation.size()] == '\n') {
    values.plan = entry->substr(values.generation.size() + 1);
  }
  return values;
}

std::optional<ActivePlanCache::Lookup> RedisActivePlanCache::Read(const CallContext& ctx, const std::string& patient_id,
                                                             Clock::time_point deadline, v1::Plan* into) {
  // One MGET reads the generation and the entry together (no script needed).
  auto reply = redis_.Command({"MGET", GenerationKey(ctx, patient_id), EntryKey(ctx, patient_id)}, deadline);
  if (IsErrorReply(reply.get()) || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2) return std::nullopt;
  auto view = [](const redisReply* element) -> std::optional<std::string_view> {
    // MGET answers bulk strings, or nil for a key not set.
    if (element->type == REDIS_REPLY_STRING) return std::string_view(element->str, element->len);
    return std::nullopt;
  };
  // Parsed from hiredis's own buffer: a plan is several KB, not worth a copy.
  const Values values = Current(view(reply->element[0]), view(reply->element[1]));
  Lookup lookup{values.generation, false};
  if (values.plan) {
    lookup.hit = into->ParseFromArray(values.plan->data(), static_cast<int>(values.plan->size()));
    if (!lookup.hit) into->Clear();
  }
  return lookup;
}

bool RedisActivePlanCache::ReadAsync(const CallContext& ctx, const std::string& patient_id, Clock::time_point deadline,
                                     ReadDone done) {
  if (async_ == nullptr) return false;
  return async_->Command({"MGET", GenerationKey(ctx, patient_id), EntryKey(ctx, patient_id)}, deadline,
                         [done = std::move(done)](std::optional<AsyncRedisReply> reply) {
                           if (!reply || reply->size() != 2) {
                             done(std::nullopt);
                             return;
                           }
                           // A view into hiredis's own buffer, as Read parses from.
                           done(Current(reply->value(0), reply->value(1)).plan);
                         });
}

void RedisActivePlanCache::Fill(const CallContext& ctx, const std::string& patient_id, const std::string& generation,
                           const v1::Plan& plan, Clock::time_point deadline) {
  redis_.Eval(kFillScript, {EntryKey(ctx, patient_id), GenerationKey(ctx, patient_id)},
              {generation, plan.SerializeAsString(), std::to_string(ttl_.count())}, deadline);
}

}  // namespace physio::planning
