// End-to-end tests of the vertical slice through the public gRPC API, against
// real redis-server and PostgreSQL and the three services on port 0.
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <hiredis/hiredis.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <thread>

#include "clients.h"
#include "cluster_fixture.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "physio/auth/token_minter.h"
#include "physio/redis/redis_keys.h"
#include "physio/redis/redis_pool.h"
#include "planning_server.h"
#include "physio/common/ids.h"
#include "src/proto/grpc/reflection/v1alpha/reflection.grpc.pb.h"

namespace physio::testing {
namespace {

using grpc::StatusCode;

class Foundation : public ClusterFixture {
 protected:

  void SetUp() override {
    // A fresh tenant and patient per test: tests cannot see each other's data.
    tenant_ = "t-" + NewId("x").substr(2, 10);
    patient_id_ = "pt-" + NewId("x").substr(2, 10);
  }

  Caller Clinician(const std::string& tenant = "") const {
    return Caller(*cluster_, MakeToken(*keys_, tenant.empty() ? tenant_ : tenant, "clin-1", {"clinician"}));
  }
  Caller Integrator() const { return Caller(*cluster_, MakeToken(*keys_, tenant_, "ehr-1", {"integrator"})); }
  Caller Patient(const std::string& patient_id = "") const {
    const std::string id = patient_id.empty() ? patient_id_ : patient_id;
    return Caller(*cluster_, MakeToken(*keys_, tenant_, id, {"patient"}, id));
  }

  long CountRows(const std::string& sql) const {
    const std::string conninfo = "host=127.0.0.1 port=" + std::to_string(postgres_->port()) + " user=postgres dbname=physio";
    PGconn* conn = PQconnectdb(conninfo.c_str());
    const char* params[] = {tenant_.c_str()};
    PGresult* result = PQexecParams(conn, sql.c_str(), 1, nullptr, params, nullptr, nullptr, 0);
    long count = PQresultStatus(result) == PGRES_TUPLES_OK ? std::stol(PQgetvalue(result, 0, 0)) : -1;
    PQclear(result);
    PQfinish(conn);
    return count;
  }

  apb::IntakeSession StartIntake(const Caller& caller, const std::string& request_id = "") {
    apb::StartIntakeRequest request;
    request.set_request_id(request_id.empty() ? NewId("rq") : request_id);
    request.set_patient_id(patient_id_);
    apb::StartIntakeResponse response;
    auto status = caller.Call(caller.assessment.get(), &apb::AssessmentService::Stub::StartIntake, request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response.session();
  }

  grpc::Status Submit(const Caller& caller, const std::string& session_id,
                      const std::vector<cpb::InstrumentAnswer>& answers, apb::IntakeSession* out = nullptr,
                      const std::string& request_id = "") {
    apb::SubmitIntakeAnswersRequest request;
    request.set_request_id(request_id.empty() ? NewId("rq") : request_id);
    request.set_session_id(session_id);
    for (const auto& answer : answers) *request.add_answers() = answer;
    apb::SubmitIntakeAnswersResponse response;
    auto status =
        caller.Call(caller.assessment.get(), &apb::AssessmentService::Stub::SubmitIntakeAnswers, request, &response);
    if (out) *out = response.session();
    return status;
  }

  // The red-flag questions answered, nothing found: a plan needs a screen.
  void ScreenNoRedFlags(const Caller& caller, const std::string& session_id) {
    apb::SubmitIntakeAnswersRequest request;
    request.set_request_id(NewId("rq"));
    request.set_session_id(session_id);
    request.mutable_red_flag_screen();
    apb::SubmitIntakeAnswersResponse response;
    EXPECT_TRUE(
        caller.Call(caller.assessment.get(), &apb::AssessmentService::Stub::SubmitIntakeAnswers, request, &response)
            .ok());
  }

  // The intake of the clinical reference's worked example: pain 6; ODI 16 over 9 sections (35.6%).
  std::vector<cpb::InstrumentAnswer> FullIntake() {
    std::vector<cpb::InstrumentAnswer> answers = {Answer(cpb::INSTRUMENT_NPRS, "nprs", 6)};
    const int odi[] = {2, 1, 3, 1, 2, 2, 1, 0, 2, 2};
    for (int i = 0; i < 10; ++i) {
      answers.push_back(Answer(cpb::INSTRUMENT_ODI, "odi." + std::to_string(i + 1), odi[i], i == 7));
    }
    return answers;
  }

  grpc::Status Complete(const Caller& caller, const std::string& session_id, apb::Assessment* out,
                        const std::string& request_id = "") {
    apb::CompleteIntakeRequest request;
    request.set_request_id(request_id.empty() ? NewId("rq") : request_id);
    request.set_session_id(session_id);
    apb::CompleteIntakeResponse response;
    auto status = caller.Call(caller.assessment.get(), &apb::AssessmentService::Stub::CompleteIntake, request, &response);
    if (out) *out = response.assessment();
    return status;
  }

  apb::Assessment CompletedAssessment() {
    auto patient = Patient();
    auto session = StartIntake(patient);
    EXPECT_TRUE(Submit(patient, session.session_id(), FullIntake()).ok());
    ScreenNoRedFlags(patient, session.session_id());
    apb::Assessment assessment;
    auto status = Complete(patient, session.session_id(), &assessment);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return assessment;
  }

  grpc::Status Generate(const Caller& caller, const std::string& assessment_id, ppb::Plan* out,
                        const std::string& request_id = "") {
    ppb::GeneratePlanRequest request;
    request.set_request_id(request_id.empty() ? NewId("rq") : request_id);
    request.set_assessment_id(assessment_id);
    ppb::GeneratePlanResponse response;
    auto status = caller.Call(caller.planning.get(), &ppb::PlanningService::Stub::GeneratePlan, request, &response);
    if (out) *out = response.plan();
    return status;
  }

  grpc::Status Approve(const std::string& plan_id, const std::string& etag, ppb::Plan* out = nullptr) {
    auto clinician = Clinician();
    ppb::ApprovePlanRequest request;
    request.set_request_id(NewId("rq"));
    request.set_plan_id(plan_id);
    request.set_etag(etag);
    ppb::ApprovePlanResponse response;
    auto status = clinician.Call(clinician.planning.get(), &ppb::PlanningService::Stub::ApprovePlan, request, &response);
    if (out) *out = response.plan();
    return status;
  }

  ppb::Plan ActivePlan() {
    auto assessment = CompletedAssessment();
    ppb::Plan draft, active;
    EXPECT_TRUE(Generate(Clinician(), assessment.assessment_id(), &draft).ok());
    EXPECT_TRUE(Approve(draft.plan_id(), draft.etag(), &active).ok());
    return active;
  }

  grpc::Status LogExercise(const Caller& caller, const std::string& exercise_id, int pain_after,
                           gpb::HomeExerciseLog* out = nullptr, const std::string& request_id = "") {
    gpb::LogHomeExerciseRequest request;
    request.set_request_id(request_id.empty() ? NewId("rq") : request_id);
    request.set_patient_id(patient_id_);
    request.set_exercise_id(exercise_id);
    request.set_sets_done(2);
    request.set_reps_done(10);
    request.set_pain_during(pain_after);
    request.set_pain_after(pain_after);
    gpb::LogHomeExerciseResponse response;
    auto status = caller.Call(caller.progress.get(), &gpb::ProgressService::Stub::LogHomeExercise, request, &response);
    if (out) *out = response.log();
    return status;
  }

  gpb::ProgressSummary Summary(const Caller& caller) {
    gpb::GetProgressSummaryRequest request;
    request.set_patient_id(patient_id_);
    gpb::GetProgressSummaryResponse response;
    auto status =
        caller.Call(caller.progress.get(), &gpb::ProgressService::Stub::GetProgressSummary, request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response.summary();
  }

  std::string tenant_;
  std::string patient_id_;
};


TEST_F(Foundation, FullEpisodeThroughAllThreeServices) {
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
  gpb::RecordVisitRequest visit;
  visit.set_request_id(NewId("rq"));
  visit.set_patient_id(patient_id_);
  visit.set_kind(gpb::VISIT_KIND_CLINIC);
  visit.set_pain_before(5);
  gpb::RecordVisitResponse visited;
  ASSERT_TRUE(clinician.Call(clinician.progress.get(), &gpb::ProgressService::Stub::RecordVisit, visit, &visited).ok());
  ASSERT_TRUE(LogExercise(patient, "ex.motor.abdominal_bracing", 4).ok());
  ASSERT_TRUE(LogExercise(patient, "ex.strength.glute_bridge", 3).ok());

  auto summary = Summary(patient);
  EXPECT_EQ(summary.active_plan().plan_id(), active.plan_id());
  EXPECT_EQ(summary.visit_count(), 1);
  EXPECT_EQ(summary.home_log_count(), 2);
  EXPECT_EQ(summary.baseline_pain(), 6);
  EXPECT_EQ(summary.latest_pain(), 3);
  EXPECT_DOUBLE_EQ(summary.recent_pain_mean(), 4.0);  // (5 + 4 + 3) / 3: the week's mean
  EXPECT_EQ(summary.pain_change(), -2);
  EXPECT_TRUE(summary.pain_change_meaningful());
  ASSERT_EQ(summary.pain_trend_size(), 4);
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
  ASSERT_EQ(summary.pain_trend_size(), 5);
  EXPECT_EQ(summary.pain_trend(4).source(), "remeasure");
  EXPECT_EQ(summary.latest_pain(), 2);
  EXPECT_DOUBLE_EQ(summary.recent_pain_mean(), 3.5);
}

TEST_F(Foundation, RepeatedRequestIdCreatesOneRecord) {
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

TEST_F(Foundation, ConcurrentRetriesWithOneRequestIdCreateOneRecord) {
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

TEST_F(Foundation, CallsWithoutAValidTokenAreUnauthenticated) {
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

TEST_F(Foundation, AnotherTenantCannotReadTheRecords) {
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

TEST_F(Foundation, APatientCannotReachAnotherPatientsRecords) {
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

TEST_F(Foundation, BadInputIsInvalidArgumentNamingTheField) {
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

TEST_F(Foundation, IntakeLifecycleErrors) {
  auto patient = Patient();
  auto session = StartIntake(patient);
  ASSERT_TRUE(Submit(patient, session.session_id(), {Answer(cpb::INSTRUMENT_NPRS, "nprs", 4)}).ok());
  auto incomplete = Complete(patient, session.session_id(), nullptr);
  EXPECT_EQ(incomplete.error_code(), StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(incomplete.error_message().find("odi.1"), std::string::npos);
  ASSERT_TRUE(Submit(patient, session.session_id(), FullIntake()).ok());
  ASSERT_TRUE(Complete(patient, session.session_id(), nullptr).ok());
  EXPECT_EQ(Submit(patient, session.session_id(), {Answer(cpb::INSTRUMENT_NPRS, "nprs", 2)}).error_code(),
            StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(Submit(patient, "intake_does_not_exist", {Answer(cpb::INSTRUMENT_NPRS, "nprs", 2)}).error_code(),
            StatusCode::NOT_FOUND);
}

TEST_F(Foundation, ConcurrentSubmissionsToOneSessionLoseNothing) {
  auto patient = Patient();
  auto session = StartIntake(patient);
  auto answers = FullIntake();
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (const auto& answer : answers) {
    threads.emplace_back([&, answer] {
      if (!Submit(patient, session.session_id(), {answer}).ok()) ++failures;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  apb::GetIntakeRequest request;
  request.set_session_id(session.session_id());
  apb::GetIntakeResponse response;
  ASSERT_TRUE(patient.Call(patient.assessment.get(), &apb::AssessmentService::Stub::GetIntake, request, &response).ok());
  EXPECT_EQ(response.session().answers_size(), 11);
  EXPECT_TRUE(response.session().progress(0).complete());
  EXPECT_TRUE(response.session().progress(1).complete());
}

TEST_F(Foundation, StaleEtagIsAbortedAndChangesNothing) {
  auto assessment = CompletedAssessment();
  ppb::Plan draft;
  ASSERT_TRUE(Generate(Clinician(), assessment.assessment_id(), &draft).ok());
  EXPECT_EQ(Approve(draft.plan_id(), "v0").error_code(), StatusCode::ABORTED);
  ppb::GetPlanRequest get;
  get.set_plan_id(draft.plan_id());
  ppb::GetPlanResponse got;
  auto clinician = Clinician();
  ASSERT_TRUE(clinician.Call(clinician.planning.get(), &ppb::PlanningService::Stub::GetPlan, get, &got).ok());
  EXPECT_EQ(got.plan().status(), ppb::PLAN_STATUS_DRAFT);
  EXPECT_EQ(got.plan().etag(), draft.etag());

  ppb::Plan first;
  ASSERT_TRUE(Approve(draft.plan_id(), draft.etag(), &first).ok());
  // The etag the first approval consumed is stale now.
  EXPECT_EQ(Approve(draft.plan_id(), draft.etag()).error_code(), StatusCode::ABORTED);

  // A second approved plan supersedes the first: one active plan per patient.
  ppb::Plan second_draft, second;
  ASSERT_TRUE(Generate(Clinician(), assessment.assessment_id(), &second_draft).ok());
  ASSERT_TRUE(Approve(second_draft.plan_id(), second_draft.etag(), &second).ok());
  ppb::GetActivePlanRequest active_request;
  active_request.set_patient_id(patient_id_);
  ppb::GetActivePlanResponse active;
  ASSERT_TRUE(
      clinician.Call(clinician.planning.get(), &ppb::PlanningService::Stub::GetActivePlan, active_request, &active).ok());
  EXPECT_EQ(active.plan().plan_id(), second.plan_id());
  ASSERT_TRUE(clinician.Call(clinician.planning.get(), &ppb::PlanningService::Stub::GetPlan, get, &got).ok());
  EXPECT_EQ(got.plan().status(), ppb::PLAN_STATUS_SUPERSEDED);
  EXPECT_EQ(CountRows("SELECT count(*) FROM planning.plans WHERE tenant_id = $1 AND status = 'ACTIVE'"), 1);
}

TEST_F(Foundation, HomeLogsMustMatchTheActivePlan) {
  auto patient = Patient();
  auto no_plan = LogExercise(patient, "ex.strength.glute_bridge", 3);
  EXPECT_EQ(no_plan.error_code(), StatusCode::FAILED_PRECONDITION);
  ActivePlan();
  auto not_prescribed = LogExercise(patient, "ex.strength.goblet_squat", 3);
  EXPECT_EQ(not_prescribed.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(not_prescribed.error_message().find("exercise_id"), std::string::npos);
  auto education_item = LogExercise(patient, "edu.self_management", 3);
  EXPECT_EQ(education_item.error_code(), StatusCode::INVALID_ARGUMENT);
}

TEST_F(Foundation, PatientDataAccessIsAudited) {
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

TEST_F(Foundation, ScoreInstrumentScoresWithoutStoring) {
  auto clinician = Clinician();
  apb::ScoreInstrumentRequest request;
  request.set_instrument(cpb::INSTRUMENT_START_BACK);
  const int sbt[] = {1, 0, 1, 0, 1, 1, 0, 1, 3};  // total 6, psychosocial 4 -> high
  for (int i = 0; i < 9; ++i) *request.add_answers() = Answer(cpb::INSTRUMENT_START_BACK, "sbt." + std::to_string(i + 1), sbt[i]);
  apb::ScoreInstrumentResponse response;
  ASSERT_TRUE(clinician.Call(clinician.assessment.get(), &apb::AssessmentService::Stub::ScoreInstrument, request,
                             &response).ok());
  EXPECT_DOUBLE_EQ(response.score().score(), 6);
  EXPECT_EQ(response.score().band(), "high");
  ASSERT_EQ(response.score().subscores_size(), 1);
  EXPECT_EQ(response.score().subscores(0).name(), "psychosocial");
  EXPECT_DOUBLE_EQ(response.score().subscores(0).value(), 4);
  EXPECT_EQ(CountRows("SELECT count(*) FROM assessment.assessments WHERE tenant_id = $1"), 0);

  // An answer to another instrument and an incomplete set are refused with the reason.
  *request.add_answers() = Answer(cpb::INSTRUMENT_ODI, "odi.1", 1);
  auto status = clinician.Call(clinician.assessment.get(), &apb::AssessmentService::Stub::ScoreInstrument, request,
                               &response);
  EXPECT_EQ(status.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("answers[9].instrument"), std::string::npos);
  apb::ScoreInstrumentRequest partial;
  partial.set_instrument(cpb::INSTRUMENT_START_BACK);
  *partial.add_answers() = Answer(cpb::INSTRUMENT_START_BACK, "sbt.1", 1);
  status = clinician.Call(clinician.assessment.get(), &apb::AssessmentService::Stub::ScoreInstrument, partial, &response);
  EXPECT_EQ(status.error_code(), StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(status.error_message().find("sbt.2"), std::string::npos);
  // Nothing is stored, so patients may use it (their app scores a re-measure through progress).
  auto patient = Patient();
  EXPECT_EQ(patient.Call(patient.assessment.get(), &apb::AssessmentService::Stub::ScoreInstrument, partial, &response)
                .error_code(),
            StatusCode::FAILED_PRECONDITION);
}

TEST_F(Foundation, IntakeAsksForTheChosenInstruments) {
  auto patient = Patient();
  apb::StartIntakeRequest start;
  start.set_request_id(NewId("rq"));
  start.set_patient_id(patient_id_);
  start.add_instruments(cpb::INSTRUMENT_START_BACK);
  start.add_instruments(cpb::INSTRUMENT_PSFS);
  apb::StartIntakeResponse started;
  ASSERT_TRUE(patient.Call(patient.assessment.get(), &apb::AssessmentService::Stub::StartIntake, start, &started).ok());
  ASSERT_EQ(started.session().progress_size(), 2);
  EXPECT_EQ(started.session().progress(0).instrument(), cpb::INSTRUMENT_START_BACK);
  const std::string session_id = started.session().session_id();

  auto status = Submit(patient, session_id, {Answer(cpb::INSTRUMENT_NPRS, "nprs", 3), Answer(cpb::INSTRUMENT_ODI, "odi.1", 1)});
  EXPECT_EQ(status.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("answers[0].instrument"), std::string::npos) << status.error_message();

  std::vector<cpb::InstrumentAnswer> answers;
  for (int i = 1; i <= 9; ++i) answers.push_back(Answer(cpb::INSTRUMENT_START_BACK, "sbt." + std::to_string(i), 0));
  for (int i = 1; i <= 3; ++i) {
    auto activity = Answer(cpb::INSTRUMENT_PSFS, "psfs." + std::to_string(i), 3 + i);
    activity.set_text(i == 1 ? "Lifting my toddler" : "Activity " + std::to_string(i));
    answers.push_back(activity);
  }
  apb::IntakeSession session;
  ASSERT_TRUE(Submit(patient, session_id, answers, &session).ok());
  EXPECT_TRUE(session.progress(0).complete());
  EXPECT_TRUE(session.progress(1).complete());
  apb::Assessment assessment;
  ASSERT_TRUE(Complete(patient, session_id, &assessment).ok());
  ASSERT_EQ(assessment.scores_size(), 2);
  EXPECT_EQ(assessment.scores(0).band(), "low");
  EXPECT_DOUBLE_EQ(assessment.scores(1).score(), 5.0);  // mean of 4, 5, 6
  bool text_kept = false;
  for (const auto& answer : assessment.answers()) text_kept |= answer.text() == "Lifting my toddler";
  EXPECT_TRUE(text_kept);

  start.set_request_id(NewId("rq"));
  start.add_instruments(cpb::INSTRUMENT_PSFS);
  status = patient.Call(patient.assessment.get(), &apb::AssessmentService::Stub::StartIntake, start, &started);
  EXPECT_EQ(status.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("instruments[2]"), std::string::npos);
}

TEST_F(Foundation, IntegratorsImportAndListAssessmentsPageByPage) {
  auto integrator = Integrator();
  auto create = [&](int pain, const std::string& request_id, apb::Assessment* out) {
    apb::CreateAssessmentRequest request;
    request.set_request_id(request_id);
    request.set_patient_id(patient_id_);
    *request.add_answers() = Answer(cpb::INSTRUMENT_NPRS, "nprs", pain);
    for (int i = 1; i <= 24; ++i) *request.add_answers() = Answer(cpb::INSTRUMENT_RMDQ, "rmdq." + std::to_string(i), i <= pain);
    apb::CreateAssessmentResponse response;
    auto status =
        integrator.Call(integrator.assessment.get(), &apb::AssessmentService::Stub::CreateAssessment, request, &response);
    if (out) *out = response.assessment();
    return status;
  };
  apb::Assessment first, retried;
  ASSERT_TRUE(create(7, "import-1", &first).ok());
  ASSERT_EQ(first.scores_size(), 2);
  EXPECT_EQ(first.scores(0).instrument(), cpb::INSTRUMENT_NPRS);
  EXPECT_DOUBLE_EQ(first.scores(1).score(), 7);  // RMDQ: seven "yes"
  ASSERT_TRUE(create(7, "import-1", &retried).ok());
  EXPECT_EQ(retried.assessment_id(), first.assessment_id());
  for (int pain = 6; pain >= 3; --pain) ASSERT_TRUE(create(pain, "import-" + std::to_string(10 - pain), nullptr).ok());

  // An incomplete instrument is refused, naming what is missing.
  apb::CreateAssessmentRequest partial;
  partial.set_request_id("import-partial");
  partial.set_patient_id(patient_id_);
  *partial.add_answers() = Answer(cpb::INSTRUMENT_RMDQ, "rmdq.1", 1);
  apb::CreateAssessmentResponse ignored;
  auto status = integrator.Call(integrator.assessment.get(), &apb::AssessmentService::Stub::CreateAssessment, partial, &ignored);
  EXPECT_EQ(status.error_code(), StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(status.error_message().find("rmdq.2"), std::string::npos);

  // Five assessments in pages of two: newest first, each exactly once.
  std::vector<std::string> seen;
  std::vector<double> pains;
  apb::ListAssessmentsRequest list;
  list.set_patient_id(patient_id_);
  list.set_page_size(2);
  int pages = 0;
  do {
    apb::ListAssessmentsResponse page;
    ASSERT_TRUE(integrator.Call(integrator.assessment.get(), &apb::AssessmentService::Stub::ListAssessments, list, &page).ok());
    for (const auto& a : page.assessments()) {
      seen.push_back(a.assessment_id());
      pains.push_back(a.scores(0).score());
    }
    list.set_page_token(page.next_page_token());
    ++pages;
  } while (!list.page_token().empty() && pages < 10);
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(seen.size(), 5u);
  EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()).size(), 5u);
  EXPECT_EQ(pains, (std::vector<double>{3, 4, 5, 6, 7}));

  // Tokens are checked; a patient lists only their own; another tenant sees nothing.
  apb::ListAssessmentsResponse page;
  list.set_page_token("zz-not-a-token");
  status = integrator.Call(integrator.assessment.get(), &apb::AssessmentService::Stub::ListAssessments, list, &page);
  EXPECT_EQ(status.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("page_token"), std::string::npos);
  list.set_page_token("");
  list.set_page_size(101);
  EXPECT_EQ(integrator.Call(integrator.assessment.get(), &apb::AssessmentService::Stub::ListAssessments, list, &page)
                .error_code(),
            StatusCode::INVALID_ARGUMENT);
  list.set_page_size(0);
  auto patient = Patient();
  ASSERT_TRUE(patient.Call(patient.assessment.get(), &apb::AssessmentService::Stub::ListAssessments, list, &page).ok());
  EXPECT_EQ(page.assessments_size(), 5);
  auto other = Patient("pt-other");
  EXPECT_EQ(other.Call(other.assessment.get(), &apb::AssessmentService::Stub::ListAssessments, list, &page).error_code(),
            StatusCode::PERMISSION_DENIED);
  auto intruder = Clinician("other-tenant");
  ASSERT_TRUE(intruder.Call(intruder.assessment.get(), &apb::AssessmentService::Stub::ListAssessments, list, &page).ok());
  EXPECT_EQ(page.assessments_size(), 0);
}

TEST_F(Foundation, RedFlagsAndClassificationTravelWithTheAssessment) {
  auto patient = Patient();
  auto clinician = Clinician();
  auto session = StartIntake(patient);
  ASSERT_TRUE(Submit(patient, session.session_id(), FullIntake()).ok());

  // The patient answers history and red flags; examination is for clinicians only.
  apb::SubmitIntakeAnswersRequest details;
  details.set_request_id(NewId("rq"));
  details.set_session_id(session.session_id());
  details.mutable_history()->set_age_years(62);
  details.mutable_history()->set_episode_duration_days(40);
  details.mutable_history()->set_symptom_extent(apb::SYMPTOM_EXTENT_THIGH);
  details.mutable_red_flag_screen()->set_history_of_cancer(true);
  details.mutable_examination()->set_directional_preference(apb::DIRECTIONAL_PREFERENCE_EXTENSION);
  apb::SubmitIntakeAnswersResponse submitted;
  auto status = patient.Call(patient.assessment.get(), &apb::AssessmentService::Stub::SubmitIntakeAnswers, details,
                             &submitted);
  EXPECT_EQ(status.error_code(), StatusCode::PERMISSION_DENIED);
  EXPECT_NE(status.error_message().find("examination"), std::string::npos);
  details.clear_examination();
  details.mutable_history()->set_age_years(130);
  status = patient.Call(patient.assessment.get(), &apb::AssessmentService::Stub::SubmitIntakeAnswers, details, &submitted);
  EXPECT_EQ(status.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("history.age_years"), std::string::npos);
  details.mutable_history()->set_age_years(62);
  ASSERT_TRUE(patient.Call(patient.assessment.get(), &apb::AssessmentService::Stub::SubmitIntakeAnswers, details,
                           &submitted).ok());
  EXPECT_TRUE(submitted.session().red_flag_screen().history_of_cancer());
  apb::SubmitIntakeAnswersRequest exam;
  exam.set_request_id(NewId("rq"));
  exam.set_session_id(session.session_id());
  exam.mutable_examination()->set_directional_preference(apb::DIRECTIONAL_PREFERENCE_EXTENSION);
  exam.mutable_examination()->set_centralisation(true);
  ASSERT_TRUE(clinician.Call(clinician.assessment.get(), &apb::AssessmentService::Stub::SubmitIntakeAnswers, exam,
                             &submitted).ok());

  apb::Assessment assessment;
  ASSERT_TRUE(Complete(patient, session.session_id(), &assessment).ok());
  EXPECT_EQ(assessment.red_flags().action(), apb::RED_FLAG_ACTION_URGENT_REFERRAL);
  ASSERT_EQ(assessment.red_flags().concerns_size(), 1);
  EXPECT_EQ(assessment.red_flags().concerns(0).condition(), "malignancy");
  EXPECT_EQ(assessment.classification().phase(), cpb::PHASE_MOVEMENT_CONTROL);
  EXPECT_EQ(assessment.classification().subgroup(), apb::SUBGROUP_SPECIFIC_EXERCISE);
  EXPECT_EQ(assessment.classification().direction(), "extension");

  // An urgent referral means a referral instead of a treatment plan...
  ppb::Plan referral;
  ASSERT_TRUE(Generate(clinician, assessment.assessment_id(), &referral).ok());
  EXPECT_EQ(referral.type(), ppb::PLAN_TYPE_REFERRAL);
  ASSERT_EQ(referral.items_size(), 1);
  EXPECT_EQ(referral.items(0).kind(), ppb::PLAN_ITEM_KIND_REFERRAL);
  EXPECT_NE(referral.items(0).reason().find("history of cancer"), std::string::npos);

  // ...until the clinician records their own judgement beside the computed one.
  apb::RecordRedFlagJudgementRequest judge;
  judge.set_request_id(NewId("rq"));
  judge.set_assessment_id(assessment.assessment_id());
  judge.set_etag("v0");
  judge.set_action(apb::RED_FLAG_ACTION_MONITOR);
  judge.set_rationale("Cancer treated 15 years ago, discharged from oncology follow-up; safety-netting given.");
  apb::RecordRedFlagJudgementResponse judged;
  EXPECT_EQ(clinician.Call(clinician.assessment.get(), &apb::AssessmentService::Stub::RecordRedFlagJudgement, judge,
                           &judged).error_code(),
            StatusCode::ABORTED);
  judge.set_etag(assessment.etag());
  ASSERT_TRUE(clinician.Call(clinician.assessment.get(), &apb::AssessmentService::Stub::RecordRedFlagJudgement, judge,
                             &judged).ok());
  EXPECT_EQ(judged.assessment().red_flags().action(), apb::RED_FLAG_ACTION_URGENT_REFERRAL);  // computed one kept
  EXPECT_EQ(judged.assessment().clinician_red_flag_judgement().action(), apb::RED_FLAG_ACTION_MONITOR);
  EXPECT_EQ(judged.assessment().clinician_red_flag_judgement().clinician(), "clin-1");
  EXPECT_NE(judged.assessment().etag(), assessment.etag());
  judge.set_request_id(NewId("rq"));
  EXPECT_EQ(patient.Call(patient.assessment.get(), &apb::AssessmentService::Stub::RecordRedFlagJudgement, judge,
                         &judged).error_code(),
            StatusCode::PERMISSION_DENIED);
  ppb::Plan plan;
  ASSERT_TRUE(Generate(clinician, assessment.assessment_id(), &plan).ok());
  EXPECT_EQ(plan.type(), ppb::PLAN_TYPE_TREATMENT);
  EXPECT_EQ(plan.phase(), cpb::PHASE_MOVEMENT_CONTROL);
  bool directional = false;
  for (const auto& item : plan.items()) directional |= item.item_id().rfind("ex.dir.", 0) == 0;
  EXPECT_TRUE(directional);  // the extension subgroup's directional exercise
}

// Runs the independent FHIR validator on a JSON document; true when valid.
bool FhirValid(const std::string& json, const std::string& name) {
  const std::string path = "/tmp/physio-fhir-" + name + "-" + NewId("f").substr(2, 8) + ".json";
  std::ofstream(path) << json;
  const std::string command = "node " PHYSIO_SOURCE_DIR "/scripts/node/validate-fhir.js " + path;
  const int rc = std::system(command.c_str());
  std::remove(path.c_str());
  return rc == 0;
}

// An assessment with all six instruments (an ODI item declined, PSFS activities
// named), history, examination and a red-flag screen, stored through CreateAssessment.
apb::Assessment StoreFullAssessment(const Caller& integrator, const std::string& patient_id) {
  apb::CreateAssessmentRequest create;
  create.set_request_id(NewId("rq"));
  create.set_patient_id(patient_id);
  *create.add_answers() = Answer(cpb::INSTRUMENT_NPRS, "nprs", 7);
  for (int i = 1; i <= 10; ++i) *create.add_answers() = Answer(cpb::INSTRUMENT_ODI, "odi." + std::to_string(i), 3, i == 8);
  for (int i = 1; i <= 9; ++i) *create.add_answers() = Answer(cpb::INSTRUMENT_START_BACK, "sbt." + std::to_string(i), i == 9 ? 4 : 1);
  for (int i = 1; i <= 16; ++i) *create.add_answers() = Answer(cpb::INSTRUMENT_FABQ, "fabq." + std::to_string(i), 5);
  for (int i = 1; i <= 24; ++i) *create.add_answers() = Answer(cpb::INSTRUMENT_RMDQ, "rmdq." + std::to_string(i), i % 2);
  for (int i = 1; i <= 3; ++i) {
    auto activity = Answer(cpb::INSTRUMENT_PSFS, "psfs." + std::to_string(i), 2 + i);
    activity.set_text("Activity \"" + std::to_string(i) + "\"");
    *create.add_answers() = activity;
  }
  create.mutable_history()->set_age_years(45);
  create.mutable_history()->set_episode_duration_days(8);
  create.mutable_history()->set_symptom_extent(apb::SYMPTOM_EXTENT_BUTTOCK);
  create.mutable_red_flag_screen()->set_osteoporosis(true);
  create.mutable_examination()->set_lumbar_hypomobility(true);
  apb::CreateAssessmentResponse created;
  EXPECT_TRUE(integrator.Call(integrator.assessment.get(), &apb::AssessmentService::Stub::CreateAssessment, create,
                              &created).ok());
  return created.assessment();
}

TEST_F(Foundation, FhirExportPassesAnIndependentValidator) {
  auto integrator = Integrator();
  apb::CreateAssessmentResponse created;
  *created.mutable_assessment() = StoreFullAssessment(integrator, patient_id_);

  apb::ExportAssessmentFhirRequest request;
  request.set_assessment_id(created.assessment().assessment_id());
  apb::ExportAssessmentFhirResponse exported;
  ASSERT_TRUE(integrator.Call(integrator.assessment.get(), &apb::AssessmentService::Stub::ExportAssessmentFhir, request,
                              &exported).ok());
  const std::string& bundle = exported.bundle_json();
  EXPECT_NE(bundle.find("\"resourceType\":\"Bundle\""), std::string::npos);
  EXPECT_NE(bundle.find("\"QuestionnaireResponse\""), std::string::npos);
  EXPECT_NE(bundle.find("72514-3"), std::string::npos);   // pain, LOINC
  EXPECT_NE(bundle.find("97909-6"), std::string::npos);   // ODI score, LOINC
  EXPECT_NE(bundle.find("91351-7"), std::string::npos);   // STarT Back total, LOINC
  EXPECT_NE(bundle.find("LA9193-9"), std::string::npos);  // high risk answer code
  EXPECT_NE(bundle.find("fabq_work_elevated"), std::string::npos);
  EXPECT_NE(bundle.find("Patient/" + patient_id_), std::string::npos);
  EXPECT_TRUE(FhirValid(bundle, "assessment"));

  // Same assessment, same bundle.
  apb::ExportAssessmentFhirResponse again;
  ASSERT_TRUE(integrator.Call(integrator.assessment.get(), &apb::AssessmentService::Stub::ExportAssessmentFhir, request,
                              &again).ok());
  EXPECT_EQ(again.bundle_json(), bundle);

  // The check can fail: an Observation without its required status is rejected.
  std::string broken = bundle;
  const auto at = broken.find("\"status\":\"final\",");
  ASSERT_NE(at, std::string::npos);
  broken.erase(at, std::string("\"status\":\"final\",").size());
  EXPECT_FALSE(FhirValid(broken, "broken"));

  // Another tenant cannot export it.
  auto intruder = Clinician("other-tenant");
  EXPECT_EQ(intruder.Call(intruder.assessment.get(), &apb::AssessmentService::Stub::ExportAssessmentFhir, request,
                          &exported).error_code(),
            StatusCode::NOT_FOUND);
}

// FHIR in as well as out: the exported bundle, imported for the same patient,
// gives an assessment with the same scores; one QuestionnaireResponse alone
// imports too; a resource about another patient, an unknown questionnaire or
// item, and a patient caller are refused.
TEST_F(Foundation, FhirExportThenImportGivesTheSameScores) {
  auto integrator = Integrator();
  const apb::Assessment original = StoreFullAssessment(integrator, patient_id_);
  apb::ExportAssessmentFhirRequest export_request;
  export_request.set_assessment_id(original.assessment_id());
  apb::ExportAssessmentFhirResponse exported;
  ASSERT_TRUE(integrator.Call(integrator.assessment.get(), &apb::AssessmentService::Stub::ExportAssessmentFhir,
                              export_request, &exported).ok());
  const std::string& bundle = exported.bundle_json();
  EXPECT_NE(bundle.find(R"("identifier":{"system":"https://physio-backend.org/fhir/patient-id","value":")" + patient_id_),
            std::string::npos)
      << "patients referenced by identifier too";

  apb::ImportFhirQuestionnaireResponseRequest import;
  import.set_request_id(NewId("rq"));
  import.set_patient_id(patient_id_);
  import.set_resource_json(bundle);
  apb::ImportFhirQuestionnaireResponseResponse imported;
  auto status = integrator.Call(integrator.assessment.get(),
                                &apb::AssessmentService::Stub::ImportFhirQuestionnaireResponse, import, &imported);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_NE(imported.assessment().assessment_id(), original.assessment_id());
  ASSERT_EQ(imported.assessment().scores_size(), original.scores_size());
  std::map<int, const cpb::InstrumentScore*> before;
  for (const auto& score : original.scores()) before[score.instrument()] = &score;
  for (const auto& score : imported.assessment().scores()) {
    ASSERT_TRUE(before.contains(score.instrument())) << cpb::Instrument_Name(score.instrument());
    EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(score, *before[score.instrument()]))
        << score.DebugString() << " vs " << before[score.instrument()]->DebugString();
  }
  // The same request_id again: the same assessment, nothing new.
  apb::ImportFhirQuestionnaireResponseResponse replayed;
  ASSERT_TRUE(integrator.Call(integrator.assessment.get(), &apb::AssessmentService::Stub::ImportFhirQuestionnaireResponse,
                              import, &replayed).ok());
  EXPECT_EQ(replayed.assessment().assessment_id(), imported.assessment().assessment_id());

  // One QuestionnaireResponse on its own, its subject by identifier only.
  import.set_request_id(NewId("rq"));
  import.set_resource_json(R"({"resourceType":"QuestionnaireResponse","status":"completed",
      "questionnaire":"https://physio-backend.org/fhir/Questionnaire/nprs",
      "subject":{"identifier":{"system":"https://physio-backend.org/fhir/patient-id","value":")" + patient_id_ + R"("}},
      "item":[{"linkId":"nprs","answer":[{"valueInteger":4}]}]})");
  status = integrator.Call(integrator.assessment.get(), &apb::AssessmentService::Stub::ImportFhirQuestionnaireResponse,
                           import, &imported);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(imported.assessment().scores_size(), 1);
  EXPECT_EQ(imported.assessment().scores(0).score(), 4);

  auto refused = [&](const std::string& resource, const std::string& patient, const Caller& caller) {
    apb::ImportFhirQuestionnaireResponseRequest bad;
    bad.set_request_id(NewId("rq"));
    bad.set_patient_id(patient);
    bad.set_resource_json(resource);
    apb::ImportFhirQuestionnaireResponseResponse ignored;
    return caller.Call(caller.assessment.get(), &apb::AssessmentService::Stub::ImportFhirQuestionnaireResponse, bad,
                       &ignored);
  };
  status = refused(bundle, "pt-someone-else", integrator);
  EXPECT_EQ(status.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("subject"), std::string::npos) << status.error_message();
  std::string unknown_item = bundle;
  unknown_item.replace(unknown_item.find(R"("linkId":"odi.3")"), std::string(R"("linkId":"odi.3")").size(),
                       R"("linkId":"odi.33")");
  status = refused(unknown_item, patient_id_, integrator);
  EXPECT_EQ(status.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("odi.33 is not an item of odi"), std::string::npos) << status.error_message();
  status = refused(R"({"resourceType":"QuestionnaireResponse","status":"completed","questionnaire":"http://example.org/q/1",
      "subject":{"reference":"Patient/)" + patient_id_ + R"("},"item":[]})", patient_id_, integrator);
  EXPECT_EQ(status.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("unknown questionnaire"), std::string::npos) << status.error_message();
  EXPECT_EQ(refused("{not json", patient_id_, integrator).error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(refused(bundle, patient_id_, Patient()).error_code(), StatusCode::PERMISSION_DENIED);
}

TEST_F(Foundation, TheInterventionLibraryIsListedPageByPage) {
  auto patient = Patient();
  ppb::ListInterventionsRequest request;
  request.set_page_size(20);
  std::set<std::string> ids;
  int exercises = 0, pages = 0;
  std::string version;
  do {
    ppb::ListInterventionsResponse page;
    ASSERT_TRUE(patient.Call(patient.planning.get(), &ppb::PlanningService::Stub::ListInterventions, request, &page).ok());
    version = page.library_version();
    for (const auto& entry : page.interventions()) {
      EXPECT_TRUE(ids.insert(entry.intervention_id()).second) << entry.intervention_id();
      if (entry.kind() == ppb::PLAN_ITEM_KIND_EXERCISE) {
        ++exercises;
        EXPECT_GT(entry.dose().sets(), 0);
        EXPECT_FALSE(entry.instructions().empty());
      }
    }
    request.set_page_token(page.next_page_token());
    ++pages;
  } while (!request.page_token().empty() && pages < 20);
  EXPECT_GE(exercises, 40);
  EXPECT_GE(pages, 4);
  EXPECT_FALSE(version.empty());

  ppb::ListInterventionsRequest advised_against;
  advised_against.set_kind(ppb::PLAN_ITEM_KIND_NOT_RECOMMENDED);
  ppb::ListInterventionsResponse listed;
  ASSERT_TRUE(patient.Call(patient.planning.get(), &ppb::PlanningService::Stub::ListInterventions, advised_against,
                           &listed).ok());
  EXPECT_EQ(listed.interventions_size(), 9);
  for (const auto& entry : listed.interventions()) EXPECT_FALSE(entry.reason().empty());
  advised_against.set_page_token("00ff");
  EXPECT_EQ(patient.Call(patient.planning.get(), &ppb::PlanningService::Stub::ListInterventions, advised_against,
                         &listed).error_code(),
            StatusCode::INVALID_ARGUMENT);
}

TEST_F(Foundation, ABadInterventionLibraryStopsThePlanningServiceNamingTheEntry) {
  const std::string path = "/tmp/physio-bad-library-" + NewId("f").substr(2, 8) + ".json";
  std::ofstream(path) << R"({"library_version":"bad","entries":[{"id":"ex.a.one","kind":"exercise","category":"aerobic",)"
                         R"("title":"One","instructions":"x","source":"s","phases":["movement_control"],)"
                         R"("dose":{"sets":1,"reps":1,"hold_seconds":0,"sessions_per_week":99,"duration_minutes":0}}]})";
  auto config = MakeServiceConfig(planning::PlanningConfigKeys(), *keys_, redis_->port(), postgres_->port(), "physio");
  config->Set("library-file", path);
  try {
    planning::StartPlanningService(*config);
    ADD_FAILURE() << "the service started with a bad library";
  } catch (const std::exception& e) {
    EXPECT_STREQ(e.what(), "interventions: entry 'ex.a.one': dose.sessions_per_week must be 1-14, got 99");
  }
  std::remove(path.c_str());
}

TEST_F(Foundation, PlanLifecycleKeepsEveryRevisionWithWhoAndWhy) {
  auto clinician = Clinician();
  auto plan = ActivePlan();  // medium intensity, movement control
  ASSERT_EQ(plan.revision(), 2);

  // A clinician's revision needs the current etag.
  ppb::RevisePlanRequest revise;
  revise.set_request_id(NewId("rq"));
  revise.set_plan_id(plan.plan_id());
  revise.set_etag("v1");
  revise.set_reason("Patient prefers cycling to walking");
  revise.add_changes()->set_remove_item_id("ex.aerobic.walking");
  revise.add_changes()->set_add_intervention_id("ex.aerobic.stationary_cycling");
  auto* dose = revise.add_changes()->mutable_set_dose();
  dose->set_item_id("ex.strength.glute_bridge");
  dose->mutable_dose()->set_sets(2);
  dose->mutable_dose()->set_reps(12);
  dose->mutable_dose()->set_sessions_per_week(3);
  ppb::RevisePlanResponse revised;
  EXPECT_EQ(clinician.Call(clinician.planning.get(), &ppb::PlanningService::Stub::RevisePlan, revise, &revised).error_code(),
            StatusCode::ABORTED);
  revise.set_etag(plan.etag());
  ASSERT_TRUE(clinician.Call(clinician.planning.get(), &ppb::PlanningService::Stub::RevisePlan, revise, &revised).ok());
  EXPECT_EQ(revised.plan().revision(), 3);
  bool cycling = false, walking = false;
  for (const auto& item : revised.plan().items()) {
    cycling |= item.item_id() == "ex.aerobic.stationary_cycling";
    walking |= item.item_id() == "ex.aerobic.walking";
    if (item.item_id() == "ex.strength.glute_bridge") {
      EXPECT_EQ(item.dose().reps(), 12);
    }
  }
  EXPECT_TRUE(cycling);
  EXPECT_FALSE(walking);

  // Manual therapy may not be left without exercise; nothing changes.
  ppb::RevisePlanRequest strip;
  strip.set_request_id(NewId("rq"));
  strip.set_plan_id(plan.plan_id());
  strip.set_etag(revised.plan().etag());
  strip.set_reason("try");
  for (const auto& item : revised.plan().items()) {
    if (item.kind() == ppb::PLAN_ITEM_KIND_EXERCISE) strip.add_changes()->set_remove_item_id(item.item_id());
  }
  ppb::RevisePlanResponse stripped;
  auto status = clinician.Call(clinician.planning.get(), &ppb::PlanningService::Stub::RevisePlan, strip, &stripped);
  EXPECT_EQ(status.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("manual therapy"), std::string::npos);

  // The progress service progresses an exercise along its library link; a retry changes nothing more.
  Caller service(*cluster_, MakeToken(*keys_, tenant_, "svc-progress", {"service"}));
  ppb::AdjustPlanRequest adjust;
  adjust.set_request_id("eval-1");
  adjust.set_plan_id(plan.plan_id());
  adjust.set_adjustment(ppb::ADJUSTMENT_PROGRESS);
  adjust.add_item_ids("ex.motor.abdominal_bracing");
  adjust.set_reason("dose completed, adherence good, no flare");
  ppb::AdjustPlanResponse adjusted, again;
  ASSERT_TRUE(service.Call(service.planning.get(), &ppb::PlanningService::Stub::AdjustPlan, adjust, &adjusted).ok());
  ASSERT_TRUE(service.Call(service.planning.get(), &ppb::PlanningService::Stub::AdjustPlan, adjust, &again).ok());
  EXPECT_EQ(adjusted.plan().revision(), 4);
  EXPECT_EQ(again.plan().revision(), 4);
  bool progressed = false;
  for (const auto& item : adjusted.plan().items()) {
    progressed |= item.item_id() == "ex.motor.bracing_heel_slide";
    EXPECT_NE(item.item_id(), "ex.motor.abdominal_bracing");
  }
  EXPECT_TRUE(progressed);
  adjust.set_request_id("eval-2");
  adjust.clear_item_ids();
  adjust.add_item_ids("edu.self_management");
  status = service.Call(service.planning.get(), &ppb::PlanningService::Stub::AdjustPlan, adjust, &adjusted);
  EXPECT_EQ(status.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("item_ids[0]"), std::string::npos);
  adjust.set_request_id("eval-3");
  adjust.clear_item_ids();
  adjust.set_adjustment(ppb::ADJUSTMENT_MARK_FOR_REASSESSMENT);
  adjust.set_reason("below the meaningful change at week 6");
  ASSERT_TRUE(service.Call(service.planning.get(), &ppb::PlanningService::Stub::AdjustPlan, adjust, &adjusted).ok());
  EXPECT_TRUE(adjusted.plan().needs_reassessment());

  // Completion ends the active plan.
  ppb::CompletePlanRequest complete;
  complete.set_request_id(NewId("rq"));
  complete.set_plan_id(plan.plan_id());
  complete.set_etag(adjusted.plan().etag());
  complete.set_outcome(ppb::PLAN_STATUS_DISCHARGED);
  complete.set_reason("referred to the spinal clinic");
  ppb::CompletePlanResponse completed;
  ASSERT_TRUE(clinician.Call(clinician.planning.get(), &ppb::PlanningService::Stub::CompletePlan, complete, &completed).ok());
  EXPECT_EQ(completed.plan().status(), ppb::PLAN_STATUS_DISCHARGED);
  ppb::GetActivePlanRequest active;
  active.set_patient_id(patient_id_);
  ppb::GetActivePlanResponse got;
  EXPECT_EQ(clinician.Call(clinician.planning.get(), &ppb::PlanningService::Stub::GetActivePlan, active, &got).error_code(),
            StatusCode::NOT_FOUND);

  // The history: every change, who and why, oldest first, in pages.
  ppb::ListPlanRevisionsRequest list;
  list.set_plan_id(plan.plan_id());
  list.set_page_size(4);
  std::vector<std::string> changes;
  do {
    ppb::ListPlanRevisionsResponse page;
    ASSERT_TRUE(clinician.Call(clinician.planning.get(), &ppb::PlanningService::Stub::ListPlanRevisions, list, &page).ok());
    for (const auto& revision : page.revisions()) {
      changes.push_back(revision.change());
      EXPECT_EQ(revision.plan().revision(), revision.revision());
      EXPECT_FALSE(revision.changed_by().empty());
      EXPECT_GT(revision.change_time().seconds(), 0);
    }
    list.set_page_token(page.next_page_token());
  } while (!list.page_token().empty());
  EXPECT_EQ(changes, (std::vector<std::string>{"generated", "approved", "revised", "adjusted", "adjusted", "discharged"}));
  auto intruder = Clinician("other-tenant");
  list.set_page_token("");
  ppb::ListPlanRevisionsResponse none;
  EXPECT_EQ(intruder.Call(intruder.planning.get(), &ppb::PlanningService::Stub::ListPlanRevisions, list, &none).error_code(),
            StatusCode::NOT_FOUND);
}

TEST_F(Foundation, ActivePlanComesFromTheCacheAndIsNeverStale) {
  auto clinician = Clinician();
  auto read_active = [&](ppb::Plan* out) {
    ppb::GetActivePlanRequest request;
    request.set_patient_id(patient_id_);
    ppb::GetActivePlanResponse response;
    auto status = clinician.Call(clinician.planning.get(), &ppb::PlanningService::Stub::GetActivePlan, request, &response);
    if (out) *out = response.plan();
    return status;
  };
  RedisOptions options;
  options.port = redis_->port();
  options.pool_size = 1;
  RedisPool redis(options);
  const std::string cache_key = RedisKey("plan", tenant_, {"active", patient_id_});
  auto cached = [&] {
    auto reply = redis.Command({"EXISTS", cache_key}, Clock::now() + std::chrono::seconds(2));
    return reply->integer == 1;
  };

  auto plan = ActivePlan();
  ppb::Plan seen;
  ASSERT_TRUE(read_active(&seen).ok());
  EXPECT_EQ(seen.revision(), plan.revision());
  EXPECT_TRUE(cached());  // filled by the read
  ASSERT_TRUE(read_active(&seen).ok());  // served from it
  EXPECT_EQ(seen.etag(), plan.etag());

  ppb::AdjustPlanRequest adjust;
  adjust.set_request_id(NewId("rq"));
  adjust.set_plan_id(plan.plan_id());
  adjust.set_adjustment(ppb::ADJUSTMENT_PROGRESS);
  adjust.set_reason("doing well");
  ppb::AdjustPlanResponse adjusted;
  ASSERT_TRUE(clinician.Call(clinician.planning.get(), &ppb::PlanningService::Stub::AdjustPlan, adjust, &adjusted).ok());
  EXPECT_FALSE(cached());  // invalidated by the change
  ASSERT_TRUE(read_active(&seen).ok());
  EXPECT_EQ(seen.revision(), adjusted.plan().revision());
  EXPECT_EQ(seen.etag(), adjusted.plan().etag());

  // A newly approved plan replaces the cached one at once.
  ppb::Plan second_draft, second;
  ASSERT_TRUE(Generate(clinician, plan.assessment_id(), &second_draft).ok());
  ASSERT_TRUE(Approve(second_draft.plan_id(), second_draft.etag(), &second).ok());
  ASSERT_TRUE(read_active(&seen).ok());
  EXPECT_EQ(seen.plan_id(), second.plan_id());

  ppb::CompletePlanRequest complete;
  complete.set_request_id(NewId("rq"));
  complete.set_plan_id(second.plan_id());
  complete.set_etag(second.etag());
  complete.set_outcome(ppb::PLAN_STATUS_COMPLETED);
  complete.set_reason("goals met");
  ppb::CompletePlanResponse completed;
  ASSERT_TRUE(clinician.Call(clinician.planning.get(), &ppb::PlanningService::Stub::CompletePlan, complete, &completed).ok());
  EXPECT_EQ(read_active(nullptr).error_code(), StatusCode::NOT_FOUND);
}

// The course of care in FHIR: visits as Encounters (with their pain readings),
// re-measures as Observations, alerts as Flags, checked by the same validator.
TEST_F(Foundation, ProgressFhirExportPassesAnIndependentValidator) {
  auto clinician = Clinician();
  ApprovedPlanFor(clinician, patient_id_);
  gpb::RecordVisitRequest visit;
  visit.set_request_id(NewId("rq"));
  visit.set_patient_id(patient_id_);
  visit.set_kind(gpb::VISIT_KIND_TELEHEALTH);
  visit.set_clinic_id("clinic-fhir");
  visit.set_pain_before(6);
  visit.set_pain_after(4);
  visit.mutable_red_flag_screen()->set_bladder_or_bowel_disturbance(true);  // raises a red-flag alert
  gpb::RecordVisitResponse recorded;
  auto status = clinician.Call(clinician.progress.get(), &gpb::ProgressService::Stub::RecordVisit, visit, &recorded);
  ASSERT_TRUE(status.ok()) << status.error_message();
  gpb::RecordOutcomeRequest outcome;
  outcome.set_request_id(NewId("rq"));
  outcome.set_patient_id(patient_id_);
  outcome.set_instrument(cpb::INSTRUMENT_ODI);
  for (int i = 1; i <= 10; ++i) *outcome.add_answers() = Answer(cpb::INSTRUMENT_ODI, "odi." + std::to_string(i), 1);
  gpb::RecordOutcomeResponse measured;
  status = clinician.Call(clinician.progress.get(), &gpb::ProgressService::Stub::RecordOutcome, outcome, &measured);
  ASSERT_TRUE(status.ok()) << status.error_message();

  gpb::ExportProgressFhirRequest request;
  request.set_patient_id(patient_id_);
  gpb::ExportProgressFhirResponse exported;
  status = clinician.Call(clinician.progress.get(), &gpb::ProgressService::Stub::ExportProgressFhir, request, &exported);
  ASSERT_TRUE(status.ok()) << status.error_message();
  const std::string& bundle = exported.bundle_json();
  EXPECT_NE(bundle.find(R"("resourceType":"Encounter")"), std::string::npos) << bundle;
  EXPECT_NE(bundle.find(R"("code":"VR")"), std::string::npos) << "a telehealth visit is a virtual encounter";
  EXPECT_NE(bundle.find(R"("resourceType":"Flag")"), std::string::npos);
  EXPECT_NE(bundle.find(R"("status":"active")"), std::string::npos) << "the open alert is an active flag";
  EXPECT_NE(bundle.find("97909-6"), std::string::npos) << "the ODI re-measure, LOINC";
  EXPECT_NE(bundle.find("72514-3"), std::string::npos) << "the visit's pain readings, LOINC";
  EXPECT_NE(bundle.find(recorded.visit().visit_id()), std::string::npos);
  EXPECT_TRUE(FhirValid(bundle, "progress"));

  // The patient may export their own course; another patient may not.
  EXPECT_TRUE(Patient(patient_id_).Call(Patient(patient_id_).progress.get(),
                                        &gpb::ProgressService::Stub::ExportProgressFhir, request, &exported).ok());
  auto stranger = Patient("pt-stranger");
  EXPECT_EQ(stranger.Call(stranger.progress.get(), &gpb::ProgressService::Stub::ExportProgressFhir, request, &exported)
                .error_code(),
            StatusCode::PERMISSION_DENIED);
}

TEST_F(Foundation, PlanFhirExportPassesAnIndependentValidator) {
  // A plan with every kind of item: high risk, traction candidate (not-recommended traction), PSFS goals.
  auto integrator = Integrator();
  apb::CreateAssessmentRequest create;
  create.set_request_id(NewId("rq"));
  create.set_patient_id(patient_id_);
  *create.add_answers() = Answer(cpb::INSTRUMENT_NPRS, "nprs", 6);
  for (int i = 1; i <= 10; ++i) *create.add_answers() = Answer(cpb::INSTRUMENT_ODI, "odi." + std::to_string(i), 2);
  for (int i = 1; i <= 9; ++i) *create.add_answers() = Answer(cpb::INSTRUMENT_START_BACK, "sbt." + std::to_string(i), 1);
  for (int i = 1; i <= 3; ++i) {
    auto activity = Answer(cpb::INSTRUMENT_PSFS, "psfs." + std::to_string(i), 3);
    activity.set_text("Activity " + std::to_string(i));
    *create.add_answers() = activity;
  }
  create.mutable_history()->set_episode_duration_days(120);
  create.mutable_history()->set_symptom_extent(apb::SYMPTOM_EXTENT_BELOW_KNEE);
  create.mutable_examination()->set_nerve_root_signs(true);
  create.mutable_red_flag_screen();  // screened, nothing found
  apb::CreateAssessmentResponse created;
  ASSERT_TRUE(integrator.Call(integrator.assessment.get(), &apb::AssessmentService::Stub::CreateAssessment, create,
                              &created).ok());
  ppb::Plan draft, active;
  ASSERT_TRUE(Generate(Clinician(), created.assessment().assessment_id(), &draft).ok());
  EXPECT_EQ(draft.intensity(), ppb::INTENSITY_PSYCHOLOGICALLY_INFORMED);
  ASSERT_TRUE(Approve(draft.plan_id(), draft.etag(), &active).ok());

  ppb::ExportPlanFhirRequest request;
  request.set_plan_id(active.plan_id());
  ppb::ExportPlanFhirResponse exported;
  ASSERT_TRUE(integrator.Call(integrator.planning.get(), &ppb::PlanningService::Stub::ExportPlanFhir, request, &exported).ok());
  const std::string& bundle = exported.bundle_json();
  EXPECT_NE(bundle.find("\"CarePlan\""), std::string::npos);
  EXPECT_NE(bundle.find("\"Goal\""), std::string::npos);
  EXPECT_NE(bundle.find("229065009"), std::string::npos);         // exercise therapy
  EXPECT_NE(bundle.find("\"doNotPerform\":true"), std::string::npos);  // traction, advised against
  EXPECT_NE(bundle.find("Activity 1"), std::string::npos);        // a PSFS goal
  EXPECT_TRUE(FhirValid(bundle, "careplan"));
  std::string broken = bundle;
  const auto at = broken.find("\"intent\":\"plan\",");
  ASSERT_NE(at, std::string::npos);
  broken.erase(at, std::string("\"intent\":\"plan\",").size());
  EXPECT_FALSE(FhirValid(broken, "careplan-broken"));  // CarePlan.intent is required
}

TEST_F(Foundation, RacingEditsLeaveOneWinnerAndOneActivePlan) {
  auto assessment = CompletedAssessment();
  auto clinician = Clinician();
  // Two drafts approved at the same moment: one active plan, the loser told to re-read.
  for (int round = 0; round < 3; ++round) {
    ppb::Plan a, b;
    ASSERT_TRUE(Generate(clinician, assessment.assessment_id(), &a).ok());
    ASSERT_TRUE(Generate(clinician, assessment.assessment_id(), &b).ok());
    grpc::Status status_a, status_b;
    std::thread ta([&] { status_a = Approve(a.plan_id(), a.etag()); });
    std::thread tb([&] { status_b = Approve(b.plan_id(), b.etag()); });
    ta.join();
    tb.join();
    // Serialised by the row lock both can succeed (the later supersedes the earlier);
    // racing on the unique index the loser gets ABORTED. Never two active plans.
    for (const auto& status : {status_a, status_b}) {
      EXPECT_TRUE(status.ok() || status.error_code() == StatusCode::ABORTED) << status.error_message();
    }
    EXPECT_TRUE(status_a.ok() || status_b.ok());
    EXPECT_EQ(CountRows("SELECT count(*) FROM planning.plans WHERE tenant_id = $1 AND status = 'ACTIVE'"), 1);
  }

  // Two revisions from the same etag: exactly one lands.
  ppb::GetActivePlanRequest get;
  get.set_patient_id(patient_id_);
  ppb::GetActivePlanResponse active;
  ASSERT_TRUE(clinician.Call(clinician.planning.get(), &ppb::PlanningService::Stub::GetActivePlan, get, &active).ok());
  std::atomic<int> ok{0}, aborted{0};
  std::vector<std::thread> editors;
  for (int i = 0; i < 4; ++i) {
    editors.emplace_back([&, i] {
      ppb::RevisePlanRequest revise;
      revise.set_request_id(NewId("rq"));
      revise.set_plan_id(active.plan().plan_id());
      revise.set_etag(active.plan().etag());
      revise.set_reason("editor " + std::to_string(i));
      auto* dose = revise.add_changes()->mutable_set_dose();
      dose->set_item_id("ex.strength.glute_bridge");
      dose->mutable_dose()->set_sets(1 + i);
      dose->mutable_dose()->set_reps(10);
      dose->mutable_dose()->set_sessions_per_week(3);
      ppb::RevisePlanResponse revised;
      auto status = clinician.Call(clinician.planning.get(), &ppb::PlanningService::Stub::RevisePlan, revise, &revised);
      if (status.ok()) ++ok;
      if (status.error_code() == StatusCode::ABORTED) ++aborted;
    });
  }
  for (auto& t : editors) t.join();
  EXPECT_EQ(ok.load(), 1);
  EXPECT_EQ(aborted.load(), 3);
  EXPECT_EQ(CountRows("SELECT count(*) FROM planning.plan_revisions WHERE tenant_id = $1 AND change = 'revised'"), 1);
}

TEST_F(Foundation, HealthAndReflection) {
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
