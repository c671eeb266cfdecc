// foundation_test: Identity, tenant and patient isolation, field-named errors, the audit trail.
#include "foundation.h"

namespace physio::testing {
namespace {

using Access = Foundation;

TEST_F(Access, CallsWithoutAValidTokenAreUnauthenticated) {
  apb::GetAssessmentRequest request;
  request.set_assessment_id("asm_x");
  apb::GetAssessmentResponse response;
  Caller anonymous(*cluster_, "");
  EXPECT_EQ(anonymous.Call(anonymous.assessment.get(), &apb::AssessmentService::Stub::GetAssessment, request, &response)
                .error_code(),
            StatusCode::UNAUTHENTICATED);
  Caller garbage(*cluster_, "not-a-jwt");
  EXPECT_EQ(
      garbage.Call(garbage.assessment.get(), &apb::AssessmentService::Stub::GetAssessment, request, &response).error_code(),
      StatusCode::UNAUTHENTICATED);
  auto other_key = GenerateRsaKeyPair();
  Caller forged(*cluster_,
                MintToken(other_key.private_key_pem, {kIssuer, kAudience, tenant_, "clin-1", {"clinician"}, ""}));
  ppb::GetPlanResponse plan;
  EXPECT_EQ(forged.Call(forged.planning.get(), &ppb::PlanningService::Stub::GetPlan, ppb::GetPlanRequest(), &plan)
                .error_code(),
            StatusCode::UNAUTHENTICATED);
  // Well signed but over-long-lived (a week; at most an hour), or a patient who is also staff.
  TokenRequest week{kIssuer, kAudience, tenant_, "clin-1", {"clinician"}, "", std::chrono::hours(24 * 7)};
  Caller long_lived(*cluster_, MintToken(keys_->private_key_pem, week));
  auto status =
      long_lived.Call(long_lived.assessment.get(), &apb::AssessmentService::Stub::GetAssessment, request, &response);
  EXPECT_EQ(status.error_code(), StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(status.error_message(), "invalid token");  // which check failed is not told
  Caller mixed(*cluster_, MakeToken(*keys_, tenant_, patient_id_, {"patient", "clinician"}, patient_id_));
  EXPECT_EQ(mixed.Call(mixed.assessment.get(), &apb::AssessmentService::Stub::GetAssessment, request, &response)
                .error_code(),
            StatusCode::UNAUTHENTICATED);
}

TEST_F(Access, AnotherTenantCannotReadTheRecords) {
  auto plan = ActivePlan();
  auto intruder = Clinician("other-tenant");
  apb::GetAssessmentRequest get_assessment;
  get_assessment.set_assessment_id(plan.assessment_id());
  apb::GetAssessmentResponse assessment;
  EXPECT_EQ(intruder.Call(intruder.assessment.get(), &apb::AssessmentService::Stub::GetAssessment, get_assessment,
                          &assessment)
                .error_code(),
            StatusCode::NOT_FOUND);
  ppb::GetPlanRequest get_plan;
  get_plan.set_plan_id(plan.plan_id());
  ppb::GetPlanResponse got_plan;
  EXPECT_EQ(intruder.Call(intruder.planning.get(), &ppb::PlanningService::Stub::GetPlan, get_plan, &got_plan).error_code(),
            StatusCode::NOT_FOUND);
  ppb::GeneratePlanRequest generate;
  generate.set_request_id("x1");
  generate.set_assessment_id(plan.assessment_id());
  ppb::GeneratePlanResponse generated;
  EXPECT_EQ(intruder.Call(intruder.planning.get(), &ppb::PlanningService::Stub::GeneratePlan, generate, &generated)
                .error_code(),
            StatusCode::NOT_FOUND);
  gpb::GetProgressSummaryRequest summary_request;
  summary_request.set_patient_id(patient_id_);
  gpb::GetProgressSummaryResponse summary;
  ASSERT_TRUE(intruder.Call(intruder.progress.get(), &gpb::ProgressService::Stub::GetProgressSummary, summary_request,
                            &summary)
                  .ok());
  EXPECT_FALSE(summary.summary().has_active_plan());  // the patient id means nothing in another tenant
}

TEST_F(Access, APatientCannotReachAnotherPatientsRecords) {
  auto plan = ActivePlan();
  auto other = Patient("pt-someone-else");
  apb::GetAssessmentRequest get_assessment;
  get_assessment.set_assessment_id(plan.assessment_id());
  apb::GetAssessmentResponse assessment;
  EXPECT_EQ(other.Call(other.assessment.get(), &apb::AssessmentService::Stub::GetAssessment, get_assessment, &assessment)
                .error_code(),
            StatusCode::NOT_FOUND);
  ppb::GetActivePlanRequest get_active;
  get_active.set_patient_id(patient_id_);
  ppb::GetActivePlanResponse active;
  EXPECT_EQ(other.Call(other.planning.get(), &ppb::PlanningService::Stub::GetActivePlan, get_active, &active).error_code(),
            StatusCode::NOT_FOUND);
  EXPECT_EQ(LogExercise(other, "ex.strength.glute_bridge", 3).error_code(), StatusCode::PERMISSION_DENIED);
  // Their own intake is fine; someone else's session is invisible.
  auto session = StartIntake(Patient());
  EXPECT_EQ(Submit(other, session.session_id(), {Answer(cpb::INSTRUMENT_NPRS, "nprs", 3)}).error_code(),
            StatusCode::NOT_FOUND);
  // A patient may not generate or approve plans.
  EXPECT_EQ(Generate(Patient(), plan.assessment_id(), nullptr).error_code(), StatusCode::PERMISSION_DENIED);
}

TEST_F(Access, BadInputIsInvalidArgumentNamingTheField) {
  auto patient = Patient();
  auto session = StartIntake(patient);
  auto status = Submit(patient, session.session_id(), {Answer(cpb::INSTRUMENT_ODI, "odi.3", 7)});
  EXPECT_EQ(status.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(), "answers[0].value: odi item odi.3 must be 0-5, got 7");
  status = Submit(patient, session.session_id(), {Answer(cpb::INSTRUMENT_UNSPECIFIED, "x", 1)});
  EXPECT_EQ(status.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("answers[0].instrument"), std::string::npos);

  apb::StartIntakeRequest no_request_id;
  no_request_id.set_patient_id(patient_id_);
  apb::StartIntakeResponse ignored;
  status = patient.Call(patient.assessment.get(), &apb::AssessmentService::Stub::StartIntake, no_request_id, &ignored);
  EXPECT_EQ(status.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("request_id"), std::string::npos);

  auto clinician = Clinician();
  gpb::RecordVisitRequest visit;
  visit.set_request_id("v1");
  visit.set_patient_id(patient_id_);
  visit.set_kind(gpb::VISIT_KIND_CLINIC);
  visit.set_pain_before(11);
  gpb::RecordVisitResponse visited;
  status = clinician.Call(clinician.progress.get(), &gpb::ProgressService::Stub::RecordVisit, visit, &visited);
  EXPECT_EQ(status.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("pain_before"), std::string::npos);
  visit.set_pain_before(3);
  visit.mutable_visit_time()->set_seconds(std::time(nullptr) + 86400);
  status = clinician.Call(clinician.progress.get(), &gpb::ProgressService::Stub::RecordVisit, visit, &visited);
  EXPECT_EQ(status.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("visit_time"), std::string::npos);
}

TEST_F(Access, PatientDataAccessIsAudited) {
  auto plan = ActivePlan();
  auto intruder = Clinician("other-tenant");
  ppb::GetPlanRequest get;
  get.set_plan_id(plan.plan_id());
  ppb::GetPlanResponse got;
  auto clinician = Clinician();
  ASSERT_TRUE(clinician.Call(clinician.planning.get(), &ppb::PlanningService::Stub::GetPlan, get, &got).ok());
  EXPECT_EQ(CountRows("SELECT count(*) FROM planning.audit_events WHERE tenant_id = $1 AND action = 'GetPlan'"
                      " AND outcome = 'OK' AND principal = 'clin-1' AND patient_id = '" + patient_id_ + "'"),
            1);
  EXPECT_GE(CountRows("SELECT count(*) FROM assessment.audit_events WHERE tenant_id = $1 AND action = 'CompleteIntake'"
                      " AND patient_id = '" + patient_id_ + "'"),
            1);
  EXPECT_EQ(intruder.Call(intruder.planning.get(), &ppb::PlanningService::Stub::GetPlan, get, &got).error_code(),
            StatusCode::NOT_FOUND);
  EXPECT_EQ(CountRows("SELECT count(*) FROM planning.audit_events WHERE tenant_id = 'other-tenant' AND $1 <> ''"
                      " AND action = 'GetPlan' AND outcome = 'NOT_FOUND' AND resource_id = '" + plan.plan_id() + "'"),
            1);
}

}  // namespace
}  // namespace physio::testing
