#include "physio/common/token_buckets.h"

#include <algorithm>
#include <cmath>

namespace physio {

TokenBuckets::TokenBuckets(double per_second, double burst, std::size_t max_keys)
    : per_second_(std::max(per_second, 1e-6)), burst_(std::max(1.0, burst)), max_keys_(std::max<std::size_t>(1, max_keys)) {}

double TokenBuckets::Refilled(const Bucket& bucket, Clock::time_point now) const {
  const double elapsed = std::max(0.0, std::chrono::duration<double>(now - bucket.at).count());
  return std::min(burst_, bucket.tokens + elapsed * per_second_);
}

std::chrono::milliseconds TokenBuckets::WaitFor(double tokens) const {
  if (tokens >= 1) return std::chrono::milliseconds(0);
  return std::chrono::milliseconds(static_cast<long>(std::ceil((1 - tokens) * 1000 / per_second_)));
}

void TokenBuckets::MakeRoom(Clock::time_point now) {
  std::erase_if(buckets_, [&](const auto& entry) { return Refilled(entry.second, now) >= burst_; });
  while (buckets_.size() >= max_keys_) {
    auto oldest = std::min_element(buckets_.begin(), buckets_.end(),
                                   [](const auto& a, const auto& b) { return a.second.at < b.second.at; });
    buckets_.erase(oldest);
  }
}

std::chrono::milliseconds TokenBuckets::Take(const std::string& key, Clock::time_point now) {
  std::lock_guard lock(mutex_);
  auto it = buckets_.find(key);
  if (it == buckets_.end()) {
    if (buckets_.size() >= max_keys_) MakeRoom(now);
    it = buckets_.emplace(key, Bucket{burst_, now}).first;
  }
  const double tokens = Refilled(it->second, now);
  if (tokens < 1) return WaitFor(tokens);
  it->second = Bucket{tokens - 1, now};
  return std::chrono::milliseconds(0);
}

std::chrono::milliseconds TokenBuckets::Wait(const std::string& key, Clock::time_point now) const {
  std::lock_guard lock(mutex_);
  const auto it = buckets_.find(key);
  if (it == buckets_.end()) return std::chrono::milliseconds(0);
  return WaitFor(Refilled(it->second, now));
}

std::size_t TokenBuckets::keys() const {
  std::lock_guard lock(mutex_);
  return buckets_.size();
}

}  // namespace physio
