#include "physio/server/patient_clinics.h"

#include "physio/common/error.h"

namespace physio {

PatientReach PgPatientClinics::ReachOf(const std::string& tenant, const std::string& patient_id,
                                      Clock::time_point deadline) const {
  const auto key = std::make_pair(tenant, patient_id);
  const auto now = Clock::now();
  if (cache_ttl_.count() > 0) {
    std::lock_guard lock(mutex_);
    if (auto found = cache_.find(key); found != cache_.end() && now - found->second.fetched < cache_ttl_) {
      return found->second.reach;
    }
  }
  PatientReach reach;
  try {
    // One round trip with the statement timeout, on a connection the pool (re)connects as needed.
    auto result = QueryOnce(pg_, deadline,
                            {std::string("SELECT 'clinic', clinic_id, 0 FROM ") + kPatientClinicsTable +
                                 " WHERE tenant_id = $1 AND patient_id = $2"
                                 " UNION ALL SELECT 'grant', principal, max(extract(epoch FROM expires_at))::bigint FROM " +
                                 kEmergencyAccessTable +
                                 " WHERE tenant_id = $1 AND patient_id = $2 AND expires_at > now() GROUP BY principal"
                                 // The latest sharing decision per platform.
                                 " UNION ALL (SELECT DISTINCT ON (platform) 'sharing', platform,"
                                 " CASE WHEN decision = 'granted' THEN 1 ELSE 0 END::bigint FROM " +
                                 kConsentsTable +
                                 " WHERE tenant_id = $1 AND patient_id = $2 AND kind = 'data_sharing'"
                                 " ORDER BY platform, consent_id DESC)",
                             {tenant, patient_id}});
    for (int row = 0; row < result.rows(); ++row) {
      const std::string kind = result.Get(row, 0);
      if (kind == "clinic") {
        reach.clinics.insert(result.Get(row, 1));
      } else if (kind == "sharing") {
        reach.sharing[result.Get(row, 1)] = result.GetLong(row, 2) == 1;
      } else {
        reach.emergency_until[result.Get(row, 1)] =
            std::chrono::system_clock::time_point(std::chrono::seconds(result.GetLong(row, 2)));
      }
    }
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
    cache_[key] = Entry{reach, now};
  }
  return reach;
}

void PgPatientClinics::Forget(const std::string& tenant, const std::string& patient_id) const {
  std::lock_guard lock(mutex_);
  cache_.erase(std::make_pair(tenant, patient_id));
}

}  // namespace physio
