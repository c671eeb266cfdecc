#include "physio/server/refusal_guard.h"

namespace physio {

namespace {
constexpr std::size_t kMaxAddresses = 10000;
}  // namespace

std::string AddressOfPeer(const std::string& peer) {
  const auto scheme = peer.find(':');
  std::string address = scheme == std::string::npos ? peer : peer.substr(scheme + 1);
  const auto port = address.rfind(':');
  // "[::1]:5555" and "10.0.0.1:5555" lose the port; a bare "[::1]" or "unix:..." stays.
  if (port != std::string::npos && (address.front() != '[' || (port > 0 && address[port - 1] == ']'))) {
    address.resize(port);
  }
  return address;
}

RefusalGuard::RefusalGuard(RefusalGuardSettings settings)
    : failures_(settings.per_second, settings.burst, kMaxAddresses),
      audit_rows_(settings.audit_per_second, settings.audit_burst, kMaxAddresses) {}

std::chrono::milliseconds RefusalGuard::Blocked(const std::string& address) const { return failures_.Wait(address); }

void RefusalGuard::Failed(const std::string& address) { failures_.Take(address); }

bool RefusalGuard::ShouldAudit(const std::string& address, long& repeats) {
  std::lock_guard lock(mutex_);
  if (audit_rows_.Take(address).count() > 0) {
    if (pending_.size() < kMaxAddresses || pending_.contains(address)) ++pending_[address];
    unaudited_.fetch_add(1);
    return false;
  }
  repeats = 1;
  if (auto it = pending_.find(address); it != pending_.end()) {
    repeats += it->second;
    pending_.erase(it);
  }
  return true;
}

}  // namespace physio
