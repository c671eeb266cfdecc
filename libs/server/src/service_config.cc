#include "physio/server/service_config.h"

namespace physio {

std::vector<ConfigKey> CommonConfigKeys(const std::string& default_listen) {
  return {
      {"listen", default_listen, "address:port to listen on (port 0 picks a free port)"},
      {"log-level", "info", "trace, debug, info, warn, error"},
      {"max-threads", "32", "maximum threads serving calls (gRPC resource quota)"},
      {"max-message-bytes", "4194304", "largest request or response accepted"},
      {"shutdown-grace-ms", "10000", "how long in-flight calls may run after SIGTERM"},
      {"health-interval-ms", "1000", "how often Redis and Postgres are probed for health"},
      {"redis-host", "127.0.0.1", "Redis host"},
      {"redis-port", "6379", "Redis port"},
      {"redis-pool-size", "16", "Redis connections per service"},
      {"redis-timeout-ms", "1000", "upper bound for one Redis command"},
      {"pg-host", "127.0.0.1", "PostgreSQL host"},
      {"pg-port", "5432", "PostgreSQL port"},
      {"pg-user", "postgres", "PostgreSQL user"},
      {"pg-password", "", "PostgreSQL password (prefer the environment variable)"},
      {"pg-database", "physio", "PostgreSQL database"},
      {"pg-pool-size", "16", "PostgreSQL connections per service"},
      {"pg-statement-timeout-ms", "5000", "upper bound for one transaction's statements"},
      {"jwt-public-key", "", "PEM file with the RS256 public key that verifies bearer tokens (required)",
       SettingKind::kRequired},
      {"jwt-issuer", "physio-dev", "required token issuer (iss)"},
      {"jwt-audience", "physio-backend", "required token audience (aud)"},
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
  return TokenVerifier::FromFile(path, config.Get("jwt-issuer"), config.Get("jwt-audience"));
}

std::chrono::milliseconds PeerTimeoutFrom(const Config& config) {
  return std::chrono::milliseconds(config.GetInt("peer-timeout-ms"));
}

}  // namespace physio
