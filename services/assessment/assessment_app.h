#pragma once
// The assessment service's use cases: intake sessions in Redis, assessments in
// Postgres. Takes a plain CallContext (no gRPC types); the adapter in
// assessment_server.cc only translates.
#include <chrono>

#include "domain/classification.h"
#include "domain/instruments.h"
#include "domain/red_flags.h"
#include "physio/assessment/v1/assessment.pb.h"
#include "physio/auth/call_context.h"
#include "physio/db/audit.h"
#include "physio/db/pg.h"
#include "physio/redis/redis_idempotency.h"
#include "physio/redis/redis_pool.h"
#include "intake_store.h"

namespace physio::assessment {

namespace pb = physio::assessment::v1;

struct AssessmentSettings {
  std::chrono::milliseconds intake_ttl{std::chrono::hours(24)};        // renewed on activity
  std::chrono::milliseconds completed_intake_ttl{std::chrono::hours(1)};
  ScoringPolicy scoring;
  ClassificationPolicy classification;
  // Patient references in FHIR (export and import): Patient/<id> and an identifier in this system.
  std::string fhir_patient_identifier_system = "https://physio-backend.org/fhir/patient-id";
};

inline constexpr const char* kSchema = "assessment";

class AssessmentApp {
 public:
  AssessmentApp(RedisPool& redis, PgPool& pg, AssessmentSettings settings)
      : pg_(pg),
        session_idempotency_(redis),
        intakes_(redis, settings.intake_ttl, settings.completed_intake_ttl),
        settings_(settings) {}

  pb::StartIntakeResponse StartIntake(const CallContext& ctx, const pb::StartIntakeRequest& request, AuditTarget& audit);
  pb::SubmitIntakeAnswersResponse SubmitIntakeAnswers(const CallContext& ctx,
                                                      const pb::SubmitIntakeAnswersRequest& request,
                                                      AuditTarget& audit);
  pb::GetIntakeResponse GetIntake(const CallContext& ctx, const pb::GetIntakeRequest& request, AuditTarget& audit);
  pb::CompleteIntakeResponse CompleteIntake(const CallContext& ctx, const pb::CompleteIntakeRequest& request,
                                            AuditTarget& audit);
  pb::GetAssessmentResponse GetAssessment(const CallContext& ctx, const pb::GetAssessmentRequest& request,
                                          AuditTarget& audit);
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
  pb::ScoreInstrumentResponse ScoreInstrument(const CallContext& ctx, const pb::ScoreInstrumentRequest& request,
                                              AuditTarget& audit);

 private:
  pb::IntakeSession LoadIntake(const CallContext& ctx, const std::string& session_id);
  // The session with each instrument's completeness under the scoring policy.
  pb::IntakeSession WithProgress(pb::IntakeSession session) const;
  // Scores every instrument, screens red flags, classifies, and inserts the assessment.
  // `draft` carries patient, session, answers and the history/examination/red-flag sections.
  pb::Assessment StoreScoredAssessment(PgConnection& conn, const CallContext& ctx, pb::Assessment draft,
                                       const std::vector<InstrumentKind>& instruments);

  PgPool& pg_;
  RedisIdempotency session_idempotency_;
  IntakeStore intakes_;
  AssessmentSettings settings_;
};

}  // namespace physio::assessment
