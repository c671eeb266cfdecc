#pragma once
// The fault harness (issue 12): the three services as separate processes (so
// they can be killed, frozen or sent SIGTERM), two replica slots each, on a
// persistent Redis and a crash-safe PostgreSQL; a mixed load that retries as
// the README tells clients to; and a ledger of every call, from which each
// fault's table row and assertions are made.
#include <grpcpp/grpcpp.h>

#include <array>
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "physio/assessment/v1/assessment.grpc.pb.h"
#include "physio/planning/v1/planning.grpc.pb.h"
#include "physio/progress/v1/progress.grpc.pb.h"
#include "test_env.h"

namespace physio::testing::faults {

using SteadyClock = std::chrono::steady_clock;

enum class Service { kAssessment = 0, kPlanning = 1, kProgress = 2 };
inline constexpr std::array<Service, 3> kServices = {Service::kAssessment, Service::kPlanning, Service::kProgress};
const char* ServiceName(Service service);

enum class Health { kServing, kNotServing, kUnreachable };

// Where the services find their stores: one Redis and one PostgreSQL (FaultCluster's
// own), or a highly available set (ha_stores.h).
class Stores {
 public:
  virtual ~Stores() = default;
  // The services' store options (--redis-*, --pg-*).
  virtual std::vector<std::string> ServiceArgs() const = 0;
  // A superuser connection string to `database` on the primary, for the verifier's reads.
  virtual std::string PgConninfo(const std::string& database) const = 0;
  // What the stores say of themselves (roles, replication), for a failed test's report.
  virtual std::string Describe() const { return ""; }
};

// Redis, PostgreSQL and up to two replicas of each service, every one a process.
class FaultCluster {
 public:
  // One Redis (persistent) and one PostgreSQL (durable).
  FaultCluster();
  // The services on `stores` (a highly available set); redis() and postgres() are then unavailable.
  explicit FaultCluster(std::unique_ptr<Stores> stores);
  ~FaultCluster();

  // Starts replica `replica` (0 or 1) of `service` on its own fixed port and
  // waits until it answers health checks.
  void StartReplica(Service service, int replica);
  // SIGKILL: a crash, no drain.
  void KillReplica(Service service, int replica);
  // SIGTERM; returns how long the process took to exit (or nullopt past `patience`).
  std::optional<std::chrono::milliseconds> TerminateReplica(Service service, int replica,
                                                            std::chrono::milliseconds patience);
  // Sends SIGTERM and returns at once; WaitReplicaExit waits for the exit.
  void SignalReplica(Service service, int replica, int signal);
  bool WaitReplicaExit(Service service, int replica, std::chrono::milliseconds patience);
  bool ReplicaRunning(Service service, int replica) const;
  // Names of replicas that exited without being told to (a crash under a fault).
  std::vector<std::string> UnexpectedExits();
  // The last lines of every running replica's log, for a failed test's report.
  std::string LogTails() const;

  Health ReplicaHealth(Service service, int replica, std::chrono::milliseconds timeout) const;
  // Waits until every running replica reports `wanted`; the time it took, or nullopt past `patience`.
  std::optional<std::chrono::milliseconds> WaitAllRunning(Health wanted, std::chrono::milliseconds patience) const;

  // Every replica slot of a service ("ipv4:127.0.0.1:a,127.0.0.1:b"): clients and
  // peers spread over whichever replicas are up.
  std::string Target(Service service) const;
  std::shared_ptr<grpc::Channel> Channel(Service service) const;

  RedisServer& redis() { return *redis_; }
  PostgresServer& postgres() { return *postgres_; }
  Stores& stores() { return *stores_; }
  const TestKeys& keys() const { return *keys_; }
  // A service process's resident memory (KiB) and open file descriptors (Linux /proc).
  long ReplicaRssKib(Service service, int replica) const;
  int ReplicaOpenFds(Service service, int replica) const;
  // Sessions PostgreSQL has open (all clients) and clients Redis has connected.
  int PostgresConnections() const;
  int RedisClients() const;

  static constexpr int kShutdownNoticeMs = 1000;
  static constexpr int kShutdownGraceMs = 3000;

 private:
  // A replica's port is chosen at start and used for its whole life (peers and clients name
  // it), also while the replica is down: a socket bound to it with SO_REUSEPORT holds it, so
  // another test's process cannot take it (it binds without SO_REUSEPORT), while the replica,
  // started with --listen-shared=true so gRPC binds with it, can. Never listening, the holder
  // receives no connections.
  struct PortHold {
    explicit PortHold(int port);
    ~PortHold();
    PortHold(const PortHold&) = delete;
    PortHold& operator=(const PortHold&) = delete;
    int fd = -1;
  };
  struct Replica {
    int port = 0;
    std::unique_ptr<PortHold> hold;
    std::unique_ptr<ChildProcess> process;
    std::string name;
  };
  std::vector<std::string> ReplicaArgs(Service service, const Replica& replica) const;
  Replica& At(Service service, int replica) { return replicas_[static_cast<int>(service)][replica]; }
  const Replica& At(Service service, int replica) const { return replicas_[static_cast<int>(service)][replica]; }

  std::filesystem::path log_dir_;
  std::unique_ptr<TestKeys> keys_;
  void StartServices();
  std::unique_ptr<RedisServer> redis_;
  std::unique_ptr<PostgresServer> postgres_;
  std::unique_ptr<Stores> stores_;
  std::array<std::array<Replica, 2>, 3> replicas_;
  std::map<Service, std::shared_ptr<grpc::Channel>> channels_;
};

// What one call did, as the client saw it.
struct CallRecord {
  Service service;
  std::string method;
  SteadyClock::time_point started, ended;
  grpc::StatusCode code;
  std::chrono::milliseconds deadline;
  std::string message;  // the status message of a failed call
};

// A write that was acknowledged (OK), with how to send it again and what it answered.
struct AckedWrite {
  std::string kind;
  std::string patient_id;
  bool retried = false;  // acknowledged only after at least one UNAVAILABLE/DEADLINE_EXCEEDED
  std::shared_ptr<google::protobuf::Message> response;
  // Sends the same request (same request_id) again and fills `response`.
  std::function<grpc::Status(google::protobuf::Message* response)> replay;
};

// A patient-data read that was answered, by its x-request-id (its audit row's request_id).
struct AckedRead {
  Service service;
  std::string request_id;
};

// What one patient's episode acknowledged, to compare with what the stores hold.
struct PatientLedger {
  std::string patient_id;
  std::vector<std::string> assessment_ids;  // CreateAssessment and CompleteIntake
  std::map<std::string, double> odi_scores;  // assessment id -> ODI score it answered with
  std::string approved_plan_id;
  int visits = 0;
  int home_logs = 0;
  bool abandoned = false;  // a write gave up: counts may hold one more than acknowledged
};

class Ledger {
 public:
  void Record(CallRecord record);
  void Acknowledge(AckedWrite write);
  void Read(AckedRead read);
  void Patient(PatientLedger patient);
  void GaveUp() { ++gave_up_; }

  std::vector<CallRecord> calls() const;
  std::vector<AckedWrite> writes() const;
  std::vector<AckedRead> reads() const;
  std::vector<PatientLedger> patients() const;
  int gave_up() const { return gave_up_; }

 private:
  mutable std::mutex mutex_;
  std::vector<CallRecord> calls_;
  std::vector<AckedWrite> writes_;
  std::vector<AckedRead> reads_;
  std::vector<PatientLedger> patients_;
  std::atomic<int> gave_up_{0};
};

// Threads each running patient episodes (import, plan approval, intake, visit,
// home logs, evaluation, reads) until stopped, every mutation with its own
// request_id, retried with the same id on UNAVAILABLE and DEADLINE_EXCEEDED.
class MixedLoad {
 public:
  // `pause_between_episodes` paces a steady soak; zero runs flat out.
  MixedLoad(FaultCluster& cluster, Ledger& ledger, int workers,
            std::chrono::milliseconds pause_between_episodes = std::chrono::milliseconds(0));
  ~MixedLoad();
  // Lets each worker finish the write it is in (so nothing is left half-retried) and joins them.
  void Stop();
  int episodes() const { return episodes_; }

 private:
  void Work(int worker);
  FaultCluster& cluster_;
  Ledger& ledger_;
  std::chrono::milliseconds pause_;
  std::atomic<bool> stopping_{false};
  std::atomic<int> episodes_{0};
  std::vector<std::thread> threads_;
};

// Reads back everything the ledger says was acknowledged.
struct Verification {
  int acked_writes = 0;
  int verified_writes = 0;  // replayed with the same answer, and found by an independent read
  int retried_writes = 0;   // acknowledged after a retry: each must exist exactly once
  int lost = 0;             // acknowledged but missing or different
  int duplicated = 0;       // stored more than once
  int acked_reads = 0;
  int audited_reads = 0;
  std::vector<std::string> problems;  // what was lost or duplicated, by kind and id
};
Verification Verify(FaultCluster& cluster, const Ledger& ledger);

std::string NewReadId();

}  // namespace physio::testing::faults
