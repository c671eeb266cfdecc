// The assessment use cases' successful paths over in-memory stores
// (tests/support/fake_stores.h): an intake answered over several screens
// becomes one scored assessment, replays return the first response, and a
// clinician's red-flag judgement is versioned. Milliseconds; the integration
// suites run the same workflow over Redis and PostgreSQL.
#include <gtest/gtest.h>

#include <functional>

#include "assessment_app.h"
#include "clients.h"
#include "fake_stores.h"
#include "physio/common/error.h"
#include "use_case_support.h"

namespace physio::testing {
namespace {

class AssessmentWorkflow : public ::testing::Test {
 protected:
  FakeSessionIdempotency session_idempotency;
  FakeIntakeStore intakes;
  FakeAssessmentRecords records;
  assessment::AssessmentApp app{{session_idempotency, intakes, records}, assessment::AssessmentSettings{}};
  AuditTarget audit;
  const CallContext patient = CallerAs(Role::kPatient, "pt-1");
  const CallContext clinician = CallerAs(Role::kClinician);

  std::string StartIntake() {
    apb::StartIntakeRequest start;
    start.set_request_id("rq-start");
    start.set_patient_id("pt-1");
    return app.StartIntake(patient, start, audit).session().session_id();
  }
  // Pain 6 on the first screen, ODI 2 in every section on the second.
  void AnswerBothScreens(const std::string& session_id) {
    apb::SubmitIntakeAnswersRequest pain;
    pain.set_request_id("rq-pain");
    pain.set_session_id(session_id);
    *pain.add_answers() = Answer(cpb::INSTRUMENT_NPRS, "nprs", 6);
    app.SubmitIntakeAnswers(patient, pain, audit);
    apb::SubmitIntakeAnswersRequest odi;
    odi.set_request_id("rq-odi");
    odi.set_session_id(session_id);
    for (int i = 1; i <= 10; ++i) *odi.add_answers() = Answer(cpb::INSTRUMENT_ODI, "odi." + std::to_string(i), 2);
    app.SubmitIntakeAnswers(patient, odi, audit);
  }
  apb::CompleteIntakeRequest Complete(const std::string& session_id, const std::string& request_id = "rq-done") {
    apb::CompleteIntakeRequest complete;
    complete.set_request_id(request_id);
    complete.set_session_id(session_id);
    return complete;
  }
};

TEST_F(AssessmentWorkflow, AnIntakeAnsweredOverTwoScreensBecomesOneScoredAssessment) {
  const std::string session_id = StartIntake();
  AnswerBothScreens(session_id);
  apb::GetIntakeRequest get_intake;
  get_intake.set_session_id(session_id);
  const auto session = app.GetIntake(patient, get_intake, audit).session();
  ASSERT_EQ(session.progress_size(), 2);  // the default instruments, NPRS and ODI, both complete
  EXPECT_TRUE(session.progress(0).complete() && session.progress(1).complete());

  const auto assessment = app.CompleteIntake(patient, Complete(session_id), audit).assessment();
  EXPECT_EQ(audit.patient_id, "pt-1");
  EXPECT_EQ(assessment.intake_session_id(), session_id);
  ASSERT_EQ(assessment.scores_size(), 2);
  EXPECT_EQ(assessment.scores(0).score(), 6);   // NPRS
  EXPECT_EQ(assessment.scores(1).score(), 40);  // ODI: 20 of 50 points
  EXPECT_EQ(assessment.etag(), "v1");
  EXPECT_EQ(assessment.red_flags().action(), apb::RED_FLAG_ACTION_NOT_SCREENED);
  ASSERT_EQ(records.state.events.size(), 1u);
  EXPECT_EQ(records.state.events[0].kind, "EVENT_KIND_ASSESSMENT_STORED");
  EXPECT_EQ(intakes.sessions.at({"t-1", session_id}).assessment_id(), assessment.assessment_id());

  apb::GetAssessmentRequest get;
  get.set_assessment_id(assessment.assessment_id());
  EXPECT_EQ(app.GetAssessment(clinician, get, audit).assessment().SerializeAsString(), assessment.SerializeAsString());
  apb::ListAssessmentsRequest list;
  list.set_patient_id("pt-1");
  const auto listed = app.ListAssessments(patient, list, audit);
  ASSERT_EQ(listed.assessments_size(), 1);
  EXPECT_EQ(listed.assessments(0).assessment_id(), assessment.assessment_id());
  EXPECT_TRUE(listed.next_page_token().empty());
}

TEST_F(AssessmentWorkflow, ARetriedCompletionReplaysAndAnotherRequestIsRefused) {
  const std::string session_id = StartIntake();
  AnswerBothScreens(session_id);
  const auto first = app.CompleteIntake(patient, Complete(session_id), audit).assessment();
  const auto retried = app.CompleteIntake(patient, Complete(session_id), audit).assessment();
  EXPECT_EQ(retried.assessment_id(), first.assessment_id());
  EXPECT_EQ(records.committed_writes, 1);
  EXPECT_EQ(records.state.assessments.size(), 1u);
  EXPECT_EQ(CodeOf([&] { app.CompleteIntake(patient, Complete(session_id, "rq-again"), audit); }),
            ErrorCode::kFailedPrecondition);
  // Its request id with another request's content is refused, not replayed.
  auto other = Complete("intake_other");
  EXPECT_EQ(CodeOf([&] { app.CompleteIntake(patient, other, audit); }), ErrorCode::kInvalidArgument);
}

TEST_F(AssessmentWorkflow, AnotherPatientsIntakeAndAssessmentAreNotThere) {
  const std::string session_id = StartIntake();
  AnswerBothScreens(session_id);
  const auto assessment = app.CompleteIntake(patient, Complete(session_id), audit).assessment();
  const CallContext other = CallerAs(Role::kPatient, "pt-2");
  apb::GetIntakeRequest get_intake;
  get_intake.set_session_id(session_id);
  EXPECT_EQ(CodeOf([&] { app.GetIntake(other, get_intake, audit); }), ErrorCode::kNotFound);
  apb::GetAssessmentRequest get;
  get.set_assessment_id(assessment.assessment_id());
  EXPECT_EQ(CodeOf([&] { app.GetAssessment(other, get, audit); }), ErrorCode::kNotFound);
  CallContext other_tenant = clinician;
  other_tenant.tenant = "t-2";
  EXPECT_EQ(CodeOf([&] { app.GetAssessment(other_tenant, get, audit); }), ErrorCode::kNotFound);
}

TEST_F(AssessmentWorkflow, ARedFlagJudgementIsVersionedAndAComputedEmergencyIsLoweredOnlyWhenAcknowledged) {
  // Saddle numbness with new bladder disturbance: suspected cauda equina, an emergency.
  apb::CreateAssessmentRequest create;
  create.set_request_id("rq-create");
  create.set_patient_id("pt-1");
  *create.add_answers() = Answer(cpb::INSTRUMENT_NPRS, "nprs", 6);
  create.mutable_red_flag_screen()->set_saddle_numbness(true);
  create.mutable_red_flag_screen()->set_bladder_or_bowel_disturbance(true);
  const auto assessment = app.CreateAssessment(clinician, create, audit).assessment();
  ASSERT_EQ(assessment.red_flags().action(), apb::RED_FLAG_ACTION_EMERGENCY_REFERRAL);
  ASSERT_EQ(records.state.events.size(), 2u);
  EXPECT_EQ(records.state.events[1].kind, "EVENT_KIND_RED_FLAG_RAISED");

  apb::RecordRedFlagJudgementRequest judge;
  judge.set_request_id("rq-judge");
  judge.set_assessment_id(assessment.assessment_id());
  judge.set_etag(assessment.etag());
  judge.set_action(apb::RED_FLAG_ACTION_ROUTINE_REFERRAL);
  judge.set_rationale("symptoms long-standing, examined today, no neurological deficit");
  EXPECT_EQ(CodeOf([&] { app.RecordRedFlagJudgement(clinician, judge, audit); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(records.state.assessments.begin()->second.version, 1);  // the refused write left nothing

  judge.set_acknowledge_computed_emergency(true);
  const auto judged = app.RecordRedFlagJudgement(clinician, judge, audit).assessment();
  EXPECT_EQ(judged.etag(), "v2");
  EXPECT_EQ(judged.clinician_red_flag_judgement().action(), apb::RED_FLAG_ACTION_ROUTINE_REFERRAL);
  EXPECT_EQ(judged.clinician_red_flag_judgement().clinician(), "staff-1");
  // A judgement made against the old etag is refused: the clinician must read the new one.
  judge.set_request_id("rq-judge-2");
  EXPECT_EQ(CodeOf([&] { app.RecordRedFlagJudgement(clinician, judge, audit); }), ErrorCode::kAborted);
}

}  // namespace
}  // namespace physio::testing
