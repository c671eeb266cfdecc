#include "physio/server/service_runtime.h"

#include <spdlog/spdlog.h>

#include <google/protobuf/descriptor.h>

#include <algorithm>
#include <chrono>
#include <set>
#include <stdexcept>
#include <thread>

#include "physio/common/process_stats.h"
#include "physio/server/startup.h"

namespace physio {

void AddSentinelMetrics(MetricsText& out, const std::vector<std::pair<std::string, int>>& sentinels,
                        const std::vector<SentinelSilence::State>& states) {
  std::vector<std::pair<std::string, double>> left_out, silences;
  for (std::size_t i = 0; i < sentinels.size() && i < states.size(); ++i) {
    const std::string labels = MetricLabels({{"sentinel", sentinels[i].first + ":" + std::to_string(sentinels[i].second)}});
    left_out.emplace_back(labels, states[i].left_out ? 1.0 : 0.0);
    silences.emplace_back(labels, static_cast<double>(states[i].silences));
  }
  out.Gauge("physio_redis_sentinel_left_out",
            "1 while a sentinel that gave a dial no answer is left out of this process's dials (10 s), else 0.",
            left_out);
  out.Counter("physio_redis_sentinel_silences_total",
              "Dials of this process's Redis connections that a sentinel gave no answer to (down, frozen, "
              "unreachable or refusing our credentials).",
              silences);
}

void CheckCoversMethods(const MethodRoles& roles, const std::vector<std::string>& service_names) {
  std::set<std::string> served;
  for (const auto& name : service_names) {
    const auto* service = google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(name);
    if (service == nullptr) throw std::invalid_argument("no generated descriptor for service " + name);
    for (int i = 0; i < service->method_count(); ++i) served.insert(service->method(i)->name());
  }
  std::string missing, unknown;
  for (const auto& method : served) {
    if (!roles.entries().contains(method)) missing += " " + method;
  }
  for (const auto& [method, allowed] : roles.entries()) {
    if (!served.contains(method)) unknown += " " + method;
    if (allowed.empty()) missing += " " + method + "(no roles)";
  }
  if (!missing.empty() || !unknown.empty()) {
    throw std::invalid_argument("method-to-roles table does not match the services: missing" + missing +
                                "; not served" + unknown);
  }
}

namespace {
void MigrateWithRetry(PgPool& pool, const std::string& schema, const std::vector<Migration>& migrations,
                      const std::string& runtime_role, std::chrono::milliseconds patience) {
  auto give_up = Clock::now() + patience;
  for (;;) {
    try {
      for (const auto& name : ApplyMigrations(pool, schema, migrations, runtime_role)) spdlog::info("applied migration {}.{}", schema, name);
      return;
    } catch (const Error& e) {
      if (e.code() != ErrorCode::kUnavailable || Clock::now() > give_up) throw;
      spdlog::warn("postgres not reachable yet; retrying migrations");
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
  }
}
}  // namespace

ServiceRuntime::ServiceRuntime(const Config& config, const std::string& schema,
                               const std::vector<Migration>& migrations, std::vector<std::string> health_names,
                               MethodRoles roles, std::vector<ConcurrentIndex> indexes)
    : config_(config),
      service_names_(health_names),
      roles_((CheckCoversMethods(roles, health_names), std::move(roles))),
      metrics_(health_names.empty() ? "" : health_names.front()),
      verifier_(TokenVerifierFrom(config)),
      redis_(RedisOptionsFrom(config)),
      pg_(PgOptionsFrom(config)),
      audit_(pg_.options(), schema, AuditOptionsFrom(config)),
      workers_(config.GetInt("worker-threads"), static_cast<std::size_t>(config.GetInt("call-queue-limit"))),
      limiter_(redis_, RateLimitsFrom(config)),
      guard_(RefusalGuardSettingsFrom(config)),
      patient_clinics_(pg_, std::chrono::milliseconds(config.GetInt("patient-clinics-cache-ms"))),
      pipeline_(verifier_, audit_, workers_, roles_, ServiceIdentityPolicyFrom(config), &limiter_, InputLimitsFrom(config),
                &metrics_, &guard_),
      async_redis_([&]() -> std::unique_ptr<AsyncRedis> {
        auto fast = FastReadsFrom(config);
        return fast ? std::make_unique<AsyncRedis>(redis_, *fast) : nullptr;
      }()),
      events_(pg_, schema, verifier_, roles_, ServiceIdentityPolicyFrom(config), audit_, EventFeedSettingsFrom(config),
              &guard_),
      host_(ServerSettingsFrom(config), std::move(health_names), [this] {
        // Both probes run every time so the log shows which store is down.
        const bool redis_ok = redis_.Ping(std::chrono::milliseconds(500));
        const bool pg_ok = pg_.Ping(std::chrono::milliseconds(1000));
        redis_up_ = redis_ok;
        postgres_up_ = pg_ok;
        return redis_ok && pg_ok;
      }),
      schema_(schema) {
  SetBidiControlPolicy(BidiControlsFrom(config));  // before anything is served or published
  pipeline_.SetPatientClinics(&patient_clinics_);
  pipeline_.EnableFastReads(async_redis_ != nullptr);
  events_.SetPatientClinics(&patient_clinics_);
  StartupPhase("reaching Redis");
  if (!redis_.Ping(std::chrono::milliseconds(1000))) {
    spdlog::warn("redis not reachable at start; health stays NOT_SERVING until it is");
  }
  StartupPhase("reaching PostgreSQL and applying migrations");
  const auto patience = std::chrono::milliseconds(config.GetInt("startup-timeout-ms"));
  index_owner_ = pg_.options();
  index_owner_.pool_size = 1;
  if (config.Get("pg-migration-user").empty()) {
    MigrateWithRetry(pg_, schema, migrations, "", patience);
  } else {
    // The schema's owner migrates; the service itself runs as a role that cannot change the schema or the audit trail.
    PgOptions owner = pg_.options();
    owner.user = config.Get("pg-migration-user");
    owner.password = SecretFrom(config, "pg-migration-password");
    owner.pool_size = 1;
    PgPool owner_pool(owner);
    MigrateWithRetry(owner_pool, schema, migrations, config.Get("pg-user"), patience);
    index_owner_ = owner;
  }
  // Indexes on tables that may hold millions of rows are built without blocking their writes,
  // while the service serves (queries that use them are only slower until they exist).
  indexes_ = PlatformConcurrentIndexes();
  indexes_.insert(indexes_.end(), indexes.begin(), indexes.end());
  index_builder_ = std::jthread([this] {
    try {
      for (const auto& name : BuildConcurrentIndexes(index_owner_, schema_, indexes_)) {
        spdlog::info("built index {}.{} (concurrently)", schema_, name);
      }
    } catch (const std::exception& e) {
      spdlog::warn("building the indexes of {} concurrently failed (tried again at the next start): {}", schema_, e.what());
    }
  });
  StartupPhase("setting up the service");
  if (config.GetInt("idempotency-retention-hours") > 0) {
    purge_ = std::jthread([this](std::stop_token stop) { PurgeIdempotencyRecords(stop); });
  }
  if (config.GetInt("event-sequence-interval-ms") > 0) {
    sequencer_ = std::jthread([this](std::stop_token stop) { SequenceEvents(stop); });
  }
  if (config.GetInt("memory-trim-interval-ms") > 0) {
    memory_trimmer_ = std::jthread([this](std::stop_token stop) { TrimMemoryAfterBusySpells(stop); });
  }
}

void ServiceRuntime::TrimMemoryAfterBusySpells(std::stop_token stop) {
  const auto interval = std::chrono::milliseconds(config_.GetInt("memory-trim-interval-ms"));
  const double quiet_per_second = std::max(0, config_.GetInt("memory-trim-quiet-calls-per-second"));
  TrimAfterBusySpell policy(static_cast<std::uint64_t>(quiet_per_second * std::chrono::duration<double>(interval).count()));
  std::uint64_t calls_before = metrics_.CallsStarted();
  while (!stop.stop_requested()) {
    {
      std::unique_lock lock(purge_mutex_);
      purge_wakeup_.wait_for(lock, stop, interval, [] { return false; });
    }
    if (stop.stop_requested()) break;
    const std::uint64_t calls = metrics_.CallsStarted();
    const bool trim = policy.Observe(calls - calls_before);
    calls_before = calls;
    if (!trim) continue;
    const auto started = Clock::now();
    const long released = TrimFreeHeap();
    spdlog::log(released >= (1 << 20) ? spdlog::level::info : spdlog::level::debug,
                "a busy spell ended: {:.1f} MiB of free heap memory handed back to the system in {} ms",
                static_cast<double>(released) / (1 << 20),
                std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count());
  }
}

void ServiceRuntime::SequenceEvents(std::stop_token stop) {
  const auto interval = std::chrono::milliseconds(config_.GetInt("event-sequence-interval-ms"));
  auto next_warning = Clock::now();
  while (!stop.stop_requested()) {
    try {
      const auto deadline = Clock::now() + std::chrono::seconds(5);
      for (const auto& tenant : TenantsWithPendingEvents(pg_, deadline, schema_, 1000)) {
        if (stop.stop_requested()) break;
        SequencePendingEvents(pg_, deadline, schema_, tenant);
      }
    } catch (const std::exception& e) {
      if (Clock::now() >= next_warning) {
        spdlog::warn("numbering events of {} failed (tried again): {}", schema_, e.what());
        next_warning = Clock::now() + std::chrono::minutes(1);
      }
    }
    std::unique_lock lock(purge_mutex_);
    purge_wakeup_.wait_for(lock, stop, interval, [] { return false; });
  }
}

ServiceRuntime::~ServiceRuntime() {
  if (memory_trimmer_.joinable()) {
    memory_trimmer_.request_stop();
    purge_wakeup_.notify_all();
    memory_trimmer_.join();
  }
  if (sequencer_.joinable()) {
    sequencer_.request_stop();
    purge_wakeup_.notify_all();
    sequencer_.join();
  }
  if (purge_.joinable()) {
    purge_.request_stop();
    purge_wakeup_.notify_all();
    purge_.join();
  }
  // A build still running (a large table) is waited for: interrupted, it would leave an index to build again.
  if (index_builder_.joinable()) index_builder_.join();
  Shutdown();
}

void ServiceRuntime::PurgeIdempotencyRecords(std::stop_token stop) {
  const auto interval = std::chrono::seconds(std::max(1, config_.GetInt("idempotency-purge-interval-s")));
  const std::string retention_hours = std::to_string(config_.GetInt("idempotency-retention-hours"));
  // Small batches keep each delete short beside the live traffic; replicas may
  // purge at the same time (SKIP LOCKED keeps them out of each other's way).
  const std::string sql = "DELETE FROM " + schema_ + ".idempotency WHERE ctid IN (SELECT ctid FROM " + schema_ +
                          ".idempotency WHERE created_at < now() - make_interval(hours => $1::int) LIMIT 1000"
                          " FOR UPDATE SKIP LOCKED)";
  while (!stop.stop_requested()) {
    try {
      long purged = 0;
      for (int batch = 0; batch < 100 && !stop.stop_requested(); ++batch) {
        long deleted = 0;
        WithTransaction(pg_, Clock::now() + std::chrono::seconds(10),
                        [&](PgConnection& conn) { deleted = conn.Exec(sql, {retention_hours}).affected_rows(); });
        purged += deleted;
        if (deleted < 1000) break;
      }
      if (purged > 0) spdlog::info("purged {} idempotency records older than {} h", purged, retention_hours);
    } catch (const std::exception& e) {
      spdlog::warn("idempotency purge failed (retried next interval): {}", e.what());
    }
    std::unique_lock lock(purge_mutex_);
    purge_wakeup_.wait_for(lock, stop, interval, [] { return false; });
  }
}

void ServiceRuntime::AddRuntimeMetrics() {
  metrics_.AddCollector([this](MetricsText& out) {
    out.Gauge("physio_store_up", "Whether the last health probe reached the store (1) or not (0).",
              {{MetricLabels({{"store", "redis"}}), redis_up_ ? 1 : 0},
               {MetricLabels({{"store", "postgres"}}), postgres_up_ ? 1 : 0}});
    const PoolStats redis = redis_.Stats(), pg = pg_.Stats();
    const auto pool = [](const char* name) { return MetricLabels({{"pool", name}}); };
    out.Gauge("physio_pool_size", "Connections in the pool.",
              {{pool("redis"), redis.size}, {pool("postgres"), pg.size}});
    out.Gauge("physio_pool_idle", "Connections idle in the pool now.", {{pool("redis"), redis.idle}, {pool("postgres"), pg.idle}});
    out.Counter("physio_pool_acquired_total", "Connections leased.",
                {{pool("redis"), static_cast<double>(redis.acquired)}, {pool("postgres"), static_cast<double>(pg.acquired)}});
    out.Counter("physio_pool_waits_total", "Leases that found no idle connection and waited.",
                {{pool("redis"), static_cast<double>(redis.waited)}, {pool("postgres"), static_cast<double>(pg.waited)}});
    out.Counter("physio_pool_wait_seconds_total", "Time leases spent waiting for a connection.",
                {{pool("redis"), redis.wait_seconds}, {pool("postgres"), pg.wait_seconds}});
    out.Counter("physio_pool_wait_timeouts_total", "Waits that reached the call's deadline (answered UNAVAILABLE).",
                {{pool("redis"), static_cast<double>(redis.timed_out)}, {pool("postgres"), static_cast<double>(pg.timed_out)}});
    out.Gauge("physio_audit_queue_depth", "Audit records waiting for the batch writer.",
              {{"", static_cast<double>(audit_.queued())}});
    out.Gauge("physio_call_queue_depth", "Calls waiting for a worker.", {{"", static_cast<double>(workers_.queued())}});
    out.Gauge("physio_worker_threads", "Workers running calls.", {{"", static_cast<double>(workers_.threads())}});
    const auto fast = pipeline_.fast_read_counts();
    const auto outcome = [](const char* name) { return MetricLabels({{"outcome", name}}); };
    out.Counter("physio_fast_reads_total",
                "Cached reads and session writes answered from gRPC's thread (answered), handed to a worker "
                "after the Redis command (handed_over: a miss, an error, no answer in time, a store needed), or "
                "served by a worker from the start (not_started).",
                {{outcome("answered"), static_cast<double>(fast.answered)},
                 {outcome("handed_over"), static_cast<double>(fast.handed_over)},
                 {outcome("not_started"), static_cast<double>(fast.not_started)}});
    if (!redis_.options().sentinels.empty()) {
      out.Counter("physio_redis_failovers_heard_total",
                  "Failovers of this service's Redis master that a sentinel announced (+switch-master); each makes "
                  "every Redis connection dial again.",
                  {{"", static_cast<double>(redis_.failovers_heard())}});
      AddSentinelMetrics(out, redis_.options().sentinels, redis_.sentinel_states());
    }
    if (async_redis_) {
      out.Counter("physio_async_redis_drops_total",
                  "Times the fast reads' Redis connection was dropped (no reply in time, refused, lost).",
                  {{"", static_cast<double>(async_redis_->drops())}});
    }
    out.Counter("physio_rate_limit_fallbacks_total",
                "Quota decisions made by this process's own buckets because Redis did not answer.",
                {{"", static_cast<double>(limiter_.fallbacks())}});
    out.Counter("physio_unauthenticated_refused_total",
                "Calls refused before any work: their address was past its budget of failed logins.",
                {{"", static_cast<double>(guard_.blocked())}});
    out.Counter("physio_audit_refusals_aggregated_total",
                "Refused calls counted into a later audit record of their address (repeats) instead of a record of their own.",
                {{"", static_cast<double>(guard_.unaudited())}});
    out.Counter("physio_patient_reach_read_ahead_total",
                "Patients' clinics, grants and consents read again before their cached copy expired.",
                {{"", static_cast<double>(patient_clinics_.read_ahead())}});
    // Prometheus' standard process metrics: CPU per call is what a benchmark
    // on a shared machine can compare (physio-bench reads it).
    out.Counter("process_cpu_seconds_total", "User and system CPU time of the process.", {{"", ProcessCpuSeconds()}});
    out.Gauge("process_resident_memory_bytes", "Resident memory of the process now.",
              {{"", static_cast<double>(ProcessResidentBytes())}});
    const HeapTrims trims = HeapTrimsSoFar();
    out.Counter("physio_memory_trims_total",
                "Times the heap's free memory was handed back to the system (the end of a busy spell, the end "
                "of a burst's HTTP threads).",
                {{"", static_cast<double>(trims.trims)}});
    out.Counter("physio_memory_trimmed_bytes_total", "Resident memory those trims handed back, in bytes.",
                {{"", static_cast<double>(trims.bytes)}});
  });
}

int ServiceRuntime::Serve(grpc::Service* service) {
  StartupPhase("starting the gRPC server");
  host_.AddService(service);
  const int port = host_.Start();
  AddRuntimeMetrics();
  if (config_.Get("http-listen") != "off") {
    StartupPhase("starting the HTTP gateway");
    http_ = std::make_unique<HttpGateway>(HttpSettingsFrom(config_), host_.InProcessChannel(), service_names_,
                                          verifier_);
    if (fhir_rest_) http_->EnableFhir(*fhir_rest_);
    http_->Start();
    metrics_.AddCollector([gateway = http_.get()](MetricsText& out) {
      const auto closes = gateway->IdleConnectionsClosed();
      out.Counter("physio_http_idle_connections_closed_total",
                  "Kept-alive HTTP connections closed without a request: after http-keepalive-timeout-ms (timeout), or "
                  "to give their thread to a connection waiting for one (make_room). A client that sends on one as it "
                  "closes gets no answer and sends again (RFC 9112, 9.3.1).",
                  {{MetricLabels({{"reason", "timeout"}}), static_cast<double>(closes.timeout)},
                   {MetricLabels({{"reason", "make_room"}}), static_cast<double>(closes.make_room)}});
    });
  }
  if (const std::string metrics_listen = MetricsListenFrom(config_); metrics_listen != "off") {
    StartupPhase("starting the metrics listener");
    metrics_listener_ = std::make_unique<MetricsListener>(metrics_listen, metrics_);
    metrics_listener_->Start();
  }
  return port;
}

}  // namespace physio
