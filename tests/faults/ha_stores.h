#pragma once
// Highly available stores on loopback (issue 30), for the fault suite:
//  - Redis: one master, two replicas (append-only files), three redis-sentinel
//    processes (quorum 2) watching them as "physio";
//  - PostgreSQL: one etcd and three PostgreSQL nodes, each under its own Patroni,
//    in synchronous mode (synchronous_commit on; Patroni promotes only the
//    synchronous standby), run as the postgres user.
// The services reach them as production would: --redis-sentinels and a
// --pg-host/--pg-port list with target_session_attrs=read-write.
#include <sys/types.h>

#include <array>
#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "fault_harness.h"
#include "test_env.h"

namespace physio::testing::faults {

class HaStores final : public Stores {
 public:
  static constexpr int kRedisNodes = 3;
  static constexpr int kSentinels = 3;
  static constexpr int kPgNodes = 3;

  HaStores();
  ~HaStores() override;

  std::vector<std::string> ServiceArgs() const override;
  std::string PgConninfo(const std::string& database) const override;
  std::string Describe() const override;

  // Redis: the node the sentinels name master now (-1 when they do not agree or none answers).
  int RedisMaster() const;
  void KillRedis(int node);
  // Starts a killed node again on its data, as a replica of the master the sentinels agree on
  // (waits until they agree on one other than `node`; throws after 30 s).
  void StartRedis(int node);
  // SIGSTOP / SIGCONT of a sentinel: it stops answering while its port still accepts connections.
  void FreezeSentinel(int index) { sentinels_.at(index)->Freeze(); }
  void ThawSentinel(int index) { sentinels_.at(index)->Thaw(); }

  // PostgreSQL: the node whose server takes writes (-1 when none does), and the synchronous standby.
  int PgPrimary() const;
  int PgSyncStandby() const;
  // SIGKILL of a node's Patroni, postmaster and backends (a lost machine).
  void KillPgNode(int node);
  // Starts the node's Patroni again: it rejoins as a replica (pg_rewind when it must).
  void StartPgNode(int node);
  // SIGSTOP / SIGCONT of a node's postmaster and backends (not Patroni): a stalled server.
  void FreezePg(int node);
  void ThawPg(int node);
  // Waits until a primary takes writes and every running node streams from it; false past `patience`.
  bool WaitPgHealthy(std::chrono::milliseconds patience) const;
  bool WaitRedisHealthy(std::chrono::milliseconds patience) const;

 private:
  std::string PgNodeConninfo(int node, const std::string& database) const;
  void WritePatroniConfig(int node) const;
  void StartPatroni(int node);
  std::filesystem::path dir_;
  int etcd_client_port_ = 0, etcd_peer_port_ = 0;
  std::unique_ptr<ChildProcess> etcd_;
  std::array<int, kRedisNodes> redis_ports_{};
  std::array<std::unique_ptr<ChildProcess>, kRedisNodes> redis_;
  std::array<std::unique_ptr<RedisSentinelProcess>, kSentinels> sentinels_;
  std::array<int, kPgNodes> pg_ports_{}, rest_ports_{};
  std::array<std::unique_ptr<ChildProcess>, kPgNodes> patroni_;
  std::array<std::vector<pid_t>, kPgNodes> frozen_;
};

}  // namespace physio::testing::faults
