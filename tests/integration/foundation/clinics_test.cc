// Clinic scoping (issue 28, item 3) through the public API: a patient belongs to
// clinics of the tenant, staff reach the patients of the clinics they work at.
// One table covers every patient-data RPC of the three role tables: a clinician
// of another clinic gets NOT_FOUND (and changes nothing), a clinician of the
// patient's clinic reaches the record with the same request.
#include <httplib.h>

#include "foundation.h"
#include "physio/common/fhir_search.h"
#include "assessment_roles.h"
#include "planning_roles.h"
#include "progress_roles.h"

namespace physio::testing {
namespace {

class Clinics : public Foundation {
 protected:
  Caller ClinicianAt(const std::vector<std::string>& clinics, const std::string& subject = "") const {
    TokenRequest request{kIssuer, kAudience, tenant_, subject.empty() ? "clin-" + clinics.front() : subject,
                         {"clinician"}};
    request.clinics = clinics;
    return Caller(*cluster_, MintToken(keys_->private_key_pem, request));
  }
  apb::PatientClinics ClinicsOf(const Caller& caller, const std::string& patient, StatusCode* code = nullptr) const {
    apb::GetPatientClinicsRequest request;
    request.set_patient_id(patient);
    apb::GetPatientClinicsResponse response;
    auto status = caller.Call(caller.assessment.get(), &apb::AssessmentService::Stub::GetPatientClinics, request, &response);
    if (code) *code = status.error_code();
    return response.clinics();
  }
  StatusCode ReadAssessments(const Caller& caller, const std::string& patient) const {
    apb::ListAssessmentsRequest request;
    request.set_patient_id(patient);
    apb::ListAssessmentsResponse response;
    return caller.Call(caller.assessment.get(), &apb::AssessmentService::Stub::ListAssessments, request, &response)
        .error_code();
  }
};

using Call = std::function<StatusCode(const Caller&)>;

template <typename Stub, typename Req, typename Resp>
StatusCode Invoke(const Caller& caller, Stub* stub, grpc::Status (Stub::*method)(grpc::ClientContext*, const Req&, Resp*),
                  const Req& request) {
  Resp response;
  return caller.Call(stub, method, request, &response).error_code();
}

TEST_F(Clinics, EveryPatientRpcIsNotFoundForAClinicianOfAnotherClinic) {
  const Caller north = ClinicianAt({"north"});
  const Caller south = ClinicianAt({"south"});
  // The north clinician's first assessment enrols the patient at north (their only clinic).
  const ppb::Plan plan = ApprovedPlanFor(north, patient_id_);
  ASSERT_FALSE(plan.plan_id().empty());
  EXPECT_EQ(ClinicsOf(north, patient_id_).clinic_ids_size(), 1);
  const std::string assessment_id = plan.assessment_id();
  apb::StartIntakeRequest start;
  start.set_request_id(NewId("rq"));
  start.set_patient_id(patient_id_);
  apb::StartIntakeResponse started;
  ASSERT_TRUE(north.Call(north.assessment.get(), &apb::AssessmentService::Stub::StartIntake, start, &started).ok());
  const std::string intake_id = started.session().session_id();
  gpb::StartVisitSessionRequest visit;
  visit.set_request_id(NewId("rq"));
  visit.set_patient_id(patient_id_);
  visit.set_kind(gpb::VISIT_KIND_CLINIC);
  visit.set_clinic_id("north");
  gpb::StartVisitSessionResponse visiting;
  ASSERT_TRUE(north.Call(north.progress.get(), &gpb::ProgressService::Stub::StartVisitSession, visit, &visiting).ok());
  const std::string visit_session_id = visiting.session().session_id();
  // An alert at north: a symptom report with a "yes".
  gpb::ReportSymptomsRequest symptoms;
  symptoms.set_request_id(NewId("rq"));
  symptoms.set_patient_id(patient_id_);
  symptoms.mutable_safety_net()->set_feverish_or_unwell(true);
  gpb::ReportSymptomsResponse reported;
  ASSERT_TRUE(north.Call(north.progress.get(), &gpb::ProgressService::Stub::ReportSymptoms, symptoms, &reported).ok());
  gpb::ListAlertsRequest list;
  list.set_clinic_id("north");
  gpb::ListAlertsResponse listed;
  ASSERT_TRUE(north.Call(north.progress.get(), &gpb::ProgressService::Stub::ListAlerts, list, &listed).ok());
  ASSERT_EQ(listed.alerts_size(), 1);  // the alert went to the clinic the patient is enrolled at
  const std::string alert_id = listed.alerts(0).alert_id();

  auto rid = [] { return NewId("rq"); };
  const std::string p = patient_id_;
  // Every RPC a clinician may call that touches a patient's data, with a request naming this
  // patient or one of their records. A new RPC missing here fails the coverage check below.
  const std::map<std::string, Call> calls = {
      {"StartIntake", [&](const Caller& c) { apb::StartIntakeRequest r; r.set_request_id(rid()); r.set_patient_id(p);
         return Invoke(c, c.assessment.get(), &apb::AssessmentService::Stub::StartIntake, r); }},
      {"SubmitIntakeAnswers", [&](const Caller& c) { apb::SubmitIntakeAnswersRequest r; r.set_request_id(rid());
         r.set_session_id(intake_id); *r.add_answers() = Answer(cpb::INSTRUMENT_NPRS, "nprs", 5);
         return Invoke(c, c.assessment.get(), &apb::AssessmentService::Stub::SubmitIntakeAnswers, r); }},
      {"GetIntake", [&](const Caller& c) { apb::GetIntakeRequest r; r.set_session_id(intake_id);
         return Invoke(c, c.assessment.get(), &apb::AssessmentService::Stub::GetIntake, r); }},
      {"CompleteIntake", [&](const Caller& c) { apb::CompleteIntakeRequest r; r.set_request_id(rid()); r.set_session_id(intake_id);
         return Invoke(c, c.assessment.get(), &apb::AssessmentService::Stub::CompleteIntake, r); }},
      {"GetAssessment", [&](const Caller& c) { apb::GetAssessmentRequest r; r.set_assessment_id(assessment_id);
         return Invoke(c, c.assessment.get(), &apb::AssessmentService::Stub::GetAssessment, r); }},
      {"ListAssessments", [&](const Caller& c) { apb::ListAssessmentsRequest r; r.set_patient_id(p);
         return Invoke(c, c.assessment.get(), &apb::AssessmentService::Stub::ListAssessments, r); }},
      {"ExportAssessmentFhir", [&](const Caller& c) { apb::ExportAssessmentFhirRequest r; r.set_assessment_id(assessment_id);
         return Invoke(c, c.assessment.get(), &apb::AssessmentService::Stub::ExportAssessmentFhir, r); }},
      {"CreateAssessment", [&](const Caller& c) { apb::CreateAssessmentRequest r; r.set_request_id(rid()); r.set_patient_id(p);
         *r.add_answers() = Answer(cpb::INSTRUMENT_NPRS, "nprs", 4);
         return Invoke(c, c.assessment.get(), &apb::AssessmentService::Stub::CreateAssessment, r); }},
      {"ImportFhirQuestionnaireResponse", [&](const Caller& c) { apb::ImportFhirQuestionnaireResponseRequest r;
         r.set_request_id(rid()); r.set_patient_id(p); r.set_resource_json("{}");
         return Invoke(c, c.assessment.get(), &apb::AssessmentService::Stub::ImportFhirQuestionnaireResponse, r); }},
      {"RecordRedFlagJudgement", [&](const Caller& c) { apb::RecordRedFlagJudgementRequest r; r.set_request_id(rid());
         r.set_assessment_id(assessment_id); r.set_etag("v1"); r.set_action(apb::RED_FLAG_ACTION_NONE); r.set_rationale("checked");
         return Invoke(c, c.assessment.get(), &apb::AssessmentService::Stub::RecordRedFlagJudgement, r); }},
      {"ReassessPatient", [&](const Caller& c) { apb::ReassessPatientRequest r; r.set_request_id(rid());
         r.set_previous_assessment_id(assessment_id); r.set_reason("review");
         r.mutable_examination()->set_directional_preference(apb::DIRECTIONAL_PREFERENCE_NONE);
         return Invoke(c, c.assessment.get(), &apb::AssessmentService::Stub::ReassessPatient, r); }},
      {"EnrolPatient", [&](const Caller& c) { apb::EnrolPatientRequest r; r.set_request_id(rid()); r.set_patient_id(p);
         r.set_clinic_id("south");
         return Invoke(c, c.assessment.get(), &apb::AssessmentService::Stub::EnrolPatient, r); }},
      {"TransferPatient", [&](const Caller& c) { apb::TransferPatientRequest r; r.set_request_id(rid()); r.set_patient_id(p);
         r.set_from_clinic_id("south"); r.set_to_clinic_id("west"); r.set_reason("moved");
         return Invoke(c, c.assessment.get(), &apb::AssessmentService::Stub::TransferPatient, r); }},
      {"GetPatientClinics", [&](const Caller& c) { apb::GetPatientClinicsRequest r; r.set_patient_id(p);
         return Invoke(c, c.assessment.get(), &apb::AssessmentService::Stub::GetPatientClinics, r); }},
      {"RecordConsent", [&](const Caller& c) { apb::RecordConsentRequest r; r.set_request_id(rid()); r.set_patient_id(p);
         r.set_kind(apb::CONSENT_KIND_TREATMENT); r.set_decision(apb::CONSENT_DECISION_GRANTED);
         return Invoke(c, c.assessment.get(), &apb::AssessmentService::Stub::RecordConsent, r); }},
      {"ListConsents", [&](const Caller& c) { apb::ListConsentsRequest r; r.set_patient_id(p);
         return Invoke(c, c.assessment.get(), &apb::AssessmentService::Stub::ListConsents, r); }},
      {"GeneratePlan", [&](const Caller& c) { ppb::GeneratePlanRequest r; r.set_request_id(rid()); r.set_assessment_id(assessment_id);
         return Invoke(c, c.planning.get(), &ppb::PlanningService::Stub::GeneratePlan, r); }},
      {"GetPlan", [&](const Caller& c) { ppb::GetPlanRequest r; r.set_plan_id(plan.plan_id());
         return Invoke(c, c.planning.get(), &ppb::PlanningService::Stub::GetPlan, r); }},
      {"ApprovePlan", [&](const Caller& c) { ppb::ApprovePlanRequest r; r.set_request_id(rid()); r.set_plan_id(plan.plan_id());
         r.set_etag(plan.etag());
         return Invoke(c, c.planning.get(), &ppb::PlanningService::Stub::ApprovePlan, r); }},
      {"GetActivePlan", [&](const Caller& c) { ppb::GetActivePlanRequest r; r.set_patient_id(p);
         return Invoke(c, c.planning.get(), &ppb::PlanningService::Stub::GetActivePlan, r); }},
      {"RevisePlan", [&](const Caller& c) { ppb::RevisePlanRequest r; r.set_request_id(rid()); r.set_plan_id(plan.plan_id());
         r.set_etag(plan.etag()); r.set_reason("review");
         return Invoke(c, c.planning.get(), &ppb::PlanningService::Stub::RevisePlan, r); }},
      {"AdjustPlan", [&](const Caller& c) { ppb::AdjustPlanRequest r; r.set_request_id(rid()); r.set_plan_id(plan.plan_id());
         r.set_adjustment(ppb::ADJUSTMENT_MARK_FOR_REASSESSMENT); r.set_reason("review");
         return Invoke(c, c.planning.get(), &ppb::PlanningService::Stub::AdjustPlan, r); }},
      {"CompletePlan", [&](const Caller& c) { ppb::CompletePlanRequest r; r.set_request_id(rid()); r.set_plan_id(plan.plan_id());
         r.set_etag("v0"); r.set_reason("done"); r.set_outcome(ppb::PLAN_STATUS_COMPLETED);
         return Invoke(c, c.planning.get(), &ppb::PlanningService::Stub::CompletePlan, r); }},
      {"ListPlanRevisions", [&](const Caller& c) { ppb::ListPlanRevisionsRequest r; r.set_plan_id(plan.plan_id());
         return Invoke(c, c.planning.get(), &ppb::PlanningService::Stub::ListPlanRevisions, r); }},
      {"ExportPlanFhir", [&](const Caller& c) { ppb::ExportPlanFhirRequest r; r.set_plan_id(plan.plan_id());
         return Invoke(c, c.planning.get(), &ppb::PlanningService::Stub::ExportPlanFhir, r); }},
      {"RecordVisit", [&](const Caller& c) { gpb::RecordVisitRequest r; r.set_request_id(rid()); r.set_patient_id(p);
         r.set_kind(gpb::VISIT_KIND_CLINIC); r.mutable_red_flag_screen();
         return Invoke(c, c.progress.get(), &gpb::ProgressService::Stub::RecordVisit, r); }},
      {"LogHomeExercise", [&](const Caller& c) { gpb::LogHomeExerciseRequest r; r.set_request_id(rid()); r.set_patient_id(p);
         return Invoke(c, c.progress.get(), &gpb::ProgressService::Stub::LogHomeExercise, r); }},
      {"ReportSymptoms", [&](const Caller& c) { gpb::ReportSymptomsRequest r; r.set_request_id(rid()); r.set_patient_id(p);
         r.mutable_safety_net();
         return Invoke(c, c.progress.get(), &gpb::ProgressService::Stub::ReportSymptoms, r); }},
      {"GetProgressSummary", [&](const Caller& c) { gpb::GetProgressSummaryRequest r; r.set_patient_id(p);
         return Invoke(c, c.progress.get(), &gpb::ProgressService::Stub::GetProgressSummary, r); }},
      {"GetDischargeSummary", [&](const Caller& c) { gpb::GetDischargeSummaryRequest r; r.set_patient_id(p);
         return Invoke(c, c.progress.get(), &gpb::ProgressService::Stub::GetDischargeSummary, r); }},
      {"RecordOutcome", [&](const Caller& c) { gpb::RecordOutcomeRequest r; r.set_request_id(rid()); r.set_patient_id(p);
         r.set_instrument(cpb::INSTRUMENT_NPRS); *r.add_answers() = Answer(cpb::INSTRUMENT_NPRS, "nprs", 3);
         return Invoke(c, c.progress.get(), &gpb::ProgressService::Stub::RecordOutcome, r); }},
      {"EvaluateProgress", [&](const Caller& c) { gpb::EvaluateProgressRequest r; r.set_request_id(rid()); r.set_patient_id(p);
         return Invoke(c, c.progress.get(), &gpb::ProgressService::Stub::EvaluateProgress, r); }},
      {"StartVisitSession", [&](const Caller& c) { gpb::StartVisitSessionRequest r; r.set_request_id(rid()); r.set_patient_id(p);
         r.set_kind(gpb::VISIT_KIND_CLINIC);
         return Invoke(c, c.progress.get(), &gpb::ProgressService::Stub::StartVisitSession, r); }},
      {"UpdateVisitSession", [&](const Caller& c) { gpb::UpdateVisitSessionRequest r; r.set_request_id(rid());
         r.set_session_id(visit_session_id); r.set_pain_before(5);
         return Invoke(c, c.progress.get(), &gpb::ProgressService::Stub::UpdateVisitSession, r); }},
      {"GetVisitSession", [&](const Caller& c) { gpb::GetVisitSessionRequest r; r.set_session_id(visit_session_id);
         return Invoke(c, c.progress.get(), &gpb::ProgressService::Stub::GetVisitSession, r); }},
      {"CompleteVisitSession", [&](const Caller& c) { gpb::CompleteVisitSessionRequest r; r.set_request_id(rid());
         r.set_session_id(visit_session_id);
         return Invoke(c, c.progress.get(), &gpb::ProgressService::Stub::CompleteVisitSession, r); }},
      {"AcknowledgeAlert", [&](const Caller& c) { gpb::AcknowledgeAlertRequest r; r.set_request_id(rid()); r.set_alert_id(alert_id);
         return Invoke(c, c.progress.get(), &gpb::ProgressService::Stub::AcknowledgeAlert, r); }},
      {"ExportProgressFhir", [&](const Caller& c) { gpb::ExportProgressFhirRequest r; r.set_patient_id(p);
         return Invoke(c, c.progress.get(), &gpb::ProgressService::Stub::ExportProgressFhir, r); }},
      {"ListDueTasks", [&](const Caller& c) { gpb::ListDueTasksRequest r; r.set_patient_id(p);
         return Invoke(c, c.progress.get(), &gpb::ProgressService::Stub::ListDueTasks, r); }},
      // The FHIR REST API's calls: a search naming the patient, a read of one of their records, a create.
      {"SearchFhir", [&](const Caller& c) { apb::SearchFhirRequest r; r.set_resource_type("Observation"); r.set_patient_id(p);
         return Invoke(c, c.assessment.get(), &apb::AssessmentService::Stub::SearchFhir, r); }},
      {"SearchFhir (assessment, read)", [&](const Caller& c) { apb::SearchFhirRequest r; r.set_resource_type("Observation");
         r.set_id(FhirIdOf(assessment_id) + ".obs-classification");
         return Invoke(c, c.assessment.get(), &apb::AssessmentService::Stub::SearchFhir, r); }},
      {"SearchFhir (planning)", [&](const Caller& c) { ppb::SearchFhirRequest r; r.set_resource_type("CarePlan"); r.set_patient_id(p);
         return Invoke(c, c.planning.get(), &ppb::PlanningService::Stub::SearchFhir, r); }},
      {"SearchFhir (planning, read)", [&](const Caller& c) { ppb::SearchFhirRequest r; r.set_resource_type("CarePlan");
         r.set_id(FhirIdOf(plan.plan_id()));
         return Invoke(c, c.planning.get(), &ppb::PlanningService::Stub::SearchFhir, r); }},
      {"SearchFhir (progress)", [&](const Caller& c) { gpb::SearchFhirRequest r; r.set_resource_type("Flag"); r.set_patient_id(p);
         return Invoke(c, c.progress.get(), &gpb::ProgressService::Stub::SearchFhir, r); }},
      {"SearchFhir (progress, read)", [&](const Caller& c) { gpb::SearchFhirRequest r; r.set_resource_type("Flag");
         r.set_id(FhirIdOf(alert_id));
         return Invoke(c, c.progress.get(), &gpb::ProgressService::Stub::SearchFhir, r); }},
      {"CreateFhirResource", [&](const Caller& c) { apb::CreateFhirResourceRequest r; r.set_resource_type("QuestionnaireResponse");
         r.set_resource_json(R"({"resourceType":"QuestionnaireResponse","status":"completed",)"
                             R"("questionnaire":"https://physio-backend.org/fhir/Questionnaire/nprs","subject":{"reference":"Patient/)" +
                             p + R"("},"item":[{"linkId":"nprs","answer":[{"valueInteger":4}]}]})");
         return Invoke(c, c.assessment.get(), &apb::AssessmentService::Stub::CreateFhirResource, r); }},
  };
  // Not about one patient: the library, scoring, per-clinic lists and feeds (tested below), and
  // the outcome reports' aggregates (scoped by clinic in reports_test.cc).
  // BreakGlass opens access beyond the caller's clinics by design (its own test).
  const std::set<std::string> not_patient_calls = {"ScoreInstrument", "ListInterventions", "WatchEvents", "ListAlerts",
                                                   "BreakGlass", "GetOutcomeReport", "GetTenantLibrary",
                                                   "ListPlanTemplates"};
  for (const MethodRoles* table : {&assessment::kAssessmentRoles, &planning::kPlanningRoles, &progress::kProgressRoles}) {
    for (const auto& [method, roles] : table->entries()) {
      if (!roles.contains(Role::kClinician) || not_patient_calls.contains(method)) continue;
      EXPECT_TRUE(calls.contains(method)) << method << ": a clinician's RPC without a clinic-scoping check here";
    }
  }
  for (const auto& [method, call] : calls) {
    EXPECT_EQ(call(south), StatusCode::NOT_FOUND) << method << " by a clinician of another clinic";
    // The same request from the patient's clinic reaches the record (any answer but NOT_FOUND).
    EXPECT_NE(call(north), StatusCode::NOT_FOUND) << method << " by a clinician of the patient's clinic";
  }
  // Nothing the other clinic sent changed the patient's clinics.
  auto clinics = ClinicsOf(north, patient_id_);
  ASSERT_EQ(clinics.clinic_ids_size(), 1);
  EXPECT_EQ(clinics.clinic_ids(0), "north");

  // Lists: another clinic's staff do not see the patient's alerts, whichever clinic they ask for.
  ASSERT_TRUE(south.Call(south.progress.get(), &gpb::ProgressService::Stub::ListAlerts, list, &listed).ok());
  for (const auto& alert : listed.alerts()) EXPECT_NE(alert.patient_id(), patient_id_);
  list.set_clinic_id("south");
  ASSERT_TRUE(south.Call(south.progress.get(), &gpb::ProgressService::Stub::ListAlerts, list, &listed).ok());
  for (const auto& alert : listed.alerts()) EXPECT_NE(alert.patient_id(), patient_id_);
  // The Connect/JSON port applies the same scoping.
  httplib::Client http("127.0.0.1", cluster_->planning_http_port());
  TokenRequest south_token{kIssuer, kAudience, tenant_, "clin-south", {"clinician"}};
  south_token.clinics = {"south"};
  auto answered = http.Post("/physio.planning.v1.PlanningService/GetActivePlan",
                            {{"Authorization", "Bearer " + MintToken(keys_->private_key_pem, south_token)}},
                            "{\"patientId\":\"" + patient_id_ + "\"}", "application/json");
  ASSERT_TRUE(answered);
  EXPECT_EQ(answered->status, 404);
}

TEST_F(Clinics, EnrolmentTransferAndHistoryMoveWhoCanReachThePatient) {
  const Caller north = ClinicianAt({"north"});
  const Caller south = ClinicianAt({"south"});
  const Caller integrator = Integrator();
  // Imported by an integration (organisation-wide, naming no clinic): enrolled nowhere, so the
  // tenant's staff reach the patient (a tenant without clinics is one clinic).
  apb::CreateAssessmentRequest create;
  create.set_request_id(NewId("rq"));
  create.set_patient_id(patient_id_);
  *create.add_answers() = Answer(cpb::INSTRUMENT_NPRS, "nprs", 6);
  apb::CreateAssessmentResponse created;
  ASSERT_TRUE(integrator.Call(integrator.assessment.get(), &apb::AssessmentService::Stub::CreateAssessment, create,
                              &created).ok());
  StatusCode code;
  EXPECT_EQ(ClinicsOf(south, patient_id_, &code).clinic_ids_size(), 0);
  EXPECT_EQ(code, StatusCode::OK);
  EXPECT_EQ(ReadAssessments(south, patient_id_), StatusCode::OK);

  apb::EnrolPatientRequest enrol;
  enrol.set_request_id(NewId("rq"));
  enrol.set_patient_id(patient_id_);
  enrol.set_clinic_id("north");
  enrol.set_reason("referred to the north clinic");
  apb::EnrolPatientResponse enrolled;
  // A clinician enrols only at a clinic they work at.
  EXPECT_EQ(south.Call(south.assessment.get(), &apb::AssessmentService::Stub::EnrolPatient, enrol, &enrolled).error_code(),
            StatusCode::PERMISSION_DENIED);
  ASSERT_TRUE(integrator.Call(integrator.assessment.get(), &apb::AssessmentService::Stub::EnrolPatient, enrol, &enrolled).ok());
  EXPECT_EQ(enrolled.clinics().clinic_ids_size(), 1);
  // A retry with the same request id changes nothing.
  ASSERT_TRUE(integrator.Call(integrator.assessment.get(), &apb::AssessmentService::Stub::EnrolPatient, enrol, &enrolled).ok());
  EXPECT_EQ(ReadAssessments(north, patient_id_), StatusCode::OK);
  EXPECT_EQ(ReadAssessments(south, patient_id_), StatusCode::NOT_FOUND);
  // Other services see the change within patient-clinics-cache-ms (2 s): planning above, progress here.
  gpb::GetProgressSummaryRequest summary;
  summary.set_patient_id(patient_id_);
  gpb::GetProgressSummaryResponse summarised;
  std::this_thread::sleep_for(std::chrono::milliseconds(2100));
  EXPECT_EQ(south.Call(south.progress.get(), &gpb::ProgressService::Stub::GetProgressSummary, summary, &summarised).error_code(),
            StatusCode::NOT_FOUND);

  apb::TransferPatientRequest transfer;
  transfer.set_request_id(NewId("rq"));
  transfer.set_patient_id(patient_id_);
  transfer.set_from_clinic_id("north");
  transfer.set_to_clinic_id("south");
  apb::TransferPatientResponse transferred;
  EXPECT_EQ(north.Call(north.assessment.get(), &apb::AssessmentService::Stub::TransferPatient, transfer, &transferred).error_code(),
            StatusCode::INVALID_ARGUMENT);  // a reason is required
  transfer.set_reason("moved house");
  // The clinic the patient leaves decides: south cannot pull them (it does not even see them).
  EXPECT_EQ(south.Call(south.assessment.get(), &apb::AssessmentService::Stub::TransferPatient, transfer, &transferred).error_code(),
            StatusCode::NOT_FOUND);
  ASSERT_TRUE(north.Call(north.assessment.get(), &apb::AssessmentService::Stub::TransferPatient, transfer, &transferred).ok());
  ASSERT_EQ(transferred.clinics().clinic_ids_size(), 1);
  EXPECT_EQ(transferred.clinics().clinic_ids(0), "south");
  std::this_thread::sleep_for(std::chrono::milliseconds(2100));
  EXPECT_EQ(ReadAssessments(north, patient_id_), StatusCode::NOT_FOUND);
  EXPECT_EQ(ReadAssessments(south, patient_id_), StatusCode::OK);
  // A clinician of both clinics, and the history with who and why.
  const Caller both = ClinicianAt({"north", "south"}, "clin-both");
  const auto history = ClinicsOf(both, patient_id_).history();
  ASSERT_EQ(history.size(), 3);
  EXPECT_EQ(history[0].change(), apb::CLINIC_CHANGE_KIND_ENROLLED);
  EXPECT_EQ(history[0].changed_by(), "ehr-1");
  EXPECT_EQ(history[1].change(), apb::CLINIC_CHANGE_KIND_LEFT);
  EXPECT_EQ(history[1].clinic_id(), "north");
  EXPECT_EQ(history[2].clinic_id(), "south");
  EXPECT_EQ(history[2].reason(), "moved house");
  // The history is in PostgreSQL with the audit rows of the changes.
  EXPECT_EQ(CountRows("SELECT count(*) FROM assessment.audit_events WHERE tenant_id = $1 AND action IN"
                      " ('EnrolPatient', 'TransferPatient') AND outcome = 'OK'"),
            3);
}

TEST_F(Clinics, BreakingTheGlassOpensAPatientForMinutesWithAReasonAndAnAlertForTheirClinic) {
  const Caller north = ClinicianAt({"north"});
  const Caller south = ClinicianAt({"south"});
  ApprovedPlanFor(north, patient_id_);  // enrolled at north
  EXPECT_EQ(ReadAssessments(south, patient_id_), StatusCode::NOT_FOUND);
  gpb::BreakGlassRequest request;
  request.set_request_id(NewId("rq"));
  request.set_patient_id(patient_id_);
  request.set_reason("short");
  request.set_minutes(10);
  gpb::BreakGlassResponse granted;
  EXPECT_EQ(south.Call(south.progress.get(), &gpb::ProgressService::Stub::BreakGlass, request, &granted).error_code(),
            StatusCode::INVALID_ARGUMENT);  // a real reason is required
  request.set_reason("patient collapsed in our waiting room; need the current plan");
  request.set_minutes(61);
  EXPECT_EQ(south.Call(south.progress.get(), &gpb::ProgressService::Stub::BreakGlass, request, &granted).error_code(),
            StatusCode::INVALID_ARGUMENT);  // at most an hour
  request.set_minutes(10);
  // The patient's own clinic has nothing to break.
  EXPECT_EQ(north.Call(north.progress.get(), &gpb::ProgressService::Stub::BreakGlass, request, &granted).error_code(),
            StatusCode::FAILED_PRECONDITION);
  ASSERT_TRUE(south.Call(south.progress.get(), &gpb::ProgressService::Stub::BreakGlass, request, &granted).ok());
  EXPECT_GT(granted.expire_time().seconds(), std::chrono::duration_cast<std::chrono::seconds>(
                                                 std::chrono::system_clock::now().time_since_epoch()).count() + 500);
  // Every service lets the grant's holder in (others: within patient-clinics-cache-ms), nobody else.
  std::this_thread::sleep_for(std::chrono::milliseconds(2100));
  EXPECT_EQ(ReadAssessments(south, patient_id_), StatusCode::OK);
  ppb::GetActivePlanRequest active;
  active.set_patient_id(patient_id_);
  ppb::GetActivePlanResponse got;
  EXPECT_TRUE(south.Call(south.planning.get(), &ppb::PlanningService::Stub::GetActivePlan, active, &got).ok());
  EXPECT_EQ(ReadAssessments(ClinicianAt({"south"}, "clin-south-2"), patient_id_), StatusCode::NOT_FOUND);
  // The patient's clinic is alerted, with who, how long and why.
  gpb::ListAlertsRequest list;
  list.set_clinic_id("north");
  gpb::ListAlertsResponse listed;
  ASSERT_TRUE(north.Call(north.progress.get(), &gpb::ProgressService::Stub::ListAlerts, list, &listed).ok());
  ASSERT_EQ(listed.alerts_size(), 1);
  EXPECT_EQ(listed.alerts(0).kind(), gpb::ALERT_KIND_EMERGENCY_ACCESS);
  EXPECT_EQ(listed.alerts(0).alert_id(), granted.alert_id());
  EXPECT_NE(listed.alerts(0).reasons(0).find("clin-south"), std::string::npos);
  EXPECT_NE(listed.alerts(0).reasons(0).find("collapsed"), std::string::npos);
  // The grant and the audited access, with the grant named.
  EXPECT_EQ(CountRows("SELECT count(*) FROM progress.emergency_access WHERE tenant_id = $1 AND principal = 'clin-south'"
                      " AND reason LIKE '%collapsed%'"),
            1);
  EXPECT_EQ(CountRows("SELECT count(*) FROM progress.audit_events WHERE tenant_id = $1 AND action = 'BreakGlass'"
                      " AND principal = 'clin-south' AND resource_id = '" + granted.grant_id() + "'"),
            1);
  EXPECT_GE(CountRows("SELECT count(*) FROM assessment.audit_events WHERE tenant_id = $1 AND action = 'ListAssessments'"
                      " AND principal = 'clin-south' AND outcome = 'OK'"),
            1);
}

TEST_F(Clinics, TheEventFeedPassesOverOtherClinicsPatients) {
  const Caller north = ClinicianAt({"north"});
  const Caller south = ClinicianAt({"south"});
  ApprovedPlanFor(north, patient_id_);                  // enrolled at north
  ApprovedPlanFor(south, patient_id_ + "-s");           // another patient, enrolled at south
  auto patients_seen = [&](const Caller& caller) {
    std::set<std::string> seen;
    auto context = caller.Context(std::chrono::milliseconds(1500));
    ppb::WatchEventsRequest request;
    auto reader = caller.planning->WatchEvents(context.get(), request);
    ppb::WatchEventsResponse response;
    while (reader->Read(&response)) seen.insert(response.event().patient_id());
    return seen;
  };
  const auto north_sees = patients_seen(north);
  const auto south_sees = patients_seen(south);
  EXPECT_TRUE(north_sees.contains(patient_id_));
  EXPECT_FALSE(north_sees.contains(patient_id_ + "-s"));
  EXPECT_TRUE(south_sees.contains(patient_id_ + "-s"));
  EXPECT_FALSE(south_sees.contains(patient_id_));
}

}  // namespace
}  // namespace physio::testing
