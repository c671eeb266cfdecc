#pragma once
// Which clinics a patient is enrolled at, read from the directory the assessment
// service keeps in PostgreSQL (assessment.patient_clinics, readable by every
// service's role), for clinic scoping in every service (CanSeePatient and the
// call pipeline). Remembered per patient for `cache_ttl`, so a hot patient costs
// one query per interval; an enrolment or transfer made through this process is
// seen at once (Forget), one made through another replica or service within
// `cache_ttl`.
#include <chrono>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <utility>

#include "physio/auth/call_context.h"
#include "physio/db/pg.h"

namespace physio {

// The tables every service reads: the clinic directory and the consents (owned
// and migrated by assessment) and the emergency grants (owned and migrated by progress).
inline constexpr const char* kPatientClinicsTable = "assessment.patient_clinics";
inline constexpr const char* kConsentsTable = "assessment.consents";
inline constexpr const char* kEmergencyAccessTable = "progress.emergency_access";

class PgPatientClinics : public PatientClinicsSource {
 public:
  PgPatientClinics(PgPool& pg, std::chrono::milliseconds cache_ttl, std::size_t max_entries = 100000)
      : pg_(pg), cache_ttl_(cache_ttl), max_entries_(max_entries) {}
  PatientReach ReachOf(const std::string& tenant, const std::string& patient_id,
                       Clock::time_point deadline) const override;
  void Forget(const std::string& tenant, const std::string& patient_id) const override;

 private:
  struct Entry {
    PatientReach reach;
    Clock::time_point fetched;
  };
  PgPool& pg_;
  std::chrono::milliseconds cache_ttl_;
  std::size_t max_entries_;
  mutable std::mutex mutex_;
  mutable std::map<std::pair<std::string, std::string>, Entry> cache_;
};

}  // namespace physio
