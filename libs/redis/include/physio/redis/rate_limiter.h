#pragma once
// Quotas: a token bucket per principal and one per tenant, kept in Redis so
// every replica of a service shares them. One Lua script checks both buckets
// and takes a token from each only when both have one, so a call refused by
// the tenant's bucket costs the principal nothing. Time is Redis's own clock
// (one clock for all replicas).
//
// When Redis cannot answer (down, frozen, or refusing writes because it is
// full), the same limits are applied by buckets in this process instead, so
// filling Redis never switches rate limiting off. Each replica then limits on
// its own: a caller may get up to the limit from every replica. The fallback
// is counted (physio_rate_limit_fallbacks_total on /metrics) and logged.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "physio/common/token_buckets.h"
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
  bool local = false;                        // decided by this process's buckets (Redis did not answer)
};

class RateLimiter {
 public:
  RateLimiter(RedisPool& pool, RateLimits limits);
  bool enabled() const { return limits_.enabled(); }
  // Takes one token from the caller's buckets, or says how long to wait; never
  // throws: without Redis the local buckets decide.
  RateDecision Take(const std::string& tenant, const std::string& principal, Clock::time_point deadline);
  // Decisions made by the local buckets because Redis did not answer.
  std::uint64_t fallbacks() const { return fallbacks_.load(); }

 private:
  RateDecision TakeInRedis(const std::string& tenant, const std::string& principal, Clock::time_point deadline);
  RateDecision TakeLocally(const std::string& tenant, const std::string& principal);

  RedisPool& pool_;
  RateLimits limits_;
  std::unique_ptr<TokenBuckets> local_principals_, local_tenants_;
  std::atomic<std::uint64_t> fallbacks_{0};
};

}  // namespace physio
