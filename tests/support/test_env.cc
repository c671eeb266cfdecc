#include "test_env.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <fcntl.h>
#include <string.h>
#include <libpq-fe.h>
#include <hiredis/hiredis.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <random>
#include <stdexcept>
#include <thread>

#include <httplib.h>

#include "assessment_server.h"
#include "physio/auth/token_minter.h"
#include "planning_server.h"
#include "progress_server.h"

namespace physio::testing {

namespace fs = std::filesystem;

namespace {
// The first port the kernel hands out for outgoing connections and port-0
// listeners; a store given a port above it can find it taken by a parallel
// test's connection between the check and its own bind.
int EphemeralPortsStart() {
  std::ifstream range("/proc/sys/net/ipv4/ip_local_port_range");
  int low = 0;
  if (range >> low && low > 12000) return low;
  return 32768;
}

bool CanBind(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  const bool ok = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  close(fd);
  return ok;
}
}  // namespace

void RouteFhirToPeers(const std::string& service, Config& config) {
  static const int planning_port = FreePort();
  static const int progress_port = [] {
    int port = FreePort();
    while (port == planning_port) port = FreePort();
    return port;
  }();
  if (service == "assessment") {
    config.Set("planning-addr", "127.0.0.1:" + std::to_string(planning_port));
    config.Set("progress-addr", "127.0.0.1:" + std::to_string(progress_port));
  }
  if (service == "planning") config.Set("listen", "127.0.0.1:" + std::to_string(planning_port));
  if (service == "progress") config.Set("listen", "127.0.0.1:" + std::to_string(progress_port));
  if (service == "planning" || service == "progress") {
    // Left to follow the gRPC port they would be it plus 1000 and 2000: ports no one checked, and
    // above 30767 inside the ephemeral range, where a connection of another test process can hold
    // them ("cannot listen on 127.0.0.1:32846 (metrics-listen)" once in CI-like runs). Nothing
    // reaches these two by a fixed HTTP or metrics port, so the kernel picks them.
    config.Set("http-listen", "127.0.0.1:0");
    config.Set("metrics-listen", "127.0.0.1:0");
  }
}

std::optional<double> ScrapeMetric(int metrics_port, const std::string& series) {
  const auto scraped = httplib::Client("127.0.0.1", metrics_port).Get("/metrics");
  if (!scraped || scraped->status != 200) return std::nullopt;
  const std::string& body = scraped->body;
  for (std::size_t at = 0; at < body.size();) {
    const std::size_t end = std::min(body.find('\n', at), body.size());
    const std::string_view line(body.data() + at, end - at);
    if (line.size() > series.size() && line.starts_with(series) && line[series.size()] == ' ') {
      try {
        return std::stod(std::string(line.substr(series.size() + 1)));
      } catch (const std::exception&) {
        return std::nullopt;
      }
    }
    at = end + 1;
  }
  return std::nullopt;
}

int FreePort() {
  // Below the ephemeral range, at random: free now, and not one the kernel
  // gives to another process's connection in the meantime. A store that still
  // finds its port taken is started again on another (see the servers below).
  static std::mt19937 random(std::random_device{}() ^ static_cast<unsigned>(getpid()));
  std::uniform_int_distribution<int> pick(10000, EphemeralPortsStart() - 1);
  for (int attempt = 0; attempt < 1000; ++attempt) {
    const int port = pick(random);
    if (CanBind(port)) return port;
  }
  throw std::runtime_error("no free port below the ephemeral range");
}

namespace {
bool CanConnect(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  close(fd);
  return ok;
}

// Until `port` accepts connections; throws at once if `process` exits first.
void WaitForPort(int port, const std::string& what, ChildProcess* process = nullptr) {
  for (int i = 0; i < 200; ++i) {
    if (CanConnect(port)) return;
    if (process != nullptr && process->Exited()) {
      throw std::runtime_error(what + " exited (" + process->ExitDescription() + ") before it opened port " +
                               std::to_string(port));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  throw std::runtime_error(what + " did not open port " + std::to_string(port));
}

std::string PgBinary(const std::string& name) {
  for (const auto& entry : fs::directory_iterator("/usr/lib/postgresql")) {
    fs::path candidate = entry.path() / "bin" / name;
    if (fs::exists(candidate)) return candidate.string();
  }
  throw std::runtime_error("PostgreSQL server binaries not found under /usr/lib/postgresql");
}

bool IsRoot() { return geteuid() == 0; }
}  // namespace

ChildProcess::ChildProcess(std::vector<std::string> argv, const std::string& log_path, const std::string& working_dir) {
  pid_ = fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    // A test binary that dies (an abort, a crash) takes its stores with it.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    int out = open(log_path.empty() ? "/dev/null" : log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    dup2(out, STDOUT_FILENO);
    dup2(out, STDERR_FILENO);
    if (!working_dir.empty() && chdir(working_dir.c_str()) != 0) _exit(126);
    std::vector<char*> args;
    for (auto& arg : argv) args.push_back(arg.data());
    args.push_back(nullptr);
    execvp(args[0], args.data());
    _exit(127);
  }
}

ChildProcess::~ChildProcess() { Stop(); }

void ChildProcess::Signal(int signal) {
  if (pid_ > 0) kill(pid_, signal);
}

bool ChildProcess::Reap() {
  if (pid_ <= 0) return true;
  if (waitpid(pid_, &status_, WNOHANG) != pid_) return false;
  pid_ = -1;
  return true;
}

std::string ChildProcess::ExitDescription() const {
  if (pid_ > 0) return "still running";
  if (WIFSIGNALED(status_)) {
    const char* name = sigabbrev_np(WTERMSIG(status_));
    return "killed by signal " + std::to_string(WTERMSIG(status_)) + " (SIG" + (name != nullptr ? name : "?") + ")";
  }
  return "exit status " + std::to_string(WEXITSTATUS(status_));
}

bool ChildProcess::WaitExit(std::chrono::milliseconds timeout) {
  const auto give_up = std::chrono::steady_clock::now() + timeout;
  do {
    if (Reap()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  } while (std::chrono::steady_clock::now() < give_up);
  return false;
}

bool ChildProcess::Exited() { return Reap(); }

void ChildProcess::Kill() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  waitpid(pid_, &status_, 0);
  pid_ = -1;
}

void ChildProcess::Stop() {
  if (pid_ <= 0) return;
  kill(pid_, SIGCONT);  // a frozen (SIGSTOPped) process cannot act on SIGTERM
  kill(pid_, SIGTERM);
  for (int i = 0; i < 100; ++i) {
    if (Reap()) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  kill(pid_, SIGKILL);
  waitpid(pid_, &status_, 0);
  pid_ = -1;
}

RedisServer::RedisServer(bool persistent, std::vector<std::string> extra_args)
    : port_(FreePort()), extra_args_(std::move(extra_args)) {
  if (persistent) {
    data_dir_ = std::filesystem::temp_directory_path() / ("physio-redis-" + std::to_string(port_));
    std::filesystem::create_directories(data_dir_);
  }
  // A port taken between FreePort and redis's bind: another port, a few times.
  for (int attempt = 1;; ++attempt) {
    try {
      Start();
      return;
    } catch (const std::exception&) {
      if (attempt == 3) throw;
      process_.reset();
      port_ = FreePort();
    }
  }
}

RedisServer::~RedisServer() {
  process_.reset();
  if (!data_dir_.empty()) std::filesystem::remove_all(data_dir_);
}

void RedisServer::Start() {
  std::vector<std::string> argv{"redis-server", "--port", std::to_string(port_), "--bind", "127.0.0.1", "--save", "",
                                "--maxmemory", "256mb", "--maxmemory-policy", "noeviction"};
  if (data_dir_.empty()) {
    argv.insert(argv.end(), {"--appendonly", "no"});
  } else {
    argv.insert(argv.end(), {"--dir", data_dir_.string(), "--appendonly", "yes", "--appendfsync", "always"});
  }
  argv.insert(argv.end(), extra_args_.begin(), extra_args_.end());
  process_ = std::make_unique<ChildProcess>(argv);
  WaitForPort(port_, "redis-server", process_.get());
}

std::string RedisCommandAt(int port, const std::vector<std::string>& argv) {
  timeval timeout{1, 0};
  redisContext* context = redisConnectWithTimeout("127.0.0.1", port, timeout);
  if (context == nullptr || context->err) {
    if (context) redisFree(context);
    return "";
  }
  redisSetTimeout(context, timeout);
  std::vector<const char*> args;
  std::vector<size_t> lengths;
  for (const auto& arg : argv) {
    args.push_back(arg.data());
    lengths.push_back(arg.size());
  }
  auto* reply = static_cast<redisReply*>(
      redisCommandArgv(context, static_cast<int>(args.size()), args.data(), lengths.data()));
  std::string text;
  if (reply) {
    if (reply->type == REDIS_REPLY_ARRAY) {
      for (size_t i = 0; i < reply->elements; ++i) {
        const redisReply* element = reply->element[i];
        if (i) text += ' ';
        if (element->type == REDIS_REPLY_INTEGER) text += std::to_string(element->integer);
        else if (element->str) text += std::string(element->str, element->len);
      }
    } else if (reply->type == REDIS_REPLY_INTEGER) {
      text = std::to_string(reply->integer);
    } else if (reply->str) {
      text = std::string(reply->str, reply->len);
    }
    freeReplyObject(reply);
  }
  redisFree(context);
  return text;
}

RedisSentinelProcess::RedisSentinelProcess(int master_port, int quorum, int down_after_ms, int failover_timeout_ms,
                                           int config_epoch)
    : port_(FreePort()) {
  char tmpl[] = "/tmp/physio-sentinel-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) throw std::runtime_error("mkdtemp failed");
  dir_ = tmpl;
  // The sentinel rewrites its file as it learns the replicas and other sentinels.
  std::ofstream(dir_ / "sentinel.conf") << "port " << port_ << "\nbind 127.0.0.1\ndir " << dir_.string()
                                        << "\nsentinel monitor physio 127.0.0.1 " << master_port << " " << quorum
                                        << "\nsentinel down-after-milliseconds physio " << down_after_ms
                                        << "\nsentinel failover-timeout physio " << failover_timeout_ms
                                        << "\nsentinel parallel-syncs physio 1\nsentinel current-epoch " << config_epoch
                                        << "\nsentinel config-epoch physio " << config_epoch << "\n";
  process_ = std::make_unique<ChildProcess>(std::vector<std::string>{"redis-sentinel", (dir_ / "sentinel.conf").string()},
                                            (dir_ / "log").string());
  WaitForPort(port_, "redis-sentinel", process_.get());
}

RedisSentinelProcess::~RedisSentinelProcess() {
  process_.reset();
  std::error_code ignored;
  fs::remove_all(dir_, ignored);
}

std::string RedisSentinelProcess::LogTail(std::size_t bytes) const {
  std::ifstream in(dir_ / "log");
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return all.size() > bytes ? all.substr(all.size() - bytes) : all;
}

int RedisSentinelProcess::MasterPort() const {
  const std::string named = RedisCommandAt(port_, {"SENTINEL", "get-master-addr-by-name", "physio"});
  const auto space = named.find(' ');
  return space == std::string::npos ? 0 : std::atoi(named.c_str() + space + 1);
}

PostgresServer::PostgresServer(bool durable, std::string extra_options)
    : port_(FreePort()), durable_(durable), extra_options_(std::move(extra_options)) {
  char tmpl[] = "/tmp/physio-pg-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) throw std::runtime_error("mkdtemp failed");
  dir_ = tmpl;
  if (IsRoot()) {
    passwd* pw = getpwnam("postgres");
    if (pw == nullptr) throw std::runtime_error("no postgres user (is postgresql installed?)");
    if (chown(dir_.c_str(), pw->pw_uid, pw->pw_gid) != 0) throw std::runtime_error("chown failed");
  }
  RunAsPostgres({PgBinary("initdb"), "-D", (dir_ / "data").string(), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                 "--no-sync"});
  // A port taken between FreePort and the postmaster's bind: another port, a
  // few times; the last failure carries the server's log.
  for (int attempt = 1;; ++attempt) {
    try {
      Start();
      return;
    } catch (const std::exception& e) {
      std::ifstream log(dir_ / "log");
      std::string tail, line;
      while (std::getline(log, line)) tail = tail.size() > 2000 ? line : tail + "\n" + line;
      if (attempt == 3) throw std::runtime_error(std::string(e.what()) + "; postgres log:" + tail);
      std::error_code ignored;
      fs::remove(dir_ / "log", ignored);
      port_ = FreePort();
    }
  }
}

void PostgresServer::Start() {
  RunAsPostgres({PgBinary("pg_ctl"), "-D", (dir_ / "data").string(), "-l", (dir_ / "log").string(), "-w", "-o",
                 "-p " + std::to_string(port_) + " -c listen_addresses=127.0.0.1 -k " + dir_.string() +
                     " -c fsync=off -c full_page_writes=off -c max_connections=400" +
                     (durable_ ? "" : " -c synchronous_commit=off") +
                     (extra_options_.empty() ? "" : " " + extra_options_),
                 "start"});
}

void PostgresServer::StopImmediate() {
  RunAsPostgres({PgBinary("pg_ctl"), "-D", (dir_ / "data").string(), "-m", "immediate", "-w", "stop"});
}

std::vector<pid_t> PostgresPids(const fs::path& data_dir) {
  std::vector<pid_t> pids;
  std::ifstream pidfile(data_dir / "postmaster.pid");
  pid_t postmaster = 0;
  if (!(pidfile >> postmaster) || postmaster <= 0) return pids;
  pids.push_back(postmaster);
  std::error_code ignored;
  for (const auto& entry : fs::directory_iterator("/proc", ignored)) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream stat(entry.path() / "stat");
    std::string line;
    if (!std::getline(stat, line)) continue;
    // pid (comm) state ppid ...: comm may hold spaces, so read after the last ')'.
    const auto close = line.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(line.substr(close + 1));
    std::string state;
    pid_t parent = 0;
    rest >> state >> parent;
    if (parent == postmaster) pids.push_back(static_cast<pid_t>(std::stoi(name)));
  }
  return pids;
}

void PostgresServer::Freeze() {
  // The postmaster first, so it starts no backend meanwhile.
  frozen_ = PostgresPids(dir_ / "data");
  for (pid_t pid : frozen_) kill(pid, SIGSTOP);
}

void PostgresServer::Thaw() {
  for (pid_t pid : frozen_) kill(pid, SIGCONT);
  frozen_.clear();
}

std::string PostgresServer::Execute(const std::string& sql, const std::string& database) const {
  PGconn* conn = PQconnectdb((Conninfo(database) + " connect_timeout=5").c_str());
  PGresult* result = PQexec(conn, sql.c_str());
  const ExecStatusType status = PQresultStatus(result);
  std::string value = status == PGRES_TUPLES_OK && PQntuples(result) > 0 ? PQgetvalue(result, 0, 0) : "";
  std::string error = PQerrorMessage(conn);
  PQclear(result);
  PQfinish(conn);
  if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) throw std::runtime_error(sql + ": " + error);
  return value;
}

void PostgresServer::SetAndReload(const std::string& name, const std::string& value) const {
  Execute("ALTER SYSTEM SET " + name + " = " + value);
  Execute("SELECT pg_reload_conf()");
}

std::string PostgresServer::Conninfo(const std::string& database) const {
  return "host=127.0.0.1 port=" + std::to_string(port_) + " user=postgres dbname=" + database;
}

void PostgresServer::Stop() {
  RunAsPostgres({PgBinary("pg_ctl"), "-D", (dir_ / "data").string(), "-m", "fast", "-w", "stop"});
}

PostgresServer::~PostgresServer() {
  Thaw();
  try {
    RunAsPostgres({PgBinary("pg_ctl"), "-D", (dir_ / "data").string(), "-m", "immediate", "-w", "stop"});
  } catch (...) {
  }
  std::error_code ignored;
  fs::remove_all(dir_, ignored);
}

void RunAsPostgresUser(const std::vector<std::string>& argv) {
  std::vector<std::string> full;
  if (IsRoot()) full = {"runuser", "-u", "postgres", "--"};
  full.insert(full.end(), argv.begin(), argv.end());
  char tmpl[] = "/tmp/physio-run-XXXXXX";
  const int out = mkstemp(tmpl);
  if (out < 0) throw std::runtime_error("mkstemp failed");
  pid_t pid = fork();
  if (pid == 0) {
    dup2(out, STDOUT_FILENO);
    dup2(out, STDERR_FILENO);
    std::vector<char*> args;
    for (auto& arg : full) args.push_back(arg.data());
    args.push_back(nullptr);
    execvp(args[0], args.data());
    _exit(127);
  }
  close(out);
  int status = 0;
  waitpid(pid, &status, 0);
  std::ifstream in(tmpl);
  std::string output((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  unlink(tmpl);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::string command;
    for (const auto& arg : argv) command += (command.empty() ? "" : " ") + arg;
    throw std::runtime_error("failed: " + command + "\n" + output.substr(0, 4000));
  }
}

void PostgresServer::RunAsPostgres(const std::vector<std::string>& argv) { RunAsPostgresUser(argv); }

void PostgresServer::CreateDatabase(const std::string& name) {
  PGconn* conn = PQconnectdb(Conninfo("postgres").c_str());
  PGresult* result = PQexec(conn, ("CREATE DATABASE " + name).c_str());
  bool ok = PQresultStatus(result) == PGRES_COMMAND_OK;
  std::string error = PQerrorMessage(conn);
  PQclear(result);
  PQfinish(conn);
  if (!ok) throw std::runtime_error("CREATE DATABASE failed: " + error);
}

TestKeys::TestKeys() {
  auto pair = GenerateRsaKeyPair();
  private_key_pem = pair.private_key_pem;
  char tmpl[] = "/tmp/physio-key-XXXXXX";
  int fd = mkstemp(tmpl);
  close(fd);
  public_key_path = tmpl;
  std::ofstream(public_key_path) << pair.public_key_pem;
}

std::string MakeToken(const TestKeys& keys, const std::string& tenant, const std::string& subject,
                      const std::vector<std::string>& roles, const std::string& patient_id) {
  return MintToken(keys.private_key_pem, {kIssuer, kAudience, tenant, subject, roles, patient_id});
}

std::unique_ptr<Config> MakeServiceConfig(std::vector<ConfigKey> keys, const TestKeys& test_keys, int redis_port,
                                          int pg_port, const std::string& database) {
  auto config = std::make_unique<Config>(std::move(keys));
  config->Set("listen", "127.0.0.1:0");
  config->Set("log-level", "warn");
  config->Set("redis-port", std::to_string(redis_port));
  config->Set("pg-port", std::to_string(pg_port));
  config->Set("pg-database", database);
  config->Set("jwt-public-key", test_keys.public_key_path.string());
  config->Set("jwt-issuer", kIssuer);
  config->Set("jwt-audience", kAudience);
  config->Set("health-interval-ms", "200");
  config->Set("shutdown-grace-ms", "2000");
  config->Set("redis-timeout-ms", "500");
  config->Set("idempotency-purge-interval-s", "1");
  return config;
}

ServiceCluster::ServiceCluster(const TestKeys& keys, int redis_port, int pg_port, const std::string& database,
                               const std::map<std::string, std::string>& assessment_overrides,
                               const Customize& customize) {
  assessment_config_ = MakeServiceConfig(assessment::AssessmentConfigKeys(), keys, redis_port, pg_port, database);
  for (const auto& [key, value] : assessment_overrides) assessment_config_->Set(key, value);
  if (customize) customize("assessment", *assessment_config_);
  assessment_ = assessment::StartAssessmentService(*assessment_config_);
  planning_config_ = MakeServiceConfig(planning::PlanningConfigKeys(), keys, redis_port, pg_port, database);
  planning_config_->Set("assessment-addr", assessment_addr());
  if (customize) customize("planning", *planning_config_);
  planning_ = planning::StartPlanningService(*planning_config_);
  progress_config_ = MakeServiceConfig(progress::ProgressConfigKeys(), keys, redis_port, pg_port, database);
  progress_config_->Set("planning-addr", planning_addr());
  progress_config_->Set("assessment-addr", assessment_addr());
  if (customize) customize("progress", *progress_config_);
  progress_ = progress::StartProgressService(*progress_config_);
}

ServiceCluster::~ServiceCluster() {
  if (progress_) progress_->Shutdown();
  if (planning_) planning_->Shutdown();
  if (assessment_) assessment_->Shutdown();
}

}  // namespace physio::testing
