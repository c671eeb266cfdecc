#pragma once
// Configuration keys every service shares, and the options built from them.
#include <chrono>
#include <string>
#include <vector>

#include "physio/auth/token_verifier.h"
#include "physio/common/config.h"
#include "physio/db/audit.h"
#include "physio/db/pg.h"
#include "physio/redis/redis_pool.h"

namespace physio {

struct ServerSettings {
  std::string listen = "127.0.0.1:0";
  int max_threads = 8;                  // threads of the synchronous services (reflection only)
  int max_message_bytes = 4 * 1024 * 1024;
  std::chrono::milliseconds shutdown_grace{10000};
  std::chrono::milliseconds health_interval{1000};
  std::chrono::milliseconds keepalive_time{30000};
  std::chrono::milliseconds min_client_ping_interval{10000};
};

// Keys for one service; `default_listen` e.g. "127.0.0.1:50051".
std::vector<ConfigKey> CommonConfigKeys(const std::string& default_listen);

ServerSettings ServerSettingsFrom(const Config& config);
RedisOptions RedisOptionsFrom(const Config& config);
PgOptions PgOptionsFrom(const Config& config);
TokenVerifier TokenVerifierFrom(const Config& config);
AuditOptions AuditOptionsFrom(const Config& config);
// Outgoing call cap (peer-timeout-ms): no downstream call waits longer than this.
std::chrono::milliseconds PeerTimeoutFrom(const Config& config);

}  // namespace physio
