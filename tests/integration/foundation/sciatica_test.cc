// The sciatica and nerve-root pathway (issue 32 item 1) through the public API: the neurological
// examination by side at the assessment and at visits; a new foot drop is an urgent referral, a
// radicular pattern gets neural mobilisation and the sciatica advice, a foot drop progressing at a
// visit alerts the clinic at once and suspends the plan, other findings getting worse lead to a
// re-assessment, and sciatica not improving by the responder check is offered a spinal opinion.
#include "foundation.h"

namespace physio::testing {
namespace {

class Sciatica : public Foundation {
 protected:
  // The left leg: symptoms into the foot for `onset_days`, straight-leg raise positive at 40 degrees,
  // L4 5/5, L5 `l5`/5, the ankle reflex normal.
  static apb::NeurologicalExamination LeftL5(int l5, int onset_days = 20) {
    apb::NeurologicalExamination exam;
    auto* l4 = exam.add_myotomes();
    l4->set_root(apb::NERVE_ROOT_L4);
    l4->set_side(apb::BODY_SIDE_LEFT);
    l4->set_grade(5);
    auto* m = exam.add_myotomes();
    m->set_root(apb::NERVE_ROOT_L5);
    m->set_side(apb::BODY_SIDE_LEFT);
    m->set_grade(l5);
    auto* d = exam.add_dermatomes();
    d->set_root(apb::NERVE_ROOT_L5);
    d->set_side(apb::BODY_SIDE_LEFT);
    d->set_sensation(apb::SENSATION_ALTERED);
    auto* r = exam.add_reflexes();
    r->set_reflex(apb::REFLEX_ANKLE);
    r->set_side(apb::BODY_SIDE_LEFT);
    r->set_response(apb::REFLEX_RESPONSE_NORMAL);
    auto* leg = exam.add_legs();
    leg->set_side(apb::BODY_SIDE_LEFT);
    leg->set_extent(apb::LEG_SYMPTOM_EXTENT_FOOT);
    leg->set_leg_symptoms_onset_days(onset_days);
    leg->set_straight_leg_raise_deg(40);
    leg->set_straight_leg_raise_positive(true);
    return exam;
  }

  grpc::Status Assess(const Caller& clinician, const apb::NeurologicalExamination& exam, bool screen,
                      apb::Assessment* out) const {
    apb::CreateAssessmentRequest create;
    create.set_request_id(NewId("rq"));
    create.set_patient_id(patient_id_);
    *create.add_answers() = Answer(cpb::INSTRUMENT_NPRS, "nprs", 7);
    for (int i = 1; i <= 10; ++i) *create.add_answers() = Answer(cpb::INSTRUMENT_ODI, "odi." + std::to_string(i), 2);
    if (screen) create.mutable_red_flag_screen();
    create.mutable_history()->set_episode_duration_days(20);
    *create.mutable_examination()->mutable_neurological() = exam;
    apb::CreateAssessmentResponse created;
    auto status = clinician.Call(clinician.assessment.get(), &apb::AssessmentService::Stub::CreateAssessment, create,
                                 &created);
    if (out) *out = created.assessment();
    return status;
  }

  // The assessment, its plan approved (effective `weeks_ago` weeks back).
  ppb::Plan ApprovedSciaticaPlan(const Caller& clinician, int weeks_ago = 0) {
    apb::Assessment assessment;
    auto status = Assess(clinician, LeftL5(4), true, &assessment);
    EXPECT_TRUE(status.ok()) << status.error_message();
    ppb::GeneratePlanRequest generate;
    generate.set_request_id(NewId("rq"));
    generate.set_assessment_id(assessment.assessment_id());
    ppb::GeneratePlanResponse generated;
    status = clinician.Call(clinician.planning.get(), &ppb::PlanningService::Stub::GeneratePlan, generate, &generated);
    EXPECT_TRUE(status.ok()) << status.error_message();
    ppb::ApprovePlanRequest approve;
    approve.set_request_id(NewId("rq"));
    approve.set_plan_id(generated.plan().plan_id());
    approve.set_etag(generated.plan().etag());
    if (weeks_ago > 0) {
      const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                           std::chrono::system_clock::now().time_since_epoch()).count();
      approve.mutable_effective_time()->set_seconds(now - int64_t{weeks_ago} * 7 * 24 * 3600);
    }
    ppb::ApprovePlanResponse approved;
    status = clinician.Call(clinician.planning.get(), &ppb::PlanningService::Stub::ApprovePlan, approve, &approved);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return approved.plan();
  }

  grpc::Status Visit(const Caller& clinician, const apb::NeurologicalExamination& exam,
                     gpb::RecordVisitResponse* out) const {
    gpb::RecordVisitRequest visit;
    visit.set_request_id(NewId("rq"));
    visit.set_patient_id(patient_id_);
    visit.set_kind(gpb::VISIT_KIND_CLINIC);
    visit.set_clinic_id("north");
    visit.set_pain_before(6);
    *visit.mutable_neurological() = exam;
    return clinician.Call(clinician.progress.get(), &gpb::ProgressService::Stub::RecordVisit, visit, out);
  }

  gpb::Evaluation Evaluate(const Caller& clinician) const {
    gpb::EvaluateProgressRequest request;
    request.set_request_id(NewId("rq"));
    request.set_patient_id(patient_id_);
    gpb::EvaluateProgressResponse response;
    auto status = clinician.Call(clinician.progress.get(), &gpb::ProgressService::Stub::EvaluateProgress, request,
                                 &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response.evaluation();
  }

  static bool AnyContains(const google::protobuf::RepeatedPtrField<std::string>& lines, const std::string& part) {
    for (const auto& line : lines) {
      if (line.find(part) != std::string::npos) return true;
    }
    return false;
  }
};

TEST_F(Sciatica, ARadicularPatternGetsNeuralMobilisationTheAdviceAndTheSpinalOpinionReview) {
  const Caller clinician = Clinician();
  apb::Assessment assessment;
  ASSERT_TRUE(Assess(clinician, LeftL5(4), true, &assessment).ok());
  EXPECT_EQ(assessment.red_flags().action(), apb::RED_FLAG_ACTION_NONE) << "a mild, recent deficit is not urgent";
  const ppb::Plan plan = ApprovedSciaticaPlan(clinician);
  EXPECT_TRUE(plan.sciatica());
  std::set<std::string> items;
  for (const auto& item : plan.items()) items.insert(item.item_id());
  EXPECT_TRUE(items.contains("ex.neural.sciatic_slider"));
  EXPECT_TRUE(items.contains("edu.sciatica"));
  ASSERT_GT(plan.review_points_size(), 0);
  EXPECT_NE(plan.review_points(plan.review_points_size() - 1).purpose().find("NICE NG59 1.3.1"), std::string::npos);
}

TEST_F(Sciatica, ANewFootDropIsAnUrgentReferralEvenWithoutTheRedFlagQuestions) {
  const Caller clinician = Clinician();
  apb::Assessment assessment;
  ASSERT_TRUE(Assess(clinician, LeftL5(2, 5), /*screen=*/false, &assessment).ok());
  EXPECT_EQ(assessment.red_flags().action(), apb::RED_FLAG_ACTION_URGENT_REFERRAL);
  ASSERT_EQ(assessment.red_flags().concerns_size(), 1);
  EXPECT_EQ(assessment.red_flags().concerns(0).condition(), "neurological_deficit");
  EXPECT_TRUE(AnyContains(assessment.red_flags().concerns(0).reasons(), "L5 left 2/5 (foot drop)"));
  // The plan is a referral: no exercise.
  ppb::GeneratePlanRequest generate;
  generate.set_request_id(NewId("rq"));
  generate.set_assessment_id(assessment.assessment_id());
  ppb::GeneratePlanResponse generated;
  ASSERT_TRUE(clinician.Call(clinician.planning.get(), &ppb::PlanningService::Stub::GeneratePlan, generate, &generated).ok());
  for (const auto& item : generated.plan().items()) EXPECT_NE(item.kind(), ppb::PLAN_ITEM_KIND_EXERCISE) << item.item_id();
}

TEST_F(Sciatica, AFootDropProgressingAtAVisitAlertsAtOnceSuspendsThePlanAndIsReferred) {
  const Caller clinician = Clinician();
  ASSERT_EQ(ApprovedSciaticaPlan(clinician).status(), ppb::PLAN_STATUS_ACTIVE);
  // The first visit: the same findings; nothing raised.
  gpb::RecordVisitResponse same;
  ASSERT_TRUE(Visit(clinician, LeftL5(4, 27), &same).ok());
  EXPECT_FALSE(same.visit().neurological_worse());
  EXPECT_NE(same.visit().red_flags().action(), apb::RED_FLAG_ACTION_URGENT_REFERRAL);
  // The next: L5 down to 2/5, a foot drop.
  gpb::RecordVisitResponse worse;
  auto status = Visit(clinician, LeftL5(2, 34), &worse);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(worse.visit().red_flags().action(), apb::RED_FLAG_ACTION_URGENT_REFERRAL);
  EXPECT_TRUE(AnyContains(worse.visit().neurological_changes(), "worse since the assessment: L5 left 4/5 -> 2/5"));
  EXPECT_TRUE(AnyContains(worse.visit().neurological_changes(), "worse since the last visit: L5 left 4/5 -> 2/5"));
  EXPECT_TRUE(AnyContains(worse.visit().red_flags().concerns(0).reasons(), "urgent spinal surgical opinion"));
  // The clinic has the alert, the plan is out of use, the evaluation refers.
  gpb::ListAlertsRequest list;
  list.set_clinic_id("north");
  gpb::ListAlertsResponse alerts;
  ASSERT_TRUE(clinician.Call(clinician.progress.get(), &gpb::ProgressService::Stub::ListAlerts, list, &alerts).ok());
  ASSERT_EQ(alerts.alerts_size(), 1);
  EXPECT_EQ(alerts.alerts(0).kind(), gpb::ALERT_KIND_RED_FLAG);
  EXPECT_EQ(PlanInUseOrSuspended(clinician, patient_id_).status(), ppb::PLAN_STATUS_SUSPENDED);
  EXPECT_EQ(Evaluate(clinician).decision(), gpb::DECISION_REFER);
}

TEST_F(Sciatica, OtherFindingsGettingWorseAreReassessedNeverProgressed) {
  const Caller clinician = Clinician();
  ASSERT_EQ(ApprovedSciaticaPlan(clinician).status(), ppb::PLAN_STATUS_ACTIVE);
  auto exam = LeftL5(4, 30);
  exam.mutable_dermatomes(0)->set_sensation(apb::SENSATION_REDUCED);
  exam.mutable_legs(0)->set_straight_leg_raise_deg(25);
  gpb::RecordVisitResponse visit;
  ASSERT_TRUE(Visit(clinician, exam, &visit).ok());
  EXPECT_TRUE(visit.visit().neurological_worse());
  EXPECT_TRUE(AnyContains(visit.visit().neurological_changes(), "L5 dermatome left altered -> reduced"));
  EXPECT_TRUE(AnyContains(visit.visit().neurological_changes(), "straight-leg raise left 40 -> 25 degrees"));
  EXPECT_NE(visit.visit().red_flags().action(), apb::RED_FLAG_ACTION_URGENT_REFERRAL) << "not a red flag";
  const gpb::Evaluation evaluation = Evaluate(clinician);
  EXPECT_EQ(evaluation.decision(), gpb::DECISION_REASSESS);
  EXPECT_TRUE(AnyContains(evaluation.reasons(), "neurological findings worse"));
  EXPECT_TRUE(evaluation.plan().needs_reassessment());
}

TEST_F(Sciatica, NotImprovingByTheResponderCheckIsOfferedTheSpinalOpinionRoute) {
  const Caller clinician = Clinician();
  ASSERT_EQ(ApprovedSciaticaPlan(clinician, /*weeks_ago=*/5).status(), ppb::PLAN_STATUS_ACTIVE);
  // Pain 7 as at the assessment, Oswestry 40% as at the assessment.
  gpb::RecordVisitResponse visited;
  ASSERT_TRUE(RecordVisitFor(clinician, patient_id_, gpb::VISIT_KIND_CLINIC, 7, &visited).ok());
  gpb::RecordOutcomeResponse recorded;
  ASSERT_TRUE(RecordOdiFor(clinician, patient_id_, 2, &recorded).ok());
  ASSERT_EQ(recorded.measure().score().score(), 40);
  const gpb::Evaluation evaluation = Evaluate(clinician);
  EXPECT_EQ(evaluation.decision(), gpb::DECISION_REFER);
  EXPECT_TRUE(AnyContains(evaluation.reasons(), "spinal-opinion route (NICE NG59 1.3.1"));
  EXPECT_TRUE(evaluation.plan().referral_recommended());
}

TEST_F(Sciatica, ABadExaminationIsRefusedNamingTheField) {
  const Caller clinician = Clinician();
  auto bad_grade = LeftL5(4);
  bad_grade.mutable_myotomes(1)->set_grade(7);
  auto status = Assess(clinician, bad_grade, true, nullptr);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("examination.neurological.myotomes[1].grade"), std::string::npos)
      << status.error_message();
  auto twice = LeftL5(4);
  twice.add_legs()->set_side(apb::BODY_SIDE_LEFT);
  status = Assess(clinician, twice, true, nullptr);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("examination.neurological.legs[1]"), std::string::npos) << status.error_message();
  ASSERT_EQ(ApprovedSciaticaPlan(clinician).status(), ppb::PLAN_STATUS_ACTIVE);
  auto no_side = LeftL5(4);
  no_side.mutable_reflexes(0)->clear_side();
  gpb::RecordVisitResponse visit;
  status = Visit(clinician, no_side, &visit);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("neurological.reflexes[0].side"), std::string::npos) << status.error_message();
}

}  // namespace
}  // namespace physio::testing
