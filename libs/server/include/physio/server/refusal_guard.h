#pragma once
// What unauthenticated callers may cost, per address, before anyone has
// logged in (both ports and WatchEvents):
//  - calls that fail authentication take from the address's budget
//    (`per_second`, `burst`); while it is empty, a call from that address whose
//    token does not verify is refused RESOURCE_EXHAUSTED before any work (no
//    queue, no audit row), while callers with a valid token go on;
//  - refused calls are audited (ids only), at most `audit_per_second` rows per
//    address (`audit_burst` at once): a row written after a quiet spell says in
//    `repeats` how many refusals it stands for, so a flood cannot fill the audit
//    table or its queue, and nothing refused goes uncounted.
// Kept in this process (each replica limits on its own), bounded in addresses.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>

#include "physio/common/token_buckets.h"

namespace physio {

struct RefusalGuardSettings {
  double per_second = 10;  // failed authentications per address per second
  double burst = 50;
  double audit_per_second = 1;  // audit rows of refused calls per address per second
  double audit_burst = 10;
};

// The address of a gRPC peer ("ipv4:10.0.0.1:5555", "ipv6:[::1]:5555") or of
// an HTTP client as the gateway reports it ("http:10.0.0.1:5555"), without the port.
std::string AddressOfPeer(const std::string& peer);

class RefusalGuard {
 public:
  explicit RefusalGuard(RefusalGuardSettings settings = {});
  // 0 when `address` may make unauthenticated attempts now, else how long until it may.
  std::chrono::milliseconds Blocked(const std::string& address) const;
  // A call from `address` failed authentication.
  void Failed(const std::string& address);
  // A call refused before any work because its address was blocked.
  void CountBlocked() { blocked_.fetch_add(1); }
  // Whether to write the audit row of a refusal from `address` now; when true,
  // `repeats` is the refusals the row stands for (this one and those not written since the last row).
  bool ShouldAudit(const std::string& address, long& repeats);

  std::uint64_t blocked() const { return blocked_.load(); }
  std::uint64_t unaudited() const { return unaudited_.load(); }

 private:
  TokenBuckets failures_;
  TokenBuckets audit_rows_;
  std::mutex mutex_;
  std::unordered_map<std::string, long> pending_;  // refusals not yet in a row, per address
  std::atomic<std::uint64_t> blocked_{0}, unaudited_{0};
};

}  // namespace physio
