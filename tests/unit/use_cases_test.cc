// The use cases without servers: each app over stores that refuse every
// connection (a port nothing listens on) and fake peers. What a use case decides
// before it touches a store (field-named validation, a patient's own record,
// field-level role rules) and how it maps a store that is down, in milliseconds;
// the integration suites cover the same use cases against real stores.
#include <gtest/gtest.h>

#include <functional>

#include "assessment_app.h"
#include "clients.h"
#include "fake_peers.h"
#include "physio/common/error.h"
#include "planning_app.h"
#include "progress_app.h"
#include "test_env.h"
#include "use_case_support.h"

namespace physio::testing {
namespace {

// Stores at a port nothing listens on: every lease's connect is refused at once.
struct UnreachableStores {
  UnreachableStores() : redis(RedisAt(FreePort())), pg(PgAt(FreePort())) {}
  static RedisOptions RedisAt(int port) {
    RedisOptions options;
    options.port = port;
    options.pool_size = 1;
    options.connect_timeout = std::chrono::milliseconds(200);
    return options;
  }
  static PgOptions PgAt(int port) {
    PgOptions options;
    options.ports = std::to_string(port);
    options.pool_size = 1;
    options.connect_timeout = std::chrono::milliseconds(200);
    return options;
  }
  RedisPool redis;
  PgPool pg;
};

class AssessmentUseCases : public ::testing::Test {
 protected:
  UnreachableStores stores;
  RedisIdempotency session_idempotency{stores.redis};
  assessment::RedisIntakeStore intakes{stores.redis, std::chrono::hours(24), std::chrono::hours(1)};
  assessment::PgAssessmentRecords records{stores.pg};
  assessment::AssessmentApp app{{session_idempotency, intakes, records}, assessment::AssessmentSettings{}};
  AuditTarget audit;
};

TEST_F(AssessmentUseCases, AnOutOfRangeAnswerIsRefusedNamingItBeforeAnyStore) {
  apb::SubmitIntakeAnswersRequest request;
  request.set_request_id("rq-1");
  request.set_session_id("intake_1");
  *request.add_answers() = Answer(cpb::INSTRUMENT_NPRS, "nprs", 4);
  *request.add_answers() = Answer(cpb::INSTRUMENT_ODI, "odi.3", 7);
  auto error = ErrorOf([&] { app.SubmitIntakeAnswers(CallerAs(Role::kPatient, "pt-1"), request, audit); });
  EXPECT_EQ(error.code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(error.message.rfind("answers[1]", 0), 0u) << error.message;
}

TEST_F(AssessmentUseCases, AnInstrumentListedTwiceIsRefusedNamingTheSecond) {
  apb::StartIntakeRequest request;
  request.set_request_id("rq-1");
  request.set_patient_id("pt-1");
  request.add_instruments(cpb::INSTRUMENT_ODI);
  request.add_instruments(cpb::INSTRUMENT_ODI);
  auto error = ErrorOf([&] { app.StartIntake(CallerAs(Role::kClinician), request, audit); });
  EXPECT_EQ(error.code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(error.message.rfind("instruments[1]", 0), 0u) << error.message;
}

TEST_F(AssessmentUseCases, APatientActsOnlyOnTheirOwnRecordAndRecordsNoExamination) {
  apb::StartIntakeRequest start;
  start.set_request_id("rq-1");
  start.set_patient_id("pt-2");
  EXPECT_EQ(ErrorOf([&] { app.StartIntake(CallerAs(Role::kPatient, "pt-1"), start, audit); }).code,
            ErrorCode::kPermissionDenied);
  apb::SubmitIntakeAnswersRequest submit;
  submit.set_request_id("rq-2");
  submit.set_session_id("intake_1");
  submit.mutable_examination()->set_lumbar_hypomobility(true);
  auto error = ErrorOf([&] { app.SubmitIntakeAnswers(CallerAs(Role::kPatient, "pt-1"), submit, audit); });
  EXPECT_EQ(error.code, ErrorCode::kPermissionDenied);
  EXPECT_EQ(error.message.rfind("examination", 0), 0u) << error.message;
}

TEST_F(AssessmentUseCases, StoresThatAreDownAreUnavailableNotAnInternalError) {
  apb::GetIntakeRequest intake;
  intake.set_session_id("intake_1");
  EXPECT_EQ(ErrorOf([&] { app.GetIntake(CallerAs(Role::kClinician), intake, audit); }).code, ErrorCode::kUnavailable);
  apb::GetAssessmentRequest assessment;
  assessment.set_assessment_id("asm_1");
  EXPECT_EQ(ErrorOf([&] { app.GetAssessment(CallerAs(Role::kClinician), assessment, audit); }).code,
            ErrorCode::kUnavailable);
}

class PlanningUseCases : public ::testing::Test {
 protected:
  UnreachableStores stores;
  FakeAssessmentReader assessments;
  planning::PgPlanRecords records{stores.pg};
  planning::RedisActivePlanCache active_plans{stores.redis, std::chrono::seconds(60)};
  planning::PlanningApp app{records, active_plans, assessments, SourceLibrary()};
  AuditTarget audit;
};

TEST_F(PlanningUseCases, AGenerateLooksForItsReplayBeforeAskingTheAssessmentService) {
  ppb::GeneratePlanRequest request;
  request.set_request_id("rq-1");
  request.set_assessment_id("asm_1");
  EXPECT_EQ(ErrorOf([&] { app.GeneratePlan(CallerAs(Role::kClinician), request, audit); }).code,
            ErrorCode::kUnavailable);
  // Without PostgreSQL a retry cannot be told from a new request: nothing is asked of the peer.
  EXPECT_EQ(assessments.calls, 0);
  request.clear_assessment_id();
  auto error = ErrorOf([&] { app.GeneratePlan(CallerAs(Role::kClinician), request, audit); });
  EXPECT_EQ(error.code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(error.message.rfind("assessment_id", 0), 0u) << error.message;
}

TEST_F(PlanningUseCases, APatientMayOnlyMakeTheirPlanSaferAndOnlyAClinicianResumesIt) {
  ppb::AdjustPlanRequest request;
  request.set_request_id("rq-1");
  request.set_plan_id("plan_1");
  request.set_adjustment(ppb::ADJUSTMENT_PROGRESS);
  auto error = ErrorOf([&] { app.AdjustPlan(CallerAs(Role::kPatient, "pt-1"), request, audit); });
  EXPECT_EQ(error.code, ErrorCode::kPermissionDenied);
  EXPECT_EQ(error.message.rfind("adjustment", 0), 0u) << error.message;
  request.set_adjustment(ppb::ADJUSTMENT_RESUME);
  request.set_reason("red flag cleared");
  EXPECT_EQ(ErrorOf([&] { app.AdjustPlan(CallerAs(Role::kIntegrator), request, audit); }).code,
            ErrorCode::kPermissionDenied);
  request.set_adjustment(ppb::ADJUSTMENT_SUSPEND);
  request.clear_reason();
  error = ErrorOf([&] { app.AdjustPlan(CallerAs(Role::kClinician), request, audit); });
  EXPECT_EQ(error.code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(error.message.rfind("reason", 0), 0u) << error.message;
}

class ProgressUseCases : public ::testing::Test {
 protected:
  UnreachableStores stores;
  FakePlanningClient planning;
  FakeAssessmentClient assessment;
  RedisIdempotency session_idempotency{stores.redis};
  progress::RedisVisitSessionStore visit_sessions{stores.redis, std::chrono::hours(4)};
  progress::PgProgressRecords records{stores.pg};
  progress::ProgressApp app{{session_idempotency, visit_sessions, records}, planning, assessment};
  AuditTarget audit;
};

// A first attempt's replay is looked up in its own write's transaction; a log planning
// refuses (here: no plan) is looked up before the refusal, since it may be a retry of one
// already stored (tests/unit/progress_workflow_test.cc): the stores are down, so UNAVAILABLE.
TEST_F(ProgressUseCases, AHomeLogIsValidatedForItsPatientAndARefusedOneLooksForItsReplay) {
  gpb::LogHomeExerciseRequest request;
  request.set_request_id("rq-1");
  request.set_patient_id("pt-1");
  request.set_exercise_id("ex.dir.prone_extension");
  request.set_pain_after(11);
  auto error = ErrorOf([&] { app.LogHomeExercise(CallerAs(Role::kPatient, "pt-1"), request, audit); });
  EXPECT_EQ(error.code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(error.message.rfind("pain_after", 0), 0u) << error.message;
  request.set_pain_after(3);
  EXPECT_EQ(ErrorOf([&] { app.LogHomeExercise(CallerAs(Role::kPatient, "pt-2"), request, audit); }).code,
            ErrorCode::kPermissionDenied);
  EXPECT_EQ(ErrorOf([&] { app.LogHomeExercise(CallerAs(Role::kPatient, "pt-1"), request, audit); }).code,
            ErrorCode::kUnavailable);
  EXPECT_EQ(planning.active_plan_calls, 1);
  EXPECT_EQ(planning.adjust_calls, 0);
}

TEST_F(ProgressUseCases, AVisitSessionUpdateWithNothingInItIsRefused) {
  gpb::UpdateVisitSessionRequest request;
  request.set_request_id("rq-1");
  request.set_session_id("vsess_1");
  auto error = ErrorOf([&] { app.UpdateVisitSession(CallerAs(Role::kClinician), request, audit); });
  EXPECT_EQ(error.code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(error.message.rfind("pain_before", 0), 0u) << error.message;
  request.set_pain_before(4);
  EXPECT_EQ(ErrorOf([&] { app.UpdateVisitSession(CallerAs(Role::kClinician), request, audit); }).code,
            ErrorCode::kUnavailable);
}

}  // namespace
}  // namespace physio::testing
