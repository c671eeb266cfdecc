#pragma once
// Which clinics a patient is enrolled at, read from the directory the assessment
// service keeps in PostgreSQL (assessment.patient_clinics, readable by every
// service's role), for clinic scoping in every service (CanSeePatient and the
// call pipeline). Remembered per patient for `cache_ttl`, so a hot patient costs
// one query per interval; an enrolment or transfer made through this process is
// seen at once (Forget), one made through another replica or service within
// `cache_ttl`.
//  - Read ahead: a lookup that finds an entry past half its life has it read
//    again in the background (one thread, one query per patient at a time), so a
//    patient read at least once per `cache_ttl` is always found, and a call that
//    cannot wait for PostgreSQL (a fast read, inside a NoBlockingScope) never has
//    to. An entry is never used past `cache_ttl` from the start of the query that
//    read it, so the bound on seeing a change made elsewhere is unchanged.
//  - A read that began before a Forget is not kept (it may have read what the
//    change replaced), nor one older than the entry it would replace.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
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
  PgPatientClinics(PgPool& pg, std::chrono::milliseconds cache_ttl, std::size_t max_entries = 100000);
  PgPatientClinics(const PgPatientClinics&) = delete;
  PgPatientClinics& operator=(const PgPatientClinics&) = delete;

  PatientReach ReachOf(const std::string& tenant, const std::string& patient_id,
                       Clock::time_point deadline) const override;
  void Forget(const std::string& tenant, const std::string& patient_id) const override;
  // Entries read again ahead of their expiry (for /metrics and tests).
  std::uint64_t read_ahead() const { return read_ahead_.load(std::memory_order_relaxed); }

 private:
  using Key = std::pair<std::string, std::string>;
  struct Entry {
    PatientReach reach;
    Clock::time_point fetched;  // when the query that read it started (or when it was forgotten)
    bool refreshing = false;    // queued for, or in, a read ahead
    bool forgotten = false;     // Forget: no reach, and no query started before it may store one
  };
  PatientReach Fetch(const Key& key, Clock::time_point deadline) const;
  // Stores what a query started at `fetched` read, unless the patient was forgotten or read since.
  void Store(const Key& key, PatientReach reach, Clock::time_point fetched) const;
  void ReadAhead(std::stop_token stop);
  // Before an insert: drops expired entries when the cache is full (mutex_ held).
  void MakeRoom(const Key& key) const;

  PgPool& pg_;
  std::chrono::milliseconds cache_ttl_;
  std::size_t max_entries_;
  mutable std::mutex mutex_;
  mutable std::map<Key, Entry> cache_;
  mutable std::deque<Key> to_read_;    // bounded: past kReadAheadQueue entries simply expire
  mutable std::condition_variable_any has_reads_;
  std::atomic<std::uint64_t> read_ahead_{0};
  std::jthread reader_;  // last: started once everything above exists, stopped and joined first
};

}  // namespace physio
