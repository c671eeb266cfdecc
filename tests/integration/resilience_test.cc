// Store outages: health follows the stores, calls fail fast with UNAVAILABLE
// within their deadline, and everything recovers without a restart.
#include <gtest/gtest.h>
#include <httplib.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <thread>

#include "clients.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "physio/common/ids.h"

namespace physio::testing {
namespace {

using grpc::StatusCode;
using Health = grpc::health::v1::HealthCheckResponse;

class Resilience : public ::testing::Test {
 protected:
  void SetUp() override {
    spdlog::set_level(spdlog::level::err);
    keys_ = std::make_unique<TestKeys>();
    redis_ = std::make_unique<RedisServer>();
    postgres_ = std::make_unique<PostgresServer>();
    postgres_->CreateDatabase("physio");
    cluster_ = std::make_unique<ServiceCluster>(*keys_, redis_->port(), postgres_->port(), "physio",
                                                std::map<std::string, std::string>{{"intake-ttl-seconds", "2"}});
  }

  Health::ServingStatus HealthOf(const std::string& addr, const std::string& service) {
    auto stub = grpc::health::v1::Health::NewStub(grpc::CreateChannel(addr, grpc::InsecureChannelCredentials()));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
    grpc::health::v1::HealthCheckRequest request;
    request.set_service(service);
    grpc::health::v1::HealthCheckResponse response;
    if (!stub->Check(&context, request, &response).ok()) return Health::UNKNOWN;
    return response.status();
  }

  bool WaitForHealth(const std::string& addr, const std::string& service, Health::ServingStatus wanted) {
    for (int i = 0; i < 100; ++i) {
      if (HealthOf(addr, service) == wanted) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }

  grpc::Status StartIntake(std::chrono::milliseconds deadline, std::chrono::milliseconds* took = nullptr) {
    Caller patient(*cluster_, MakeToken(*keys_, "acme", "pt-1", {"patient"}, "pt-1"));
    apb::StartIntakeRequest request;
    request.set_request_id(NewId("rq"));
    request.set_patient_id("pt-1");
    apb::StartIntakeResponse response;
    auto start = std::chrono::steady_clock::now();
    auto status = patient.Call(patient.assessment.get(), &apb::AssessmentService::Stub::StartIntake, request,
                               &response, deadline);
    if (took) *took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
    return status;
  }

  std::unique_ptr<TestKeys> keys_;
  std::unique_ptr<RedisServer> redis_;
  std::unique_ptr<PostgresServer> postgres_;
  std::unique_ptr<ServiceCluster> cluster_;
};

TEST_F(Resilience, RedisOutageIsUnavailableAndRecoversWithoutRestart) {
  const std::string service = "physio.assessment.v1.AssessmentService";
  ASSERT_TRUE(WaitForHealth(cluster_->assessment_addr(), service, Health::SERVING));
  ASSERT_TRUE(StartIntake(std::chrono::seconds(5)).ok());

  redis_->Stop();
  EXPECT_TRUE(WaitForHealth(cluster_->assessment_addr(), service, Health::NOT_SERVING));
  EXPECT_TRUE(WaitForHealth(cluster_->assessment_addr(), "", Health::NOT_SERVING));
  // The liveness name stays SERVING: a store blip must not make Kubernetes restart every pod.
  EXPECT_EQ(HealthOf(cluster_->assessment_addr(), "liveness"), Health::SERVING);
  std::chrono::milliseconds took{};
  auto status = StartIntake(std::chrono::seconds(3), &took);
  EXPECT_EQ(status.error_code(), StatusCode::UNAVAILABLE) << status.error_message();
  EXPECT_LT(took.count(), 3000);  // answered within the caller's deadline, not by it

  redis_->Start();
  EXPECT_TRUE(WaitForHealth(cluster_->assessment_addr(), service, Health::SERVING));
  status = StartIntake(std::chrono::seconds(5));
  EXPECT_TRUE(status.ok()) << status.error_message();
}

TEST_F(Resilience, ShutdownDrainsInFlightCallsWithinItsBound) {
  Caller patient(*cluster_, MakeToken(*keys_, "acme", "pt-1", {"patient"}, "pt-1"));
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, refused{0}, other{0};
  std::vector<std::thread> clients;
  for (int i = 0; i < 4; ++i) {
    clients.emplace_back([&] {
      while (!stop) {
        apb::StartIntakeRequest request;
        request.set_request_id(NewId("rq"));
        request.set_patient_id("pt-1");
        apb::StartIntakeResponse response;
        auto status = patient.Call(patient.assessment.get(), &apb::AssessmentService::Stub::StartIntake, request,
                                   &response, std::chrono::seconds(5));
        if (status.ok()) {
          ++ok;
        } else if (status.error_code() == StatusCode::UNAVAILABLE || status.error_code() == StatusCode::CANCELLED) {
          // Arrived as the listener closed: refused (UNAVAILABLE), or accepted but never
          // started and cancelled by gRPC at the grace deadline (CANCELLED). Both retryable.
          ++refused;
        } else {
          ++other;
          ADD_FAILURE() << "code " << status.error_code() << ": " << status.error_message();
        }
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const auto start = std::chrono::steady_clock::now();
  cluster_.reset();  // Shutdown: stop accepting, let in-flight calls finish (grace 2 s in tests)
  const auto took = std::chrono::steady_clock::now() - start;
  stop = true;
  for (auto& t : clients) t.join();
  // Three services shut down in turn; the grace is 2 s, the rest is teardown.
  EXPECT_LT(took, std::chrono::seconds(5));
  EXPECT_GT(ok.load(), 0);
  EXPECT_EQ(other.load(), 0);  // no internal errors or hangs: completed, or refused cleanly
}

// The notice period after SIGTERM: balancers and health-checking clients see
// NOT_SERVING and move away, while calls still routed here are served.
TEST_F(Resilience, AnnouncedShutdownReportsNotServingAndStillServes) {
  const std::string service = "physio.assessment.v1.AssessmentService";
  ASSERT_TRUE(WaitForHealth(cluster_->assessment_addr(), service, Health::SERVING));
  cluster_->AnnounceAssessmentShutdown();
  EXPECT_EQ(HealthOf(cluster_->assessment_addr(), service), Health::NOT_SERVING);
  EXPECT_EQ(HealthOf(cluster_->assessment_addr(), ""), Health::NOT_SERVING);
  EXPECT_EQ(HealthOf(cluster_->assessment_addr(), "liveness"), Health::SERVING);
  auto status = StartIntake(std::chrono::seconds(5));
  EXPECT_TRUE(status.ok()) << status.error_message();
  // The store probe no longer flips it back: healthy stores do not undo the notice.
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  EXPECT_EQ(HealthOf(cluster_->assessment_addr(), service), Health::NOT_SERVING);
}

TEST_F(Resilience, IntakeSessionsExpireWhenIdleAndActivityRenewsThem) {
  Caller patient(*cluster_, MakeToken(*keys_, "acme", "pt-1", {"patient"}, "pt-1"));
  apb::StartIntakeRequest start;
  start.set_request_id(NewId("rq"));
  start.set_patient_id("pt-1");
  apb::StartIntakeResponse started;
  ASSERT_TRUE(patient.Call(patient.assessment.get(), &apb::AssessmentService::Stub::StartIntake, start, &started).ok());
  apb::SubmitIntakeAnswersRequest submit;
  submit.set_session_id(started.session().session_id());
  *submit.add_answers() = Answer(cpb::INSTRUMENT_NPRS, "nprs", 5);
  apb::SubmitIntakeAnswersResponse submitted;
  // Activity every second keeps a 2-second session alive well past 2 seconds.
  for (int i = 0; i < 3; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1000));
    submit.set_request_id(NewId("rq"));
    auto status =
        patient.Call(patient.assessment.get(), &apb::AssessmentService::Stub::SubmitIntakeAnswers, submit, &submitted);
    ASSERT_TRUE(status.ok()) << "renewal " << i << ": " << status.error_message();
  }
  // Idle for longer than the TTL: gone, with a clear error.
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  submit.set_request_id(NewId("rq"));
  auto status =
      patient.Call(patient.assessment.get(), &apb::AssessmentService::Stub::SubmitIntakeAnswers, submit, &submitted);
  EXPECT_EQ(status.error_code(), StatusCode::NOT_FOUND);
  EXPECT_EQ(status.error_message(),
            "intake session not found or expired; start a new intake (StartIntake) and submit the answers again");
}

TEST_F(Resilience, PostgresOutageIsUnavailableAndRecoversWithoutRestart) {
  const std::string service = "physio.planning.v1.PlanningService";
  ASSERT_TRUE(WaitForHealth(cluster_->planning_addr(), service, Health::SERVING));
  Caller clinician(*cluster_, MakeToken(*keys_, "acme", "clin-1", {"clinician"}));
  ppb::GetActivePlanRequest request;
  request.set_patient_id("pt-1");
  ppb::GetActivePlanResponse response;
  EXPECT_EQ(clinician.Call(clinician.planning.get(), &ppb::PlanningService::Stub::GetActivePlan, request, &response)
                .error_code(),
            StatusCode::NOT_FOUND);

  // Intake sessions live in Redis, but reading one without its audit record is refused.
  Caller patient(*cluster_, MakeToken(*keys_, "acme", "pt-1", {"patient"}, "pt-1"));
  apb::StartIntakeRequest start;
  start.set_request_id(NewId("rq"));
  start.set_patient_id("pt-1");
  apb::StartIntakeResponse started;
  ASSERT_TRUE(patient.Call(patient.assessment.get(), &apb::AssessmentService::Stub::StartIntake, start, &started).ok());

  postgres_->Stop();
  EXPECT_TRUE(WaitForHealth(cluster_->planning_addr(), service, Health::NOT_SERVING));
  apb::GetIntakeRequest get_intake;
  get_intake.set_session_id(started.session().session_id());
  apb::GetIntakeResponse intake;
  auto unaudited = patient.Call(patient.assessment.get(), &apb::AssessmentService::Stub::GetIntake, get_intake, &intake);
  EXPECT_EQ(unaudited.error_code(), StatusCode::UNAVAILABLE);
  EXPECT_FALSE(intake.has_session());
  auto status = clinician.Call(clinician.planning.get(), &ppb::PlanningService::Stub::GetActivePlan, request,
                               &response, std::chrono::seconds(4));
  EXPECT_EQ(status.error_code(), StatusCode::UNAVAILABLE) << status.error_message();
  // The store's own error text (host, port, libpq message) stays in the log.
  EXPECT_EQ(status.error_message().find("postgres"), std::string::npos) << status.error_message();
  EXPECT_EQ(status.error_message().find("127.0.0.1"), std::string::npos) << status.error_message();
  EXPECT_NE(status.error_message().find("retry"), std::string::npos) << status.error_message();

  postgres_->Start();
  EXPECT_TRUE(WaitForHealth(cluster_->planning_addr(), service, Health::SERVING));
  EXPECT_EQ(clinician.Call(clinician.planning.get(), &ppb::PlanningService::Stub::GetActivePlan, request, &response)
                .error_code(),
            StatusCode::NOT_FOUND);
  // The audit writer redials too; a client retries a call that meets it still redialling.
  grpc::Status read_back;
  for (int i = 0; i < 50; ++i) {
    read_back = patient.Call(patient.assessment.get(), &apb::AssessmentService::Stub::GetIntake, get_intake, &intake);
    if (read_back.error_code() != StatusCode::UNAVAILABLE) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(read_back.ok()) << read_back.error_code() << " " << read_back.error_message();
}


// Outcome reports (issue 31) through a PostgreSQL outage: the report is UNAVAILABLE while the
// store is down, and the episodes' figures catch up with every write acknowledged after it.
TEST_F(Resilience, OutcomeReportsAreUnavailableInAnOutageAndCatchUpAfterIt) {
  const std::string tenant = "acme-reports";
  Caller clinician(*cluster_, MakeToken(*keys_, tenant, "clin-1", {"clinician"}));
  Caller analyst(*cluster_, MakeToken(*keys_, tenant, "analyst-1", {"analyst"}));
  std::vector<std::string> patients;
  for (int i = 0; i < 5; ++i) {
    patients.push_back("pt-report-" + std::to_string(i));
    ApprovedPlanFor(clinician, patients.back());
    gpb::RecordVisitResponse visited;
    ASSERT_TRUE(RecordVisitFor(clinician, patients.back(), gpb::VISIT_KIND_CLINIC, 3, &visited).ok());
  }
  gpb::GetOutcomeReportRequest request;
  const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch()).count();
  request.mutable_start_time()->set_seconds(now - 3600);
  request.mutable_end_time()->set_seconds(now + 3600);
  request.set_group_by(gpb::REPORT_GROUPING_NONE);
  // Polls until the latest pain's median is `pain` over the five episodes.
  auto settles_at = [&](double pain) {
    gpb::GetOutcomeReportResponse report;
    for (int attempt = 0; attempt < 100; ++attempt) {
      report.Clear();
      if (analyst.Call(analyst.progress.get(), &gpb::ProgressService::Stub::GetOutcomeReport, request, &report).ok() &&
          report.groups_size() == 1 && report.groups(0).latest_pain().count() == 5 &&
          report.groups(0).latest_pain().median() == pain) {
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    ADD_FAILURE() << report.ShortDebugString();
    return false;
  };
  ASSERT_TRUE(settles_at(3));
  // What operators watch (/metrics): seconds since the refresher last caught up with every change.
  auto behind = [&]() {
    return ScrapeMetric(cluster_->progress_metrics_port(), "physio_outcome_figures_behind_seconds").value_or(-1.0);
  };
  EXPECT_GE(behind(), 0.0);
  EXPECT_LT(behind(), 3.0) << "keeping up, it catches up every pass (1 s apart)";

  postgres_->Stop();
  gpb::GetOutcomeReportResponse report;
  auto status = analyst.Call(analyst.progress.get(), &gpb::ProgressService::Stub::GetOutcomeReport, request, &report,
                             std::chrono::seconds(4));
  EXPECT_EQ(status.error_code(), StatusCode::UNAVAILABLE) << status.error_message();
  EXPECT_EQ(status.error_message().find("127.0.0.1"), std::string::npos) << status.error_message();
  // The refresher keeps failing meanwhile (its passes find no store), and falls behind.
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  EXPECT_GE(behind(), 1.5) << "no pass can catch up without PostgreSQL";
  postgres_->Start();
  ASSERT_TRUE(WaitForHealth(cluster_->progress_addr(), "physio.progress.v1.ProgressService", Health::SERVING));

  // Writes acknowledged after the outage reach the report.
  for (const auto& patient : patients) {
    gpb::RecordVisitResponse visited;
    grpc::Status written;
    for (int attempt = 0; attempt < 50; ++attempt) {
      written = RecordVisitFor(clinician, patient, gpb::VISIT_KIND_CLINIC, 7, &visited);
      if (written.error_code() != StatusCode::UNAVAILABLE) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ASSERT_TRUE(written.ok()) << written.error_message();
  }
  // The last week's mean is what is judged, but the latest pain is the last reading: 7.
  EXPECT_TRUE(settles_at(7));
  double after = behind();
  for (int attempt = 0; attempt < 50 && !(after >= 0.0 && after < 3.0); ++attempt) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    after = behind();
  }
  EXPECT_GE(after, 0.0);
  EXPECT_LT(after, 3.0) << "caught up again after the outage";
}
}  // namespace
}  // namespace physio::testing
