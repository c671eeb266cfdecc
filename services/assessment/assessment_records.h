#pragma once
// Stored assessments in PostgreSQL (assessment.assessments), as the use cases
// see them: whole Assessment messages by tenant, never SQL. The use cases
// (assessment_app.cc) decide what is stored; this layer only stores and reads it.
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "physio/assessment/v1/assessment.pb.h"
#include "physio/db/bulk_export.h"
#include "physio/db/idempotent.h"
#include "physio/db/migrations.h"
#include "physio/db/page_token.h"

namespace physio::assessment {

// The service's PostgreSQL schema: its records, idempotency records, audit trail and events.
inline constexpr const char* kSchema = "assessment";
// Indexes built concurrently after the migrations (ServiceRuntime): a patient's assessments newest
// first with the id as the tie-break, so every page of ListAssessments is one index range scan
// however many the patient has (issue 33: without the id the first page sorted all of them).
inline const std::vector<ConcurrentIndex> kAssessmentIndexes = {
    {"assessments_by_patient_keyset", "assessments", "(tenant_id, patient_id, created_at DESC, assessment_id DESC)"},
    // Migration 0001's index: the keyset one serves every query it served (issue 33).
    {"assessments_by_patient", "assessments", "", true},
    // ListWebhookDeliveries of one state ("which failed?"): one range scan, however rare the state
    // among the subscription's deliveries (without it, a page of failed ones read the 200 delivered
    // ones around each; issue 33).
    {"webhook_deliveries_by_state", "webhook_deliveries", "(tenant_id, subscription_id, state, delivery_id)"}};

// An assessment with its row version (its etag is "v<version>").
struct VersionedAssessment {
  v1::Assessment assessment;
  long version = 1;
};

// One write transaction's view of the records.
class AssessmentWriter {
 public:
  virtual ~AssessmentWriter() = default;
  // Inserts a new assessment (its id, patient, intake session and creator are
  // in `assessment`). FAILED_PRECONDITION naming session_id when its intake
  // session already has an assessment (one per intake, whoever got there first).
  virtual void Insert(const std::string& tenant, const v1::Assessment& assessment) = 0;
  // The assessment, locked until the transaction ends; nullopt when the tenant has none of that id.
  virtual std::optional<VersionedAssessment> FindForUpdate(const std::string& tenant,
                                                           const std::string& assessment_id) = 0;
  // Replaces a locked assessment's body and sets its version.
  virtual void Replace(const std::string& tenant, const v1::Assessment& assessment, long version) = 0;
  // An event for the feed (WatchEvents), committed with the write.
  virtual void AppendEvent(const std::string& tenant, const std::string& kind, const std::string& patient_id,
                           const std::string& resource_id) = 0;
  // The patient's clinics, with every change of them by others held off until the transaction ends.
  virtual std::set<std::string> LockClinics(const std::string& tenant, const std::string& patient_id) = 0;
  // Enrols the patient at a clinic (not enrolled there yet) / ends an enrolment; both join the history.
  virtual void AddClinic(const std::string& tenant, const std::string& patient_id, const std::string& clinic_id,
                         const std::string& by, const std::string& reason) = 0;
  virtual void RemoveClinic(const std::string& tenant, const std::string& patient_id, const std::string& clinic_id,
                            const std::string& by, const std::string& reason) = 0;
  // Appends a consent record (its id and time are set here) and returns it as stored.
  virtual v1::ConsentRecord AddConsent(const std::string& tenant, const v1::ConsentRecord& record) = 0;
};

// A page of a patient's assessments, newest first, and where the next starts.
struct AssessmentPage {
  std::vector<v1::Assessment> assessments;
  std::optional<KeysetPosition> next;  // the last returned, when more follow
};

class AssessmentRecords : public IdempotentRecords<AssessmentWriter> {
 public:
  virtual std::optional<v1::Assessment> Find(const std::string& tenant, const std::string& assessment_id,
                                             Clock::time_point deadline) = 0;
  // The same read into `into` (a response's message, on the call's arena): false when there is none.
  virtual bool FindInto(const std::string& tenant, const std::string& assessment_id, Clock::time_point deadline,
                        v1::Assessment* into) {
    auto found = Find(tenant, assessment_id, deadline);
    if (found) *into = std::move(*found);
    return found.has_value();
  }
  // Up to `page_size` of the patient's assessments after `after` (newest first).
  virtual AssessmentPage ListForPatient(const std::string& tenant, const std::string& patient_id,
                                        const KeysetPosition& after, int page_size, Clock::time_point deadline) = 0;
  // The patient's clinics now and every change, oldest first.
  virtual v1::PatientClinics PatientClinics(const std::string& tenant, const std::string& patient_id,
                                            Clock::time_point deadline) = 0;
  // The patient a consent record ("consent-<n>") belongs to, if it exists in the tenant.
  virtual std::optional<std::string> PatientOfConsent(const std::string& tenant, const std::string& consent_id,
                                                      Clock::time_point deadline) = 0;
  // Every consent record of the patient, oldest first.
  virtual std::vector<v1::ConsentRecord> Consents(const std::string& tenant, const std::string& patient_id,
                                                  Clock::time_point deadline) = 0;
};

class PgAssessmentWriter final : public AssessmentWriter {
 public:
  using Interface = AssessmentWriter;
  explicit PgAssessmentWriter(PgConnection& conn) : conn_(conn) {}
  void Insert(const std::string& tenant, const v1::Assessment& assessment) override;
  std::optional<VersionedAssessment> FindForUpdate(const std::string& tenant,
                                                   const std::string& assessment_id) override;
  void Replace(const std::string& tenant, const v1::Assessment& assessment, long version) override;
  void AppendEvent(const std::string& tenant, const std::string& kind, const std::string& patient_id,
                   const std::string& resource_id) override;
  std::set<std::string> LockClinics(const std::string& tenant, const std::string& patient_id) override;
  void AddClinic(const std::string& tenant, const std::string& patient_id, const std::string& clinic_id,
                 const std::string& by, const std::string& reason) override;
  void RemoveClinic(const std::string& tenant, const std::string& patient_id, const std::string& clinic_id,
                    const std::string& by, const std::string& reason) override;
  v1::ConsentRecord AddConsent(const std::string& tenant, const v1::ConsentRecord& record) override;

 private:
  PgConnection& conn_;
};

class PgAssessmentRecords final : public PgIdempotentRecords<AssessmentRecords, PgAssessmentWriter> {
 public:
  using PgIdempotentRecords::PgIdempotentRecords;
  std::optional<v1::Assessment> Find(const std::string& tenant, const std::string& assessment_id,
                                     Clock::time_point deadline) override;
  bool FindInto(const std::string& tenant, const std::string& assessment_id, Clock::time_point deadline,
                v1::Assessment* into) override;
  AssessmentPage ListForPatient(const std::string& tenant, const std::string& patient_id,
                                const KeysetPosition& after, int page_size, Clock::time_point deadline) override;
  v1::PatientClinics PatientClinics(const std::string& tenant, const std::string& patient_id,
                                    Clock::time_point deadline) override;
  std::optional<std::string> PatientOfConsent(const std::string& tenant, const std::string& consent_id,
                                              Clock::time_point deadline) override;
  std::vector<v1::ConsentRecord> Consents(const std::string& tenant, const std::string& patient_id,
                                          Clock::time_point deadline) override;
};

// The FHIR bulk export's assessment side (docs/fhir.md#bulk): the assessments' QuestionnaireResponses
// and Observations, then the consents, by id (checkpoints "a:<assessment id>", "c:<consent number>").
class PgAssessmentExportSource final : public BulkExportSource {
 public:
  explicit PgAssessmentExportSource(std::string identifier_system) : identifier_system_(std::move(identifier_system)) {}
  std::set<std::string> Types() const override { return {"QuestionnaireResponse", "Observation", "Consent"}; }
  Batch Next(PgConnection& conn, const BulkExportJob& job, const std::string& checkpoint, int limit) override;

 private:
  std::string identifier_system_;
};

}  // namespace physio::assessment
