#pragma once
// Everything a service process has besides its own logic: token verifier,
// Redis and Postgres pools, the audit trail, the worker pool and call pipeline
// every RPC goes through, migrations of its schema (retried while Postgres is
// still starting), and the gRPC host whose health follows both stores.
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <string>
#include <vector>

#include "physio/auth/token_verifier.h"
#include "physio/common/config.h"
#include "physio/db/audit.h"
#include "physio/db/migrations.h"
#include "physio/db/pg.h"
#include "physio/common/worker_pool.h"
#include "physio/redis/redis_pool.h"
#include "physio/server/grpc_context.h"
#include "physio/server/service_host.h"

namespace physio {

class ServiceRuntime {
 public:
  ServiceRuntime(const Config& config, const std::string& schema, const std::vector<Migration>& migrations,
                 std::vector<std::string> health_names);
  ~ServiceRuntime();

  const Config& config() const { return config_; }
  const TokenVerifier& verifier() const { return verifier_; }
  RedisPool& redis() { return redis_; }
  PgPool& pg() { return pg_; }
  AuditTrail& audit() { return audit_; }
  CallPipeline& pipeline() { return pipeline_; }
  const WorkerPool& workers() const { return workers_; }

  int Serve(grpc::Service* service);
  int port() const { return host_.port(); }
  void Shutdown() { host_.Shutdown(); }

 private:
  // Deletes idempotency records older than `idempotency-retention-hours`, a
  // bounded batch at a time, every `idempotency-purge-interval-s`.
  void PurgeIdempotencyRecords(std::stop_token stop);

  const Config& config_;
  TokenVerifier verifier_;
  RedisPool redis_;
  PgPool pg_;
  AuditTrail audit_;
  // Declared after the stores and the audit trail and before the host: on the
  // way down the host drains its calls first, then the workers finish what is
  // queued, then the last audit batch is written.
  WorkerPool workers_;
  RateLimiter limiter_;
  CallPipeline pipeline_;
  ServiceHost host_;
  std::string schema_;
  std::mutex purge_mutex_;
  std::condition_variable_any purge_wakeup_;
  std::jthread purge_;
};

}  // namespace physio
