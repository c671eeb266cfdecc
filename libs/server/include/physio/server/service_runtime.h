#pragma once
#include <atomic>
// Everything a service process has besides its own logic: token verifier,
// Redis and Postgres pools, the audit trail, the worker pool and call pipeline
// every RPC goes through, migrations of its schema (retried while Postgres is
// still starting), and the gRPC host whose health follows both stores.
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <string>
#include <vector>

#include "physio/auth/token_verifier.h"
#include "physio/common/config.h"
#include "physio/db/audit.h"
#include "physio/db/migrations.h"
#include "physio/db/pg.h"
#include "physio/common/worker_pool.h"
#include "physio/redis/async_redis.h"
#include "physio/redis/redis_pool.h"
#include "physio/server/event_feed.h"
#include "physio/server/fhir_rest.h"
#include "physio/server/grpc_context.h"
#include "physio/server/patient_clinics.h"
#include "physio/server/service_host.h"

namespace physio {

// Throws std::invalid_argument unless `roles` names exactly the methods of the
// gRPC services `service_names` (full names, e.g. "physio.planning.v1.PlanningService",
// looked up in the generated descriptors linked into this program).
void CheckCoversMethods(const MethodRoles& roles, const std::vector<std::string>& service_names);

// The sentinels' metrics, one sample per sentinel labelled with its address (configuration, not
// patient data): physio_redis_sentinel_left_out (1 while left out of the dials) and
// physio_redis_sentinel_silences_total. `states` in the order of `sentinels` (RedisPool::sentinel_states).
void AddSentinelMetrics(MetricsText& out, const std::vector<std::pair<std::string, int>>& sentinels,
                        const std::vector<SentinelSilence::State>& states);

class ServiceRuntime {
 public:
  // `health_names` are the full names of the gRPC services served (health is
  // reported under each); `roles` must name exactly their methods, or the
  // constructor throws (a service does not start with an RPC nobody decided on).
  // `indexes`: the service's own indexes on tables that grow large, built concurrently after the
  // migrations (with the platform's, PlatformConcurrentIndexes).
  ServiceRuntime(const Config& config, const std::string& schema, const std::vector<Migration>& migrations,
                 std::vector<std::string> health_names, MethodRoles roles, std::vector<ConcurrentIndex> indexes = {});
  ~ServiceRuntime();

  const Config& config() const { return config_; }
  const TokenVerifier& verifier() const { return verifier_; }
  RedisPool& redis() { return redis_; }
  PgPool& pg() { return pg_; }
  AuditTrail& audit() { return audit_; }
  CallPipeline& pipeline() { return pipeline_; }
  // The shared asynchronous Redis connection of fast reads; null when `fast-reads` is off.
  AsyncRedis* async_redis() { return async_redis_.get(); }
  const WorkerPool& workers() const { return workers_; }

  Metrics& metrics() { return metrics_; }
  EventFeed& events() { return events_; }
  // The clinic directory every call is scoped by (see CallPipeline::SetPatientClinics).
  PgPatientClinics& patient_clinics() { return patient_clinics_; }

  // The HTTP gateway serves the FHIR REST API too (fhir_rest.h); before Serve.
  void EnableFhirRest(FhirRestSettings settings) { fhir_rest_ = std::move(settings); }
  // Starts the gRPC server and then the HTTP gateway in front of it.
  int Serve(grpc::Service* service);
  int port() const { return host_.port(); }
  int http_port() const { return http_ ? http_->port() : 0; }
  int metrics_port() const { return metrics_listener_ ? metrics_listener_->port() : 0; }
  void AnnounceShutdown() { host_.AnnounceShutdown(); }
  // HTTP first (it calls into gRPC), then the event streams (told to resume
  // elsewhere), then gRPC's drain.
  void Shutdown() {
    if (http_) http_->Shutdown();
    if (metrics_listener_) metrics_listener_->Shutdown();
    events_.Stop();
    host_.Shutdown();
  }

 private:
  // Deletes idempotency records older than `idempotency-retention-hours`, a
  // bounded batch at a time, every `idempotency-purge-interval-s`.
  void PurgeIdempotencyRecords(std::stop_token stop);
  // Numbers committed events of every tenant every `event-sequence-interval-ms` (libs/db
  // events.h), so the webhook dispatcher, which reads this service's outbox from the
  // assessment service, never waits for a WatchEvents reader to number them.
  void SequenceEvents(std::stop_token stop);
  // Hands the heap's free memory back to the system at the end of each busy spell
  // (TrimAfterBusySpell: `memory-trim-interval-ms`, `memory-trim-quiet-calls-per-second`).
  void TrimMemoryAfterBusySpells(std::stop_token stop);
  // Pools, queues and store health on /metrics.
  void AddRuntimeMetrics();

  const Config& config_;
  std::vector<std::string> service_names_;
  MethodRoles roles_;
  Metrics metrics_;
  // The stores as the last health probe saw them (for /metrics).
  std::atomic<bool> redis_up_{false}, postgres_up_{false};
  TokenVerifier verifier_;
  RedisPool redis_;
  PgPool pg_;
  AuditTrail audit_;
  // Declared after the stores and the audit trail and before the host: on the
  // way down the host drains its calls first, then the workers finish what is
  // queued, then the last audit batch is written.
  WorkerPool workers_;
  RateLimiter limiter_;
  RefusalGuard guard_;
  PgPatientClinics patient_clinics_;
  CallPipeline pipeline_;
  // After the pipeline and the workers: on the way down its pending reads are handed to them.
  std::unique_ptr<AsyncRedis> async_redis_;
  EventFeed events_;
  ServiceHost host_;
  std::unique_ptr<HttpGateway> http_;
  std::optional<FhirRestSettings> fhir_rest_;
  std::unique_ptr<MetricsListener> metrics_listener_;
  std::string schema_;
  std::mutex purge_mutex_;
  std::condition_variable_any purge_wakeup_;
  std::jthread purge_;
  std::jthread sequencer_;
  std::jthread memory_trimmer_;
  // The platform's large-table indexes, built concurrently after start (BuildConcurrentIndexes).
  PgOptions index_owner_;
  std::vector<ConcurrentIndex> indexes_;
  std::jthread index_builder_;
};

}  // namespace physio
