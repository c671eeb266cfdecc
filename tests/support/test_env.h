#pragma once
// Real infrastructure for integration tests: redis-server and PostgreSQL
// started on free loopback ports (PostgreSQL under the postgres user when run as
// root), a fresh RS256 key pair, and the three services in-process on port 0.
#include <signal.h>
#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "physio/common/config.h"
#include "physio/server/service_host.h"

namespace physio::testing {

int FreePort();

// One series' value from a service's metrics listener (GET /metrics on 127.0.0.1:`metrics_port`):
// `series` as the exposition writes it, labels included (`physio_plan_reads_total{kind="cache"}`),
// matched at the start of a line (not in a HELP or TYPE line); nullopt when the scrape fails or the
// series is absent.
std::optional<double> ScrapeMetric(int metrics_port, const std::string& series);

// For a suite's ServiceCluster::Customize: the assessment service reaches the other two for the FHIR
// REST API and starts first, so their ports are chosen once for the process (the other suites keep
// port 0) and set on all three.
void RouteFhirToPeers(const std::string& service, Config& config);

// A child process, terminated (SIGTERM, then SIGKILL) when destroyed.
class ChildProcess {
 public:
  // `working_dir`: where the child starts (default: the test's own directory). A child that drops
  // to another user (Patroni as postgres) needs one that user can enter: a clone may sit in a
  // directory only root can enter.
  explicit ChildProcess(std::vector<std::string> argv, const std::string& log_path = "",
                        const std::string& working_dir = "");
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  void Stop();
  // SIGKILL, as a crash: no shutdown of any kind.
  void Kill();
  // Sends `signal` (SIGSTOP, SIGCONT, SIGTERM...) and returns at once.
  void Signal(int signal);
  // Waits up to `timeout` for the process to exit; true when it has (it is then reaped).
  bool WaitExit(std::chrono::milliseconds timeout);
  // True when the process has exited on its own (reaped here); a fault harness
  // uses it to prove that no process other than the one it killed went down.
  bool Exited();
  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  // How the reaped process ended: "exit status 1", "killed by signal 11 (SIGSEGV)".
  std::string ExitDescription() const;

 private:
  // waitpid(WNOHANG) once; true (and the status kept) when the process has ended.
  bool Reap();
  pid_t pid_ = -1;
  int status_ = 0;
};

class RedisServer {
 public:
  // `persistent`: an append-only file with fsync every second in its own data
  // directory, as run.sh runs it, kept across Crash()/Start(); otherwise nothing is kept.
  // `extra_args`: more redis-server options ("--replicaof", "127.0.0.1 6379", ...).
  explicit RedisServer(bool persistent = false, std::vector<std::string> extra_args = {});
  ~RedisServer();
  int port() const { return port_; }
  void Stop() { process_.reset(); }
  // SIGKILL (no shutdown, no final fsync).
  void Crash() {
    if (process_) process_->Kill();
    process_.reset();
  }
  // Starts again on the same port (and, when persistent, the same data).
  void Start();
  // SIGSTOP / SIGCONT: Redis hangs (a stalled host, a long fork) without closing connections.
  void Freeze() { process_->Signal(SIGSTOP); }
  void Thaw() { process_->Signal(SIGCONT); }
  ChildProcess* process() { return process_.get(); }

 private:
  int port_;
  std::filesystem::path data_dir_;  // empty when not persistent
  std::vector<std::string> extra_args_;
  std::unique_ptr<ChildProcess> process_;
};

// A redis-sentinel on a free port watching the master at `master_port` under the
// name "physio" (what the services' redis-master-name defaults to).
class RedisSentinelProcess {
 public:
  // `failover_timeout_ms`: also how long a sentinel waits (twice it) before trying a failover again.
  // `config_epoch`: the epoch of the configuration it starts with (as if that many failovers had
  // happened; 0 for a new one).
  RedisSentinelProcess(int master_port, int quorum, int down_after_ms = 1000, int failover_timeout_ms = 10000,
                       int config_epoch = 0);
  ~RedisSentinelProcess();
  int port() const { return port_; }
  // The master's port this sentinel names now (0 when it names none or does not answer).
  int MasterPort() const;
  void Kill() { process_.reset(); }
  // SIGSTOP / SIGCONT: the sentinel hangs (a stalled host) with its port still accepting connections.
  void Freeze() { process_->Signal(SIGSTOP); }
  void Thaw() { process_->Signal(SIGCONT); }
  // The end of the sentinel's log (+sdown, +odown, +try-failover, -failover-abort-...).
  std::string LogTail(std::size_t bytes = 3000) const;

 private:
  std::filesystem::path dir_;
  int port_;
  std::unique_ptr<ChildProcess> process_;
};

// One command to a Redis server on loopback, its reply as text ("" when it fails);
// an array reply's elements joined by spaces.
std::string RedisCommandAt(int port, const std::vector<std::string>& argv);

class PostgresServer {
 public:
  // `durable`: commits wait for their WAL to be written (synchronous_commit on),
  // so an acknowledged write survives a crash of PostgreSQL; the default turns
  // that off for speed. fsync stays off either way: the fault tests crash
  // processes, not the machine, and the OS cache survives a process crash.
  // `extra_options`: more server settings ("-c archive_mode=on ...") on every start.
  explicit PostgresServer(bool durable = false, std::string extra_options = "");
  ~PostgresServer();
  int port() const { return port_; }
  // Creates a database; tests that need isolation each take their own.
  void CreateDatabase(const std::string& name);
  // Stops (fast) and starts again on the same port and data.
  void Stop();
  void Start();
  // `pg_ctl stop -m immediate`: every backend killed, no checkpoint; the next
  // Start() runs crash recovery from the WAL.
  void StopImmediate();
  // A superuser connection string to `database`.
  std::string Conninfo(const std::string& database) const;
  // The data directory (owned by the postgres user) and the server's own directory (sockets, log).
  std::filesystem::path data_dir() const { return dir_ / "data"; }
  std::filesystem::path dir() const { return dir_; }
  // SIGSTOP / SIGCONT of the postmaster and every backend: a host that stalls without closing connections.
  void Freeze();
  void Thaw();
  // One statement as the superuser; the first column of the first row ("" when none); throws on failure.
  std::string Execute(const std::string& sql, const std::string& database = "postgres") const;
  // ALTER SYSTEM SET `name` = `value` and a reload (value as SQL: quoted when a string).
  void SetAndReload(const std::string& name, const std::string& value) const;

 private:
  void RunAsPostgres(const std::vector<std::string>& argv);
  std::filesystem::path dir_;
  int port_;
  bool durable_;
  std::string extra_options_;
  std::vector<pid_t> frozen_;
};

// Runs a command as the postgres user (when root) and waits; throws when it fails, with its output.
void RunAsPostgresUser(const std::vector<std::string>& argv);

// The process ids of a PostgreSQL data directory's postmaster (postmaster.pid) and
// of its children (backends leave the process group, so signals go by PID).
std::vector<pid_t> PostgresPids(const std::filesystem::path& data_dir);

// The key pair tokens are signed with; the public half is written to a file for the services.
struct TestKeys {
  TestKeys();
  std::string private_key_pem;
  std::filesystem::path public_key_path;
};

inline constexpr const char* kIssuer = "physio-test";
inline constexpr const char* kAudience = "physio-backend";

std::string MakeToken(const TestKeys& keys, const std::string& tenant, const std::string& subject,
                      const std::vector<std::string>& roles, const std::string& patient_id = "");

// A service configuration pointing at the test stores and key (port 0, quiet logs).
std::unique_ptr<Config> MakeServiceConfig(std::vector<ConfigKey> keys, const TestKeys& test_keys, int redis_port,
                                          int pg_port, const std::string& database);

// All three services, wired to each other and to the given stores.
class ServiceCluster {
 public:
  // `assessment_overrides`: config keys of the assessment service to set (e.g. a short intake TTL).
  // `customize` sees each service's config ("assessment", "planning", "progress") before it starts.
  using Customize = std::function<void(const std::string& service, Config& config)>;
  ServiceCluster(const TestKeys& keys, int redis_port, int pg_port, const std::string& database,
                 const std::map<std::string, std::string>& assessment_overrides = {}, const Customize& customize = {});
  ~ServiceCluster();
  std::string assessment_addr() const { return "127.0.0.1:" + std::to_string(assessment_->port()); }
  std::string planning_addr() const { return "127.0.0.1:" + std::to_string(planning_->port()); }
  std::string progress_addr() const { return "127.0.0.1:" + std::to_string(progress_->port()); }
  // The HTTP ports (Connect protocol).
  int assessment_http_port() const { return assessment_->http_port(); }
  int planning_http_port() const { return planning_->http_port(); }
  int progress_http_port() const { return progress_->http_port(); }
  // The internal metrics listeners (GET /metrics).
  int assessment_metrics_port() const { return assessment_->metrics_port(); }
  int planning_metrics_port() const { return planning_->metrics_port(); }
  int progress_metrics_port() const { return progress_->metrics_port(); }
  // What a SIGTERM does first (ServiceMain): NOT_SERVING while still serving.
  void AnnounceAssessmentShutdown() { assessment_->AnnounceShutdown(); }

 private:
  std::unique_ptr<Config> assessment_config_, planning_config_, progress_config_;
  std::unique_ptr<RunningService> assessment_, planning_, progress_;
};

}  // namespace physio::testing
