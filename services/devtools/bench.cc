// Closed-loop load against running services on loopback, for docs/benchmarks.md.
// At each concurrency level it first measures the baseline, grpc.health.v1
// Health/Check of each server, then each RPC for the same time, and reports
// calls/s, the ratio to the same server's health-check rate in the same run,
// latency percentiles of the successful calls, and a count per status code.
// The machine is shared and noisy: ratios within one run are the figures to
// compare, not absolute rates across runs. Bounded in time and count; loopback only.
// It also reports CPU per successful call: the client's own (getrusage), the
// called server's (its /metrics process_cpu_seconds_total) and the whole
// machine's (/proc/stat), so a ratio can be traced to where the cycles went.
//   physio-bench --key=.run/keys/jwt-private.pem [--concurrency=1,8,32,128,512] [--seconds=5] [--rounds=1]
//                [--expect-all-ok=1: exit 3 when any measured call was not OK]
#include <grpcpp/grpcpp.h>
#include <httplib.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <atomic>
#include <fstream>
#include <functional>
#include <iomanip>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>

#include "grpc/health/v1/health.grpc.pb.h"
#include "physio/assessment/v1/assessment.grpc.pb.h"
#include "physio/auth/token_minter.h"
#include "physio/auth/token_verifier.h"
#include "physio/common/config.h"
#include "physio/common/ids.h"
#include "physio/common/process_stats.h"
#include "physio/planning/v1/planning.grpc.pb.h"
#include "physio/progress/v1/progress.grpc.pb.h"
#include "physio/server/grpc_context.h"

namespace apb = physio::assessment::v1;
namespace ppb = physio::planning::v1;
namespace gpb = physio::progress::v1;
namespace cpb = physio::common::v1;
namespace hpb = grpc::health::v1;
using physio::Clock;

namespace {
constexpr int kChannelsPerServer = 4;  // like several integration engines, not one connection

struct Tally {
  std::vector<double> ok_ms;
  std::map<std::string, long> codes;
  double seconds = 0;
  // CPU seconds spent during the measurement; negative when unknown.
  double client_cpu = -1, server_cpu = -1, machine_cpu = -1;
  double rate() const { return seconds > 0 ? ok_ms.size() / seconds : 0; }
  // `amount` (of CPU seconds, say) per successful call; negative when unknown.
  double PerCallOf(double amount) const {
    return amount < 0 || ok_ms.empty() ? -1 : amount / static_cast<double>(ok_ms.size());
  }
  // Microseconds of `cpu` per successful call, or "-".
  std::string PerCall(double cpu) const {
    const double micros = PerCallOf(cpu * 1e6);
    return micros < 0 ? "-" : std::to_string(static_cast<long>(micros));
  }
};

// Busy CPU of the whole machine (every process, the kernel too) from /proc/stat.
double MachineCpuSeconds() {
  std::ifstream stat("/proc/stat");
  std::string cpu;
  double user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0;
  if (!(stat >> cpu >> user >> nice >> system >> idle >> iowait >> irq >> softirq)) return -1;
  return (user + nice + system + irq + softirq) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// `call(worker, i)` does one operation and returns its status; run by
// `concurrency` threads, one operation after another, for `seconds`.
// `server_cpu` reads the called server's CPU seconds so far (negative: unknown).
// `rate` > 0: open loop instead: the callers together start `rate` calls a second on a fixed
// schedule, and each latency counts from the call's scheduled start (so a stall is not hidden
// by the calls it delayed); a caller that falls behind does not skip calls.
// `warmup`: each caller first makes that many calls, all callers together, neither timed nor
// counted (a freshly started server's first call per caller fills its caches: token, clinics,
// plan; prepared statements), so the figures are the steady state's.
Tally Drive(int concurrency, double seconds, const std::function<grpc::Status(int, long)>& call,
            const std::function<double()>& server_cpu, double rate = 0, int warmup = 0) {
  Tally total;
  std::mutex mutex;
  std::vector<std::thread> threads;
  if (warmup > 0) {
    for (int w = 0; w < concurrency; ++w) {
      threads.emplace_back([&, w] {
        for (int i = 0; i < warmup; ++i) call(w, i);
      });
    }
    for (auto& thread : threads) thread.join();
    threads.clear();
  }
  const double client_before = physio::ProcessCpuSeconds(), machine_before = MachineCpuSeconds();
  const double server_before = server_cpu();
  const auto start = Clock::now();
  const auto stop = start + std::chrono::duration<double>(seconds);
  for (int w = 0; w < concurrency; ++w) {
    threads.emplace_back([&, w] {
      Tally mine;
      const auto interval = rate > 0 ? std::chrono::duration<double>(concurrency / rate) : std::chrono::duration<double>(0);
      // Callers spread over one interval, so the calls arrive evenly.
      auto due = start + std::chrono::duration_cast<Clock::duration>(interval * (static_cast<double>(w) / concurrency));
      for (long i = 0; Clock::now() < stop && i < 2000000; ++i) {
        if (rate > 0) {
          std::this_thread::sleep_until(due);
          if (due >= stop) break;
        }
        const auto began = rate > 0 ? due : Clock::now();
        due += std::chrono::duration_cast<Clock::duration>(interval);
        const grpc::Status status = call(w, i);
        ++mine.codes[physio::StatusCodeName(status.error_code())];
        if (status.ok()) mine.ok_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - began).count());
      }
      std::lock_guard lock(mutex);
      total.ok_ms.insert(total.ok_ms.end(), mine.ok_ms.begin(), mine.ok_ms.end());
      for (const auto& [code, count] : mine.codes) total.codes[code] += count;
    });
  }
  for (auto& thread : threads) thread.join();
  total.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  const double server_after = server_cpu(), machine_after = MachineCpuSeconds();
  total.client_cpu = physio::ProcessCpuSeconds() - client_before;
  if (server_before >= 0 && server_after >= 0) total.server_cpu = server_after - server_before;
  if (machine_before >= 0 && machine_after >= 0) total.machine_cpu = machine_after - machine_before;
  return total;
}

// What the rows add up to: each row's server CPU per call over its server's health check's in the
// same round, by concurrency and row (with --rounds above 1, the medians printed at the end), and
// how many calls of all rows were answered with anything but OK (--expect-all-ok).
struct Results {
  std::map<std::pair<int, std::string>, std::vector<double>> cpu_ratios;
  long not_ok = 0;
};

// One table row; `baseline` is the same server's health-check measurement of this round (the
// row itself for a health check, whose ratio is not recorded: 1 by definition).
void Report(int concurrency, const std::string& name, Tally& tally, const Tally& baseline, Results& results) {
  auto& l = tally.ok_ms;
  std::sort(l.begin(), l.end());
  auto pct = [&](double p) { return l.empty() ? 0.0 : l[std::min(l.size() - 1, static_cast<size_t>(p * l.size()))]; };
  std::ostringstream codes;
  for (const auto& [code, count] : tally.codes) {
    codes << (codes.tellp() > 0 ? " " : "") << code << "=" << count;
    if (code != "OK") results.not_ok += count;
  }
  const double rate_baseline = baseline.rate();
  std::cout << "| " << std::setw(4) << concurrency << " | " << std::left << std::setw(24) << name << std::right
            << " | " << std::fixed << std::setprecision(0) << std::setw(7) << tally.rate() << " | "
            << std::setprecision(2) << std::setw(5) << (rate_baseline > 0 ? tally.rate() / rate_baseline : 0.0) << " | "
            << std::setw(7) << pct(0.50) << " | " << std::setw(7) << pct(0.99) << " | " << std::setw(6)
            << tally.PerCall(tally.client_cpu) << " | " << std::setw(6) << tally.PerCall(tally.server_cpu) << " | "
            << std::setw(7) << tally.PerCall(tally.machine_cpu) << " | " << codes.str() << " |\n"
            << std::flush;
  const double mine = tally.PerCallOf(tally.server_cpu), health = baseline.PerCallOf(baseline.server_cpu);
  if (&tally != &baseline && mine > 0 && health > 0) results.cpu_ratios[{concurrency, name}].push_back(mine / health);
}

// The summary of several rounds: each row's ratio of server CPU per call to its health check's.
void ReportCpuRatios(const Results& results, int rounds) {
  std::cout << "\nServer CPU per call over the same server's health check's, " << rounds
            << " rounds (issue 33's target 1 compares the median):\n\n"
            << "| conc | rpc                      | median | lowest | highest | rounds |\n"
            << "|-----:|--------------------------|-------:|-------:|--------:|-------:|\n";
  for (const auto& [row, values] : results.cpu_ratios) {
    std::vector<double> sorted = values;
    std::sort(sorted.begin(), sorted.end());
    const std::size_t n = sorted.size();
    const double median = n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
    std::cout << "| " << std::setw(4) << row.first << " | " << std::left << std::setw(24) << row.second << std::right
              << " | " << std::fixed << std::setprecision(2) << std::setw(6) << median << " | " << std::setw(6)
              << sorted.front() << " | " << std::setw(7) << sorted.back() << " | " << std::setw(6) << n << " |\n";
  }
  std::cout << std::flush;
}

class Caller {
 public:
  explicit Caller(std::string token) : token_(std::move(token)) {}
  const std::string& token() const { return token_; }
  template <typename Stub, typename Req, typename Resp>
  grpc::Status operator()(Stub* stub, grpc::Status (Stub::*method)(grpc::ClientContext*, const Req&, Resp*),
                          const Req& request, Resp* response) const {
    grpc::ClientContext context;
    context.AddMetadata("authorization", "Bearer " + token_);
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    return (stub->*method)(&context, request, response);
  }

 private:
  std::string token_;
};

// The same calls as JSON over the service's Connect port (the HTTP gateway), one keep-alive
// connection per caller, as a browser or a wrk run would use it. A request that meets its kept-alive
// connection closing (the port closes one idle for http-keepalive-timeout-ms, and a request can cross
// the close) gets no answer; it is sent once more on a new connection, as the README asks of clients
// (RFC 9112, 9.3.1), and counted in resent(). The writes it sends carry their request_id and the
// reads change nothing, so the second send is safe whether or not the service read the first.
class ConnectCaller {
 public:
  ConnectCaller(std::string token, int port, int callers)
      : token_(std::move(token)), port_(port), clients_(callers), used_(callers, false) {}
  // POSTs `json` to /<service>/<method> on caller `worker`'s connection; OK when the answer is 200.
  grpc::Status Call(int worker, const std::string& path, const std::string& json) {
    const auto at_worker = static_cast<std::size_t>(worker);
    auto& client = clients_[at_worker];
    if (!client) {
      client = std::make_unique<httplib::Client>("127.0.0.1", port_);
      client->set_keep_alive(true);
      client->set_read_timeout(10, 0);
    }
    httplib::Headers headers{{"Authorization", "Bearer " + token_}};
    auto result = client->Post(path, headers, json, "application/json");
    if (!result && used_[at_worker] && (result.error() == httplib::Error::Read || result.error() == httplib::Error::Write)) {
      resent_.fetch_add(1);
      result = client->Post(path, headers, json, "application/json");
    }
    if (!result) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "no HTTP answer");
    used_[at_worker] = true;
    if (result->status == 200) return grpc::Status::OK;
    // A Connect error's code, e.g. {"code":"not_found",...}
    const auto at = result->body.find("\"code\":\"");
    const std::string code = at == std::string::npos ? "" : result->body.substr(at + 8, result->body.find('"', at + 8) - at - 8);
    return grpc::Status(code == "resource_exhausted" ? grpc::StatusCode::RESOURCE_EXHAUSTED
                        : code == "unavailable"      ? grpc::StatusCode::UNAVAILABLE
                        : code == "not_found"        ? grpc::StatusCode::NOT_FOUND
                                                     : grpc::StatusCode::UNKNOWN,
                        code);
  }
  // Requests sent a second time because their kept-alive connection closed under them.
  long resent() const { return resent_.load(); }

 private:
  std::string token_;
  int port_;
  std::vector<std::unique_ptr<httplib::Client>> clients_;
  std::vector<char> used_;  // per caller: its connection has answered before (a reused one can be closing)
  std::atomic<long> resent_{0};
};

template <typename Service>
struct Server {
  std::vector<std::unique_ptr<typename Service::Stub>> stubs;
  std::vector<std::unique_ptr<hpb::Health::Stub>> health;
  std::string name;
  int metrics_port = 0;  // its metrics listener (/metrics); 0: not read
  Server(const std::string& address, std::string service_name, int metrics_port_offset) : name(std::move(service_name)) {
    const auto colon = address.rfind(':');
    if (metrics_port_offset > 0 && colon != std::string::npos) {
      metrics_port = std::stoi(address.substr(colon + 1)) + metrics_port_offset;
    }
    for (int i = 0; i < kChannelsPerServer; ++i) {
      grpc::ChannelArguments args;
      args.SetInt("physio.bench.channel", i);  // distinct arguments: a connection of its own
      auto channel = grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
      stubs.push_back(Service::NewStub(channel));
      health.push_back(hpb::Health::NewStub(channel));
    }
  }
  typename Service::Stub* stub(int worker) { return stubs[worker % kChannelsPerServer].get(); }
  // A gauge's value from its /metrics (`name` followed by a space, unlabelled); -1 when it cannot be read.
  double Gauge(const std::string& name) const {
    if (metrics_port == 0) return -1;
    httplib::Client client("127.0.0.1", metrics_port);
    client.set_connection_timeout(1);
    auto result = client.Get("/metrics");
    if (!result || result->status != 200) return -1;
    const auto at = result->body.find("\n" + name + " ");
    if (at == std::string::npos) return -1;
    return std::stod(result->body.substr(at + 2 + name.size()));
  }
  // The process's CPU seconds so far, from its /metrics; -1 when it cannot be read.
  double CpuSeconds() const { return Gauge("process_cpu_seconds_total"); }
  grpc::Status Check(int worker) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    hpb::HealthCheckRequest request;
    request.set_service(name);
    hpb::HealthCheckResponse response;
    return health[worker % kChannelsPerServer]->Check(&context, request, &response);
  }
};

// After a run of writes that progress's episode refresher recomputes behind the request path
// (outcome reports, docs/reports.md), waits for it to catch up with every write made before `end`
// and says how long that took and what it cost. The refresher's gauge
// physio_outcome_figures_behind_seconds is the time since its last pass that left nothing to
// refresh; a first such pass ending after `end` may have begun before the last writes, so the wait
// is for the next one, which began after the first ended. Bounded at 120 s.
template <typename Service>
void ReportRefresherCatchUp(const Server<Service>& server, Clock::time_point end, double calls, double call_cpu) {
  const double cpu_before = server.CpuSeconds();
  std::optional<Clock::time_point> first;
  const auto give_up = Clock::now() + std::chrono::seconds(120);
  while (Clock::now() < give_up) {
    const double behind = server.Gauge("physio_outcome_figures_behind_seconds");
    if (behind < 0) return;  // not exported (refresher off, or no metrics listener)
    const auto at = Clock::now() - std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(behind));
    if (!first && at > end) {
      first = at;
    } else if (first && at > *first + std::chrono::milliseconds(200)) {
      const double cpu = server.CpuSeconds() - cpu_before;
      const double per_call = calls > 0 ? cpu * 1e6 / calls : 0;
      std::cout << "|      | (outcome figures caught up " << std::setprecision(1)
                << std::chrono::duration<double>(at - end).count() << " s after the last write; the server's CPU "
                << "meanwhile " << std::setprecision(0) << per_call << " µs per write, "
                << (call_cpu >= 0 ? call_cpu * 1e6 / calls + per_call : -1) << " with the call's) | | | | | | | | |\n"
                << std::flush;
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::cout << "|      | (outcome figures not caught up 120 s after the last write) | | | | | | | | |\n" << std::flush;
}

void AddAnswers(google::protobuf::RepeatedPtrField<cpb::InstrumentAnswer>* answers, cpb::Instrument instrument,
                const std::string& prefix, int first, int last, int value) {
  for (int i = first; i <= last; ++i) {
    auto* answer = answers->Add();
    answer->set_instrument(instrument);
    answer->set_item_id(prefix.empty() ? (instrument == cpb::INSTRUMENT_NPRS ? "nprs" : "") : prefix + std::to_string(i));
    answer->set_value(value);
  }
}

std::vector<int> ParseLevels(const std::string& text) {
  std::vector<int> levels;
  std::stringstream in(text);
  std::string part;
  while (std::getline(in, part, ',')) levels.push_back(std::clamp(std::stoi(part), 1, 1024));
  if (levels.empty()) throw std::invalid_argument("--concurrency needs at least one level");
  return levels;
}
}  // namespace

int main(int argc, char** argv) {
  // A kept-alive HTTP connection the server closed (it asks clients to make room when
  // connections wait for a thread) must fail one write, not end the bench.
  std::signal(SIGPIPE, SIG_IGN);
  try {
    physio::Config config({{"assessment-addr", "127.0.0.1:50051", ""},
                           {"planning-addr", "127.0.0.1:50052", ""},
                           {"progress-addr", "127.0.0.1:50053", ""},
                           {"key", "", "PEM private key the services trust"},
                           {"issuer", "physio-dev", ""},
                           {"audience", "physio-backend", ""},
                           {"concurrency", "1,8,32,128,512", "comma-separated numbers of concurrent callers"},
                           {"seconds", "5", "duration of each measurement (max 60)"},
                           {"only", "", "comma-separated RPC names to measure (default all)"},
                           {"tenant", "", "tenant of the bench's data (default: a new one); set it to --compare-token's"},
                           {"compare-token", "",
                            "a clinician's bearer token from another issuer (e.g. an OpenID provider) of the same "
                            "tenant: GetActivePlan is measured with it too, right after the minted token's run"},
                           {"http-port-offset", "1000",
                            "each server's Connect/JSON port is its gRPC port plus this (run.sh's layout): "
                            "GetActivePlan and LogHomeExercise are measured there too, right after gRPC; 0: not"},
                           {"rate", "0",
                            "calls a second offered by all callers together on a fixed schedule (open loop, latency "
                            "from each call's scheduled start); 0: closed loop, each caller as fast as it is answered"},
                           {"patients", "0",
                            "patients LogHomeExercise spreads its logs over, round robin, each with an active plan of "
                            "its own (a clinic's logs are one patient's each, so every log costs the outcome figures a "
                            "refresh); 0: one patient per caller"},
                           {"session-logs", "1",
                            "with --patients: logs a caller makes for one patient before going on to the next (a "
                            "home session of several exercises); 1: every log another patient's"},
                           {"rounds", "1",
                            "times every measurement is repeated (each round: the health checks, then the RPCs); "
                            "above 1, a last table gives each RPC's median ratio of server CPU per call to its "
                            "health check's (this machine's figures move by 20-30% from round to round)"},
                           {"warmup", "1",
                            "calls each caller makes before each measurement, neither timed nor counted (a first call "
                            "fills the server's caches for its caller); 0: none"},
                           {"expect-all-ok", "0",
                            "1: exit with status 3 when any measured call (health checks included) was answered "
                            "with anything but OK, as a check of a deployment's capacity (every caller answered)"},
                           {"metrics-port-offset", "2000",
                            "each server's metrics listener (/metrics, for its CPU) is its gRPC port plus this; 0: not read"}},
                          argc, argv);
    const std::vector<int> levels = ParseLevels(config.Get("concurrency"));
    const int most = *std::max_element(levels.begin(), levels.end());
    const double seconds = std::clamp(config.GetInt("seconds"), 1, 60);
    const std::string only = config.Get("only");
    auto wanted = [&](const std::string& name) { return only.empty() || ("," + only + ",").find("," + name + ",") != std::string::npos; };
    const std::string key = physio::ReadFileOrThrow(config.Get("key"));
    const std::string tenant = config.Get("tenant").empty() ? "bench-" + physio::NewId("t").substr(2, 8) : config.Get("tenant");
    const std::string compare_token = config.Get("compare-token");
    const Caller clinician(physio::MintToken(
        key, {config.Get("issuer"), config.Get("audience"), tenant, "clin-bench", {"clinician"}, ""}));
    const int metrics_offset = config.GetInt("metrics-port-offset");
    Server<apb::AssessmentService> assessment(config.Get("assessment-addr"), "physio.assessment.v1.AssessmentService",
                                              metrics_offset);
    Server<ppb::PlanningService> planning(config.Get("planning-addr"), "physio.planning.v1.PlanningService",
                                          metrics_offset);
    Server<gpb::ProgressService> progress(config.Get("progress-addr"), "physio.progress.v1.ProgressService",
                                          metrics_offset);
    const auto cpu_of = [](const auto& server) { return [&server] { return server.CpuSeconds(); }; };
    const double rate = std::stod(config.Get("rate"));
    const int warmup = std::clamp(config.GetInt("warmup"), 0, 100);
    const int rounds = std::clamp(config.GetInt("rounds"), 1, 20);
    const bool expect_all_ok = config.GetInt("expect-all-ok") != 0;
    const int http_offset = config.GetInt("http-port-offset");
    const auto http_port = [&](const std::string& address) {
      return http_offset > 0 ? std::stoi(address.substr(address.rfind(':') + 1)) + http_offset : 0;
    };
    const auto drive = [&](int c, const std::function<grpc::Status(int, long)>& call,
                           const std::function<double()>& server_cpu) {
      return Drive(c, seconds, call, server_cpu, rate, warmup);
    };

    // One patient per caller with a stored assessment, an active plan and an open intake session.
    const int spread = std::clamp(config.GetInt("patients"), 0, 100000);
    const long session_logs = std::clamp(config.GetInt("session-logs"), 1, 100);
    const int made = std::max(most, spread);
    std::vector<std::string> patients(made), assessments(made), sessions(made);
    std::atomic<int> next{0};
    std::atomic<bool> setup_failed{false};
    std::vector<std::thread> setup;
    for (int s = 0; s < 16; ++s) {
      setup.emplace_back([&, s] {
        for (int w = next++; w < made && !setup_failed; w = next++) {
          patients[w] = "pt-bench-" + std::to_string(w);
          apb::CreateAssessmentRequest create;
          create.set_request_id(physio::NewId("rq"));
          create.set_patient_id(patients[w]);
          AddAnswers(create.mutable_answers(), cpb::INSTRUMENT_NPRS, "", 1, 1, 6);
          AddAnswers(create.mutable_answers(), cpb::INSTRUMENT_ODI, "odi.", 1, 10, 2);
          create.mutable_red_flag_screen();  // screened, nothing found
          apb::CreateAssessmentResponse created;
          ppb::GeneratePlanRequest generate;
          ppb::GeneratePlanResponse generated;
          ppb::ApprovePlanRequest approve;
          ppb::ApprovePlanResponse approved;
          apb::StartIntakeRequest start;
          apb::StartIntakeResponse started;
          if (!clinician(assessment.stub(s), &apb::AssessmentService::Stub::CreateAssessment, create, &created).ok()) {
            setup_failed = true;
            break;
          }
          assessments[w] = created.assessment().assessment_id();
          generate.set_request_id(physio::NewId("rq"));
          generate.set_assessment_id(assessments[w]);
          approve.set_request_id(physio::NewId("rq"));
          start.set_request_id(physio::NewId("rq"));
          start.set_patient_id(patients[w]);
          if (!clinician(planning.stub(s), &ppb::PlanningService::Stub::GeneratePlan, generate, &generated).ok() ||
              (approve.set_plan_id(generated.plan().plan_id()), approve.set_etag(generated.plan().etag()),
               !clinician(planning.stub(s), &ppb::PlanningService::Stub::ApprovePlan, approve, &approved).ok()) ||
              (w < most &&
               !clinician(assessment.stub(s), &apb::AssessmentService::Stub::StartIntake, start, &started).ok())) {
            setup_failed = true;
            break;
          }
          if (w < most) sessions[w] = started.session().session_id();
        }
      });
    }
    for (auto& thread : setup) thread.join();
    if (setup_failed) throw std::runtime_error("setup failed (are the services up, and is --key the one they trust?)");

    const unsigned cores = std::thread::hardware_concurrency();
    std::cout << "physio-bench: tenant " << tenant << ", " << seconds << " s per measurement, " << cores
              << " cores seen, " << kChannelsPerServer << " connections per server; ratio = calls/s over the same"
              << " server's Health/Check calls/s at the same concurrency in this run; CPU in microseconds per"
              << " successful call: the client, the called server, the whole machine (all processes)\n\n"
              << "| conc | rpc                      |   ok/s | ratio | p50 ms  | p99 ms  | client | server | machine |"
                 " status codes |\n"
              << "|-----:|--------------------------|-------:|------:|--------:|--------:|-------:|-------:|--------:|"
                 "--------------|\n";
    // Every level once per round, the rounds one after another.
    std::vector<int> schedule;
    for (int round = 0; round < rounds; ++round) schedule.insert(schedule.end(), levels.begin(), levels.end());
    Results results;
    for (int c : schedule) {
      auto health_a = drive(c, [&](int w, long) { return assessment.Check(w); }, cpu_of(assessment));
      Report(c, "health (assessment)", health_a, health_a, results);
      auto health_p = drive(c, [&](int w, long) { return planning.Check(w); }, cpu_of(planning));
      Report(c, "health (planning)", health_p, health_p, results);
      auto health_g = drive(c, [&](int w, long) { return progress.Check(w); }, cpu_of(progress));
      Report(c, "health (progress)", health_g, health_g, results);

      if (wanted("GetActivePlan")) {
        auto get_active_plan = [&](const Caller& caller) {
          return drive(c, [&](int w, long) {
            ppb::GetActivePlanRequest request;
            request.set_patient_id(patients[w]);
            ppb::GetActivePlanResponse response;
            return caller(planning.stub(w), &ppb::PlanningService::Stub::GetActivePlan, request, &response);
          }, cpu_of(planning));
        };
        auto minted = get_active_plan(clinician);
        Report(c, "GetActivePlan", minted, health_p, results);
        if (http_offset > 0) {
          ConnectCaller json(clinician.token(), http_port(config.Get("planning-addr")), c);
          auto connect = drive(c, [&](int w, long) {
            return json.Call(w, "/physio.planning.v1.PlanningService/GetActivePlan",
                             "{\"patientId\":\"" + patients[w] + "\"}");
          }, cpu_of(planning));
          Report(c, "GetActivePlan JSON", connect, health_p, results);
          std::cout << "|      | (JSON over gRPC: " << std::setprecision(2)
                    << (minted.rate() > 0 ? connect.rate() / minted.rate() : 0.0)
                    << "; sent again after a kept-alive connection closed: " << json.resent() << ")  | | | | | | | | |\n";
        }
        if (!compare_token.empty()) {
          // The same calls with the other issuer's token, right after: its ratio is the comparison.
          const Caller other(compare_token);
          auto compared = get_active_plan(other);
          Report(c, "GetActivePlan (compare)", compared, health_p, results);
        }
      }
      if (wanted("GetAssessment")) {
        auto tally = drive(c, [&](int w, long) {
          apb::GetAssessmentRequest request;
          request.set_assessment_id(assessments[w]);
          apb::GetAssessmentResponse response;
          return clinician(assessment.stub(w), &apb::AssessmentService::Stub::GetAssessment, request, &response);
        }, cpu_of(assessment));
        Report(c, "GetAssessment", tally, health_a, results);
      }
      if (wanted("SubmitIntakeAnswers")) {
        auto tally = drive(c, [&](int w, long i) {
          apb::SubmitIntakeAnswersRequest request;
          request.set_request_id(physio::NewId("rq"));
          request.set_session_id(sessions[w]);
          AddAnswers(request.mutable_answers(), cpb::INSTRUMENT_ODI, "odi.", 1 + i % 10, 1 + i % 10,
                     static_cast<int>(i % 6));
          apb::SubmitIntakeAnswersResponse response;
          return clinician(assessment.stub(w), &apb::AssessmentService::Stub::SubmitIntakeAnswers, request,
                           &response);
        }, cpu_of(assessment));
        Report(c, "SubmitIntakeAnswers", tally, health_a, results);
      }
      if (wanted("UpdateVisitSession")) {
        // One open visit session per caller (pain and a delivered item each call).
        std::vector<std::string> visits(c);
        grpc::Status setup;
        for (int w = 0; w < c && setup.ok(); ++w) {
          gpb::StartVisitSessionRequest start;
          start.set_request_id(physio::NewId("rq"));
          start.set_patient_id(patients[w]);
          start.set_kind(gpb::VISIT_KIND_CLINIC);
          gpb::StartVisitSessionResponse started;
          setup = clinician(progress.stub(w), &gpb::ProgressService::Stub::StartVisitSession, start, &started);
          visits[w] = started.session().session_id();
        }
        if (!setup.ok()) {
          std::cerr << "UpdateVisitSession: StartVisitSession failed: " << setup.error_message() << "\n";
        } else {
          auto tally = drive(c, [&](int w, long i) {
            gpb::UpdateVisitSessionRequest request;
            request.set_request_id(physio::NewId("rq"));
            request.set_session_id(visits[w]);
            request.set_pain_before(static_cast<int>(i % 8));
            request.add_add_delivered_item_ids("ex.motor.abdominal_bracing");
            gpb::UpdateVisitSessionResponse response;
            return clinician(progress.stub(w), &gpb::ProgressService::Stub::UpdateVisitSession, request, &response);
          }, cpu_of(progress));
          Report(c, "UpdateVisitSession", tally, health_g, results);
        }
      }
      if (wanted("LogHomeExercise")) {
        // Caller w's i-th log is for patient w + c * (i / session_logs), round robin over the spread.
        const auto logged = [&](int w, long i) {
          return spread > 0
                     ? patients[static_cast<std::size_t>((w + static_cast<long>(c) * (i / session_logs)) % spread)]
                     : patients[static_cast<std::size_t>(w)];
        };
        auto tally = drive(c, [&](int w, long i) {
          gpb::LogHomeExerciseRequest request;
          request.set_request_id(physio::NewId("rq"));
          request.set_patient_id(logged(w, i));
          request.set_exercise_id("ex.motor.abdominal_bracing");
          request.set_sets_done(2);
          request.set_reps_done(10);
          request.set_pain_during(static_cast<int>(i % 5));
          request.set_pain_after(static_cast<int>(i % 5));
          gpb::LogHomeExerciseResponse response;
          return clinician(progress.stub(w), &gpb::ProgressService::Stub::LogHomeExercise, request, &response);
        }, cpu_of(progress));
        const auto written = Clock::now();
        Report(c, "LogHomeExercise", tally, health_g, results);
        ReportRefresherCatchUp(progress, written, static_cast<double>(tally.ok_ms.size()), tally.server_cpu);
        if (http_offset > 0) {
          ConnectCaller json(clinician.token(), http_port(config.Get("progress-addr")), c);
          auto connect = drive(c, [&](int w, long i) {
            return json.Call(w, "/physio.progress.v1.ProgressService/LogHomeExercise",
                             "{\"requestId\":\"" + physio::NewId("rq") + "\",\"patientId\":\"" + logged(w, i) +
                                 "\",\"exerciseId\":\"ex.motor.abdominal_bracing\",\"setsDone\":2,\"repsDone\":10,"
                                 "\"painDuring\":" + std::to_string(i % 5) + ",\"painAfter\":" + std::to_string(i % 5) + "}");
          }, cpu_of(progress));
          const auto written_json = Clock::now();
          Report(c, "LogHomeExercise JSON", connect, health_g, results);
          ReportRefresherCatchUp(progress, written_json, static_cast<double>(connect.ok_ms.size()), connect.server_cpu);
          std::cout << "|      | (JSON over gRPC: " << std::setprecision(2)
                    << (tally.rate() > 0 ? connect.rate() / tally.rate() : 0.0)
                    << "; sent again after a kept-alive connection closed: " << json.resent() << ")  | | | | | | | | |\n";
        }
      }
      if (wanted("CreateAssessment")) {
        auto tally = drive(c, [&](int w, long) {
          apb::CreateAssessmentRequest request;
          request.set_request_id(physio::NewId("rq"));
          request.set_patient_id(patients[w]);
          AddAnswers(request.mutable_answers(), cpb::INSTRUMENT_NPRS, "", 1, 1, 5);
          apb::CreateAssessmentResponse response;
          return clinician(assessment.stub(w), &apb::AssessmentService::Stub::CreateAssessment, request, &response);
        }, cpu_of(assessment));
        Report(c, "CreateAssessment", tally, health_a, results);
      }
      if (wanted("WholeIntake")) {
        // One operation = StartIntake, 3 x SubmitIntakeAnswers, CompleteIntake (5 calls).
        auto tally = drive(c, [&](int w, long) {
          apb::StartIntakeRequest start;
          start.set_request_id(physio::NewId("rq"));
          start.set_patient_id(patients[w]);
          start.add_instruments(cpb::INSTRUMENT_NPRS);
          start.add_instruments(cpb::INSTRUMENT_ODI);
          apb::StartIntakeResponse started;
          auto status = clinician(assessment.stub(w), &apb::AssessmentService::Stub::StartIntake, start, &started);
          const int parts[3][2] = {{0, 0}, {1, 5}, {6, 10}};
          for (const auto& part : parts) {
            if (!status.ok()) return status;
            apb::SubmitIntakeAnswersRequest submit;
            submit.set_request_id(physio::NewId("rq"));
            submit.set_session_id(started.session().session_id());
            if (part[0] == 0) {
              AddAnswers(submit.mutable_answers(), cpb::INSTRUMENT_NPRS, "", 1, 1, 6);
            } else {
              AddAnswers(submit.mutable_answers(), cpb::INSTRUMENT_ODI, "odi.", part[0], part[1], 2);
            }
            apb::SubmitIntakeAnswersResponse submitted;
            status = clinician(assessment.stub(w), &apb::AssessmentService::Stub::SubmitIntakeAnswers, submit,
                               &submitted);
          }
          if (!status.ok()) return status;
          apb::CompleteIntakeRequest complete;
          complete.set_request_id(physio::NewId("rq"));
          complete.set_session_id(started.session().session_id());
          apb::CompleteIntakeResponse completed;
          return clinician(assessment.stub(w), &apb::AssessmentService::Stub::CompleteIntake, complete, &completed);
        }, cpu_of(assessment));
        Report(c, "WholeIntake (5 calls)", tally, health_a, results);
      }
    }
    if (rounds > 1) ReportCpuRatios(results, rounds);
    if (expect_all_ok && results.not_ok > 0) {
      std::cerr << "physio-bench: " << results.not_ok << " measured call(s) were not answered OK (--expect-all-ok)\n";
      return 3;
    }
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "physio-bench: " << e.what() << "\n";
    return 1;
  }
}
