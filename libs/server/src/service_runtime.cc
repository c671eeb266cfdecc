#include "physio/server/service_runtime.h"

#include <spdlog/spdlog.h>

#include <thread>

namespace physio {

namespace {
void MigrateWithRetry(PgPool& pool, const std::string& schema, const std::vector<Migration>& migrations,
                      std::chrono::milliseconds patience) {
  auto give_up = Clock::now() + patience;
  for (;;) {
    try {
      for (const auto& name : ApplyMigrations(pool, schema, migrations)) spdlog::info("applied migration {}.{}", schema, name);
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
                               const std::vector<Migration>& migrations, std::vector<std::string> health_names)
    : config_(config),
      verifier_(TokenVerifierFrom(config)),
      redis_(RedisOptionsFrom(config)),
      pg_(PgOptionsFrom(config)),
      audit_(pg_.options(), schema, AuditOptionsFrom(config)),
      workers_(config.GetInt("worker-threads"), static_cast<std::size_t>(config.GetInt("call-queue-limit"))),
      pipeline_(verifier_, audit_, workers_),
      host_(ServerSettingsFrom(config), std::move(health_names), [this] {
        // Both probes run every time so the log shows which store is down.
        const bool redis_ok = redis_.Ping(std::chrono::milliseconds(500));
        const bool pg_ok = pg_.Ping(std::chrono::milliseconds(1000));
        return redis_ok && pg_ok;
      }) {
  MigrateWithRetry(pg_, schema, migrations, std::chrono::milliseconds(config.GetInt("startup-timeout-ms")));
}

int ServiceRuntime::Serve(grpc::Service* service) {
  host_.AddService(service);
  return host_.Start();
}

}  // namespace physio
