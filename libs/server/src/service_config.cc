#include "physio/server/service_config.h"

namespace physio {

std::vector<ConfigKey> CommonConfigKeys(const std::string& default_listen) {
  return {
      {"listen", default_listen, "address:port to listen on (port 0 picks a free port)"},
      {"log-level", "info", "trace, debug, info, warn, error"},
      {"worker-threads", "16", "threads running calls (they block on Redis, PostgreSQL and other services)"},
      {"call-queue-limit", "10000", "calls that may wait for a worker at once; a call waits at most until its deadline"},
      {"max-threads", "8", "threads of gRPC's synchronous services (server reflection); RPCs use the workers"},
      {"max-message-bytes", "4194304", "largest request or response accepted"},
      {"shutdown-grace-ms", "10000", "how long in-flight calls may run after SIGTERM"},
      {"health-interval-ms", "1000", "how often Redis and Postgres are probed for health"},
      {"redis-host", "127.0.0.1", "Redis host"},
      {"redis-port", "6379", "Redis port"},
      {"redis-pool-size", "32", "Redis connections per service"},
      {"redis-timeout-ms", "1000", "upper bound for one Redis command"},
      {"pg-host", "127.0.0.1", "PostgreSQL host"},
      {"pg-port", "5432", "PostgreSQL port"},
      {"pg-user", "postgres", "PostgreSQL user"},
      {"pg-password", "", "PostgreSQL password (prefer the environment variable)"},
      {"pg-database", "physio", "PostgreSQL database"},
      {"pg-pool-size", "32", "PostgreSQL connections per service (plus one for the audit writer)"},
      {"pg-statement-timeout-ms", "5000", "upper bound for one transaction's statements"},
      {"jwt-public-key", "", "PEM file with the RS256 public key that verifies bearer tokens (required)",
       SettingKind::kRequired},
      {"jwt-issuer", "physio-dev", "required token issuer (iss)"},
      {"jwt-audience", "physio-backend", "required token audience (aud)"},
      {"jwt-max-lifetime-seconds", "3600", "longest accepted token lifetime (exp - iat); iat is required"},
      {"token-cache-size", "10000", "verified tokens remembered (by SHA-256) so one signature check serves many calls; 0: off"},
      {"token-cache-max-seconds", "300", "longest a verified token is remembered (never past its exp)"},
      {"audit-queue-limit", "8192", "audit records waiting for the batch writer; past it a call waits (within its deadline)"},
      {"audit-max-batch", "512", "audit records written by one INSERT (one commit)"},
      {"audit-writers", "2", "audit batch writers, each with its own PostgreSQL connection"},
      {"idempotency-retention-hours", "24",
       "how long a request_id is remembered (and its response kept) for retries; older records are purged; 0: never purge"},
      {"idempotency-purge-interval-s", "600", "how often expired idempotency records are purged"},
      {"peer-timeout-ms", "3000", "upper bound for one call to another service"},
      {"startup-timeout-ms", "30000", "how long to wait for PostgreSQL at start before giving up"},
  };
}

ServerSettings ServerSettingsFrom(const Config& config) {
  ServerSettings settings;
  settings.listen = config.Get("listen");
  settings.max_threads = config.GetInt("max-threads");
  settings.max_message_bytes = config.GetInt("max-message-bytes");
  settings.shutdown_grace = std::chrono::milliseconds(config.GetInt("shutdown-grace-ms"));
  settings.health_interval = std::chrono::milliseconds(config.GetInt("health-interval-ms"));
  return settings;
}

RedisOptions RedisOptionsFrom(const Config& config) {
  RedisOptions options;
  options.host = config.Get("redis-host");
  options.port = config.GetInt("redis-port");
  options.pool_size = config.GetInt("redis-pool-size");
  options.command_timeout = std::chrono::milliseconds(config.GetInt("redis-timeout-ms"));
  return options;
}

PgOptions PgOptionsFrom(const Config& config) {
  PgOptions options;
  options.host = config.Get("pg-host");
  options.port = config.GetInt("pg-port");
  options.user = config.Get("pg-user");
  options.password = config.Get("pg-password");
  options.database = config.Get("pg-database");
  options.pool_size = config.GetInt("pg-pool-size");
  options.statement_timeout = std::chrono::milliseconds(config.GetInt("pg-statement-timeout-ms"));
  return options;
}

TokenVerifier TokenVerifierFrom(const Config& config) {
  const std::string path = config.Get("jwt-public-key");
  if (path.empty()) throw std::invalid_argument("--jwt-public-key (PHYSIO_JWT_PUBLIC_KEY) is required");
  TokenCacheOptions cache;
  cache.max_entries = static_cast<std::size_t>(config.GetInt("token-cache-size"));
  cache.max_age = std::chrono::seconds(config.GetInt("token-cache-max-seconds"));
  return TokenVerifier::FromFile(path, config.Get("jwt-issuer"), config.Get("jwt-audience"), cache,
                                 std::chrono::seconds(config.GetInt("jwt-max-lifetime-seconds")));
}

AuditOptions AuditOptionsFrom(const Config& config) {
  AuditOptions options;
  options.queue_limit = static_cast<std::size_t>(config.GetInt("audit-queue-limit"));
  options.max_batch = static_cast<std::size_t>(config.GetInt("audit-max-batch"));
  options.writers = config.GetInt("audit-writers");
  return options;
}

std::chrono::milliseconds PeerTimeoutFrom(const Config& config) {
  return std::chrono::milliseconds(config.GetInt("peer-timeout-ms"));
}

}  // namespace physio
