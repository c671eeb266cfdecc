#pragma once
// Token buckets kept in this process, one per key (a caller, a tenant, an
// address), bounded in number: the quotas' fallback when Redis cannot answer,
// and the limit on unauthenticated calls per address, which must cost nothing
// but memory before anyone has logged in. Thread-safe.
#include <chrono>
#include <cstddef>
#include <mutex>
#include <string>
#include <unordered_map>

#include "physio/common/clock.h"

namespace physio {

class TokenBuckets {
 public:
  // `per_second` tokens flow into each bucket up to `burst` (at least 1).
  // At most `max_keys` buckets are kept: when full, the buckets that have
  // refilled are forgotten first (they hold no state worth keeping), then the
  // longest unused.
  TokenBuckets(double per_second, double burst, std::size_t max_keys = 10000);

  // Takes a token from `key`'s bucket: 0 when taken, else how long until one is free.
  std::chrono::milliseconds Take(const std::string& key, Clock::time_point now = Clock::now());
  // How long until `key`'s bucket has a token (0: it has one now); takes nothing.
  std::chrono::milliseconds Wait(const std::string& key, Clock::time_point now = Clock::now()) const;
  std::size_t keys() const;

 private:
  struct Bucket {
    double tokens;
    Clock::time_point at;
  };
  double Refilled(const Bucket& bucket, Clock::time_point now) const;
  std::chrono::milliseconds WaitFor(double tokens) const;
  void MakeRoom(Clock::time_point now);

  double per_second_;
  double burst_;
  std::size_t max_keys_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, Bucket> buckets_;
};

}  // namespace physio
