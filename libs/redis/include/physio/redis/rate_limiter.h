#pragma once
// Quotas: a token bucket per principal and one per tenant, kept in Redis so
// every replica of a service shares them. One Lua script checks both buckets
// and takes a token from each only when both have one, so a call refused by
// the tenant's bucket costs the principal nothing. Time is Redis's own clock
// (one clock for all replicas).
#include <chrono>
#include <string>

#include "physio/redis/redis_pool.h"

namespace physio {

struct RateLimits {
  double principal_per_second = 0;  // 0: no per-principal limit
  double principal_burst = 0;       // bucket size; at least 1 when the rate is set
  double tenant_per_second = 0;     // 0: no per-tenant limit
  double tenant_burst = 0;
  bool enabled() const { return principal_per_second > 0 || tenant_per_second > 0; }
};

struct RateDecision {
  bool allowed = true;
  std::chrono::milliseconds retry_after{0};  // when refused: how long until a token is free
  const char* limit = "";                    // when refused: "principal" or "tenant"
};

class RateLimiter {
 public:
  RateLimiter(RedisPool& pool, RateLimits limits) : pool_(pool), limits_(limits) {}
  bool enabled() const { return limits_.enabled(); }
  // Takes one token from the caller's buckets, or says how long to wait.
  RateDecision Take(const std::string& tenant, const std::string& principal, Clock::time_point deadline);

 private:
  RedisPool& pool_;
  RateLimits limits_;
};

}  // namespace physio
