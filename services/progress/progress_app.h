#pragma once
// The progress service's use cases. Talks to the planning service (active plan,
// AdjustPlan) and the assessment service (ScoreInstrument) through the small
// interfaces below (gRPC in progress_server.cc).
#include <algorithm>
#include <functional>
#include <optional>

#include "assessment/domain/red_flags.h"
#include "domain/evaluation.h"
#include "domain/pain_trend.h"
#include "summary.h"
#include "visit_session_store.h"
#include "physio/auth/call_context.h"
#include "physio/common/session_patients.h"
#include "physio/assessment/v1/assessment.pb.h"
#include "physio/common/v1/common.pb.h"
#include "physio/db/audit.h"
#include "physio/planning/v1/planning.pb.h"
#include "physio/progress/v1/progress.pb.h"
#include "physio/redis/redis_idempotency.h"
#include "outcome_report_records.h"
#include "progress_records.h"
#include "task_records.h"

namespace physio::progress {

namespace pb = physio::progress::v1;

// A plan as read from planning: shared, never changed once read, so the same plan read again
// unchanged is handed out without a parse or a copy (GrpcPlanningClient's memo).
using SharedPlan = std::shared_ptr<const physio::planning::v1::Plan>;

class PlanningClient {
 public:
  virtual ~PlanningClient() = default;
  // The patient's plan in use, or a suspended one (status PLAN_STATUS_SUSPENDED);
  // null when there is neither; throws Error on other failures.
  virtual SharedPlan ActivePlan(const CallContext& ctx, const std::string& patient_id) = 0;
  virtual physio::planning::v1::Plan Adjust(const CallContext& ctx,
                                            const physio::planning::v1::AdjustPlanRequest& request) = 0;
};

class AssessmentClient {
 public:
  virtual ~AssessmentClient() = default;
  virtual physio::common::v1::InstrumentScore Score(
      const CallContext& ctx, physio::common::v1::Instrument instrument,
      const google::protobuf::RepeatedPtrField<physio::common::v1::InstrumentAnswer>& answers) = 0;
  // The stored assessment (for its history: age, episode duration); nullopt when not found.
  virtual std::optional<physio::assessment::v1::Assessment> Get(const CallContext& ctx,
                                                                const std::string& assessment_id) = 0;
};

// The stores the use cases work on; they outlive the app.
struct ProgressStores {
  SessionIdempotency& session_idempotency;  // request ids of visit-session writes
  VisitSessionStore& visit_sessions;
  ProgressRecords& records;
  TaskRecords* tasks = nullptr;  // outcome schedules; null: ListDueTasks is unavailable
  OutcomeReportStore* reports = nullptr;  // episodes' figures; null: GetOutcomeReport is unavailable
};

class ProgressApp {
 public:
  // `red_flags`: the re-screen's settings at check-ins and home logs (the same as intake's).
  ProgressApp(ProgressStores stores, PlanningClient& planning, AssessmentClient& assessment,
              EvaluationPolicy policy = {}, physio::assessment::RedFlagPolicy red_flags = {})
      : session_idempotency_(stores.session_idempotency),
        visit_sessions_(stores.visit_sessions),
        records_(stores.records),
        tasks_(stores.tasks),
        reports_(stores.reports),
        planning_(planning),
        assessment_(assessment),
        policy_(policy),
        red_flag_policy_(red_flags) {}

  // The FHIR REST API's reads and searches of Encounter, Observation and Flag (docs/fhir.md).
  pb::SearchFhirResponse SearchFhir(const CallContext& ctx, const pb::SearchFhirRequest& request, AuditTarget& audit);
  pb::ExportProgressFhirResponse ExportProgressFhir(const CallContext& ctx, const pb::ExportProgressFhirRequest& request,
                                                    AuditTarget& audit);
  // Patient references in FHIR exports: Patient/<id> and an identifier in this system.
  void SetFhirPatientIdentifierSystem(std::string system) { fhir_patient_identifier_system_ = std::move(system); }

  // Told of every alert a committed write raised (for the alerts-by-kind metric).
  void OnAlertRaised(std::function<void(pb::AlertKind)> observer) { alert_raised_ = std::move(observer); }

  pb::RecordVisitResponse RecordVisit(const CallContext& ctx, const pb::RecordVisitRequest& request, AuditTarget& audit);
  pb::LogHomeExerciseResponse LogHomeExercise(const CallContext& ctx, const pb::LogHomeExerciseRequest& request,
                                              AuditTarget& audit);
  pb::ReportSymptomsResponse ReportSymptoms(const CallContext& ctx, const pb::ReportSymptomsRequest& request,
                                            AuditTarget& audit);
  pb::GetProgressSummaryResponse GetProgressSummary(const CallContext& ctx,
                                                    const pb::GetProgressSummaryRequest& request, AuditTarget& audit);
  pb::RecordOutcomeResponse RecordOutcome(const CallContext& ctx, const pb::RecordOutcomeRequest& request,
                                          AuditTarget& audit);
  pb::EvaluateProgressResponse EvaluateProgress(const CallContext& ctx, const pb::EvaluateProgressRequest& request,
                                                AuditTarget& audit);
  pb::StartVisitSessionResponse StartVisitSession(const CallContext& ctx, const pb::StartVisitSessionRequest& request,
                                                  AuditTarget& audit);
  pb::UpdateVisitSessionResponse UpdateVisitSession(const CallContext& ctx,
                                                    const pb::UpdateVisitSessionRequest& request, AuditTarget& audit);
  // The same update without a worker waiting for Redis (PHYSIO_FAST_UNARY_RPC), as
  // AssessmentApp::StartSubmitIntakeAnswers: false when it cannot be started so; otherwise `finish`
  // runs once, on another thread, with the response or nullopt (the ordinary path then updates
  // again and replays what was applied).
  bool StartUpdateVisitSession(const CallContext& ctx, const pb::UpdateVisitSessionRequest& request,
                               AuditTarget& audit,
                               std::function<void(std::optional<pb::UpdateVisitSessionResponse>)> finish);
  pb::GetVisitSessionResponse GetVisitSession(const CallContext& ctx, const pb::GetVisitSessionRequest& request,
                                              AuditTarget& audit);
  pb::CompleteVisitSessionResponse CompleteVisitSession(const CallContext& ctx,
                                                        const pb::CompleteVisitSessionRequest& request,
                                                        AuditTarget& audit);
  pb::ListAlertsResponse ListAlerts(const CallContext& ctx, const pb::ListAlertsRequest& request, AuditTarget& audit);
  pb::BreakGlassResponse BreakGlass(const CallContext& ctx, const pb::BreakGlassRequest& request, AuditTarget& audit);
  // The outcome schedules' due, overdue and upcoming questionnaires (due_tasks_use_case.cc).
  pb::ListDueTasksResponse ListDueTasks(const CallContext& ctx, const pb::ListDueTasksRequest& request,
                                        AuditTarget& audit);
  // Outcomes of the episodes of a period, grouped, small groups suppressed (report_use_case.cc).
  pb::GetOutcomeReportResponse GetOutcomeReport(const CallContext& ctx, const pb::GetOutcomeReportRequest& request,
                                                AuditTarget& audit);
  // The discharge summary of the patient's latest ended episode (report_use_case.cc).
  pb::GetDischargeSummaryResponse GetDischargeSummary(const CallContext& ctx,
                                                      const pb::GetDischargeSummaryRequest& request, AuditTarget& audit);
  // The fewest episodes a report group (or figure) may have (report-min-group-size).
  void set_report_min_group_size(int size) { report_min_group_size_ = std::max(1, size); }
  // When a task opens and becomes overdue (outcome-task-lead-days, outcome-task-grace-days).
  void set_task_policy(const TaskPolicy& policy) { task_policy_ = policy; }
  pb::AcknowledgeAlertResponse AcknowledgeAlert(const CallContext& ctx, const pb::AcknowledgeAlertRequest& request,
                                                AuditTarget& audit);

 private:
  // Everything known about the patient's progress against `plan` (if any), at one point in time.
  ProgressSnapshot TakeSnapshot(const CallContext& ctx, const std::string& patient_id,
                                const physio::planning::v1::Plan* plan, Clock::time_point deadline);

  pb::VisitSession LoadVisitSession(const CallContext& ctx, const std::string& session_id);
  // For a clinic-scoped caller, before a change: another clinic's patient's session is NOT_FOUND.
  // From memory when this process has seen the session (visit_patients_), else by LoadVisitSession.
  void CheckVisitSessionInScope(const CallContext& ctx, const std::string& session_id);
  // An update's checks (request, clinic), its changes and which request it is.
  struct PreparedVisitUpdate {
    VisitSessionChanges changes;
    SubmissionId submission;
  };
  PreparedVisitUpdate PrepareVisitUpdate(const CallContext& ctx, const pb::UpdateVisitSessionRequest& request,
                                         AuditTarget& audit);

  SessionIdempotency& session_idempotency_;
  VisitSessionStore& visit_sessions_;
  SessionPatients visit_patients_;  // each visit session's patient, for clinic checks from memory
  ProgressRecords& records_;
  TaskRecords* tasks_;
  OutcomeReportStore* reports_;
  int report_min_group_size_ = 5;
  PlanningClient& planning_;
  AssessmentClient& assessment_;
  EvaluationPolicy policy_;
  physio::assessment::RedFlagPolicy red_flag_policy_;
  TaskPolicy task_policy_;
  std::function<void(pb::AlertKind)> alert_raised_;
  std::string fhir_patient_identifier_system_ = "https://physio-backend.org/fhir/patient-id";
  void NoteAlertsRaised(const std::vector<pb::AlertKind>& kinds) const;
  // What intake knew, for a re-screen: age, episode duration (grown to `when`) and the
  // history (medications, comorbidities, 24-hour pattern), from the plan's assessment.
  struct IntakeFacts {
    std::optional<int> age_years;
    std::optional<int> episode_days;
    physio::assessment::v1::History history;
    // Intake's own red-flag screen (what the plan and any clinician's judgement answered).
    physio::assessment::v1::RedFlagScreen screen;
    // The clinician's judgement recorded at intake (RED_FLAG_ACTION_UNSPECIFIED when none).
    physio::assessment::v1::RedFlagAction judged = physio::assessment::v1::RED_FLAG_ACTION_UNSPECIFIED;
    // Intake's neurological examination (empty when none): the baseline of a visit's re-examination.
    physio::assessment::NeuroExam neuro;
  };
  // A visit's neurological re-examination against the assessment's and the last visit's.
  struct NeuroRecheck {
    // Of this examination, its `urgent` being what is urgent since the earlier ones (UrgentAtRecheck).
    physio::assessment::NeuroFindings findings;
    std::vector<std::string> changes;  // "worse since <the assessment|the last visit>: ..." / "better since ...: ..."
    bool worse = false;
  };
  // `earlier`: the patient's records before this visit.
  NeuroRecheck RecheckNeuro(const PatientRecords& earlier, const physio::planning::v1::Plan* plan,
                            const IntakeFacts& intake, const physio::assessment::v1::NeurologicalExamination& exam);
  // A visit's session documentation after its commit: a direction symptoms spread with is
  // stopped, centralising against the plan's direction marks it for re-assessment (request ids
  // derived from the visit: once).
  void ActOnSession(const CallContext& ctx, const pb::Visit& visit, const physio::planning::v1::Plan* plan);
  IntakeFacts FactsFromIntake(const CallContext& ctx, const physio::planning::v1::Plan& plan,
                              const google::protobuf::Timestamp& when);
  // The red-flag rules on a re-screen, with what intake knew: intake's history and lasting
  // risk factors count, and only concerns beyond those intake's own screen raised (which the
  // plan and any clinician's judgement answered) are returned (issue 26 item 6).
  // `neuro`: a visit's re-examination, whose urgent findings and deficits count in the re-screen.
  physio::assessment::v1::RedFlagResult Rescreen(const physio::assessment::v1::RedFlagScreen& screen,
                                                 const IntakeFacts& intake, const NeuroRecheck* neuro = nullptr) const;
  // The safety-net answers (a home log's or a symptom report's) through the re-screen.
  physio::assessment::v1::RedFlagResult JudgeSafetyNet(const pb::SafetyNetAnswers& net, const IntakeFacts& intake) const;
  // A symptom report's plan action after its commit (see ReportSymptoms); `plan`: the plan
  // read before the commit, if any (null: read it now).
  pb::ReportSymptomsResponse ActOnSymptomReport(const CallContext& ctx, pb::ReportSymptomsResponse response,
                                                SharedPlan plan);
  // A home log's safety actions after its commit: suspend the plan for a referral-level
  // safety-net answer, regress directional exercises on peripheralisation.
  void ActOnHomeLog(const CallContext& ctx, const pb::HomeExerciseLog& log, SharedPlan plan);
  // Suspends an active plan for a red flag found at `where` (e.g. "red flag at check-in (visit v1)"),
  // the findings as the reason; `request_id` makes it happen once.
  void SuspendPlan(const CallContext& ctx, const physio::planning::v1::Plan& plan, const std::string& request_id,
                   const std::string& where, const physio::assessment::v1::RedFlagResult& red_flags);
};

}  // namespace physio::progress
