#pragma once
// Plans and their revision history in PostgreSQL (planning.plans,
// planning.plan_revisions), as the use cases see them: whole Plan messages by
// tenant, never SQL. The use cases (planning_app.cc) decide every change; this
// layer only stores and reads it.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "domain/episodes.h"
#include "physio/db/bulk_export.h"
#include "physio/db/idempotent.h"
#include "physio/db/migrations.h"
#include "physio/planning/v1/planning.pb.h"

namespace physio::planning {

// The service's PostgreSQL schema: its records, idempotency records, audit trail and events.
inline constexpr const char* kSchema = "planning";
// Indexes built concurrently after the migrations (ServiceRuntime). A patient's episodes: the
// progress service's outcome-report refresher reads the latest after every change of a patient's
// records, and approvals lock it; without this index each read walked every episode of the tenant
// (15 ms in a tenant of 50,000 episodes, growing with it; issue 33).
inline const std::vector<ConcurrentIndex> kPlanningIndexes = {
    {"episodes_by_patient", "episodes", "(tenant_id, patient_id, started_at)"}};

// A plan with its row version (its etag is "v<version>").
struct VersionedPlan {
  v1::Plan plan;
  long version = 1;
};

// A version of a tenant's own library (PublishTenantLibrary), as stored.
struct StoredTenantLibrary {
  int version = 0;
  std::string document;
  std::string published_by;
  std::int64_t publish_seconds = 0;
  std::string reason;
};

// One write transaction's view of the records.
class PlanWriter {
 public:
  virtual ~PlanWriter() = default;
  // Inserts a new plan at version 1.
  virtual void Insert(const std::string& tenant, const v1::Plan& plan) = 0;
  // The plan, locked until the transaction ends; nullopt when the tenant has none of that id.
  virtual std::optional<VersionedPlan> FindForUpdate(const std::string& tenant, const std::string& plan_id) = 0;
  // The patient's plans in use (active or suspended), locked.
  virtual std::vector<VersionedPlan> InUseForUpdate(const std::string& tenant, const std::string& patient_id) = 0;
  // Replaces a locked plan (its status and body) and sets its version. ABORTED
  // when it would make a second plan of the patient in use: another was
  // approved at the same time.
  virtual void Update(const std::string& tenant, const v1::Plan& plan, long version) = 0;
  // Adds the plan as it now is to its history, under its revision number.
  virtual void AddRevision(const std::string& tenant, const v1::Plan& plan, const std::string& change,
                           const std::string& reason, const std::string& changed_by) = 0;
  // An event for the feed (WatchEvents), committed with the write.
  virtual void AppendEvent(const std::string& tenant, const std::string& kind, const std::string& patient_id,
                           const std::string& resource_id) = 0;
  // The patient's latest episode of care (the open one, else the one that ended last), locked.
  virtual std::optional<LatestEpisode> LatestEpisodeForUpdate(const std::string& tenant,
                                                              const std::string& patient_id) = 0;
  // The tenant's latest library version (nullopt when none was published).
  virtual std::optional<StoredTenantLibrary> LatestTenantLibrary(const std::string& tenant) = 0;
  // Stores a new version; ABORTED naming expected_version when that version exists already
  // (another publish committed first).
  virtual void InsertTenantLibrary(const std::string& tenant, const StoredTenantLibrary& library) = 0;
};

// A page of a plan's history, oldest first.
struct RevisionPage {
  std::optional<std::string> patient_id;  // the plan's patient; nullopt when the tenant has no such plan
  std::vector<v1::PlanRevision> revisions;
  bool more = false;  // later revisions follow the last returned
};

class PlanRecords : public IdempotentRecords<PlanWriter> {
 public:
  virtual std::optional<v1::Plan> Find(const std::string& tenant, const std::string& plan_id,
                                       Clock::time_point deadline) = 0;
  // The patient's plans (every status), newest first, at most `limit`.
  virtual std::vector<v1::Plan> ListForPatient(const std::string& tenant, const std::string& patient_id, int limit,
                                               Clock::time_point deadline) = 0;
  // The patient's plan in use (active or suspended), if any.
  virtual std::optional<v1::Plan> FindInUse(const std::string& tenant, const std::string& patient_id,
                                            Clock::time_point deadline) = 0;
  // Up to `page_size` revisions numbered above `after_revision`.
  virtual RevisionPage ListRevisions(const std::string& tenant, const std::string& plan_id, int after_revision,
                                     int page_size, Clock::time_point deadline) = 0;
  // The number of the tenant's current library version (0: none): one small indexed read.
  virtual int TenantLibraryVersion(const std::string& tenant, Clock::time_point deadline) = 0;
  // A version of the tenant's library (`version` 0: the current one); nullopt when absent.
  virtual std::optional<StoredTenantLibrary> FindTenantLibrary(const std::string& tenant, int version,
                                                               Clock::time_point deadline) = 0;
};

class PgPlanWriter final : public PlanWriter {
 public:
  using Interface = PlanWriter;
  explicit PgPlanWriter(PgConnection& conn) : conn_(conn) {}
  void Insert(const std::string& tenant, const v1::Plan& plan) override;
  std::optional<VersionedPlan> FindForUpdate(const std::string& tenant, const std::string& plan_id) override;
  std::vector<VersionedPlan> InUseForUpdate(const std::string& tenant, const std::string& patient_id) override;
  void Update(const std::string& tenant, const v1::Plan& plan, long version) override;
  void AddRevision(const std::string& tenant, const v1::Plan& plan, const std::string& change,
                   const std::string& reason, const std::string& changed_by) override;
  void AppendEvent(const std::string& tenant, const std::string& kind, const std::string& patient_id,
                   const std::string& resource_id) override;
  std::optional<LatestEpisode> LatestEpisodeForUpdate(const std::string& tenant,
                                                      const std::string& patient_id) override;
  std::optional<StoredTenantLibrary> LatestTenantLibrary(const std::string& tenant) override;
  void InsertTenantLibrary(const std::string& tenant, const StoredTenantLibrary& library) override;

 private:
  PgConnection& conn_;
};

class PgPlanRecords final : public PgIdempotentRecords<PlanRecords, PgPlanWriter> {
 public:
  using PgIdempotentRecords::PgIdempotentRecords;
  std::optional<v1::Plan> Find(const std::string& tenant, const std::string& plan_id,
                               Clock::time_point deadline) override;
  std::optional<v1::Plan> FindInUse(const std::string& tenant, const std::string& patient_id,
                                    Clock::time_point deadline) override;
  std::vector<v1::Plan> ListForPatient(const std::string& tenant, const std::string& patient_id, int limit,
                                       Clock::time_point deadline) override;
  RevisionPage ListRevisions(const std::string& tenant, const std::string& plan_id, int after_revision, int page_size,
                             Clock::time_point deadline) override;
  int TenantLibraryVersion(const std::string& tenant, Clock::time_point deadline) override;
  std::optional<StoredTenantLibrary> FindTenantLibrary(const std::string& tenant, int version,
                                                       Clock::time_point deadline) override;
};

// The FHIR bulk export's planning side (docs/fhir.md#bulk): every plan's CarePlan and Goals, by
// plan id (the checkpoint is the last plan id written).
class PgPlanExportSource final : public BulkExportSource {
 public:
  std::set<std::string> Types() const override { return {"CarePlan", "Goal"}; }
  Batch Next(PgConnection& conn, const BulkExportJob& job, const std::string& checkpoint, int limit) override;
};

}  // namespace physio::planning
