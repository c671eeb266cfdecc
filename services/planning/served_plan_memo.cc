#include "served_plan_memo.h"

namespace physio::planning {

std::string ServedPlanMemo::Key(std::string_view tenant, std::string_view patient_id, std::string_view locale) {
  std::string key;
  key.reserve(tenant.size() + patient_id.size() + locale.size() + 2);
  // Ids and locales never hold a NUL, so the parts cannot run into each other.
  key.append(tenant).push_back('\0');
  key.append(patient_id).push_back('\0');
  key.append(locale);
  return key;
}

std::optional<ServedPlanMemo::Served> ServedPlanMemo::Find(const std::string& key, std::string_view plan_bytes) {
  std::lock_guard lock(mu_);
  const auto found = by_key_.find(key);
  if (found == by_key_.end() || found->second->plan_bytes != plan_bytes) return std::nullopt;
  order_.splice(order_.begin(), order_, found->second);
  return found->second->served;
}

void ServedPlanMemo::Remember(const std::string& key, std::string_view plan_bytes, Served served) {
  if (served.response == nullptr) return;
  Entry made{key, std::string(plan_bytes), std::move(served)};
  const std::size_t cost = made.Cost();
  if (cost > max_bytes_) return;  // off, or one entry larger than the whole bound
  std::lock_guard lock(mu_);
  if (const auto old = by_key_.find(key); old != by_key_.end()) {
    bytes_ -= old->second->Cost();
    order_.erase(old->second);
    by_key_.erase(old);
  }
  while (!order_.empty() && bytes_ + cost > max_bytes_) {
    bytes_ -= order_.back().Cost();
    by_key_.erase(order_.back().key);
    order_.pop_back();
  }
  order_.push_front(std::move(made));
  by_key_.emplace(key, order_.begin());
  bytes_ += cost;
}

std::size_t ServedPlanMemo::bytes() const {
  std::lock_guard lock(mu_);
  return bytes_;
}

std::size_t ServedPlanMemo::entries() const {
  std::lock_guard lock(mu_);
  return order_.size();
}

}  // namespace physio::planning
