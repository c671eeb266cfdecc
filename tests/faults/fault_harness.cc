#include "fault_harness.h"

#include <google/protobuf/util/message_differencer.h>
#include <hiredis/hiredis.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <set>
#include <sstream>
#include <stdexcept>

#include "grpc/health/v1/health.grpc.pb.h"
#include "physio/common/ids.h"

namespace physio::testing::faults {

namespace apb = physio::assessment::v1;
namespace ppb = physio::planning::v1;
namespace gpb = physio::progress::v1;
namespace cpb = physio::common::v1;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

inline constexpr const char* kTenant = "faults";

const char* ServiceName(Service service) {
  switch (service) {
    case Service::kAssessment: return "assessment";
    case Service::kPlanning: return "planning";
    case Service::kProgress: return "progress";
  }
  return "?";
}

namespace {

const char* Binary(Service service) {
  switch (service) {
    case Service::kAssessment: return PHYSIO_ASSESSMENT_BIN;
    case Service::kPlanning: return PHYSIO_PLANNING_BIN;
    case Service::kProgress: return PHYSIO_PROGRESS_BIN;
  }
  return "";
}

// As the services' own peer channels: round robin over the replicas, reconnect within a second.
grpc::ChannelArguments ClientChannelArgs() {
  grpc::ChannelArguments args;
  args.SetLoadBalancingPolicyName("round_robin");
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 2000);  // each attempt's deadline floor (default 20 s)
  // Each client channel its own connections, as separate integrations would have.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return args;
}

int DistinctFreePort(const std::set<int>& taken) {
  for (;;) {
    int port = FreePort();
    if (!taken.contains(port)) return port;
  }
}

std::string LogTail(const fs::path& path) {
  std::ifstream in(path);
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return all.size() > 2000 ? all.substr(all.size() - 2000) : all;
}

}  // namespace

namespace {
class SingleNodeStores final : public Stores {
 public:
  SingleNodeStores(const RedisServer& redis, const PostgresServer& postgres) : redis_(redis), postgres_(postgres) {}
  std::vector<std::string> ServiceArgs() const override {
    return {"--redis-port=" + std::to_string(redis_.port()), "--pg-port=" + std::to_string(postgres_.port())};
  }
  std::string PgConninfo(const std::string& database) const override { return postgres_.Conninfo(database); }

 private:
  const RedisServer& redis_;
  const PostgresServer& postgres_;
};
}  // namespace

FaultCluster::FaultCluster() {
  redis_ = std::make_unique<RedisServer>(/*persistent=*/true);
  postgres_ = std::make_unique<PostgresServer>(/*durable=*/true);
  postgres_->CreateDatabase("physio");
  stores_ = std::make_unique<SingleNodeStores>(*redis_, *postgres_);
  StartServices();
}

FaultCluster::FaultCluster(std::unique_ptr<Stores> stores) : stores_(std::move(stores)) { StartServices(); }

void FaultCluster::StartServices() {
  char tmpl[] = "/tmp/physio-faults-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) throw std::runtime_error("mkdtemp failed");
  log_dir_ = tmpl;
  keys_ = std::make_unique<TestKeys>();
  // Free ports are taken while the stores hold theirs, so none clashes.
  std::set<int> taken;
  for (Service service : kServices) {
    for (int r = 0; r < 2; ++r) {
      Replica& replica = At(service, r);
      replica.port = DistinctFreePort(taken);
      replica.hold = std::make_unique<PortHold>(replica.port);
      taken.insert(replica.port);
      replica.name = std::string(ServiceName(service)) + "#" + std::to_string(r);
    }
  }
  for (Service service : kServices) {
    channels_[service] = grpc::CreateCustomChannel(Target(service), grpc::InsecureChannelCredentials(),
                                                   ClientChannelArgs());
  }
  for (Service service : kServices) StartReplica(service, 0);
}

FaultCluster::~FaultCluster() {
  // Callers first, then what they call, then the stores.
  for (Service service : {Service::kProgress, Service::kPlanning, Service::kAssessment}) {
    for (int r = 0; r < 2; ++r) At(service, r).process.reset();
  }
  stores_.reset();
  postgres_.reset();
  redis_.reset();
  if (std::getenv("PHYSIO_KEEP_FAULT_LOGS") == nullptr) {
    std::error_code ignored;
    fs::remove_all(log_dir_, ignored);
  }
}

FaultCluster::PortHold::PortHold(int port) : fd(socket(AF_INET, SOCK_STREAM, 0)) {
  const int on = 1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) != 0 ||
      bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    if (fd >= 0) close(fd);
    throw std::runtime_error("cannot hold port " + std::to_string(port));
  }
}

FaultCluster::PortHold::~PortHold() { close(fd); }

std::string FaultCluster::Target(Service service) const {
  return "ipv4:127.0.0.1:" + std::to_string(At(service, 0).port) + ",127.0.0.1:" + std::to_string(At(service, 1).port);
}

std::shared_ptr<grpc::Channel> FaultCluster::Channel(Service service) const { return channels_.at(service); }

std::vector<std::string> FaultCluster::ReplicaArgs(Service service, const Replica& replica) const {
  std::vector<std::string> args{Binary(service),
                                "--listen=127.0.0.1:" + std::to_string(replica.port),
                                "--listen-shared=true",  // beside the port's hold (PortHold)
                                "--log-level=warn",
                                "--pg-database=physio",
                                "--jwt-public-key=" + keys_->public_key_path.string(),
                                std::string("--jwt-issuer=") + kIssuer,
                                std::string("--jwt-audience=") + kAudience,
                                "--health-interval-ms=200",
                                "--shutdown-notice-ms=" + std::to_string(kShutdownNoticeMs),
                                "--shutdown-grace-ms=" + std::to_string(kShutdownGraceMs),
                                "--redis-timeout-ms=500",
                                "--idempotency-purge-interval-s=1",
                                "--http-listen=127.0.0.1:0", "--metrics-listen=127.0.0.1:0"};
  for (auto& arg : stores_->ServiceArgs()) args.push_back(std::move(arg));
  if (service == Service::kPlanning) args.push_back("--assessment-addr=" + Target(Service::kAssessment));
  if (service == Service::kProgress) {
    args.push_back("--assessment-addr=" + Target(Service::kAssessment));
    args.push_back("--planning-addr=" + Target(Service::kPlanning));
  }
  return args;
}

void FaultCluster::StartReplica(Service service, int replica) {
  Replica& slot = At(service, replica);
  const fs::path log = log_dir_ / (slot.name + ".log");
  slot.process = std::make_unique<ChildProcess>(ReplicaArgs(service, slot), log.string());
  const auto give_up = SteadyClock::now() + 20s;
  while (SteadyClock::now() < give_up) {
    if (slot.process->Exited()) {
      const std::string how = slot.process->ExitDescription();
      slot.process.reset();
      throw std::runtime_error(slot.name + " exited at start (" + how + "):\n" + LogTail(log));
    }
    if (ReplicaHealth(service, replica, 300ms) == Health::kServing) return;
    std::this_thread::sleep_for(20ms);
  }
  throw std::runtime_error(slot.name + " not SERVING within 20 s:\n" + LogTail(log));
}

void FaultCluster::KillReplica(Service service, int replica) {
  if (auto& process = At(service, replica).process) process->Kill();
  At(service, replica).process.reset();
}

void FaultCluster::SignalReplica(Service service, int replica, int signal) {
  if (auto& process = At(service, replica).process) process->Signal(signal);
}

bool FaultCluster::WaitReplicaExit(Service service, int replica, std::chrono::milliseconds patience) {
  auto& process = At(service, replica).process;
  if (!process) return true;
  if (!process->WaitExit(patience)) return false;
  process.reset();
  return true;
}

std::optional<std::chrono::milliseconds> FaultCluster::TerminateReplica(Service service, int replica,
                                                                        std::chrono::milliseconds patience) {
  const auto sent = SteadyClock::now();
  SignalReplica(service, replica, SIGTERM);
  if (!WaitReplicaExit(service, replica, patience)) return std::nullopt;
  return std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - sent);
}

bool FaultCluster::ReplicaRunning(Service service, int replica) const {
  return At(service, replica).process != nullptr;
}

std::string FaultCluster::LogTails() const {
  std::string out;
  for (Service service : kServices) {
    for (int r = 0; r < 2; ++r) {
      const Replica& slot = At(service, r);
      if (slot.process) out += "--- " + slot.name + ":\n" + LogTail(log_dir_ / (slot.name + ".log")) + "\n";
    }
  }
  return out;
}

std::vector<std::string> FaultCluster::UnexpectedExits() {
  std::vector<std::string> exited;
  for (Service service : kServices) {
    for (int r = 0; r < 2; ++r) {
      Replica& slot = At(service, r);
      if (slot.process && slot.process->Exited()) {
        exited.push_back(slot.name + ":\n" + LogTail(log_dir_ / (slot.name + ".log")));
        slot.process.reset();
      }
    }
  }
  return exited;
}

Health FaultCluster::ReplicaHealth(Service service, int replica, std::chrono::milliseconds timeout) const {
  // A fresh channel per probe: it asks this replica only, and never waits out a reconnect backoff.
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  auto channel = grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(At(service, replica).port),
                                           grpc::InsecureChannelCredentials(), args);
  auto stub = grpc::health::v1::Health::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + timeout);
  grpc::health::v1::HealthCheckRequest request;
  grpc::health::v1::HealthCheckResponse response;
  const auto status = stub->Check(&context, request, &response);
  if (!status.ok()) return Health::kUnreachable;
  return response.status() == grpc::health::v1::HealthCheckResponse::SERVING ? Health::kServing : Health::kNotServing;
}

std::optional<std::chrono::milliseconds> FaultCluster::WaitAllRunning(Health wanted,
                                                                      std::chrono::milliseconds patience) const {
  const auto start = SteadyClock::now();
  while (SteadyClock::now() - start < patience) {
    bool all = true;
    for (Service service : kServices) {
      for (int r = 0; r < 2 && all; ++r) {
        if (ReplicaRunning(service, r) && ReplicaHealth(service, r, 300ms) != wanted) all = false;
      }
    }
    if (all) return std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - start);
    std::this_thread::sleep_for(20ms);
  }
  return std::nullopt;
}

long FaultCluster::ReplicaRssKib(Service service, int replica) const {
  const auto& process = At(service, replica).process;
  if (!process) return 0;
  std::ifstream status("/proc/" + std::to_string(process->pid()) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return 0;
}

int FaultCluster::ReplicaOpenFds(Service service, int replica) const {
  const auto& process = At(service, replica).process;
  if (!process) return 0;
  int count = 0;
  std::error_code ignored;
  for ([[maybe_unused]] const auto& entry :
       fs::directory_iterator("/proc/" + std::to_string(process->pid()) + "/fd", ignored)) {
    ++count;
  }
  return count;
}

int FaultCluster::PostgresConnections() const {
  PGconn* conn = PQconnectdb(stores_->PgConninfo("physio").c_str());
  PGresult* result = PQexec(conn, "SELECT count(*) FROM pg_stat_activity WHERE datname = 'physio'");
  int count = PQresultStatus(result) == PGRES_TUPLES_OK ? std::atoi(PQgetvalue(result, 0, 0)) - 1 : -1;
  PQclear(result);
  PQfinish(conn);
  return count;
}

int FaultCluster::RedisClients() const {
  redisContext* context = redisConnect("127.0.0.1", redis_->port());
  if (context == nullptr || context->err) {
    if (context) redisFree(context);
    return -1;
  }
  auto* reply = static_cast<redisReply*>(redisCommand(context, "INFO clients"));
  int clients = -1;
  if (reply && reply->type == REDIS_REPLY_STRING) {
    std::string info(reply->str, reply->len);
    auto at = info.find("connected_clients:");
    if (at != std::string::npos) clients = std::atoi(info.c_str() + at + 18) - 1;  // not this one
  }
  if (reply) freeReplyObject(reply);
  redisFree(context);
  return clients;
}

// ---- ledger ----

void Ledger::Record(CallRecord record) {
  std::lock_guard lock(mutex_);
  calls_.push_back(std::move(record));
}
void Ledger::Acknowledge(AckedWrite write) {
  std::lock_guard lock(mutex_);
  writes_.push_back(std::move(write));
}
void Ledger::Read(AckedRead read) {
  std::lock_guard lock(mutex_);
  reads_.push_back(std::move(read));
}
void Ledger::Patient(PatientLedger patient) {
  std::lock_guard lock(mutex_);
  patients_.push_back(std::move(patient));
}
std::vector<CallRecord> Ledger::calls() const {
  std::lock_guard lock(mutex_);
  return calls_;
}
std::vector<AckedWrite> Ledger::writes() const {
  std::lock_guard lock(mutex_);
  return writes_;
}
std::vector<AckedRead> Ledger::reads() const {
  std::lock_guard lock(mutex_);
  return reads_;
}
std::vector<PatientLedger> Ledger::patients() const {
  std::lock_guard lock(mutex_);
  return patients_;
}

std::string NewReadId() { return NewId("rd"); }

// ---- the load ----

namespace {

constexpr auto kCallDeadline = 3s;
constexpr auto kRetryBudget = 30s;

// As the README tells clients: UNAVAILABLE and DEADLINE_EXCEEDED, CANCELLED the
// client did not ask for (gRPC's answer to a call that reaches a server in the
// instant it begins to shut down), and ABORTED about the request_id itself (its
// first attempt still running) are retried with the same request; an ABORTED
// stale etag is not (it needs a re-read).
bool Retryable(const grpc::Status& status) {
  return status.error_code() == grpc::StatusCode::UNAVAILABLE ||
         status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED ||
         status.error_code() == grpc::StatusCode::CANCELLED ||
         (status.error_code() == grpc::StatusCode::ABORTED && status.error_message().rfind("request_id:", 0) == 0);
}

// One caller identity talking to the three services, recording every call in the ledger.
class Client {
 public:
  Client(FaultCluster& cluster, Ledger& ledger, std::string token)
      : ledger_(ledger),
        token_(std::move(token)),
        assessment_(apb::AssessmentService::NewStub(cluster.Channel(Service::kAssessment))),
        planning_(ppb::PlanningService::NewStub(cluster.Channel(Service::kPlanning))),
        progress_(gpb::ProgressService::NewStub(cluster.Channel(Service::kProgress))) {}

  template <typename Stub, typename Req, typename Resp>
  grpc::Status Once(Service service, const char* method_name, const std::shared_ptr<Stub>& stub,
                    grpc::Status (Stub::*method)(grpc::ClientContext*, const Req&, Resp*), const Req& request,
                    Resp* response, const std::string& read_id = "") {
    grpc::ClientContext context;
    context.AddMetadata("authorization", "Bearer " + token_);
    if (!read_id.empty()) context.AddMetadata("x-request-id", read_id);
    context.set_deadline(std::chrono::system_clock::now() + kCallDeadline);
    const auto started = SteadyClock::now();
    auto status = (stub.get()->*method)(&context, request, response);
    ledger_.Record({service, method_name, started, SteadyClock::now(), status.error_code(),
                    std::chrono::duration_cast<std::chrono::milliseconds>(kCallDeadline), status.error_message()});
    return status;
  }

  // A mutation, retried with the same request (and request_id) while the cause is
  // transient; acknowledged writes go to the ledger with how to replay them.
  template <typename Stub, typename Req, typename Resp>
  bool Write(Service service, const char* method_name, const std::shared_ptr<Stub>& stub,
             grpc::Status (Stub::*method)(grpc::ClientContext*, const Req&, Resp*), const Req& request,
             Resp* response, const std::string& patient_id) {
    const auto give_up = SteadyClock::now() + kRetryBudget;
    auto backoff = 50ms;
    bool retried = false;
    for (;;) {
      response->Clear();
      auto status = Once(service, method_name, stub, method, request, response);
      if (status.ok()) {
        AckedWrite write;
        write.kind = method_name;
        write.patient_id = patient_id;
        write.retried = retried;
        write.response = std::make_shared<Resp>(*response);
        write.replay = [stub, method, request, token = token_](google::protobuf::Message* out) {
          grpc::ClientContext context;
          context.AddMetadata("authorization", "Bearer " + token);
          context.set_deadline(std::chrono::system_clock::now() + 10s);
          Resp replayed;
          auto status = (stub.get()->*method)(&context, request, &replayed);
          out->CopyFrom(replayed);
          return status;
        };
        ledger_.Acknowledge(std::move(write));
        return true;
      }
      if (!Retryable(status) || SteadyClock::now() > give_up) {
        ledger_.GaveUp();
        return false;
      }
      retried = true;
      std::this_thread::sleep_for(backoff);
      backoff = std::min(backoff * 2, std::chrono::milliseconds(500));
    }
  }

  // A patient-data read with its own x-request-id per attempt; answered ones go to the ledger.
  template <typename Stub, typename Req, typename Resp>
  bool Read(Service service, const char* method_name, const std::shared_ptr<Stub>& stub,
            grpc::Status (Stub::*method)(grpc::ClientContext*, const Req&, Resp*), const Req& request,
            Resp* response) {
    const auto give_up = SteadyClock::now() + kRetryBudget;
    for (;;) {
      const std::string read_id = NewReadId();
      auto status = Once(service, method_name, stub, method, request, response, read_id);
      if (status.ok()) {
        ledger_.Read({service, read_id});
        return true;
      }
      if (!Retryable(status) || SteadyClock::now() > give_up) {
        ledger_.GaveUp();
        return false;
      }
      std::this_thread::sleep_for(100ms);
    }
  }

  std::shared_ptr<apb::AssessmentService::Stub> assessment() const { return assessment_; }
  std::shared_ptr<ppb::PlanningService::Stub> planning() const { return planning_; }
  std::shared_ptr<gpb::ProgressService::Stub> progress() const { return progress_; }

 private:
  Ledger& ledger_;
  std::string token_;
  std::shared_ptr<apb::AssessmentService::Stub> assessment_;
  std::shared_ptr<ppb::PlanningService::Stub> planning_;
  std::shared_ptr<gpb::ProgressService::Stub> progress_;
};

cpb::InstrumentAnswer Answer(cpb::Instrument instrument, const std::string& item, int value) {
  cpb::InstrumentAnswer answer;
  answer.set_instrument(instrument);
  answer.set_item_id(item);
  answer.set_value(value);
  return answer;
}

double OdiScore(const google::protobuf::RepeatedPtrField<cpb::InstrumentScore>& scores) {
  for (const auto& score : scores) {
    if (score.instrument() == cpb::INSTRUMENT_ODI) return score.score();
  }
  return -1;
}

}  // namespace

MixedLoad::MixedLoad(FaultCluster& cluster, Ledger& ledger, int workers, std::chrono::milliseconds pause)
    : cluster_(cluster), ledger_(ledger), pause_(pause) {
  for (int w = 0; w < workers; ++w) threads_.emplace_back([this, w] { Work(w); });
}

MixedLoad::~MixedLoad() { Stop(); }

void MixedLoad::Stop() {
  stopping_ = true;
  for (auto& thread : threads_) {
    if (thread.joinable()) thread.join();
  }
}

void MixedLoad::Work(int worker) {
  Client clinician(cluster_, ledger_,
                   MakeToken(cluster_.keys(), kTenant, "clin-" + std::to_string(worker), {"clinician"}));
  const int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                          std::chrono::system_clock::now().time_since_epoch()).count();
  int episode = 0;
  while (!stopping_) {
    PatientLedger patient;
    patient.patient_id = NewId("pt");
    const std::string& id = patient.patient_id;
    Client self(cluster_, ledger_, MakeToken(cluster_.keys(), kTenant, id, {"patient"}, id));
    const int odi_item_value = (worker + episode) % 5;
    ++episode;
    // Each step runs only while the previous ones were acknowledged; a write
    // that gives up marks the patient abandoned (its record may or may not exist).
    auto step = [&](bool acknowledged) {
      if (!acknowledged) patient.abandoned = true;
      return acknowledged;
    };
    [&] {
      // An import: a clinic system sends a whole assessment.
      apb::CreateAssessmentRequest create;
      create.set_request_id(NewId("rq"));
      create.set_patient_id(id);
      *create.add_answers() = Answer(cpb::INSTRUMENT_NPRS, "nprs", 6);
      for (int i = 1; i <= 10; ++i) *create.add_answers() = Answer(cpb::INSTRUMENT_ODI, "odi." + std::to_string(i), 2);
      create.mutable_red_flag_screen();
      apb::CreateAssessmentResponse created;
      if (!step(clinician.Write(Service::kAssessment, "CreateAssessment", clinician.assessment(),
                                &apb::AssessmentService::Stub::CreateAssessment, create, &created, id))) {
        return;
      }
      patient.assessment_ids.push_back(created.assessment().assessment_id());
      patient.odi_scores[created.assessment().assessment_id()] = OdiScore(created.assessment().scores());

      if (stopping_) return;
      // The plan from it, approved.
      ppb::GeneratePlanRequest generate;
      generate.set_request_id(NewId("rq"));
      generate.set_assessment_id(created.assessment().assessment_id());
      ppb::GeneratePlanResponse generated;
      if (!step(clinician.Write(Service::kPlanning, "GeneratePlan", clinician.planning(),
                                &ppb::PlanningService::Stub::GeneratePlan, generate, &generated, id))) {
        return;
      }
      ppb::ApprovePlanRequest approve;
      approve.set_request_id(NewId("rq"));
      approve.set_plan_id(generated.plan().plan_id());
      approve.set_etag(generated.plan().etag());
      // In effect since before the visit and the logs below (dated up to an hour back): a log
      // from before its plan began is refused.
      approve.mutable_effective_time()->set_seconds(now - 2 * 3600);
      ppb::ApprovePlanResponse approved;
      if (!step(clinician.Write(Service::kPlanning, "ApprovePlan", clinician.planning(),
                                &ppb::PlanningService::Stub::ApprovePlan, approve, &approved, id))) {
        return;
      }
      patient.approved_plan_id = approved.plan().plan_id();

      if (stopping_) return;
      // The patient's own intake over two screens (Redis), completed into an assessment (PostgreSQL).
      apb::StartIntakeRequest start;
      start.set_request_id(NewId("rq"));
      start.set_patient_id(id);
      apb::StartIntakeResponse started;
      if (!step(self.Write(Service::kAssessment, "StartIntake", self.assessment(),
                           &apb::AssessmentService::Stub::StartIntake, start, &started, id))) {
        return;
      }
      if (stopping_) return;
      apb::SubmitIntakeAnswersRequest pain;
      pain.set_request_id(NewId("rq"));
      pain.set_session_id(started.session().session_id());
      *pain.add_answers() = Answer(cpb::INSTRUMENT_NPRS, "nprs", 5);
      apb::SubmitIntakeAnswersResponse submitted;
      if (!step(self.Write(Service::kAssessment, "SubmitIntakeAnswers", self.assessment(),
                           &apb::AssessmentService::Stub::SubmitIntakeAnswers, pain, &submitted, id))) {
        return;
      }
      if (stopping_) return;
      apb::SubmitIntakeAnswersRequest odi;
      odi.set_request_id(NewId("rq"));
      odi.set_session_id(started.session().session_id());
      for (int i = 1; i <= 10; ++i) {
        *odi.add_answers() = Answer(cpb::INSTRUMENT_ODI, "odi." + std::to_string(i), odi_item_value);
      }
      if (!step(self.Write(Service::kAssessment, "SubmitIntakeAnswers", self.assessment(),
                           &apb::AssessmentService::Stub::SubmitIntakeAnswers, odi, &submitted, id))) {
        return;
      }
      if (stopping_) return;
      apb::CompleteIntakeRequest complete;
      complete.set_request_id(NewId("rq"));
      complete.set_session_id(started.session().session_id());
      apb::CompleteIntakeResponse completed;
      if (!step(self.Write(Service::kAssessment, "CompleteIntake", self.assessment(),
                           &apb::AssessmentService::Stub::CompleteIntake, complete, &completed, id))) {
        return;
      }
      patient.assessment_ids.push_back(completed.assessment().assessment_id());
      patient.odi_scores[completed.assessment().assessment_id()] = OdiScore(completed.assessment().scores());

      if (stopping_) return;
      // A clinic visit, two home-exercise logs, an evaluation.
      gpb::RecordVisitRequest visit;
      visit.set_request_id(NewId("rq"));
      visit.set_patient_id(id);
      visit.set_kind(gpb::VISIT_KIND_CLINIC);
      visit.set_clinic_id("clinic-1");
      visit.set_pain_before(5);
      visit.set_pain_after(4);
      visit.mutable_visit_time()->set_seconds(now - 3600);
      visit.mutable_red_flag_screen();
      gpb::RecordVisitResponse recorded;
      if (!step(clinician.Write(Service::kProgress, "RecordVisit", clinician.progress(),
                                &gpb::ProgressService::Stub::RecordVisit, visit, &recorded, id))) {
        return;
      }
      ++patient.visits;
      std::string exercise_id;
      for (const auto& item : approved.plan().items()) {
        if (item.kind() == ppb::PLAN_ITEM_KIND_EXERCISE && item.home_programme()) {
          exercise_id = item.item_id();
          break;
        }
      }
      for (int log_number = 0; log_number < 2 && !exercise_id.empty() && !stopping_; ++log_number) {
        gpb::LogHomeExerciseRequest log;
        log.set_request_id(NewId("rq"));
        log.set_patient_id(id);
        log.set_exercise_id(exercise_id);
        log.mutable_performed_time()->set_seconds(now - 1800 + log_number * 60);
        log.set_sets_done(2);
        log.set_reps_done(10);
        log.set_pain_during(3);
        log.set_pain_after(3);
        gpb::LogHomeExerciseResponse logged;
        if (!step(self.Write(Service::kProgress, "LogHomeExercise", self.progress(),
                             &gpb::ProgressService::Stub::LogHomeExercise, log, &logged, id))) {
          return;
        }
        ++patient.home_logs;
      }
      if (stopping_) return;
      gpb::EvaluateProgressRequest evaluate;
      evaluate.set_request_id(NewId("rq"));
      evaluate.set_patient_id(id);
      evaluate.set_clinic_id("clinic-1");
      gpb::EvaluateProgressResponse evaluated;
      if (!step(clinician.Write(Service::kProgress, "EvaluateProgress", clinician.progress(),
                                &gpb::ProgressService::Stub::EvaluateProgress, evaluate, &evaluated, id))) {
        return;
      }

      if (stopping_) return;
      // Reads a patient app and a clinician's screen make.
      ppb::GetActivePlanRequest active;
      active.set_patient_id(id);
      ppb::GetActivePlanResponse active_plan;
      if (!step(self.Read(Service::kPlanning, "GetActivePlan", self.planning(),
                          &ppb::PlanningService::Stub::GetActivePlan, active, &active_plan))) {
        return;
      }
      apb::GetAssessmentRequest get;
      get.set_assessment_id(completed.assessment().assessment_id());
      apb::GetAssessmentResponse got;
      step(clinician.Read(Service::kAssessment, "GetAssessment", clinician.assessment(),
                          &apb::AssessmentService::Stub::GetAssessment, get, &got));
    }();
    ledger_.Patient(std::move(patient));
    ++episodes_;
    if (pause_.count() > 0 && !stopping_) std::this_thread::sleep_for(pause_);
  }
}

// ---- verification ----

namespace {

std::string SchemaOf(Service service) { return ServiceName(service); }

int CountAudited(FaultCluster& cluster, Service service, const std::vector<std::string>& request_ids) {
  if (request_ids.empty()) return 0;
  std::string array = "{";
  for (std::size_t i = 0; i < request_ids.size(); ++i) array += (i ? "," : "") + request_ids[i];
  array += "}";
  PGconn* conn = PQconnectdb(cluster.stores().PgConninfo("physio").c_str());
  const std::string sql = "SELECT count(DISTINCT request_id) FROM " + SchemaOf(service) +
                          ".audit_events WHERE request_id = ANY($1::text[]) AND outcome = 'OK'";
  const char* params[] = {array.c_str()};
  PGresult* result = PQexecParams(conn, sql.c_str(), 1, nullptr, params, nullptr, nullptr, 0);
  int count = PQresultStatus(result) == PGRES_TUPLES_OK ? std::atoi(PQgetvalue(result, 0, 0)) : -1;
  if (count < 0) std::fprintf(stderr, "audit count failed: %s\n", PQerrorMessage(conn));
  PQclear(result);
  PQfinish(conn);
  return count;
}

}  // namespace

Verification Verify(FaultCluster& cluster, const Ledger& ledger) {
  Verification result;
  // 1. Every acknowledged write, sent again with its request_id, answers the same:
  //    its record (and idempotency record) is there, whole.
  for (const auto& write : ledger.writes()) {
    ++result.acked_writes;
    if (write.retried) ++result.retried_writes;
    std::unique_ptr<google::protobuf::Message> replayed(write.response->New());
    auto status = write.replay(replayed.get());
    if (status.ok() && google::protobuf::util::MessageDifferencer::Equals(*write.response, *replayed)) {
      ++result.verified_writes;
    } else {
      ++result.lost;
      result.problems.push_back(write.kind + " for " + write.patient_id + ": replay " +
                                (status.ok() ? "answered differently" : status.error_message()));
    }
  }
  // 2. Independent reads: each record exactly once, with its content.
  Ledger scratch;  // the verifier's own calls are not part of the load's figures
  Client reader(cluster, scratch, MakeToken(cluster.keys(), kTenant, "verifier", {"clinician"}));
  for (const auto& patient : ledger.patients()) {
    auto note = [&](const std::string& what, bool duplicate) {
      (duplicate ? result.duplicated : result.lost) += 1;
      result.problems.push_back(patient.patient_id + ": " + what);
    };
    apb::ListAssessmentsRequest list;
    list.set_patient_id(patient.patient_id);
    list.set_page_size(50);
    apb::ListAssessmentsResponse listed;
    if (!reader.Read(Service::kAssessment, "ListAssessments", reader.assessment(),
                     &apb::AssessmentService::Stub::ListAssessments, list, &listed)) {
      note("ListAssessments failed", false);
      continue;
    }
    std::map<std::string, double> stored;
    for (const auto& assessment : listed.assessments()) stored[assessment.assessment_id()] = OdiScore(assessment.scores());
    for (const auto& [assessment_id, odi] : patient.odi_scores) {
      auto found = stored.find(assessment_id);
      if (found == stored.end()) {
        note("acknowledged assessment " + assessment_id + " missing", false);
      } else if (found->second != odi) {
        note("assessment " + assessment_id + " holds another ODI score", false);
      }
    }
    const int extra = static_cast<int>(stored.size()) - static_cast<int>(patient.odi_scores.size());
    if (extra > (patient.abandoned ? 1 : 0)) note(std::to_string(extra) + " assessment(s) stored more than acknowledged", true);

    if (!patient.approved_plan_id.empty()) {
      ppb::GetActivePlanRequest active;
      active.set_patient_id(patient.patient_id);
      ppb::GetActivePlanResponse active_plan;
      if (!reader.Read(Service::kPlanning, "GetActivePlan", reader.planning(),
                       &ppb::PlanningService::Stub::GetActivePlan, active, &active_plan) ||
          active_plan.plan().plan_id() != patient.approved_plan_id) {
        note("approved plan " + patient.approved_plan_id + " is not the active plan", false);
      }
    }
    gpb::GetProgressSummaryRequest summary_request;
    summary_request.set_patient_id(patient.patient_id);
    gpb::GetProgressSummaryResponse summary;
    if (patient.visits + patient.home_logs > 0) {
      if (!reader.Read(Service::kProgress, "GetProgressSummary", reader.progress(),
                       &gpb::ProgressService::Stub::GetProgressSummary, summary_request, &summary)) {
        note("GetProgressSummary failed", false);
        continue;
      }
      const int slack = patient.abandoned ? 1 : 0;
      const auto& got = summary.summary();
      if (got.visit_count() < patient.visits) note("acknowledged visit missing", false);
      if (got.visit_count() > patient.visits + slack) note("visit stored twice", true);
      if (got.home_log_count() < patient.home_logs) note("acknowledged home log missing", false);
      if (got.home_log_count() > patient.home_logs + slack) note("home log stored twice", true);
    }
  }
  // 3. Every answered patient-data read has its audit row.
  std::map<Service, std::vector<std::string>> by_service;
  for (const auto& read : ledger.reads()) by_service[read.service].push_back(read.request_id);
  for (const auto& [service, ids] : by_service) {
    result.acked_reads += static_cast<int>(ids.size());
    result.audited_reads += CountAudited(cluster, service, ids);
  }
  return result;
}

}  // namespace physio::testing::faults
