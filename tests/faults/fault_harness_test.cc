// The fault suite (issue 12): a mixed load of patient episodes runs while one
// fault at a time strikes a store or a service, then everything the load was
// told was done is read back. Per fault it asserts: nothing acknowledged is
// lost, nothing retried is stored twice, every answered read was audited, the
// only errors are the clean transient ones, no other process went down, health
// follows the store and comes back within 2 s, and so do calls. It prints one
// table row per fault (docs/reliability.md keeps the last run's table).
//
// The soak run (30 minutes, not in CI) is the disabled test at the end:
//   PHYSIO_SOAK_MINUTES=30 build/tests/fault_harness_test --gtest_also_run_disabled_tests --gtest_filter='*Soak*'
#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <set>
#include <sstream>

#include "fault_harness.h"
#include "ha_stores.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "physio/common/ids.h"
#include "physio/server/grpc_context.h"

namespace physio::testing::faults {
namespace {

namespace apb = physio::assessment::v1;
namespace ppb = physio::planning::v1;
namespace gpb = physio::progress::v1;
namespace cpb = physio::common::v1;
using namespace std::chrono_literals;
using grpc::StatusCode;

constexpr int kWorkers = 8;
constexpr auto kLoadBefore = 1500ms;
constexpr auto kLoadAfter = 1500ms;
constexpr auto kRecoveryPromise = 2000ms;

struct FaultRow {
  std::string fault;
  int calls = 0;
  Verification verification;
  std::map<std::string, int> codes;
  std::map<std::string, std::string> examples;  // code -> "Method: message" of its first call
  long max_overrun_ms = 0;  // how far past its own deadline a call took to answer
  std::string health_recovery = "-";
  std::string call_recovery = "-";
  std::string notes;
  // SIGTERM: calls sent from this moment on may be refused with CANCELLED by
  // gRPC itself (the server had begun to shut down when they arrived).
  std::optional<SteadyClock::time_point> shutdown_began;
  int cancelled_before_shutdown = 0;
};

std::string Millis(std::optional<std::chrono::milliseconds> value) {
  return value ? std::to_string(value->count()) + " ms" : "never";
}

long Elapsed(SteadyClock::time_point since) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - since).count();
}

// What every fault suite shares: the cluster (single-node or highly available
// stores), the load, the probes and the table.
class FaultSuite : public ::testing::Test {
 protected:
  static void Start(std::unique_ptr<FaultCluster> cluster) {
    spdlog::set_level(spdlog::level::err);
    rows_.clear();
    cluster_ = std::move(cluster);
    SeedProbePatient();
  }
  static void TearDownTestSuite() {
    PrintTable();
    cluster_.reset();
  }
  void TearDown() override {
    // No process other than the one a fault struck went down.
    auto exited = cluster_->UnexpectedExits();
    EXPECT_TRUE(exited.empty()) << "a service exited on its own: " << (exited.empty() ? "" : exited.front());
    // A failure explains itself: what the stores say of themselves and the services' last log lines.
    if (HasFailure()) {
      std::fprintf(stderr, "== stores:\n%s\n== services' logs:\n%s\n", cluster_->stores().Describe().c_str(),
                   cluster_->LogTails().c_str());
    }
  }

  // A new import for the probe patient (pain 5, red flags screened, none found).
  static apb::CreateAssessmentRequest ProbeAssessment() {
    apb::CreateAssessmentRequest create;
    create.set_request_id(NewId("rq"));
    create.set_patient_id(probe_patient_);
    auto* pain = create.add_answers();
    pain->set_instrument(cpb::INSTRUMENT_NPRS);
    pain->set_item_id("nprs");
    pain->set_value(5);
    create.mutable_red_flag_screen();
    return create;
  }

  // A patient with an approved plan, for the recovery probes.
  static void SeedProbePatient() {
    const std::string token = MakeToken(cluster_->keys(), "faults", "prober", {"clinician"});
    auto assessment = apb::AssessmentService::NewStub(cluster_->Channel(Service::kAssessment));
    auto planning = ppb::PlanningService::NewStub(cluster_->Channel(Service::kPlanning));
    auto context = [&] {
      auto ctx = std::make_unique<grpc::ClientContext>();
      ctx->AddMetadata("authorization", "Bearer " + token);
      ctx->set_deadline(std::chrono::system_clock::now() + 10s);
      return ctx;
    };
    probe_patient_ = NewId("pt");
    apb::CreateAssessmentResponse created;
    grpc::Status status = assessment->CreateAssessment(context().get(), ProbeAssessment(), &created);
    ASSERT_TRUE(status.ok()) << "CreateAssessment: " << status.error_code() << " " << status.error_message();
    ppb::GeneratePlanRequest generate;
    generate.set_request_id(NewId("rq"));
    generate.set_assessment_id(created.assessment().assessment_id());
    ppb::GeneratePlanResponse generated;
    status = planning->GeneratePlan(context().get(), generate, &generated);
    ASSERT_TRUE(status.ok()) << "GeneratePlan: " << status.error_code() << " " << status.error_message();
    ppb::ApprovePlanRequest approve;
    approve.set_request_id(NewId("rq"));
    approve.set_plan_id(generated.plan().plan_id());
    approve.set_etag(generated.plan().etag());
    ppb::ApprovePlanResponse approved;
    status = planning->ApprovePlan(context().get(), approve, &approved);
    ASSERT_TRUE(status.ok()) << "ApprovePlan: " << status.error_code() << " " << status.error_message();
  }

  // Time from `since` until a call through every service succeeds: a Redis
  // write (StartIntake), a PostgreSQL write (CreateAssessment), a cached read
  // through planning (GetActivePlan) and a read through progress, which itself
  // calls planning (GetProgressSummary). Codes seen on the way go to `row`.
  static std::optional<std::chrono::milliseconds> CallsRecover(SteadyClock::time_point since, FaultRow& row) {
    const std::string token = MakeToken(cluster_->keys(), "faults", "prober", {"clinician"});
    auto assessment = apb::AssessmentService::NewStub(cluster_->Channel(Service::kAssessment));
    auto planning = ppb::PlanningService::NewStub(cluster_->Channel(Service::kPlanning));
    auto progress = gpb::ProgressService::NewStub(cluster_->Channel(Service::kProgress));
    struct Probe {
      const char* name;
      std::function<grpc::Status(grpc::ClientContext*)> call;
    };
    const std::vector<Probe> probes = {
        {"StartIntake", [&](grpc::ClientContext* ctx) {
          apb::StartIntakeRequest start;
          start.set_request_id(NewId("rq"));
          start.set_patient_id(probe_patient_);
          apb::StartIntakeResponse started;
          return assessment->StartIntake(ctx, start, &started);
        }},
        {"CreateAssessment", [&](grpc::ClientContext* ctx) {
          apb::CreateAssessmentResponse created;
          return assessment->CreateAssessment(ctx, ProbeAssessment(), &created);
        }},
        {"GetActivePlan", [&](grpc::ClientContext* ctx) {
          ppb::GetActivePlanRequest get;
          get.set_patient_id(probe_patient_);
          ppb::GetActivePlanResponse got;
          return planning->GetActivePlan(ctx, get, &got);
        }},
        {"GetProgressSummary", [&](grpc::ClientContext* ctx) {
          gpb::GetProgressSummaryRequest get;
          get.set_patient_id(probe_patient_);
          gpb::GetProgressSummaryResponse got;
          return progress->GetProgressSummary(ctx, get, &got);
        }},
    };
    for (const Probe& probe : probes) {
      const auto began = SteadyClock::now();
      grpc::Status last;
      int failures = 0;
      for (;;) {
        grpc::ClientContext ctx;
        ctx.AddMetadata("authorization", "Bearer " + token);
        ctx.set_deadline(std::chrono::system_clock::now() + 1s);
        // As a client that rides through a restart should call (docs/reliability.md): the call
        // waits for the channel to connect, and while it waits this thread polls the connection
        // attempt. Failing fast, with no other call in flight, nothing in a gRPC 1.51 client
        // notices that the attempt succeeded; each attempt then dies at its 2 s floor, and a
        // restarted planning stayed unreachable for 6 to 13 s (1 run in 10 on 2 busy cores).
        ctx.set_wait_for_ready(true);
        auto status = probe.call(&ctx);
        if (status.ok()) break;
        const std::string code = std::string("probe:") + StatusCodeName(status.error_code());
        if (++row.codes[code] == 1) row.examples[code] = status.error_message();
        last = status;
        ++failures;
        if (SteadyClock::now() - since > 30s) return std::nullopt;
        std::this_thread::sleep_for(20ms);
      }
      // Which probe waited, and on what: a slow recovery names its hop.
      if (failures > 0 && SteadyClock::now() - began > 1s) {
        row.notes += std::string(row.notes.empty() ? "" : "; ") + probe.name + " probe waited " +
                     std::to_string(Elapsed(began)) + " ms (" + std::to_string(failures) + " failures, last " +
                     StatusCodeName(last.error_code()) + ": " + last.error_message() + ")";
      }
    }
    return std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - since);
  }


  // Runs the mixed load, strikes with `fault` in the middle, stops the load,
  // reads everything back and asserts what every fault must keep.
  static FaultRow RunUnderLoad(const std::string& name, const std::function<void(FaultRow&)>& fault) {
    FaultRow row;
    row.fault = name;
    Ledger ledger;
    {
      MixedLoad load(*cluster_, ledger, kWorkers);
      std::this_thread::sleep_for(kLoadBefore);
      fault(row);
      std::this_thread::sleep_for(kLoadAfter);
      load.Stop();
    }
    for (const auto& call : ledger.calls()) {
      ++row.calls;
      if (call.code == StatusCode::CANCELLED &&
          (!row.shutdown_began || call.started < *row.shutdown_began - 10ms)) {
        ++row.cancelled_before_shutdown;
      }
      if (call.code != StatusCode::OK) {
        if (++row.codes[StatusCodeName(call.code)] == 1) row.examples[StatusCodeName(call.code)] = call.method + ": " + call.message;
      }
      const long took = std::chrono::duration_cast<std::chrono::milliseconds>(call.ended - call.started).count();
      row.max_overrun_ms = std::max(row.max_overrun_ms, took - static_cast<long>(call.deadline.count()));
    }
    row.verification = Verify(*cluster_, ledger);
    rows_.push_back(row);

    const auto& v = row.verification;
    EXPECT_GT(v.acked_writes, 20) << name << ": the load ran";
    EXPECT_EQ(v.lost, 0) << name << ": " << (v.problems.empty() ? "" : v.problems.front());
    EXPECT_EQ(v.duplicated, 0) << name << ": " << (v.problems.empty() ? "" : v.problems.front());
    EXPECT_EQ(v.verified_writes, v.acked_writes) << name;
    EXPECT_EQ(v.audited_reads, v.acked_reads) << name << ": every answered read has its audit row";
    EXPECT_EQ(ledger.gave_up(), 0) << name << ": a write or read still failing after 30 s of retries";
    for (const auto& [code, count] : row.codes) {
      // "probe:" and "burst:" codes are the recovery probe's and the SIGTERM burst's.
      const std::string bare = code.substr(code.find(':') == std::string::npos ? 0 : code.find(':') + 1);
      EXPECT_TRUE(bare == "UNAVAILABLE" || bare == "DEADLINE_EXCEEDED" || bare == "ABORTED" ||
                  (bare == "CANCELLED" && row.shutdown_began))
          << name << ": " << count << " call(s) failed with " << code << ", e.g. " << row.examples[code];
    }
    EXPECT_EQ(row.cancelled_before_shutdown, 0) << name << ": a call sent before the server began to shut down was cancelled";
    // The client enforces its deadline too; an answer well after it means the call hung.
    EXPECT_LT(row.max_overrun_ms, 1000) << name << ": a call hung past its deadline";
    return row;
  }

  // A store goes away: health turns NOT_SERVING on every service; once it is
  // back, health turns SERVING and calls succeed within 2 s, with no restart.
  // Returns how long health took to turn NOT_SERVING.
  static std::optional<std::chrono::milliseconds> ExpectStoreOutageAndRecovery(
      FaultRow& row, const std::function<void()>& take_away, std::chrono::milliseconds outage,
      const std::function<void()>& give_back, std::chrono::milliseconds promise = kRecoveryPromise) {
    const auto gone = SteadyClock::now();
    take_away();
    auto noticed = cluster_->WaitAllRunning(Health::kNotServing, 4s);
    EXPECT_TRUE(noticed.has_value()) << row.fault << ": health did not turn NOT_SERVING while the store was gone";
    const auto rest = outage - (SteadyClock::now() - gone);
    if (rest > 0ms) std::this_thread::sleep_for(rest);
    give_back();
    const auto back = SteadyClock::now();
    auto serving = cluster_->WaitAllRunning(Health::kServing, 10s);
    auto calls = CallsRecover(back, row);
    row.health_recovery = Millis(serving);
    row.call_recovery = Millis(calls);
    row.notes = "NOT_SERVING after " + Millis(noticed) + (row.notes.empty() ? "" : "; " + row.notes);
    EXPECT_TRUE(serving.has_value()) << row.fault;
    if (serving) {
      EXPECT_LE(*serving, promise) << row.fault << ": health SERVING again";
    }
    EXPECT_TRUE(calls.has_value()) << row.fault;
    if (calls) {
      EXPECT_LE(*calls, promise) << row.fault << ": calls succeed again";
    }
    return noticed;
  }

  // The write path's cost, measured (not asserted): closed-loop callers for `seconds` each on
  // the health check (the baseline: same servers, same moment), a durable Redis write
  // (StartIntake) and a PostgreSQL write (CreateAssessment). Run by hand (docs/benchmarks.md).
  static void MeasureWritePath(const std::string& label) {
    const std::string token = MakeToken(cluster_->keys(), "bench", "bencher", {"clinician"});
    std::printf("\n| stores | concurrency | call | calls/s | ratio to health | p50 ms | p99 ms | not OK |\n"
                "|---|---|---|---|---|---|---|---|\n");
    for (int concurrency : {1, 8, 32}) {
      double health_rate = 0;
      for (const std::string call : {"Health/Check", "StartIntake", "CreateAssessment"}) {
        std::vector<std::vector<double>> latencies(concurrency);
        std::atomic<int> failed{0};
        const auto until = SteadyClock::now() + 5s;
        std::vector<std::thread> threads;
        for (int t = 0; t < concurrency; ++t) {
          threads.emplace_back([&, t] {
            auto health = grpc::health::v1::Health::NewStub(cluster_->Channel(Service::kAssessment));
            auto assessment = apb::AssessmentService::NewStub(cluster_->Channel(Service::kAssessment));
            while (SteadyClock::now() < until) {
              grpc::ClientContext ctx;
              ctx.AddMetadata("authorization", "Bearer " + token);
              ctx.set_deadline(std::chrono::system_clock::now() + 5s);
              const auto start = SteadyClock::now();
              grpc::Status status;
              if (call == "Health/Check") {
                grpc::health::v1::HealthCheckRequest request;
                grpc::health::v1::HealthCheckResponse response;
                status = health->Check(&ctx, request, &response);
              } else if (call == "StartIntake") {
                apb::StartIntakeRequest start_intake;
                start_intake.set_request_id(NewId("rq"));
                start_intake.set_patient_id(probe_patient_);
                apb::StartIntakeResponse started;
                status = assessment->StartIntake(&ctx, start_intake, &started);
              } else {
                apb::CreateAssessmentResponse created;
                status = assessment->CreateAssessment(&ctx, ProbeAssessment(), &created);
              }
              latencies[t].push_back(std::chrono::duration<double, std::milli>(SteadyClock::now() - start).count());
              if (!status.ok()) ++failed;
            }
          });
        }
        for (auto& thread : threads) thread.join();
        std::vector<double> all;
        for (const auto& each : latencies) all.insert(all.end(), each.begin(), each.end());
        std::sort(all.begin(), all.end());
        const double rate = all.size() / 5.0;
        if (call == "Health/Check") health_rate = rate;
        std::printf("| %s | %d | %s | %.0f | %.3f | %.2f | %.2f | %d |\n", label.c_str(), concurrency, call.c_str(), rate,
                    health_rate > 0 ? rate / health_rate : 0, all.empty() ? 0 : all[all.size() / 2],
                    all.empty() ? 0 : all[all.size() * 99 / 100], failed.load());
        std::fflush(stdout);
      }
    }
  }

  static void PrintTable() {
    std::ostringstream out;
    out << "\n| fault | calls | acknowledged writes | verified | retried (exactly once) | lost | duplicated | "
           "reads audited | errors seen | health SERVING after return | calls OK after return | notes |\n"
        << "|---|---|---|---|---|---|---|---|---|---|---|---|\n";
    for (const auto& row : rows_) {
      std::string codes;
      for (const auto& [code, count] : row.codes) codes += (codes.empty() ? "" : " ") + code + "=" + std::to_string(count);
      const auto& v = row.verification;
      out << "| " << row.fault << " | " << row.calls << " | " << v.acked_writes << " | " << v.verified_writes << " | "
          << v.retried_writes << " | " << v.lost << " | " << v.duplicated << " | " << v.audited_reads << "/"
          << v.acked_reads << " | " << (codes.empty() ? "none" : codes) << " | " << row.health_recovery << " | "
          << row.call_recovery << " | " << row.notes << " |\n";
    }
    out << "\nFirst error of each kind:\n";
    for (const auto& row : rows_) {
      for (const auto& [code, example] : row.examples) out << "  " << row.fault << " / " << code << ": " << example << "\n";
    }
    std::fputs(out.str().c_str(), stdout);
  }

  inline static std::unique_ptr<FaultCluster> cluster_;
  inline static std::string probe_patient_;
  inline static std::vector<FaultRow> rows_;
};

// One Redis and one PostgreSQL under the services.
class Faults : public FaultSuite {
 protected:
  static void SetUpTestSuite() { Start(std::make_unique<FaultCluster>()); }
};

TEST_F(Faults, RedisFrozenForFiveSeconds) {
  RunUnderLoad("Redis frozen 5 s (SIGSTOP, SIGCONT)", [](FaultRow& row) {
    ExpectStoreOutageAndRecovery(
        row, [] { cluster_->redis().Freeze(); }, 5s, [] { cluster_->redis().Thaw(); });
  });
}

TEST_F(Faults, RedisKilledAndRestartedOnItsData) {
  RunUnderLoad("Redis killed (SIGKILL), restarted on its data", [](FaultRow& row) {
    ExpectStoreOutageAndRecovery(
        row, [] { cluster_->redis().Crash(); }, 1s, [] { cluster_->redis().Start(); });
  });
}

// Frozen, PostgreSQL keeps every connection open and answers nothing: the calls
// and the health probe are bounded on the client side (non-blocking libpq), so
// health turns NOT_SERVING within 2 s and no call outlives its deadline by 1 s.
TEST_F(Faults, PostgresFrozenForEightSeconds) {
  RunUnderLoad("PostgreSQL frozen 8 s (SIGSTOP of postmaster and backends)", [](FaultRow& row) {
    // At the thaw PostgreSQL first works off what queued up while it was frozen (the connects
    // and cancel requests of the calls that gave up, each a new backend): 1.3 s alone, 2.2 s
    // beside lighter tests, 3.9 s beside the HA suite (ctest no longer runs them together) on
    // 2 cores; promised 5 s.
    auto noticed = ExpectStoreOutageAndRecovery(
        row, [] { cluster_->postgres().Freeze(); }, 8s, [] { cluster_->postgres().Thaw(); }, 5000ms);
    ASSERT_TRUE(noticed.has_value());
    EXPECT_LE(*noticed, 2000ms) << "health must turn NOT_SERVING within 2 s of the store freezing";
  });
}

TEST_F(Faults, PostgresRestartedInImmediateMode) {
  RunUnderLoad("PostgreSQL immediate restart (crash recovery)", [](FaultRow& row) {
    ExpectStoreOutageAndRecovery(
        row, [] { cluster_->postgres().StopImmediate(); }, 1s, [] { cluster_->postgres().Start(); });
  });
}

// Killed mid-batch: the audit writer's queue dies with the process, but no read
// was answered before its batch committed, so every answered read is audited
// (RunUnderLoad checks every one).
TEST_F(Faults, ServiceKilledAndRestarted) {
  RunUnderLoad("planning killed (SIGKILL), restarted", [](FaultRow& row) {
    cluster_->KillReplica(Service::kPlanning, 0);
    std::this_thread::sleep_for(1s);
    const auto restart = SteadyClock::now();
    cluster_->StartReplica(Service::kPlanning, 0);
    row.health_recovery = std::to_string(Elapsed(restart)) + " ms (start to SERVING)";
    auto calls = CallsRecover(restart, row);
    row.call_recovery = Millis(calls);
    ASSERT_TRUE(calls.has_value());
    EXPECT_LE(*calls, 10s) << "calls through a restarted planning (clients and progress reconnect; measured under 1 s, see docs/reliability.md)";
  });
}

// SIGTERM under load: the service first reports NOT_SERVING for its notice
// period while still serving, so every call sent before the signal or during
// the notice completes; then it drains, refuses new calls cleanly (UNAVAILABLE,
// retried by the load) and exits within notice plus grace.
TEST_F(Faults, ServiceTerminatedUnderLoadDrainsInFlightCalls) {
  RunUnderLoad("progress SIGTERM under load, restarted", [](FaultRow& row) {
    // A burst of summaries (each also calls planning): 48 callers, each calling again as soon as
    // its call ends until half the notice has passed, so that calls are in flight when the signal
    // lands however fast one call is (a single round of 48 could all end before it).
    const std::string token = MakeToken(cluster_->keys(), "faults", "burst", {"clinician"});
    struct Outcome {
      SteadyClock::time_point started, ended;
      grpc::Status status;
    };
    constexpr int kBurst = 48;
    constexpr auto kNotice = std::chrono::milliseconds(FaultCluster::kShutdownNoticeMs);
    constexpr auto kGrace = std::chrono::milliseconds(FaultCluster::kShutdownGraceMs);
    std::vector<std::vector<Outcome>> per_caller(kBurst);
    std::atomic<bool> stop{false};
    std::vector<std::thread> burst;
    for (int i = 0; i < kBurst; ++i) {
      burst.emplace_back([&, i] {
        auto progress = gpb::ProgressService::NewStub(cluster_->Channel(Service::kProgress));
        while (!stop.load()) {
          grpc::ClientContext ctx;
          ctx.AddMetadata("authorization", "Bearer " + token);
          ctx.set_deadline(std::chrono::system_clock::now() + 10s);
          gpb::GetProgressSummaryRequest get;
          get.set_patient_id(probe_patient_);
          gpb::GetProgressSummaryResponse got;
          Outcome& outcome = per_caller[i].emplace_back();
          outcome.started = SteadyClock::now();
          outcome.status = progress->GetProgressSummary(&ctx, get, &got);
          outcome.ended = SteadyClock::now();
        }
      });
    }
    std::this_thread::sleep_for(30ms);
    const auto signalled = SteadyClock::now();
    row.shutdown_began = signalled;
    cluster_->SignalReplica(Service::kProgress, 0, SIGTERM);
    std::this_thread::sleep_for(kNotice / 2);
    stop = true;
    const bool exited = cluster_->WaitReplicaExit(Service::kProgress, 0, kNotice + kGrace + 2s);
    const long exit_ms = Elapsed(signalled);
    for (auto& thread : burst) thread.join();
    std::vector<Outcome> outcomes;
    for (auto& calls : per_caller) outcomes.insert(outcomes.end(), calls.begin(), calls.end());
    // Sent before the drain began, with half the notice to spare for a thread
    // descheduled on its way to the wire: the server was serving when it arrived.
    const auto served_until = signalled + kNotice / 2;
    int in_flight = 0, sent_before_drain = 0, sent_before_drain_failed = 0;
    for (const auto& outcome : outcomes) {
      if (outcome.started < signalled && outcome.ended > signalled) ++in_flight;
      if (outcome.started < served_until) {
        ++sent_before_drain;
        if (!outcome.status.ok()) {
          ++sent_before_drain_failed;
          ADD_FAILURE() << "a call sent " << std::chrono::duration_cast<std::chrono::milliseconds>(
                                                 outcome.started - signalled).count()
                        << " ms from the signal failed: " << outcome.status.error_code() << " "
                        << outcome.status.error_message();
        }
      }
      if (!outcome.status.ok()) {
        const std::string code = std::string("burst:") + StatusCodeName(outcome.status.error_code());
        if (++row.codes[code] == 1) row.examples[code] = outcome.status.error_message();
      }
    }
    const auto restart = SteadyClock::now();
    cluster_->StartReplica(Service::kProgress, 0);
    row.health_recovery = std::to_string(Elapsed(restart)) + " ms (start to SERVING)";
    auto calls = CallsRecover(restart, row);
    row.call_recovery = Millis(calls);
    row.notes = "exit " + std::to_string(exit_ms) + " ms after SIGTERM (notice " + std::to_string(kNotice.count()) +
                " ms, grace " + std::to_string(kGrace.count()) + " ms); " + std::to_string(in_flight) +
                " burst calls in flight at the signal; " + std::to_string(sent_before_drain) +
                " sent before the drain, " + std::to_string(sent_before_drain_failed) + " failed" +
                (row.notes.empty() ? "" : "; " + row.notes);
    EXPECT_TRUE(exited) << "progress did not exit within notice plus grace";
    EXPECT_GE(exit_ms, kNotice.count()) << "the notice period was skipped";
    EXPECT_LE(exit_ms, (kNotice + kGrace + 1s).count());
    EXPECT_GT(in_flight, 0) << "the burst did not overlap the signal; the check proved nothing";
    EXPECT_EQ(sent_before_drain_failed, 0) << "calls sent before the drain began must complete";
    ASSERT_TRUE(calls.has_value());
  });
  // A burst call that failed was sent as the drain began (the earlier ones all
  // succeeded, checked above): refused cleanly, UNAVAILABLE or CANCELLED.
  for (const auto& [code, count] : rows_.back().codes) {
    if (code.rfind("burst:", 0) == 0) {
      EXPECT_TRUE(code == "burst:UNAVAILABLE" || code == "burst:CANCELLED") << code << "=" << count;
    }
  }
}

// Two replicas of every service; one planning replica is killed and not
// restarted: its share of calls moves to the other replica.
TEST_F(Faults, OneOfTwoReplicasKilled) {
  for (Service service : kServices) cluster_->StartReplica(service, 1);
  RunUnderLoad("2 replicas each, one planning replica killed", [](FaultRow& row) {
    const auto killed = SteadyClock::now();
    cluster_->KillReplica(Service::kPlanning, 0);
    auto calls = CallsRecover(killed, row);
    row.call_recovery = Millis(calls);
    row.health_recovery = "n/a (not restarted)";
    ASSERT_TRUE(calls.has_value());
    EXPECT_LE(*calls, kRecoveryPromise) << "the surviving replica takes the calls";
  });
  // Back to one replica each, as the next test (or the soak) expects.
  cluster_->StartReplica(Service::kPlanning, 0);
  for (Service service : kServices) cluster_->TerminateReplica(service, 1, 10s);
}

// By hand: build/tests/fault_harness_test --gtest_also_run_disabled_tests --gtest_filter='*WritePathCost*'
TEST_F(Faults, DISABLED_WritePathCost) { MeasureWritePath("one Redis, one PostgreSQL (synchronous_commit on)"); }

// ---- Past one machine (issue 30): the same load and checks on Redis Sentinel and
// a Patroni cluster in synchronous mode (ha_stores.h), each store losing its
// primary in turn. Run as its own ctest entry (ha_faults_test).

class HaFaults : public FaultSuite {
 protected:
  static void SetUpTestSuite() {
    const auto start = SteadyClock::now();
    auto stores = std::make_unique<HaStores>();
    ha_ = stores.get();
    Start(std::make_unique<FaultCluster>(std::move(stores)));
    std::printf("highly available stores and services up in %ld ms\n", Elapsed(start));
  }
  static void TearDownTestSuite() {
    FaultSuite::TearDownTestSuite();
    ha_ = nullptr;
  }

  // Strikes; the time until every probe call (a durable Redis write, a PostgreSQL write and two
  // reads) succeeds is the recovery; then the struck node is brought back and must rejoin.
  static void StrikeAndRejoin(FaultRow& row, const std::function<void()>& strike, const std::function<void()>& restore,
                              const std::function<bool()>& whole) {
    const auto struck = SteadyClock::now();
    strike();
    auto calls = CallsRecover(struck, row);
    row.call_recovery = Millis(calls) + " (from the fault)";
    ASSERT_TRUE(calls.has_value()) << row.fault << ": calls did not recover within 30 s";
    const auto back = SteadyClock::now();
    restore();
    const bool rejoined = whole();
    row.health_recovery = "n/a (failover)";
    row.notes += (row.notes.empty() ? "" : "; ") + std::string("old node rejoined in ") +
                 (rejoined ? std::to_string(Elapsed(back)) + " ms" : "never");
    EXPECT_TRUE(rejoined) << row.fault << ": the old node did not rejoin";
  }

  inline static HaStores* ha_ = nullptr;
};

TEST_F(HaFaults, DISABLED_WritePathCost) {
  MeasureWritePath("Sentinel + WAIT 1; Patroni synchronous (3 nodes)");
}

TEST_F(HaFaults, RedisMasterKilled) {
  RunUnderLoad("HA: Redis master SIGKILL (sentinels promote a replica)", [](FaultRow& row) {
    const int master = ha_->RedisMaster();
    ASSERT_GE(master, 0);
    StrikeAndRejoin(
        row, [&] { ha_->KillRedis(master); }, [&] { ha_->StartRedis(master); },
        [] { return ha_->WaitRedisHealthy(30s); });
    row.notes = "master node " + std::to_string(master) + " -> " + std::to_string(ha_->RedisMaster()) + "; " + row.notes;
  });
}

// The sentinel the services list first stops answering (a stalled host), then the master is
// killed: the two others promote a replica, and every connection of the services dials again.
TEST_F(HaFaults, RedisMasterKilledWithTheFirstSentinelFrozen) {
  RunUnderLoad("HA: Redis master SIGKILL, the first-listed sentinel frozen (SIGSTOP)", [](FaultRow& row) {
    const int master = ha_->RedisMaster();
    ASSERT_GE(master, 0);
    // Thawed however this ends, so a failure here leaves the next faults their three sentinels.
    struct Thaw {
      ~Thaw() { ha_->ThawSentinel(0); }
    } thaw;
    StrikeAndRejoin(
        row,
        [&] {
          ha_->FreezeSentinel(0);
          ha_->KillRedis(master);
        },
        [&] {
          ha_->ThawSentinel(0);
          ha_->StartRedis(master);
        },
        [] { return ha_->WaitRedisHealthy(30s); });
    row.notes = "master node " + std::to_string(master) + " -> " + std::to_string(ha_->RedisMaster()) + "; " + row.notes;
  });
}

TEST_F(HaFaults, PatroniLeaderKilled) {
  RunUnderLoad("HA: Patroni leader SIGKILL (Patroni, postmaster, backends)", [](FaultRow& row) {
    const int primary = ha_->PgPrimary();
    ASSERT_GE(primary, 0);
    StrikeAndRejoin(
        row, [&] { ha_->KillPgNode(primary); }, [&] { ha_->StartPgNode(primary); },
        [] { return ha_->WaitPgHealthy(60s); });
    row.notes = "primary node " + std::to_string(primary) + " -> " + std::to_string(ha_->PgPrimary()) + "; " + row.notes;
  });
}

TEST_F(HaFaults, SynchronousStandbyKilled) {
  RunUnderLoad("HA: synchronous standby SIGKILL", [](FaultRow& row) {
    const int standby = ha_->PgSyncStandby();
    ASSERT_GE(standby, 0);
    StrikeAndRejoin(
        row, [&] { ha_->KillPgNode(standby); }, [&] { ha_->StartPgNode(standby); },
        [] { return ha_->WaitPgHealthy(60s); });
    row.notes = "standby node " + std::to_string(standby) + "; " + row.notes;
  });
}

TEST_F(HaFaults, PostgresPrimaryFrozenForEightSeconds) {
  RunUnderLoad("HA: PostgreSQL primary frozen 8 s (SIGSTOP; Patroni not)", [](FaultRow& row) {
    const int primary = ha_->PgPrimary();
    ASSERT_GE(primary, 0);
    const auto struck = SteadyClock::now();
    ha_->FreezePg(primary);
    auto noticed = cluster_->WaitAllRunning(Health::kNotServing, 4s);
    const auto rest = 8s - (SteadyClock::now() - struck);
    if (rest > 0ms) std::this_thread::sleep_for(rest);
    ha_->ThawPg(primary);
    auto calls = CallsRecover(struck, row);
    row.call_recovery = Millis(calls) + " (from the fault)";
    const bool whole = ha_->WaitPgHealthy(60s);
    row.health_recovery = "NOT_SERVING after " + Millis(noticed);
    row.notes = "primary node " + std::to_string(primary) + " -> " + std::to_string(ha_->PgPrimary()) +
                (whole ? "" : "; the cluster did not settle");
    ASSERT_TRUE(noticed.has_value()) << "health did not turn NOT_SERVING while the primary was frozen";
    EXPECT_LE(*noticed, 2000ms) << "health must turn NOT_SERVING within 2 s of the store freezing";
    EXPECT_TRUE(calls.has_value());
    EXPECT_TRUE(whole);
  });
}

// 30 minutes of steady mixed load (PHYSIO_SOAK_MINUTES), memory and connections
// sampled every minute; neither may grow. Not in CI; see docs/reliability.md.
TEST_F(Faults, DISABLED_Soak) {
  const char* minutes_env = std::getenv("PHYSIO_SOAK_MINUTES");
  const int minutes = minutes_env ? std::atoi(minutes_env) : 30;
  Ledger ledger;
  MixedLoad load(*cluster_, ledger, 4, 200ms);
  struct Sample {
    int minute;
    long rss_kib[3];
    int fds[3];
    int pg_connections, redis_clients, episodes;
  };
  std::vector<Sample> samples;
  std::printf("| minute | assessment RSS MiB | planning RSS MiB | progress RSS MiB | fds (a/pl/pr) | PostgreSQL "
              "sessions | Redis clients | episodes so far |\n|---|---|---|---|---|---|---|---|\n");
  for (int minute = 0; minute <= minutes; ++minute) {
    if (minute > 0) std::this_thread::sleep_for(60s);
    Sample sample{minute, {}, {}, cluster_->PostgresConnections(), cluster_->RedisClients(), load.episodes()};
    for (int s = 0; s < 3; ++s) {
      sample.rss_kib[s] = cluster_->ReplicaRssKib(kServices[s], 0);
      sample.fds[s] = cluster_->ReplicaOpenFds(kServices[s], 0);
    }
    samples.push_back(sample);
    std::printf("| %d | %.1f | %.1f | %.1f | %d/%d/%d | %d | %d | %d |\n", minute, sample.rss_kib[0] / 1024.0,
                sample.rss_kib[1] / 1024.0, sample.rss_kib[2] / 1024.0, sample.fds[0], sample.fds[1], sample.fds[2],
                sample.pg_connections, sample.redis_clients, sample.episodes);
    std::fflush(stdout);
  }
  load.Stop();
  auto verification = Verify(*cluster_, ledger);
  std::printf("acknowledged writes %d, verified %d, lost %d, duplicated %d, reads audited %d/%d\n",
              verification.acked_writes, verification.verified_writes, verification.lost, verification.duplicated,
              verification.audited_reads, verification.acked_reads);
  EXPECT_EQ(verification.lost, 0);
  EXPECT_EQ(verification.duplicated, 0);
  ASSERT_GE(samples.size(), 3u);
  // Second half against first: by half time the pools have dialled and the bounded
  // caches (verified tokens: token-cache-size entries, each token new per episode here)
  // are full, so any growth left would be a leak. At most 5% more memory, the same
  // connections and descriptors give or take a few.
  const Sample& warm = samples[samples.size() / 2];
  const Sample& last = samples.back();
  for (int s = 0; s < 3; ++s) {
    EXPECT_LE(last.rss_kib[s], warm.rss_kib[s] * 105 / 100) << ServiceName(kServices[s]) << " memory grew";
    EXPECT_LE(last.fds[s], warm.fds[s] + 8) << ServiceName(kServices[s]) << " descriptors grew";
  }
  EXPECT_LE(last.pg_connections, warm.pg_connections + 8);
  EXPECT_LE(last.redis_clients, warm.redis_clients + 8);
}

}  // namespace
}  // namespace physio::testing::faults
