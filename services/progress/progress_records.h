#pragma once
// A patient's course of care in PostgreSQL (progress.visits, home_exercise_logs,
// outcome_measures, evaluations, alerts), as the use cases see them: whole
// messages by tenant, never SQL. Histories are bounded windows (see
// EvaluationPolicy), oldest first; the summary is built from what these return
// (summary.h), without I/O. The use cases (progress_app.cc) decide every write.
#include <optional>
#include <string>
#include <vector>

#include "domain/evaluation.h"
#include "physio/db/bulk_export.h"
#include "physio/db/idempotent.h"
#include "physio/db/migrations.h"
#include "physio/db/page_token.h"
#include "physio/progress/v1/progress.pb.h"
#include "summary.h"

namespace physio::progress {

// The service's PostgreSQL schema: its records, idempotency records, audit trail and events.
inline constexpr const char* kSchema = "progress";
// Indexes built concurrently after the migrations (ServiceRuntime): a clinic's open alerts newest
// first, so the first page of ListAlerts does not walk the clinic's acknowledged ones (issue 33).
inline const std::vector<ConcurrentIndex> kProgressIndexes = {
    {"alerts_open_by_clinic", "alerts", "(tenant_id, clinic_id, created_at DESC, alert_id DESC) WHERE status = 'OPEN'"},
    // A patient's history (PatientHistorySql) in the order it is read, tie-break included: one
    // backward range scan, and a plan that does not depend on statistics. With migration 0001's
    // (tenant_id, patient_id, time) the two indexes cost the same for a tenant PostgreSQL had no
    // statistics for yet (a new tenant, or one grown since the last ANALYZE), and it chose the
    // primary key: every read of one patient's history walked the whole tenant's rows (issue 33).
    {"visits_history", "visits", "(tenant_id, patient_id, visit_time, created_at)"},
    {"home_exercise_logs_history", "home_exercise_logs", "(tenant_id, patient_id, performed_time, created_at)"},
    {"outcome_measures_history", "outcome_measures", "(tenant_id, patient_id, measure_time, created_at)"},
    // Migration 0001's and 0002's: the history indexes above serve every query they served.
    {"visits_by_patient", "visits", "", true},
    {"home_exercise_logs_by_patient", "home_exercise_logs", "", true},
    {"outcome_measures_by_patient", "outcome_measures", "", true},
    // The figures due for their daily recompute (StaleFiguresSql), oldest first, of open episodes
    // only (migration 0009): the walk costs what is due, not what is open.
    {"episode_progress_open_due", "episode_progress", "(computed_at) WHERE episode_open"},
    // Migration 0008's, which that one replaces.
    {"episode_progress_computed", "episode_progress", "", true}};

// The statement that reads a bounded window of one kind of a patient's history ($1 tenant,
// $2 patient, $3 days, $4 rows), newest rows kept, returned oldest first.
std::string PatientHistorySql(const std::string& table, const std::string& time_column);

// One write transaction's view of the records.
class ProgressWriter {
 public:
  virtual ~ProgressWriter() = default;
  // `clinic_id`: the clinic that saw the patient (nullopt: none named).
  virtual void InsertVisit(const std::string& tenant, const v1::Visit& visit,
                           const std::optional<std::string>& clinic_id) = 0;
  virtual void InsertHomeLog(const std::string& tenant, const v1::HomeExerciseLog& log) = 0;
  virtual void InsertSymptomReport(const std::string& tenant, const v1::SymptomReport& report) = 0;
  virtual void InsertOutcome(const std::string& tenant, const v1::OutcomeMeasure& measure) = 0;
  // Inserts the open alert unless one of its kind is already open for its
  // patient; false when one was (then nothing is written).
  virtual bool InsertAlertUnlessOpen(const std::string& tenant, const v1::Alert& alert) = 0;
  // The patient's open alert of that kind, locked until the transaction ends; nullopt when none is open.
  virtual std::optional<v1::Alert> FindOpenAlertForUpdate(const std::string& tenant, const std::string& patient_id,
                                                          v1::AlertKind kind) = 0;
  // Stores a locked open alert's body as given (a later finding added to it).
  virtual void UpdateOpenAlert(const std::string& tenant, const v1::Alert& alert) = 0;
  // The alert, locked until the transaction ends; nullopt when the tenant has none of that id.
  virtual std::optional<v1::Alert> FindAlertForUpdate(const std::string& tenant, const std::string& alert_id) = 0;
  // Records a locked alert as acknowledged (its body as given).
  virtual void MarkAlertAcknowledged(const std::string& tenant, const v1::Alert& alert) = 0;
  // The clinic of the patient's latest visit that named one.
  virtual std::optional<std::string> LatestClinic(const std::string& tenant, const std::string& patient_id) = 0;
  // Serialises the recording of racing evaluations of one patient until the
  // transaction ends, then names the evaluation that already used `adjustment_key`, if any.
  virtual std::optional<std::string> LockEvaluationsAndFindAdjustment(const std::string& tenant,
                                                                       const std::string& patient_id,
                                                                       const std::string& adjustment_key) = 0;
  // `adjustment_key`: the plan adjustment this evaluation made (nullopt: none).
  virtual void InsertEvaluation(const std::string& tenant, const std::string& patient_id,
                                const v1::Evaluation& evaluation, const std::optional<std::string>& adjustment_key) = 0;
  // An emergency grant: `principal` reaches the patient until `expires_unix` (seconds).
  virtual void InsertEmergencyAccess(const std::string& tenant, const std::string& grant_id,
                                     const std::string& principal, const std::string& patient_id,
                                     const std::string& reason, std::int64_t expires_unix) = 0;
  // An event for the feed (WatchEvents), committed with the write.
  virtual void AppendEvent(const std::string& tenant, const std::string& kind, const std::string& patient_id,
                           const std::string& resource_id) = 0;
};

// A page of a clinic's alerts, newest first, and where the next starts.
struct AlertPage {
  std::vector<v1::Alert> alerts;
  std::optional<KeysetPosition> next;  // the last returned, when more follow
};

// What a FHIR export holds: the patient's visits, re-measures and alerts.
struct ExportedRecords {
  std::vector<v1::Visit> visits;
  std::vector<v1::OutcomeMeasure> measures;
  std::vector<v1::Alert> alerts;
};

class ProgressRecords : public IdempotentRecords<ProgressWriter> {
 public:
  // Everything the summary needs, read in one transaction (one point in time).
  virtual PatientRecords ReadPatient(const std::string& tenant, const std::string& patient_id,
                                     const EvaluationPolicy& policy, Clock::time_point deadline) = 0;
  virtual ExportedRecords ReadForExport(const std::string& tenant, const std::string& patient_id,
                                        const EvaluationPolicy& policy, Clock::time_point deadline) = 0;
  // The patient of a visit, outcome re-measure or alert (by its id), if it exists in the tenant.
  virtual std::optional<std::string> PatientOfRecord(const std::string& tenant, const std::string& record_id,
                                                     Clock::time_point deadline) = 0;
  // Up to `page_size` of the clinic's alerts after `after` (newest first); only open ones unless `include_acknowledged`.
  virtual AlertPage ListAlerts(const std::string& tenant, const std::string& clinic_id, bool include_acknowledged,
                               const KeysetPosition& after, int page_size, Clock::time_point deadline) = 0;
};

class PgProgressWriter final : public ProgressWriter {
 public:
  using Interface = ProgressWriter;
  explicit PgProgressWriter(PgConnection& conn) : conn_(conn) {}
  void InsertVisit(const std::string& tenant, const v1::Visit& visit,
                   const std::optional<std::string>& clinic_id) override;
  void InsertHomeLog(const std::string& tenant, const v1::HomeExerciseLog& log) override;
  void InsertSymptomReport(const std::string& tenant, const v1::SymptomReport& report) override;
  void InsertOutcome(const std::string& tenant, const v1::OutcomeMeasure& measure) override;
  bool InsertAlertUnlessOpen(const std::string& tenant, const v1::Alert& alert) override;
  std::optional<v1::Alert> FindAlertForUpdate(const std::string& tenant, const std::string& alert_id) override;
  std::optional<v1::Alert> FindOpenAlertForUpdate(const std::string& tenant, const std::string& patient_id,
                                                  v1::AlertKind kind) override;
  void UpdateOpenAlert(const std::string& tenant, const v1::Alert& alert) override;
  void MarkAlertAcknowledged(const std::string& tenant, const v1::Alert& alert) override;
  std::optional<std::string> LatestClinic(const std::string& tenant, const std::string& patient_id) override;
  std::optional<std::string> LockEvaluationsAndFindAdjustment(const std::string& tenant, const std::string& patient_id,
                                                               const std::string& adjustment_key) override;
  void InsertEvaluation(const std::string& tenant, const std::string& patient_id, const v1::Evaluation& evaluation,
                        const std::optional<std::string>& adjustment_key) override;
  void AppendEvent(const std::string& tenant, const std::string& kind, const std::string& patient_id,
                   const std::string& resource_id) override;
  void InsertEmergencyAccess(const std::string& tenant, const std::string& grant_id, const std::string& principal,
                             const std::string& patient_id, const std::string& reason, std::int64_t expires_unix) override;

 private:
  PgConnection& conn_;
};

class PgProgressRecords final : public PgIdempotentRecords<ProgressRecords, PgProgressWriter> {
 public:
  using PgIdempotentRecords::PgIdempotentRecords;
  PatientRecords ReadPatient(const std::string& tenant, const std::string& patient_id, const EvaluationPolicy& policy,
                             Clock::time_point deadline) override;
  ExportedRecords ReadForExport(const std::string& tenant, const std::string& patient_id,
                                const EvaluationPolicy& policy, Clock::time_point deadline) override;
  std::optional<std::string> PatientOfRecord(const std::string& tenant, const std::string& record_id,
                                             Clock::time_point deadline) override;
  AlertPage ListAlerts(const std::string& tenant, const std::string& clinic_id, bool include_acknowledged,
                       const KeysetPosition& after, int page_size, Clock::time_point deadline) override;
};

// The FHIR bulk export's progress side (docs/fhir.md#bulk): every visit's Encounter and pain
// Observations, every re-measure's Observation, every alert's Flag, table by table in id order
// (checkpoints "v:<visit id>", "m:<measure id>", "a:<alert id>"). All of them: no history window.
class PgProgressExportSource final : public BulkExportSource {
 public:
  explicit PgProgressExportSource(std::string identifier_system) : identifier_system_(std::move(identifier_system)) {}
  std::set<std::string> Types() const override { return {"Encounter", "Observation", "Flag"}; }
  Batch Next(PgConnection& conn, const BulkExportJob& job, const std::string& checkpoint, int limit) override;

 private:
  std::string identifier_system_;
};

}  // namespace physio::progress
