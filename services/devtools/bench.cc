// Closed-loop load against running services on loopback: N client threads, each
// sending one call after another for a bounded time, per RPC. Prints throughput
// and latency percentiles. Bounded in time and count; targets loopback only.
//   physio-bench --key=.run/keys/jwt-private.pem [--threads=8] [--seconds=10]
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <iomanip>
#include <iostream>
#include <mutex>
#include <thread>

#include "physio/assessment/v1/assessment.grpc.pb.h"
#include "physio/auth/token_minter.h"
#include "physio/auth/token_verifier.h"
#include "physio/common/config.h"
#include "physio/common/ids.h"
#include "physio/planning/v1/planning.grpc.pb.h"
#include "physio/progress/v1/progress.grpc.pb.h"

namespace apb = physio::assessment::v1;
namespace ppb = physio::planning::v1;
namespace gpb = physio::progress::v1;
namespace cpb = physio::common::v1;
using Clock = std::chrono::steady_clock;

namespace {
struct Result {
  std::vector<double> latencies_ms;
  long errors = 0;
};

void Report(const std::string& name, Result& result, double seconds) {
  auto& l = result.latencies_ms;
  std::sort(l.begin(), l.end());
  auto pct = [&](double p) { return l.empty() ? 0.0 : l[std::min(l.size() - 1, static_cast<size_t>(p * l.size()))]; };
  std::cout << std::left << std::setw(22) << name << std::right << std::fixed << std::setprecision(0) << std::setw(8)
            << l.size() / seconds << " calls/s" << std::setprecision(2) << "   p50 " << std::setw(6) << pct(0.50)
            << " ms   p95 " << std::setw(6) << pct(0.95) << " ms   p99 " << std::setw(6) << pct(0.99)
            << " ms   errors " << result.errors << "\n";
}

// Runs `call` from `threads` threads for `seconds`; `call` returns ok or not.
Result Drive(int threads, double seconds, const std::function<bool(int thread, long i)>& call) {
  Result total;
  std::mutex mutex;
  std::vector<std::thread> workers;
  auto stop = Clock::now() + std::chrono::duration<double>(seconds);
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      Result mine;
      for (long i = 0; Clock::now() < stop && i < 1000000; ++i) {
        auto start = Clock::now();
        bool ok = call(t, i);
        if (ok) {
          mine.latencies_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
        } else {
          ++mine.errors;
        }
      }
      std::lock_guard lock(mutex);
      total.latencies_ms.insert(total.latencies_ms.end(), mine.latencies_ms.begin(), mine.latencies_ms.end());
      total.errors += mine.errors;
    });
  }
  for (auto& w : workers) w.join();
  return total;
}

template <typename Stub, typename Req, typename Resp>
bool Call(const std::string& token, Stub* stub, grpc::Status (Stub::*method)(grpc::ClientContext*, const Req&, Resp*),
          const Req& request, Resp* response) {
  grpc::ClientContext context;
  context.AddMetadata("authorization", "Bearer " + token);
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  return (stub->*method)(&context, request, response).ok();
}
}  // namespace

int main(int argc, char** argv) {
  try {
    physio::Config config({{"assessment-addr", "127.0.0.1:50051", ""},
                           {"planning-addr", "127.0.0.1:50052", ""},
                           {"progress-addr", "127.0.0.1:50053", ""},
                           {"key", "", "PEM private key the services trust"},
                           {"issuer", "physio-dev", ""},
                           {"audience", "physio-backend", ""},
                           {"threads", "8", "concurrent client threads"},
                           {"seconds", "10", "duration of each phase (max 60)"}},
                          argc, argv);
    const int threads = std::clamp(config.GetInt("threads"), 1, 64);
    const double seconds = std::clamp(config.GetInt("seconds"), 1, 60);
    const std::string key = physio::ReadFileOrThrow(config.Get("key"));
    const std::string tenant = "bench-" + physio::NewId("t").substr(2, 8);
    auto token = [&](const std::string& sub, const std::string& role, const std::string& patient) {
      return physio::MintToken(key, {config.Get("issuer"), config.Get("audience"), tenant, sub, {role}, patient});
    };
    const std::string clinician = token("clin-bench", "clinician", "");
    auto channel = [](const std::string& addr) { return grpc::CreateChannel(addr, grpc::InsecureChannelCredentials()); };
    auto assessment = apb::AssessmentService::NewStub(channel(config.Get("assessment-addr")));
    auto planning = ppb::PlanningService::NewStub(channel(config.Get("planning-addr")));
    auto progress = gpb::ProgressService::NewStub(channel(config.Get("progress-addr")));

    // One patient per thread with an intake session and an active plan.
    std::vector<std::string> patients, sessions;
    for (int t = 0; t < threads; ++t) {
      const std::string patient = "pt-bench-" + std::to_string(t);
      patients.push_back(patient);
      apb::StartIntakeRequest start;
      start.set_request_id(physio::NewId("rq"));
      start.set_patient_id(patient);
      apb::StartIntakeResponse started;
      if (!Call(clinician, assessment.get(), &apb::AssessmentService::Stub::StartIntake, start, &started)) {
        throw std::runtime_error("setup StartIntake failed");
      }
      sessions.push_back(started.session().session_id());
      apb::SubmitIntakeAnswersRequest submit;
      submit.set_request_id(physio::NewId("rq"));
      submit.set_session_id(sessions.back());
      auto* nprs = submit.add_answers();
      nprs->set_instrument(cpb::INSTRUMENT_NPRS);
      nprs->set_item_id("nprs");
      nprs->set_value(6);
      for (int i = 1; i <= 10; ++i) {
        auto* odi = submit.add_answers();
        odi->set_instrument(cpb::INSTRUMENT_ODI);
        odi->set_item_id("odi." + std::to_string(i));
        odi->set_value(2);
      }
      apb::SubmitIntakeAnswersResponse submitted;
      Call(clinician, assessment.get(), &apb::AssessmentService::Stub::SubmitIntakeAnswers, submit, &submitted);
      apb::CompleteIntakeRequest complete;
      complete.set_request_id(physio::NewId("rq"));
      complete.set_session_id(sessions.back());
      apb::CompleteIntakeResponse completed;
      Call(clinician, assessment.get(), &apb::AssessmentService::Stub::CompleteIntake, complete, &completed);
      ppb::GeneratePlanRequest generate;
      generate.set_request_id(physio::NewId("rq"));
      generate.set_assessment_id(completed.assessment().assessment_id());
      ppb::GeneratePlanResponse generated;
      Call(clinician, planning.get(), &ppb::PlanningService::Stub::GeneratePlan, generate, &generated);
      ppb::ApprovePlanRequest approve;
      approve.set_request_id(physio::NewId("rq"));
      approve.set_plan_id(generated.plan().plan_id());
      approve.set_etag(generated.plan().etag());
      ppb::ApprovePlanResponse approved;
      if (!Call(clinician, planning.get(), &ppb::PlanningService::Stub::ApprovePlan, approve, &approved)) {
        throw std::runtime_error("setup plan failed");
      }
      // Fresh sessions for the submit phase.
      start.set_request_id(physio::NewId("rq"));
      Call(clinician, assessment.get(), &apb::AssessmentService::Stub::StartIntake, start, &started);
      sessions.back() = started.session().session_id();
    }

    std::cout << "physio-bench: " << threads << " client threads, " << seconds << " s per phase, tenant " << tenant
              << "\n";
    auto submit = Drive(threads, seconds, [&](int t, long i) {
      apb::SubmitIntakeAnswersRequest request;
      request.set_request_id(physio::NewId("rq"));
      request.set_session_id(sessions[t]);
      auto* answer = request.add_answers();
      answer->set_instrument(cpb::INSTRUMENT_ODI);
      answer->set_item_id("odi." + std::to_string(1 + i % 10));
      answer->set_value(static_cast<int>(i % 6));
      apb::SubmitIntakeAnswersResponse response;
      return Call(clinician, assessment.get(), &apb::AssessmentService::Stub::SubmitIntakeAnswers, request, &response);
    });
    Report("SubmitIntakeAnswers", submit, seconds);
    auto log = Drive(threads, seconds, [&](int t, long i) {
      gpb::LogHomeExerciseRequest request;
      request.set_request_id(physio::NewId("rq"));
      request.set_patient_id(patients[t]);
      request.set_exercise_id("ex.motor.abdominal_bracing");
      request.set_sets_done(2);
      request.set_reps_done(10);
      request.set_pain_during(static_cast<int>(i % 5));
      request.set_pain_after(static_cast<int>(i % 5));
      gpb::LogHomeExerciseResponse response;
      return Call(clinician, progress.get(), &gpb::ProgressService::Stub::LogHomeExercise, request, &response);
    });
    Report("LogHomeExercise", log, seconds);
    auto active = Drive(threads, seconds, [&](int t, long) {
      ppb::GetActivePlanRequest request;
      request.set_patient_id(patients[t]);
      ppb::GetActivePlanResponse response;
      return Call(clinician, planning.get(), &ppb::PlanningService::Stub::GetActivePlan, request, &response);
    });
    Report("GetActivePlan", active, seconds);
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "physio-bench: " << e.what() << "\n";
    return 1;
  }
}
