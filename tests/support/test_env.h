#pragma once
// Real infrastructure for integration tests: redis-server and PostgreSQL
// started on free loopback ports (PostgreSQL under the postgres user when run as
// root), a fresh RS256 key pair, and the three services in-process on port 0.
#include <sys/types.h>

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "physio/common/config.h"
#include "physio/server/service_host.h"

namespace physio::testing {

int FreePort();

// A child process, terminated (SIGTERM, then SIGKILL) when destroyed.
class ChildProcess {
 public:
  explicit ChildProcess(std::vector<std::string> argv, const std::string& log_path = "");
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  void Stop();
  // SIGKILL, as a crash: no shutdown of any kind.
  void Kill();
  bool running() const { return pid_ > 0; }

 private:
  pid_t pid_ = -1;
};

class RedisServer {
 public:
  // `persistent`: an append-only file with fsync every second in its own data
  // directory, as run.sh runs it, kept across Crash()/Start(); otherwise nothing is kept.
  explicit RedisServer(bool persistent = false);
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

 private:
  int port_;
  std::filesystem::path data_dir_;  // empty when not persistent
  std::unique_ptr<ChildProcess> process_;
};

class PostgresServer {
 public:
  PostgresServer();
  ~PostgresServer();
  int port() const { return port_; }
  // Creates a database; tests that need isolation each take their own.
  void CreateDatabase(const std::string& name);
  // Stops (fast) and starts again on the same port and data.
  void Stop();
  void Start();

 private:
  void RunAsPostgres(const std::vector<std::string>& argv);
  std::filesystem::path dir_;
  int port_;
};

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

 private:
  std::unique_ptr<Config> assessment_config_, planning_config_, progress_config_;
  std::unique_ptr<RunningService> assessment_, planning_, progress_;
};

}  // namespace physio::testing
