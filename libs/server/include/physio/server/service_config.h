#pragma once
// Configuration keys every service shares, and the options built from them.
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "physio/server/event_feed.h"
#include "physio/db/bulk_export.h"
#include "physio/server/http_gateway.h"
#include "physio/auth/token_verifier.h"
#include "physio/common/config.h"
#include "physio/common/validation.h"
#include "physio/db/audit.h"
#include "physio/db/pg.h"
#include "physio/redis/async_redis.h"
#include "physio/redis/redis_pool.h"
#include "physio/server/grpc_context.h"

namespace physio {

struct ServerSettings {
  std::string listen = "127.0.0.1:0";
  // SO_REUSEPORT on the gRPC port: off, so a second process cannot start beside one that serves
  // it and take part of its callers; on only for a harness that holds a port across restarts.
  bool listen_shared = false;
  int max_threads = 8;                  // threads of the synchronous services (reflection only)
  int max_message_bytes = 4 * 1024 * 1024;
  std::chrono::milliseconds shutdown_grace{10000};
  std::chrono::milliseconds health_interval{1000};
  std::chrono::milliseconds keepalive_time{30000};
  std::chrono::milliseconds min_client_ping_interval{10000};
  // TLS when cert and key are set (then plaintext is refused); mutual TLS when
  // the client CA is set too (every client must present a certificate it signed).
  std::string tls_cert_file;
  std::string tls_key_file;
  std::string tls_client_ca_file;
  bool reflection = true;
};

// Keys for one service; `default_listen` e.g. "127.0.0.1:50051".
std::vector<ConfigKey> CommonConfigKeys(const std::string& default_listen);

ServerSettings ServerSettingsFrom(const Config& config);
// The HTTP port's settings; listen "off" means no HTTP port.
HttpGatewaySettings HttpSettingsFrom(const Config& config);
// The metrics listener's address; "off" means none.
std::string MetricsListenFrom(const Config& config);
EventFeedSettings EventFeedSettingsFrom(const Config& config);
RefusalGuardSettings RefusalGuardSettingsFrom(const Config& config);
RedisOptions RedisOptionsFrom(const Config& config);
PgOptions PgOptionsFrom(const Config& config);
// The fast reads' asynchronous Redis connection (`fast-reads`, `fast-read-timeout-ms`); nullopt when off.
std::optional<AsyncRedisOptions> FastReadsFrom(const Config& config);
TokenVerifier TokenVerifierFrom(const Config& config);
AuditOptions AuditOptionsFrom(const Config& config);
PeerTls PeerTlsFrom(const Config& config);
// The FHIR bulk export worker's settings (bulk-export-*).
BulkExportSettings BulkExportSettingsFrom(const Config& config);
RateLimits RateLimitsFrom(const Config& config);
InputLimits InputLimitsFrom(const Config& config);
// `bidi-controls`: whether free text may hold unpaired bidirectional controls (validation.h).
BidiControls BidiControlsFrom(const Config& config);
ServiceIdentityPolicy ServiceIdentityPolicyFrom(const Config& config);
// A secret: the contents of `<name>-file` when that is set (trailing newline
// removed), otherwise the setting itself.
std::string SecretFrom(const Config& config, const std::string& name);
// Outgoing call cap (peer-timeout-ms): no downstream call waits longer than this.
std::chrono::milliseconds PeerTimeoutFrom(const Config& config);

}  // namespace physio
