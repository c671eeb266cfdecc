#pragma once
// Which patient each session (intake, visit) this process has seen is of, by tenant and session
// id: a session's patient never changes, so a clinic-scoped caller's check before a change can be
// made from memory (and on gRPC's thread, issue 33). Bounded: full, it starts over.
#include <cstddef>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

namespace physio {

class SessionPatients {
 public:
  std::optional<std::string> Find(const std::string& tenant, const std::string& session_id) const {
    std::lock_guard lock(mu_);
    auto found = patients_.find({tenant, session_id});
    if (found == patients_.end()) return std::nullopt;
    return found->second;
  }
  void Remember(const std::string& tenant, const std::string& session_id, const std::string& patient_id) {
    std::lock_guard lock(mu_);
    if (patients_.size() >= kMaxEntries) patients_.clear();
    patients_[{tenant, session_id}] = patient_id;
  }

 private:
  static constexpr std::size_t kMaxEntries = 20000;
  mutable std::mutex mu_;
  std::map<std::pair<std::string, std::string>, std::string> patients_;
};

}  // namespace physio
