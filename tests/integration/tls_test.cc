// The three services over mutual TLS (issue 11): throwaway CA and certificates
// made with openssl, a whole episode through every service-to-service call,
// plaintext and wrong-CA clients refused, the service role bound to a service
// certificate, reflection off.
#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "clients.h"
#include "physio/common/ids.h"

namespace physio::testing {
namespace {

using grpc::StatusCode;
constexpr int64_t kDay = 24 * 3600;

std::string Slurp(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::ostringstream content;
  content << in.rdbuf();
  return content.str();
}

class MutualTls : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { StartMutualTlsCluster({}); }
  // All three services under mutual TLS, with `extra` settings on each.
  static void StartMutualTlsCluster(const std::map<std::string, std::string>& extra) {
    spdlog::set_level(spdlog::level::warn);
    certs_ = std::filesystem::temp_directory_path() / NewId("certs");
    const std::string command =
        std::string(PHYSIO_SOURCE_DIR) + "/tests/support/make_test_certs.sh " + certs_.string();
    ASSERT_EQ(std::system(command.c_str()), 0) << command;
    keys_ = std::make_unique<TestKeys>();
    redis_ = std::make_unique<RedisServer>();
    postgres_ = std::make_unique<PostgresServer>();
    postgres_->CreateDatabase("physio");
    cluster_ = std::make_unique<ServiceCluster>(
        *keys_, redis_->port(), postgres_->port(), "physio", std::map<std::string, std::string>{},
        [&extra](const std::string& service, Config& config) {
          const std::string name = "physio-" + service;
          config.Set("tls-cert-file", (certs_ / (name + ".pem")).string());
          config.Set("tls-key-file", (certs_ / (name + ".key")).string());
          config.Set("tls-client-ca-file", (certs_ / "ca.pem").string());
          config.Set("peer-ca-file", (certs_ / "ca.pem").string());
          config.Set("peer-cert-file", (certs_ / (name + ".pem")).string());
          config.Set("peer-key-file", (certs_ / (name + ".key")).string());
          config.Set("reflection", "false");
          for (const auto& [key, value] : extra) config.Set(key, value);
        });
  }
  static void TearDownTestSuite() {
    cluster_.reset();
    postgres_.reset();
    redis_.reset();
    keys_.reset();
    std::filesystem::remove_all(certs_);
  }

  void SetUp() override {
    tenant_ = NewId("t");
    patient_id_ = NewId("pt");
  }

  // TLS credentials trusting `ca`, presenting `client` (no certificate when empty).
  static std::shared_ptr<grpc::ChannelCredentials> Tls(const std::string& client, const std::string& ca = "ca") {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = Slurp(certs_ / (ca + ".pem"));
    if (!client.empty()) {
      ssl.pem_cert_chain = Slurp(certs_ / (client + ".pem"));
      ssl.pem_private_key = Slurp(certs_ / (client + ".key"));
    }
    return grpc::SslCredentials(ssl);
  }
  Caller Clinician() const {
    return Caller(*cluster_, MakeToken(*keys_, tenant_, "clin-1", {"clinician"}), Tls("clinic-gateway"));
  }
  Caller Patient() const {
    return Caller(*cluster_, MakeToken(*keys_, tenant_, patient_id_, {"patient"}, patient_id_), Tls("clinic-gateway"));
  }

  inline static std::filesystem::path certs_;
  inline static std::unique_ptr<TestKeys> keys_;
  inline static std::unique_ptr<RedisServer> redis_;
  inline static std::unique_ptr<PostgresServer> postgres_;
  inline static std::unique_ptr<ServiceCluster> cluster_;
  std::string tenant_, patient_id_;
};

// Every call between services travels over mutual TLS: planning reads the
// assessment, progress reads the plan (home logs), scores re-measures through
// assessment and adjusts the plan through planning.
TEST_F(MutualTls, AWholeEpisodeRunsOverMutualTls) {
  const int64_t now = std::time(nullptr);
  auto clinician = Clinician();
  // Planning reads the assessment from assessment, over mutual TLS.
  const ppb::Plan plan = ApprovedPlanFor(clinician, patient_id_, now - 14 * kDay);
  ASSERT_EQ(plan.status(), ppb::PLAN_STATUS_ACTIVE);

  // Two weeks of complete home programmes with falling pain: a progression.
  auto patient = Patient();
  for (int week = 0; week < 2; ++week) {
    for (const auto& item : plan.items()) {
      if (item.kind() != ppb::PLAN_ITEM_KIND_EXERCISE || !item.home_programme()) continue;
      const int sessions = item.dose().sessions_per_week();
      for (int s = 0; s < sessions; ++s) {
        gpb::LogHomeExerciseRequest log;
        log.set_request_id(NewId("rq"));
        log.set_patient_id(patient_id_);
        log.set_exercise_id(item.item_id());
        log.mutable_performed_time()->set_seconds(now - (14 - 7 * week) * kDay + s * (7 * kDay / sessions) + 3600);
        log.set_sets_done(item.dose().sets());
        log.set_reps_done(item.dose().reps());
        log.set_pain_during(week == 0 ? 5 : 3);
        log.set_pain_after(week == 0 ? 5 : 3);
        gpb::LogHomeExerciseResponse logged;
        auto status = patient.Call(patient.progress.get(), &gpb::ProgressService::Stub::LogHomeExercise, log, &logged);
        ASSERT_TRUE(status.ok()) << status.error_message();
      }
    }
  }
  gpb::RecordOutcomeRequest outcome;
  outcome.set_request_id(NewId("rq"));
  outcome.set_patient_id(patient_id_);
  outcome.set_instrument(cpb::INSTRUMENT_ODI);  // re-scored by assessment, over mutual TLS
  for (int i = 0; i < 10; ++i) *outcome.add_answers() = Answer(cpb::INSTRUMENT_ODI, "odi." + std::to_string(i + 1), 1);
  gpb::RecordOutcomeResponse recorded;
  auto status = clinician.Call(clinician.progress.get(), &gpb::ProgressService::Stub::RecordOutcome, outcome, &recorded);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_DOUBLE_EQ(recorded.measure().score().score(), 20);

  gpb::EvaluateProgressRequest evaluate;
  evaluate.set_request_id(NewId("rq"));
  evaluate.set_patient_id(patient_id_);
  gpb::EvaluateProgressResponse evaluated;
  status = clinician.Call(clinician.progress.get(), &gpb::ProgressService::Stub::EvaluateProgress, evaluate, &evaluated);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(evaluated.evaluation().decision(), gpb::DECISION_PROGRESS);
  EXPECT_TRUE(evaluated.evaluation().plan_adjusted());
  EXPECT_EQ(evaluated.evaluation().plan().revision(), plan.revision() + 1);
}

TEST_F(MutualTls, PlaintextAndUncertifiedAndWrongCaClientsAreRefused) {
  const std::string token = MakeToken(*keys_, tenant_, "clin-1", {"clinician"});
  ppb::ListInterventionsRequest request;
  ppb::ListInterventionsResponse response;
  auto call = [&](const std::shared_ptr<grpc::ChannelCredentials>& credentials) {
    Caller caller(*cluster_, token, credentials);
    return caller.Call(caller.planning.get(), &ppb::PlanningService::Stub::ListInterventions, request, &response,
                       std::chrono::seconds(3));
  };
  // The control: a certified client gets through.
  ASSERT_TRUE(call(Tls("clinic-gateway")).ok());
  // The refusals happen in the handshake, before any RPC: the channel never connects.
  EXPECT_EQ(call(grpc::InsecureChannelCredentials()).error_code(), StatusCode::UNAVAILABLE);
  EXPECT_EQ(call(Tls("")).error_code(), StatusCode::UNAVAILABLE);                          // no client certificate
  EXPECT_EQ(call(Tls("rogue-client", "ca")).error_code(), StatusCode::UNAVAILABLE);        // client signed by another CA
  // A client that trusts another CA refuses the server too.
  EXPECT_EQ(call(Tls("clinic-gateway", "rogue-ca")).error_code(), StatusCode::UNAVAILABLE);
}

// Under mutual TLS a token with the service role is not enough: the caller's
// certificate must be a service's.
TEST_F(MutualTls, TheServiceRoleNeedsAServiceCertificate) {
  const std::string service_token = MakeToken(*keys_, tenant_, "svc-progress", {"service"});
  ppb::GetActivePlanRequest request;
  request.set_patient_id(patient_id_);
  ppb::GetActivePlanResponse response;
  Caller gateway(*cluster_, service_token, Tls("clinic-gateway"));
  auto refused = gateway.Call(gateway.planning.get(), &ppb::PlanningService::Stub::GetActivePlan, request, &response);
  EXPECT_EQ(refused.error_code(), StatusCode::PERMISSION_DENIED) << refused.error_message();
  Caller progress(*cluster_, service_token, Tls("physio-progress"));
  auto allowed = progress.Call(progress.planning.get(), &ppb::PlanningService::Stub::GetActivePlan, request, &response);
  EXPECT_EQ(allowed.error_code(), StatusCode::NOT_FOUND) << allowed.error_message();  // past the role check: no plan yet
}

TEST_F(MutualTls, ReflectionCanBeTurnedOff) {
  auto status = CallReflection(grpc::CreateChannel(cluster_->planning_addr(), Tls("clinic-gateway")));
  EXPECT_EQ(status.error_code(), StatusCode::UNIMPLEMENTED) << status.error_message();
}

// Quotas are charged once, at the edge: the calls progress makes to planning
// and assessment for a caller (here, suspending the plan on a red flag at a
// check-in) are not charged to that caller again, so a caller near the limit
// still gets the plan suspended in the same call.
class MutualTlsQuotas : public MutualTls {
 protected:
  static void SetUpTestSuite() {
    StartMutualTlsCluster({{"rate-limit-principal-per-second", "5"}, {"rate-limit-principal-burst", "5"}});
  }
};

TEST_F(MutualTlsQuotas, ACallerAtTheLimitStillGetsTheRedFlagSuspensionInOneCall) {
  Caller setup(*cluster_, MakeToken(*keys_, tenant_, "clin-setup", {"clinician"}), Tls("clinic-gateway"));
  const ppb::Plan plan = ApprovedPlanFor(setup, patient_id_);
  ASSERT_EQ(plan.status(), ppb::PLAN_STATUS_ACTIVE);

  Caller clinician(*cluster_, MakeToken(*keys_, tenant_, "clin-visit", {"clinician"}), Tls("clinic-gateway"));
  for (int i = 0; i < 4; ++i) {  // four of the five tokens
    ppb::ListInterventionsResponse listed;
    ASSERT_TRUE(clinician.Call(clinician.planning.get(), &ppb::PlanningService::Stub::ListInterventions,
                               ppb::ListInterventionsRequest(), &listed).ok());
  }
  gpb::RecordVisitRequest visit;
  visit.set_request_id(NewId("rq"));
  visit.set_patient_id(patient_id_);
  visit.set_kind(gpb::VISIT_KIND_TELEHEALTH);
  visit.mutable_red_flag_screen()->set_saddle_numbness(true);
  gpb::RecordVisitResponse visited;
  auto status = clinician.Call(clinician.progress.get(), &gpb::ProgressService::Stub::RecordVisit, visit, &visited);
  ASSERT_TRUE(status.ok()) << status.error_message();

  ppb::GetActivePlanRequest get;
  get.set_patient_id(patient_id_);
  get.set_include_suspended(true);
  ppb::GetActivePlanResponse got;
  ASSERT_TRUE(setup.Call(setup.planning.get(), &ppb::PlanningService::Stub::GetActivePlan, get, &got).ok());
  EXPECT_EQ(got.plan().status(), ppb::PLAN_STATUS_SUSPENDED);
}

}  // namespace
}  // namespace physio::testing
