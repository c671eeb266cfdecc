// foundation_test: One patient end to end, idempotent retries, health and reflection.
#include "foundation.h"

namespace physio::testing {
namespace {

using Episode = Foundation;

TEST_F(Episode, FullEpisodeThroughAllThreeServices) {
  auto patient = Patient();
  auto session = StartIntake(patient);
  EXPECT_EQ(session.status(), apb::INTAKE_STATUS_OPEN);
  EXPECT_EQ(session.patient_id(), patient_id_);
  EXPECT_GT(session.expire_time().seconds(), 0);

  // Over several screens: pain first, then half the ODI, then the rest.
  auto answers = FullIntake();
  apb::IntakeSession after;
  ASSERT_TRUE(Submit(patient, session.session_id(), {answers[0]}, &after).ok());
  EXPECT_TRUE(after.progress(0).complete());
  EXPECT_FALSE(after.progress(1).complete());
  ASSERT_TRUE(Submit(patient, session.session_id(), {answers.begin() + 1, answers.begin() + 6}, &after).ok());
  EXPECT_EQ(after.progress(1).answered_items(), 5);
  ASSERT_TRUE(Submit(patient, session.session_id(), {answers.begin() + 6, answers.end()}, &after).ok());
  EXPECT_TRUE(after.progress(1).complete());
  ScreenNoRedFlags(patient, session.session_id());

  apb::Assessment assessment;
  ASSERT_TRUE(Complete(patient, session.session_id(), &assessment).ok());
  ASSERT_EQ(assessment.scores_size(), 2);
  EXPECT_DOUBLE_EQ(assessment.scores(0).score(), 6);
  EXPECT_DOUBLE_EQ(assessment.scores(1).score(), 35.6);
  EXPECT_EQ(assessment.scores(1).band(), "moderate");
  EXPECT_EQ(assessment.scores(1).declined_items(), 1);

  // The stored assessment reads back the same, and the session is closed.
  apb::GetAssessmentRequest get;
  get.set_assessment_id(assessment.assessment_id());
  apb::GetAssessmentResponse got;
  auto clinician = Clinician();
  ASSERT_TRUE(clinician.Call(clinician.assessment.get(), &apb::AssessmentService::Stub::GetAssessment, get, &got).ok());
  EXPECT_EQ(got.assessment().scores(1).raw_sum(), 16);
  apb::GetIntakeRequest get_intake;
  get_intake.set_session_id(session.session_id());
  apb::GetIntakeResponse intake;
  ASSERT_TRUE(patient.Call(patient.assessment.get(), &apb::AssessmentService::Stub::GetIntake, get_intake, &intake).ok());
  EXPECT_EQ(intake.session().status(), apb::INTAKE_STATUS_COMPLETED);
  EXPECT_EQ(intake.session().assessment_id(), assessment.assessment_id());

  // Planning fetches the assessment over gRPC with the caller's identity.
  ppb::Plan draft;
  ASSERT_TRUE(Generate(clinician, assessment.assessment_id(), &draft).ok());
  EXPECT_EQ(draft.status(), ppb::PLAN_STATUS_DRAFT);
  EXPECT_EQ(draft.patient_id(), patient_id_);
  EXPECT_EQ(draft.phase(), cpb::PHASE_MOVEMENT_CONTROL);
  EXPECT_EQ(draft.baseline_scores_size(), 2);
  ASSERT_FALSE(draft.items().empty());
  for (const auto& item : draft.items()) {
    EXPECT_FALSE(item.reason().empty());
    EXPECT_FALSE(item.source().empty());
  }
  ppb::Plan active;
  ASSERT_TRUE(Approve(draft.plan_id(), draft.etag(), &active).ok());
  EXPECT_EQ(active.status(), ppb::PLAN_STATUS_ACTIVE);
  EXPECT_NE(active.etag(), draft.etag());

  // Progress: a visit, two home logs, and the summary reading the plan from planning.
  gpb::RecordVisitResponse visited;
  ASSERT_TRUE(RecordVisitFor(clinician, patient_id_, gpb::VISIT_KIND_CLINIC, 5, &visited).ok());
  // Each log answers the day's usual-pain question too (pain after exercise is not judged).
  ASSERT_TRUE(LogExercise(patient, "ex.motor.abdominal_bracing", 6, nullptr, "", 4).ok());
  ASSERT_TRUE(LogExercise(patient, "ex.strength.glute_bridge", 6, nullptr, "", 3).ok());

  auto summary = Summary(patient);
  EXPECT_EQ(summary.active_plan().plan_id(), active.plan_id());
  EXPECT_EQ(summary.visit_count(), 1);
  EXPECT_EQ(summary.home_log_count(), 2);
  EXPECT_EQ(summary.baseline_pain(), 6);
  EXPECT_EQ(summary.latest_pain(), 3);
  EXPECT_DOUBLE_EQ(summary.recent_pain_mean(), 4.0);  // (5 + 4 + 3) / 3: the week's usual-pain mean
  EXPECT_EQ(summary.pain_change(), -2);
  EXPECT_TRUE(summary.pain_change_meaningful());
  ASSERT_EQ(summary.pain_trend_size(), 6);  // with the two readings after exercise (6), shown not judged
  EXPECT_EQ(summary.pain_trend(0).source(), "assessment");

  // An NPRS re-measure is a pain reading too: it reaches the trend and the latest pain.
  gpb::RecordOutcomeRequest remeasure;
  remeasure.set_request_id(NewId("rq"));
  remeasure.set_patient_id(patient_id_);
  remeasure.set_instrument(cpb::INSTRUMENT_NPRS);
  *remeasure.add_answers() = Answer(cpb::INSTRUMENT_NPRS, "nprs", 2);
  gpb::RecordOutcomeResponse remeasured;
  ASSERT_TRUE(
      clinician.Call(clinician.progress.get(), &gpb::ProgressService::Stub::RecordOutcome, remeasure, &remeasured).ok());
  summary = Summary(patient);
  ASSERT_EQ(summary.pain_trend_size(), 7);
  EXPECT_EQ(summary.pain_trend(6).source(), "remeasure");
  EXPECT_EQ(summary.latest_pain(), 2);
  EXPECT_DOUBLE_EQ(summary.recent_pain_mean(), 3.5);
}

TEST_F(Episode, RepeatedRequestIdCreatesOneRecord) {
  auto patient = Patient();
  auto first = StartIntake(patient, "start-1");
  auto again = StartIntake(patient, "start-1");
  EXPECT_EQ(first.session_id(), again.session_id());

  ASSERT_TRUE(Submit(patient, first.session_id(), FullIntake()).ok());
  ScreenNoRedFlags(patient, first.session_id());
  apb::Assessment a1, a2;
  ASSERT_TRUE(Complete(patient, first.session_id(), &a1, "complete-1").ok());
  ASSERT_TRUE(Complete(patient, first.session_id(), &a2, "complete-1").ok());
  EXPECT_EQ(a1.assessment_id(), a2.assessment_id());
  EXPECT_EQ(CountRows("SELECT count(*) FROM assessment.assessments WHERE tenant_id = $1"), 1);
  // A new request id for the same session cannot make a second assessment.
  auto status = Complete(patient, first.session_id(), nullptr, "complete-2");
  EXPECT_EQ(status.error_code(), StatusCode::FAILED_PRECONDITION);

  ppb::Plan p1, p2;
  ASSERT_TRUE(Generate(Clinician(), a1.assessment_id(), &p1, "plan-1").ok());
  ASSERT_TRUE(Generate(Clinician(), a1.assessment_id(), &p2, "plan-1").ok());
  EXPECT_EQ(p1.plan_id(), p2.plan_id());
  EXPECT_EQ(CountRows("SELECT count(*) FROM planning.plans WHERE tenant_id = $1"), 1);
  ASSERT_TRUE(Approve(p1.plan_id(), p1.etag()).ok());

  gpb::HomeExerciseLog l1, l2;
  ASSERT_TRUE(LogExercise(patient, "ex.strength.glute_bridge", 3, &l1, "log-1").ok());
  ASSERT_TRUE(LogExercise(patient, "ex.strength.glute_bridge", 3, &l2, "log-1").ok());
  EXPECT_EQ(l1.log_id(), l2.log_id());
  EXPECT_EQ(Summary(patient).home_log_count(), 1);

  // The same id with a different request is refused and changes nothing.
  auto reused = LogExercise(patient, "ex.strength.glute_bridge", 5, nullptr, "log-1");
  EXPECT_EQ(reused.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(reused.error_message().find("request_id"), std::string::npos);
  EXPECT_EQ(Summary(patient).home_log_count(), 1);
}

TEST_F(Episode, ConcurrentRetriesWithOneRequestIdCreateOneRecord) {
  ActivePlan();
  auto patient = Patient();
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  std::vector<std::string> ids(8);
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      gpb::HomeExerciseLog log;
      if (LogExercise(patient, "ex.strength.glute_bridge", 3, &log, "same-retry").ok()) {
        ++ok;
        ids[i] = log.log_id();
      }
    });
  }
  for (auto& t : threads) t.join();
  // Every retry is answered with the one record the first attempt made.
  EXPECT_EQ(ok.load(), 8);
  for (const auto& id : ids) EXPECT_EQ(id, ids[0]);
  EXPECT_EQ(CountRows("SELECT count(*) FROM progress.home_exercise_logs WHERE tenant_id = $1"), 1);
}

TEST_F(Episode, HealthAndReflection) {
  for (const auto& [addr, name] : std::vector<std::pair<std::string, std::string>>{
           {cluster_->assessment_addr(), "physio.assessment.v1.AssessmentService"},
           {cluster_->planning_addr(), "physio.planning.v1.PlanningService"},
           {cluster_->progress_addr(), "physio.progress.v1.ProgressService"}}) {
    auto channel = grpc::CreateChannel(addr, grpc::InsecureChannelCredentials());
    auto health = grpc::health::v1::Health::NewStub(channel);
    grpc::ClientContext context;
    grpc::health::v1::HealthCheckRequest request;
    request.set_service(name);
    grpc::health::v1::HealthCheckResponse response;
    ASSERT_TRUE(health->Check(&context, request, &response).ok()) << name;
    EXPECT_EQ(response.status(), grpc::health::v1::HealthCheckResponse::SERVING) << name;

    auto reflection = grpc::reflection::v1alpha::ServerReflection::NewStub(channel);
    grpc::ClientContext reflection_context;
    auto stream = reflection->ServerReflectionInfo(&reflection_context);
    grpc::reflection::v1alpha::ServerReflectionRequest list;
    list.set_list_services("*");
    stream->Write(list);
    stream->WritesDone();
    grpc::reflection::v1alpha::ServerReflectionResponse listed;
    std::set<std::string> names;
    while (stream->Read(&listed)) {
      for (const auto& service : listed.list_services_response().service()) names.insert(service.name());
    }
    EXPECT_TRUE(stream->Finish().ok());
    EXPECT_TRUE(names.contains(name)) << addr;
    EXPECT_TRUE(names.contains("grpc.health.v1.Health")) << addr;
  }
}

}  // namespace
}  // namespace physio::testing
