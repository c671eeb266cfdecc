#include "physio/server/patient_clinics.h"

#include "physio/common/error.h"

namespace physio {

namespace {
constexpr std::size_t kReadAheadQueue = 4096;
constexpr auto kReadAheadBudget = std::chrono::seconds(2);
}  // namespace

PgPatientClinics::PgPatientClinics(PgPool& pg, std::chrono::milliseconds cache_ttl, std::size_t max_entries)
    : pg_(pg), cache_ttl_(cache_ttl), max_entries_(max_entries) {
  if (cache_ttl_.count() > 0) reader_ = std::jthread([this](std::stop_token stop) { ReadAhead(stop); });
}

PatientReach PgPatientClinics::ReachOf(const std::string& tenant, const std::string& patient_id,
                                      Clock::time_point deadline) const {
  Key key(tenant, patient_id);
  const auto now = Clock::now();
  if (cache_ttl_.count() > 0) {
    std::lock_guard lock(mutex_);
    if (auto found = cache_.find(key);
        found != cache_.end() && !found->second.forgotten && now - found->second.fetched < cache_ttl_) {
      Entry& entry = found->second;
      if (now - entry.fetched >= cache_ttl_ / 2 && !entry.refreshing && to_read_.size() < kReadAheadQueue) {
        entry.refreshing = true;
        to_read_.push_back(key);
        has_reads_.notify_one();
      }
      return entry.reach;
    }
  }
  PatientReach reach = Fetch(key, deadline);
  if (cache_ttl_.count() > 0) Store(key, reach, now);
  return reach;
}

PatientReach PgPatientClinics::Fetch(const Key& key, Clock::time_point deadline) const {
  const auto& [tenant, patient_id] = key;
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
  return reach;
}

void PgPatientClinics::Store(const Key& key, PatientReach reach, Clock::time_point fetched) const {
  std::lock_guard lock(mutex_);
  if (auto found = cache_.find(key); found != cache_.end()) {
    // Forgotten since the query started (a change made through this process while it ran: what it
    // read may be from before the change), or already read by a later query.
    if (found->second.forgotten ? found->second.fetched >= fetched : found->second.fetched > fetched) return;
  }
  MakeRoom(key);
  cache_[key] = Entry{.reach = std::move(reach), .fetched = fetched};
}

void PgPatientClinics::MakeRoom(const Key& key) const {
  if (cache_.size() < max_entries_ || cache_.contains(key)) return;
  const auto now = Clock::now();
  std::erase_if(cache_, [&](const auto& entry) { return now - entry.second.fetched >= cache_ttl_; });
  if (cache_.size() >= max_entries_) cache_.clear();
}

void PgPatientClinics::ReadAhead(std::stop_token stop) {
  for (;;) {
    Key key;
    {
      std::unique_lock lock(mutex_);
      if (!has_reads_.wait(lock, stop, [&] { return !to_read_.empty(); })) return;
      key = std::move(to_read_.front());
      to_read_.pop_front();
    }
    const auto started = Clock::now();
    try {
      Store(key, Fetch(key, started + kReadAheadBudget), started);
      read_ahead_.fetch_add(1, std::memory_order_relaxed);
    } catch (const std::exception&) {
      // The entry expires as it would have; the next call reads the directory itself.
      std::lock_guard lock(mutex_);
      if (auto found = cache_.find(key); found != cache_.end()) found->second.refreshing = false;
    }
  }
}

void PgPatientClinics::Forget(const std::string& tenant, const std::string& patient_id) const {
  if (cache_ttl_.count() <= 0) return;
  std::lock_guard lock(mutex_);
  // Kept as a marker for cache_ttl_: a query that started before now must not store what it read.
  Key key(tenant, patient_id);
  MakeRoom(key);
  cache_[std::move(key)] = Entry{.fetched = Clock::now(), .forgotten = true};
}

}  // namespace physio
