#pragma once
// The assessment service's use cases: intake sessions (IntakeStore, Redis) that
// become scored assessments (AssessmentRecords, PostgreSQL). Takes a plain
// CallContext (no gRPC types) and its stores as seams; the adapter in
// assessment_server.cc only translates, and tests may hand in fakes.
#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

#include "domain/classification.h"
#include "domain/instruments.h"
#include "domain/red_flags.h"
#include "physio/assessment/v1/assessment.pb.h"
#include "physio/auth/call_context.h"
#include "assessment_cache.h"
#include "assessment_records.h"
#include "audit_log.h"
#include "bulk_export_jobs.h"
#include "intake_store.h"
#include "physio/server/webhook_sender.h"
#include "webhook_records.h"
#include "physio/db/audit.h"
#include "physio/common/session_patients.h"
#include "physio/redis/redis_idempotency.h"

namespace physio::assessment {

namespace pb = physio::assessment::v1;

struct AssessmentSettings {
  std::chrono::milliseconds intake_ttl{std::chrono::hours(24)};        // renewed on activity
  std::chrono::milliseconds completed_intake_ttl{std::chrono::hours(1)};
  ScoringPolicy scoring;
  ClassificationPolicy classification;
  RedFlagPolicy red_flags;
  // Patient references in FHIR (export and import): Patient/<id> and an identifier in this system.
  std::string fhir_patient_identifier_system = "https://physio-backend.org/fhir/patient-id";
  // Webhooks: where subscriptions may point, how many a tenant may have, the rotation overlap,
  // and the most events one replay may queue.
  WebhookDestinationPolicy webhook_destinations;
  int webhook_max_subscriptions = 50;
  std::chrono::seconds webhook_secret_overlap{std::chrono::hours(24)};
  int webhook_replay_max_events = 10000;
  // FHIR bulk export: how long a job's files are kept, and how many jobs a tenant may have open.
  std::chrono::seconds bulk_export_retention{std::chrono::hours(1)};
  int bulk_export_max_jobs = 5;
};


// The stores the use cases work on; they outlive the app.
struct AssessmentStores {
  SessionIdempotency& session_idempotency;  // request ids of intake-session writes
  IntakeStore& intakes;
  AssessmentRecords& records;
  AuditLog* audit_log = nullptr;  // the audit read API's store; null: ListAuditEvents is unavailable
  WebhookRecords* webhooks = nullptr;  // webhook subscriptions; null: the webhook RPCs are unavailable
  BulkExportJobs* bulk_exports = nullptr;  // FHIR bulk export jobs; null: the bulk export RPCs are unavailable
  AssessmentCache* cache = nullptr;  // assessments in Redis for GetAssessment; null: read from PostgreSQL only
};

class AssessmentApp {
 public:
  AssessmentApp(AssessmentStores stores, AssessmentSettings settings)
      : session_idempotency_(stores.session_idempotency),
        intakes_(stores.intakes),
        records_(stores.records),
        audit_log_(stores.audit_log),
        webhooks_(stores.webhooks),
        bulk_exports_(stores.bulk_exports),
        cache_(stores.cache),
        settings_(settings) {}

  pb::StartIntakeResponse StartIntake(const CallContext& ctx, const pb::StartIntakeRequest& request, AuditTarget& audit);
  pb::SubmitIntakeAnswersResponse SubmitIntakeAnswers(const CallContext& ctx,
                                                      const pb::SubmitIntakeAnswersRequest& request,
                                                      AuditTarget& audit);
  // The same submission without a worker waiting for Redis (PHYSIO_FAST_UNARY_RPC): false when it
  // cannot be started so (the store declines, a check would wait, the request is refused: the
  // ordinary path then decides); otherwise `finish` runs once, on another thread, with the
  // response or nullopt (then the ordinary path submits again and replays what was applied).
  bool StartSubmitIntakeAnswers(const CallContext& ctx, const pb::SubmitIntakeAnswersRequest& request,
                                AuditTarget& audit,
                                std::function<void(std::optional<pb::SubmitIntakeAnswersResponse>)> finish);
  pb::GetIntakeResponse GetIntake(const CallContext& ctx, const pb::GetIntakeRequest& request, AuditTarget& audit);
  pb::CompleteIntakeResponse CompleteIntake(const CallContext& ctx, const pb::CompleteIntakeRequest& request,
                                            AuditTarget& audit);
  pb::GetAssessmentResponse GetAssessment(const CallContext& ctx, const pb::GetAssessmentRequest& request,
                                          AuditTarget& audit);
  // The same, built in place in `response` (PHYSIO_RAW_FAST_READ_RPC's ordinary path: RawCallMessages' arena).
  void GetAssessment(const CallContext& ctx, const pb::GetAssessmentRequest& request, AuditTarget& audit,
                     pb::GetAssessmentResponse& response);
  // The same read without a worker (PHYSIO_RAW_FAST_READ_RPC): false when it cannot be started so
  // (no cache, a bad request: GetAssessment decides); otherwise `finish` runs once, on another
  // thread, with the serialised response of a cached assessment the caller may see, or null (a
  // miss, Redis without an answer, a patient the caller may not see or that is not in memory:
  // GetAssessment then answers, refuses or records it).
  using ServedBytes = std::shared_ptr<const std::string>;
  bool StartGetAssessment(const CallContext& ctx, const pb::GetAssessmentRequest& request, AuditTarget& audit,
                          std::function<void(ServedBytes)> finish);
  pb::CreateAssessmentResponse CreateAssessment(const CallContext& ctx, const pb::CreateAssessmentRequest& request,
                                                AuditTarget& audit);
  pb::ListAssessmentsResponse ListAssessments(const CallContext& ctx, const pb::ListAssessmentsRequest& request,
                                              AuditTarget& audit);
  pb::ImportFhirQuestionnaireResponseResponse ImportFhirQuestionnaireResponse(
      const CallContext& ctx, const pb::ImportFhirQuestionnaireResponseRequest& request, AuditTarget& audit);
  pb::ExportAssessmentFhirResponse ExportAssessmentFhir(const CallContext& ctx,
                                                        const pb::ExportAssessmentFhirRequest& request,
                                                        AuditTarget& audit);
  pb::RecordRedFlagJudgementResponse RecordRedFlagJudgement(const CallContext& ctx,
                                                            const pb::RecordRedFlagJudgementRequest& request,
                                                            AuditTarget& audit);
  pb::ReassessPatientResponse ReassessPatient(const CallContext& ctx, const pb::ReassessPatientRequest& request,
                                              AuditTarget& audit);
  pb::ScoreInstrumentResponse ScoreInstrument(const CallContext& ctx, const pb::ScoreInstrumentRequest& request,
                                              AuditTarget& audit);
  pb::EnrolPatientResponse EnrolPatient(const CallContext& ctx, const pb::EnrolPatientRequest& request,
                                        AuditTarget& audit);
  pb::TransferPatientResponse TransferPatient(const CallContext& ctx, const pb::TransferPatientRequest& request,
                                              AuditTarget& audit);
  pb::GetPatientClinicsResponse GetPatientClinics(const CallContext& ctx, const pb::GetPatientClinicsRequest& request,
                                                  AuditTarget& audit);
  pb::RecordConsentResponse RecordConsent(const CallContext& ctx, const pb::RecordConsentRequest& request,
                                          AuditTarget& audit);
  pb::ListConsentsResponse ListConsents(const CallContext& ctx, const pb::ListConsentsRequest& request,
                                        AuditTarget& audit);
  pb::ListAuditEventsResponse ListAuditEvents(const CallContext& ctx, const pb::ListAuditEventsRequest& request,
                                              AuditTarget& audit);
  pb::ExportAuditEventsResponse ExportAuditEvents(const CallContext& ctx, const pb::ExportAuditEventsRequest& request,
                                                  AuditTarget& audit);
  // The FHIR REST API's reads, searches and create (fhir_use_cases.cc, docs/fhir.md).
  pb::SearchFhirResponse SearchFhir(const CallContext& ctx, const pb::SearchFhirRequest& request, AuditTarget& audit);
  pb::SearchFhirAuditEventsResponse SearchFhirAuditEvents(const CallContext& ctx,
                                                          const pb::SearchFhirAuditEventsRequest& request,
                                                          AuditTarget& audit);
  pb::CreateFhirResourceResponse CreateFhirResource(const CallContext& ctx, const pb::CreateFhirResourceRequest& request,
                                                    AuditTarget& audit);
  // FHIR bulk export (fhir_use_cases.cc, docs/fhir.md#bulk).
  pb::StartBulkExportResponse StartBulkExport(const CallContext& ctx, const pb::StartBulkExportRequest& request,
                                              AuditTarget& audit);
  pb::GetBulkExportStatusResponse GetBulkExportStatus(const CallContext& ctx,
                                                      const pb::GetBulkExportStatusRequest& request, AuditTarget& audit);
  pb::GetBulkExportFileResponse GetBulkExportFile(const CallContext& ctx, const pb::GetBulkExportFileRequest& request,
                                                  AuditTarget& audit);
  pb::CancelBulkExportResponse CancelBulkExport(const CallContext& ctx, const pb::CancelBulkExportRequest& request,
                                                AuditTarget& audit);
  // Webhooks (webhook_use_cases.cc).
  pb::CreateWebhookSubscriptionResponse CreateWebhookSubscription(const CallContext& ctx,
                                                                  const pb::CreateWebhookSubscriptionRequest& request,
                                                                  AuditTarget& audit);
  pb::ListWebhookSubscriptionsResponse ListWebhookSubscriptions(const CallContext& ctx,
                                                                const pb::ListWebhookSubscriptionsRequest& request,
                                                                AuditTarget& audit);
  pb::UpdateWebhookSubscriptionResponse UpdateWebhookSubscription(const CallContext& ctx,
                                                                  const pb::UpdateWebhookSubscriptionRequest& request,
                                                                  AuditTarget& audit);
  pb::DeleteWebhookSubscriptionResponse DeleteWebhookSubscription(const CallContext& ctx,
                                                                  const pb::DeleteWebhookSubscriptionRequest& request,
                                                                  AuditTarget& audit);
  pb::RotateWebhookSecretResponse RotateWebhookSecret(const CallContext& ctx, const pb::RotateWebhookSecretRequest& request,
                                                      AuditTarget& audit);
  pb::ListWebhookDeliveriesResponse ListWebhookDeliveries(const CallContext& ctx,
                                                          const pb::ListWebhookDeliveriesRequest& request,
                                                          AuditTarget& audit);
  pb::ReplayWebhookDeliveriesResponse ReplayWebhookDeliveries(const CallContext& ctx,
                                                              const pb::ReplayWebhookDeliveriesRequest& request,
                                                              AuditTarget& audit);

 private:
  // The session, NOT_FOUND for staff outside its patient's clinics; LoadIntake adds the progress.
  pb::IntakeSession ReadIntakeInScope(const CallContext& ctx, const std::string& session_id);
  // The same check before a change to the session: its patient is fixed when it is
  // created, so once this process has seen it the clinic check needs no read of Redis.
  void CheckIntakeInScope(const CallContext& ctx, const std::string& session_id);
  pb::IntakeSession LoadIntake(const CallContext& ctx, const std::string& session_id);
  // A patient seen for the first time (enrolled nowhere) is enrolled at `clinic`; once per request id.
  void EnrolIfUnassigned(const CallContext& ctx, const std::string& patient_id, const std::string& clinic,
                         const std::string& request_id, Clock::time_point deadline);
  // The session with each instrument's completeness under the scoring policy.
  pb::IntakeSession WithProgress(pb::IntakeSession session) const;
  // A submission's checks (request, roles for sections, clinic), its changes and its id.
  struct PreparedSubmission {
    IntakeChanges changes;
    SubmissionId submission;
  };
  PreparedSubmission PrepareSubmission(const CallContext& ctx, const pb::SubmitIntakeAnswersRequest& request,
                                       AuditTarget& audit);
  // The audit records a query names, as far as the auditor may read them; `page_size` as the request
  // gives it (1-500, 0: 100).
  AuditPage ReadAuditTrail(const CallContext& ctx, const pb::AuditQuery& query, int page_size,
                           const std::string& page_token, AuditTarget& audit, std::string* next_page_token);
  // The CreateAssessment an import is (its own request id, derived from the import's), validated.
  pb::CreateAssessmentRequest CreateRequestOfImport(const pb::ImportFhirQuestionnaireResponseRequest& request) const;
  // Whether this CreateAssessment (request id and content) was already done by this caller.
  bool AlreadyCreated(const CallContext& ctx, const pb::CreateAssessmentRequest& request);
  // Scores every instrument, screens red flags, classifies, and inserts the assessment.
  // `draft` carries patient, session, answers and the history/examination/red-flag sections.
  pb::Assessment StoreScoredAssessment(AssessmentWriter& writer, const CallContext& ctx, pb::Assessment draft,
                                       const std::vector<InstrumentKind>& instruments);

  SessionIdempotency& session_idempotency_;
  IntakeStore& intakes_;
  SessionPatients intake_patients_;  // each intake session's patient, for clinic checks from memory
  AssessmentRecords& records_;
  // The webhook store (FAILED_PRECONDITION without one), and a subscription the caller may manage
  // (NOT_FOUND otherwise: another tenant's, another clinic's, deleted).
  WebhookRecords& Webhooks() const;
  pb::WebhookSubscription ManagedSubscription(const CallContext& ctx, const std::string& id) const;

  // The caller's own bulk export job, still open (NOT_FOUND otherwise: another caller's, expired, cancelled).
  BulkExportJobRecord OwnBulkExport(const CallContext& ctx, const std::string& job_id);
  AuditLog* audit_log_;
  WebhookRecords* webhooks_;
  BulkExportJobs* bulk_exports_;
  AssessmentCache* cache_;
  AssessmentSettings settings_;
};

}  // namespace physio::assessment
