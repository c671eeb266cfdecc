#pragma once
// GetActivePlan's fast path (issue 33) answers most reads with a plan it has already checked,
// localised and serialised. A response is a pure function of three things: the plan's bytes as
// cached in Redis, the locale asked for and the tenant library the plan was localised with. So
// an entry is reused only when all three are the same as when it was made: the bytes compared in
// full (BytesMemo), the library by identity (SameLibrary). Whatever changes the plan changes its
// bytes; nothing is ever served that a fresh parse of the same bytes would not give. Bounded in
// bytes, least recently used first out.
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "physio/common/bytes_memo.h"

namespace physio::planning {

class ServedPlanMemo {
 public:
  struct Served {
    std::shared_ptr<const std::string> response;  // a serialised GetActivePlanResponse
    std::string plan_id;
    bool suspended = false;            // the plan's status was SUSPENDED
    bool uses_tenant_library = false;  // the plan holds the tenant's own entries
    // The tenant library it was localised with (empty: the shipped library alone); a caller
    // reuses the response only if a fresh localisation would use this same one (SameLibrary).
    // Weak: a version no longer in use is freed, not kept alive by an entry.
    std::weak_ptr<const void> library;
  };
  // Whether `now` is the library `then` referred to. By ownership, not address: the weak
  // reference keeps its control block, so a library allocated later never compares equal.
  static bool SameLibrary(const std::weak_ptr<const void>& then, const std::shared_ptr<const void>& now) {
    return !then.owner_before(now) && !now.owner_before(then);
  }

  // `max_bytes`: the bound on what the entries hold (plan bytes, responses, keys); 0 turns it off.
  explicit ServedPlanMemo(std::size_t max_bytes) : memo_(max_bytes) {}

  // The key of one patient's plan read in one locale.
  static std::string Key(std::string_view tenant, std::string_view patient_id, std::string_view locale);

  // The entry made from exactly `plan_bytes` under `key`, or nullopt.
  std::optional<Served> Find(const std::string& key, std::string_view plan_bytes) { return memo_.Find(key, plan_bytes); }
  // Remembers the response made from `plan_bytes`, replacing what `key` held.
  void Remember(const std::string& key, std::string_view plan_bytes, Served served) {
    if (served.response == nullptr) return;
    const std::size_t cost = served.response->size();
    memo_.Remember(key, plan_bytes, std::move(served), cost);
  }

  std::size_t bytes() const { return memo_.bytes(); }
  std::size_t entries() const { return memo_.entries(); }

 private:
  BytesMemo<Served> memo_;
};

}  // namespace physio::planning
