// The serving core under concurrency, through the public API on real stores:
// hundreds of concurrent callers are queued, not refused, and every successful
// patient-data read has its audit record.
#include <libpq-fe.h>

#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "clients.h"
#include "cluster_fixture.h"
#include "physio/common/ids.h"
#include "physio/server/http_gateway.h"
#include "physio/server/metrics.h"
#include "physio/server/service_host.h"

namespace physio::testing {
namespace {

using grpc::StatusCode;

class Serving : public ClusterFixture {
 protected:
  void SetUp() override { tenant_ = NewId("t"); }

  Caller Clinician() const { return Caller(*cluster_, MakeToken(*keys_, tenant_, "clin-1", {"clinician"})); }

  // A stored assessment and an approved plan for `patient`: {assessment id, plan id}.
  std::pair<std::string, std::string> PatientWithPlan(const Caller& clinician, const std::string& patient) {
    auto plan = ApprovedPlanFor(clinician, patient);
    return {plan.assessment_id(), plan.plan_id()};
  }

  // Several connections, as several integration engines would open.
  std::vector<std::unique_ptr<Caller>> Connections() const {
    std::vector<std::unique_ptr<Caller>> callers;
    for (int i = 0; i < 8; ++i) callers.push_back(std::make_unique<Caller>(Clinician()));
    return callers;
  }

  // A context carrying the call's request id, so its audit record can be found.
  static std::unique_ptr<grpc::ClientContext> Traced(const Caller& caller, const std::string& request_id) {
    auto context = caller.Context(std::chrono::seconds(30));
    context->AddMetadata("x-request-id", request_id);
    return context;
  }

  // One count from PostgreSQL; $1 is the tenant, $2.. the extra parameters.
  long Count(const std::string& sql, const std::vector<std::string>& extra = {}) const {
    const std::string conninfo =
        "host=127.0.0.1 port=" + std::to_string(postgres_->port()) + " user=postgres dbname=physio";
    PGconn* conn = PQconnectdb(conninfo.c_str());
    std::vector<const char*> params{tenant_.c_str()};
    for (const auto& value : extra) params.push_back(value.c_str());
    PGresult* result =
        PQexecParams(conn, sql.c_str(), static_cast<int>(params.size()), nullptr, params.data(), nullptr, nullptr, 0);
    long count = PQresultStatus(result) == PGRES_TUPLES_OK ? std::stol(PQgetvalue(result, 0, 0)) : -1;
    PQclear(result);
    PQfinish(conn);
    return count;
  }

  long AuditRowsFor(const std::string& schema, const std::string& action, const std::set<std::string>& request_ids) {
    std::string ids = "{";
    for (const auto& id : request_ids) ids += (ids.size() > 1 ? "," : "") + id;
    ids += "}";
    return Count("SELECT count(DISTINCT request_id) FROM " + schema +
                     ".audit_events WHERE tenant_id = $1 AND action = $2 AND outcome = 'OK'"
                     " AND request_id = ANY($3::text[])",
                 {action, ids});
  }

  // Sends `callers` calls at once (each from its own thread, all released together),
  // with a request id each; returns the status codes seen and the ids of the OK calls.
  template <typename Send>
  std::map<StatusCode, int> Burst(int callers, const Send& send, std::set<std::string>* ok_ids) {
    std::map<StatusCode, int> codes;
    std::mutex mutex;
    std::atomic<int> ready{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < callers; ++i) {
      threads.emplace_back([&, i] {
        const std::string request_id = NewId("burst");
        ++ready;
        while (ready.load() < callers) std::this_thread::yield();
        const grpc::Status status = send(i, request_id);
        std::lock_guard lock(mutex);
        ++codes[status.error_code()];
        if (status.ok()) ok_ids->insert(request_id);
      });
    }
    for (auto& thread : threads) thread.join();
    return codes;
  }

  std::string tenant_;
};

std::string Describe(const std::map<StatusCode, int>& codes) {
  std::string text;
  for (const auto& [code, count] : codes) text += std::to_string(static_cast<int>(code)) + "x" + std::to_string(count) + " ";
  return text;
}

TEST_F(Serving, TwoHundredFiftySixConcurrentReadsAreQueuedNotRefusedAndAllAudited) {
  auto clinician = Clinician();
  // Named copies, not structured bindings: the lambdas below capture them (clang 14 cannot
  // capture a structured binding).
  const auto ids = PatientWithPlan(clinician, "pt-burst");
  const std::string assessment_id = ids.first, plan_id = ids.second;
  const auto callers = Connections();
  std::set<std::string> ok_ids;
  auto codes = Burst(256, [&](int i, const std::string& request_id) {
    auto context = Traced(*callers[i % callers.size()], request_id);
    ppb::GetActivePlanRequest request;
    request.set_patient_id("pt-burst");
    ppb::GetActivePlanResponse response;
    auto status = callers[i % callers.size()]->planning->GetActivePlan(context.get(), request, &response);
    if (status.ok() && response.plan().plan_id() != plan_id) return grpc::Status(grpc::StatusCode::INTERNAL, "wrong plan");
    return status;
  }, &ok_ids);
  EXPECT_EQ(codes[StatusCode::RESOURCE_EXHAUSTED], 0) << Describe(codes);
  EXPECT_EQ(codes[StatusCode::OK], 256) << Describe(codes);
  // Every successful read of patient data has its committed audit record.
  EXPECT_EQ(AuditRowsFor("planning", "GetActivePlan", ok_ids), static_cast<long>(ok_ids.size()));

  ok_ids.clear();
  codes = Burst(256, [&](int i, const std::string& request_id) {
    auto context = Traced(*callers[i % callers.size()], request_id);
    apb::GetAssessmentRequest request;
    request.set_assessment_id(assessment_id);
    apb::GetAssessmentResponse response;
    return callers[i % callers.size()]->assessment->GetAssessment(context.get(), request, &response);
  }, &ok_ids);
  EXPECT_EQ(codes[StatusCode::RESOURCE_EXHAUSTED], 0) << Describe(codes);
  EXPECT_EQ(codes[StatusCode::OK], 256) << Describe(codes);
  EXPECT_EQ(AuditRowsFor("assessment", "GetAssessment", ok_ids), static_cast<long>(ok_ids.size()));
}

TEST_F(Serving, TwoHundredFiftySixConcurrentWritesAreQueuedNotRefusedAndEachStoredOnce) {
  auto clinician = Clinician();
  PatientWithPlan(clinician, "pt-writes");
  const auto callers = Connections();
  std::set<std::string> ok_ids;
  auto codes = Burst(256, [&](int i, const std::string& request_id) {
    auto context = Traced(*callers[i % callers.size()], request_id);
    gpb::LogHomeExerciseRequest request;
    request.set_request_id(request_id);
    request.set_patient_id("pt-writes");
    request.set_exercise_id("ex.motor.abdominal_bracing");
    request.set_sets_done(2);
    request.set_reps_done(10);
    request.set_pain_during(3);
    request.set_pain_after(3);
    gpb::LogHomeExerciseResponse response;
    return callers[i % callers.size()]->progress->LogHomeExercise(context.get(), request, &response);
  }, &ok_ids);
  EXPECT_EQ(codes[StatusCode::RESOURCE_EXHAUSTED], 0) << Describe(codes);
  EXPECT_EQ(codes[StatusCode::OK], 256) << Describe(codes);
  // The write and its audit record committed together.
  EXPECT_EQ(AuditRowsFor("progress", "LogHomeExercise", ok_ids), static_cast<long>(ok_ids.size()));
  // Every acknowledged write is stored, once.
  EXPECT_EQ(Count("SELECT count(*) FROM progress.home_exercise_logs WHERE tenant_id = $1"), 256);
}


// A second server on a port one already serves does not start. gRPC and cpp-httplib bind with
// SO_REUSEPORT by default, so the kernel would split callers between the two: a stale process of
// an earlier build, left running, would quietly answer part of the traffic.
TEST(Listening, ASecondServerOnATakenPortRefusesToStart) {
  ServiceHost first(ServerSettings{}, {}, [] { return true; });
  const int port = first.Start();
  ServerSettings same;
  same.listen = "127.0.0.1:" + std::to_string(port);
  ServiceHost second(same, {}, [] { return true; });
  EXPECT_THROW(second.Start(), std::runtime_error);
  first.Shutdown();

  Metrics metrics("physio.test.v1.Test");
  MetricsListener first_metrics("127.0.0.1:0", metrics);
  const int metrics_port = first_metrics.Start();
  MetricsListener second_metrics("127.0.0.1:" + std::to_string(metrics_port), metrics);
  EXPECT_THROW(second_metrics.Start(), std::runtime_error);
  first_metrics.Shutdown();
}

}  // namespace
}  // namespace physio::testing
