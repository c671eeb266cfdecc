#include "physio/redis/rate_limiter.h"

#include <hiredis/hiredis.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "physio/common/error.h"
#include "physio/common/ids.h"
#include "physio/redis/redis_keys.h"

namespace physio {

namespace {
// KEYS: principal bucket, tenant bucket. ARGV: principal rate, burst, tenant
// rate, burst (rate 0: that bucket is not checked). A bucket is a hash
// {tokens, at_ms}. Returns {0, 0, ""} when allowed, {1, wait_ms, which} when not.
const RedisScript kTakeScript{R"LUA(
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
local buckets = {}
local wait, which = 0, ''
for i = 1, 2 do
  local rate, burst = tonumber(ARGV[2 * i - 1]), tonumber(ARGV[2 * i])
  if rate > 0 then
    local state = redis.call('HMGET', KEYS[i], 'tokens', 'at')
    local tokens, at = tonumber(state[1]), tonumber(state[2])
    if tokens == nil then tokens, at = burst, now end
    tokens = math.min(burst, tokens + math.max(0, now - at) * rate / 1000)
    if tokens < 1 then
      local need = math.ceil((1 - tokens) * 1000 / rate)
      if need > wait then wait, which = need, (i == 1 and 'principal' or 'tenant') end
    end
    buckets[i] = {tokens, rate, burst}
  end
end
if wait > 0 then return {1, wait, which} end
for i, bucket in pairs(buckets) do
  redis.call('HSET', KEYS[i], 'tokens', tostring(bucket[1] - 1), 'at', tostring(now))
  redis.call('PEXPIRE', KEYS[i], math.ceil(bucket[3] * 1000 / bucket[2]) + 1000)
end
return {0, 0, ''}
)LUA"};

std::string Number(double value) { return std::to_string(value); }
}  // namespace

RateLimiter::RateLimiter(RedisPool& pool, RateLimits limits) : pool_(pool), limits_(limits) {
  if (limits_.principal_per_second > 0) {
    local_principals_ = std::make_unique<TokenBuckets>(limits_.principal_per_second, limits_.principal_burst);
  }
  if (limits_.tenant_per_second > 0) {
    local_tenants_ = std::make_unique<TokenBuckets>(limits_.tenant_per_second, limits_.tenant_burst);
  }
}

RateDecision RateLimiter::Take(const std::string& tenant, const std::string& principal, Clock::time_point deadline) {
  if (!limits_.enabled()) return {};
  try {
    return TakeInRedis(tenant, principal, deadline);
  } catch (const Error& e) {
    if (fallbacks_.fetch_add(1) % 1000 == 0) {
      spdlog::warn("rate limits decided in this process: redis did not answer ({})", e.what());
    }
    return TakeLocally(tenant, principal);
  }
}

RateDecision RateLimiter::TakeLocally(const std::string& tenant, const std::string& principal) {
  RateDecision decision;
  decision.local = true;
  const std::string principal_key = tenant + '\x1f' + principal;
  // As in Redis: a call refused by one bucket costs the other nothing.
  if (local_principals_ != nullptr) {
    if (const auto wait = local_principals_->Wait(principal_key); wait.count() > 0) {
      decision.allowed = false;
      decision.retry_after = wait;
      decision.limit = "principal";
      return decision;
    }
  }
  if (local_tenants_ != nullptr) {
    if (const auto wait = local_tenants_->Take(tenant); wait.count() > 0) {
      decision.allowed = false;
      decision.retry_after = wait;
      decision.limit = "tenant";
      return decision;
    }
  }
  if (local_principals_ != nullptr) local_principals_->Take(principal_key);
  return decision;
}

RateDecision RateLimiter::TakeInRedis(const std::string& tenant, const std::string& principal,
                                      Clock::time_point deadline) {
  auto reply = pool_.Eval(kTakeScript,
                          {RedisKey("quota", tenant, {"p", Sha256Hex(principal).substr(0, 32)}),
                           RedisKey("quota", tenant, {"tenant"})},
                          {Number(limits_.principal_per_second), Number(std::max(1.0, limits_.principal_burst)),
                           Number(limits_.tenant_per_second), Number(std::max(1.0, limits_.tenant_burst))},
                          deadline);
  if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 3 || reply->element[0]->type != REDIS_REPLY_INTEGER) {
    std::string why = reply->type == REDIS_REPLY_ERROR ? std::string(reply->str, reply->len) : "unexpected reply";
    throw Error(ErrorCode::kUnavailable, "redis: rate limit script: " + why);
  }
  RateDecision decision;
  decision.allowed = reply->element[0]->integer == 0;
  if (!decision.allowed) {
    decision.retry_after = std::chrono::milliseconds(reply->element[1]->integer);
    decision.limit = std::string(reply->element[2]->str, reply->element[2]->len) == "tenant" ? "tenant" : "principal";
  }
  return decision;
}

}  // namespace physio
