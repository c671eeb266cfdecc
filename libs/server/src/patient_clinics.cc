#include "physio/server/patient_clinics.h"

#include "physio/common/error.h"

namespace physio {

std::set<std::string> PgPatientClinics::ClinicsOf(const std::string& tenant, const std::string& patient_id,
                                                  Clock::time_point deadline) const {
  const auto key = std::make_pair(tenant, patient_id);
  const auto now = Clock::now();
  if (cache_ttl_.count() > 0) {
    std::lock_guard lock(mutex_);
    if (auto found = cache_.find(key); found != cache_.end() && now - found->second.fetched < cache_ttl_) {
      return found->second.clinics;
    }
  }
  std::set<std::string> clinics;
  try {
    auto lease = pg_.Lease(deadline);
    auto result = lease->Exec(std::string("SELECT clinic_id FROM ") + kPatientClinicsTable +
                                  " WHERE tenant_id = $1 AND patient_id = $2",
                              {tenant, patient_id});
    for (int row = 0; row < result.rows(); ++row) clinics.insert(result.Get(row, 0));
  } catch (const Error& error) {
    // Never "no clinics" (which would open the patient to the whole tenant): the call fails, to be retried.
    if (error.code() == ErrorCode::kUnavailable || error.code() == ErrorCode::kDeadlineExceeded) throw;
    throw Error(ErrorCode::kUnavailable, std::string("clinic directory not readable: ") + error.what());
  }
  if (cache_ttl_.count() > 0) {
    std::lock_guard lock(mutex_);
    if (cache_.size() >= max_entries_) {
      std::erase_if(cache_, [&](const auto& entry) { return now - entry.second.fetched >= cache_ttl_; });
      if (cache_.size() >= max_entries_) cache_.clear();
    }
    cache_[key] = Entry{clinics, now};
  }
  return clinics;
}

void PgPatientClinics::Forget(const std::string& tenant, const std::string& patient_id) const {
  std::lock_guard lock(mutex_);
  cache_.erase(std::make_pair(tenant, patient_id));
}

}  // namespace physio
