#include "physio/server/service_config.h"

#include <sstream>

#include "physio/common/text_list.h"

namespace physio {

std::vector<ConfigKey> CommonConfigKeys(const std::string& default_listen) {
  return {
      {"listen", default_listen, "address:port to listen on (port 0 picks a free port)"},
      {"listen-shared", "false",
       "true lets the gRPC port be bound with SO_REUSEPORT beside another socket (a test harness that "
       "holds a replica's port across restarts); otherwise a port another process serves is refused"},
      {"log-level", "info", "trace, debug, info, warn, error"},
      {"worker-threads", "16", "threads running calls (they block on Redis, PostgreSQL and other services)"},
      {"call-queue-limit", "10000", "calls that may wait for a worker at once; a call waits at most until its deadline"},
      {"max-threads", "8", "threads of gRPC's synchronous services (server reflection); RPCs use the workers"},
      {"bulk-export-batch-records", "500", "records a FHIR bulk export reads per batch (one transaction with its part)"},
      {"bulk-export-pause-ms", "0", "pause between a bulk export's batches, so an export never crowds out calls"},
      {"bulk-export-lease-s", "30", "a bulk export unfinished this long after its last batch is carried on by another replica"},
      {"bulk-export-poll-ms", "1000", "how often each service looks for bulk exports to write"},
      {"bulk-export-cleanup-s", "60", "how often each service deletes the files of expired and cancelled bulk exports"},
      {"max-message-bytes", "4194304", "largest request or response accepted"},
      {"max-string-bytes", "8192", "longest string field accepted in any request"},
      {"max-document-bytes", "262144", "longest document accepted in a *_json request field (a FHIR resource to import)"},
      {"max-repeated-items", "1000", "most entries accepted in any repeated field of a request"},
      {"bidi-controls", "refuse-unpaired",
       "free text with a bidirectional embedding, override or isolate left open within its line, or a closer with "
       "nothing to close (it would reorder what a screen shows after the text): refuse-unpaired (INVALID_ARGUMENT "
       "naming the field and the code point) or accept"},
      {"shutdown-notice-ms", "1000",
       "after SIGTERM, how long health reports NOT_SERVING while calls are still served, before the drain "
       "(a second signal cuts it short)"},
      {"shutdown-grace-ms", "10000", "how long in-flight calls may run once the drain begins"},
      {"health-interval-ms", "1000", "how often Redis and Postgres are probed for health"},
      {"redis-host", "127.0.0.1", "Redis host"},
      {"redis-port", "6379", "Redis port"},
      {"redis-pool-size", "32", "Redis connections per service"},
      {"redis-timeout-ms", "1000", "upper bound for one Redis command"},
      {"fast-reads", "true",
       "answer cached reads (GetActivePlan) and session writes (SubmitIntakeAnswers, UpdateVisitSession) from gRPC's "
       "thread with one asynchronous Redis connection, no worker thread (false: every call on a worker)"},
      {"fast-read-timeout-ms", "250",
       "how long a fast read waits for Redis before the call goes to a worker (and the connection is re-dialled)"},
      {"redis-user", "", "Redis ACL user (AUTH user password); empty: the default user"},
      {"redis-password", "", "Redis password sent with AUTH on connect (prefer redis-password-file)"},
      {"redis-password-file", "", "file holding the Redis password (read at start)"},
      {"redis-sentinels", "",
       "Redis Sentinel: comma-separated host:port of the sentinels; set: the master is found through them on every "
       "connect (redis-host and redis-port are then unused); empty: one Redis server"},
      {"redis-master-name", "physio", "the master's name the sentinels monitor"},
      {"redis-sentinel-user", "", "ACL user for the sentinels (empty: the default user)"},
      {"redis-sentinel-password", "", "password for the sentinels (prefer redis-sentinel-password-file)"},
      {"redis-sentinel-password-file", "", "file holding the sentinels' password"},
      {"redis-wait-replicas", "0",
       "replicas that must acknowledge each durable write (sessions, idempotency records, plan-cache generations) "
       "before it is answered OK (Redis WAIT); fewer in time: UNAVAILABLE. 0: none (single-node Redis)"},
      {"redis-wait-timeout-ms", "500", "how long a durable write waits for redis-wait-replicas (within the call's deadline)"},
      {"pg-host", "127.0.0.1",
       "PostgreSQL host, or a comma-separated list (a Patroni cluster's nodes: each is tried for the primary)"},
      {"pg-port", "5432", "PostgreSQL port, or a comma-separated list with one per pg-host"},
      {"pg-connect-timeout-ms", "2000", "upper bound for connecting to one PostgreSQL host (the next in pg-host is then tried)"},
      {"pg-target-session-attrs", "read-write",
       "libpq target_session_attrs: which of pg-host's servers to use (read-write: the primary)"},
      {"pg-user", "postgres", "PostgreSQL user"},
      {"pg-password", "", "PostgreSQL password (prefer pg-password-file)"},
      {"pg-password-file", "", "file holding the PostgreSQL password (read at start)"},
      {"pg-migration-user", "",
       "PostgreSQL role that owns the schema and runs migrations; set: the service itself runs as pg-user with "
       "only the rights it needs (audit INSERT-only); empty: pg-user does both"},
      {"pg-migration-password", "", "password of pg-migration-user (prefer pg-migration-password-file)"},
      {"pg-migration-password-file", "", "file holding the password of pg-migration-user"},
      {"pg-sslmode", "prefer", "libpq sslmode: disable, prefer, require, verify-ca, verify-full"},
      {"pg-sslrootcert", "", "CA file PostgreSQL's certificate must chain to (verify-ca, verify-full)"},
      {"pg-database", "physio", "PostgreSQL database"},
      {"pg-pool-size", "32", "PostgreSQL connections per service (plus one for the audit writer)"},
      {"pg-statement-timeout-ms", "5000", "upper bound for one transaction's statements"},
      {"pg-prepared-statements", "true",
       "prepare each statement once per connection (false behind a pooler in transaction mode, such as PgBouncer "
       "before 1.21)"},
      {"pg-plan-cache-mode", "auto",
       "how prepared statements are planned: auto (PostgreSQL's default: a generic plan once it costs no more than "
       "planning each run; statements whose plan depends on their values are planned on every run) or "
       "force_custom_plan (every run planned for its values)"},
      {"tls-cert-file", "", "PEM certificate chain this service presents; with tls-key-file: TLS only, plaintext refused"},
      {"tls-key-file", "", "PEM private key of tls-cert-file"},
      {"tls-client-ca-file", "", "PEM CA bundle: every client must present a certificate it signed (mutual TLS)"},
      {"peer-ca-file", "", "PEM CA bundle other services' certificates must chain to; set: calls to them use TLS"},
      {"peer-cert-file", "", "PEM client certificate presented to other services (mutual TLS)"},
      {"peer-key-file", "", "PEM private key of peer-cert-file"},
      {"peer-server-name", "", "name expected in other services' certificates instead of the address's host"},
      {"service-identities", "physio-assessment,physio-planning,physio-progress",
       "client certificate names (CN or DNS SAN) allowed to act with the service role under mutual TLS"},
      {"reflection", "true", "serve gRPC server reflection (false in production hides the API surface)"},
      {"jwt-public-key", "",
       "PEM file with the public key (RSA or P-256) that verifies our own tokens (claims tenant, roles, patient_id, "
       "clinics), or a directory of <kid>.pem files (tokens name their key with kid; keys rotate without a restart); "
       "this, oidc-issuers-file or both are required"},
      {"oidc-issuers-file", "",
       "JSON file of trusted OpenID Connect issuers: keys by discovery or JWKS URL, algorithms, audiences and where "
       "each finds the tenant, roles, patient and clinics (docs/security.md)"},
      {"jwt-keys-reload-seconds", "30", "how often a jwt-public-key directory is checked for added or removed keys"},
      {"jwt-issuer", "physio-dev", "required token issuer (iss)"},
      {"jwt-audience", "physio-backend", "required token audience (aud)"},
      {"jwt-max-lifetime-seconds", "3600", "longest accepted token lifetime (exp - iat); iat is required"},
      {"patient-clinics-cache-ms", "2000",
       "how long a patient's clinics (for clinic scoping) are remembered; an enrolment or transfer through another "
       "replica is seen by this one within this time; 0: read on every call"},
      {"token-cache-size", "10000", "verified tokens remembered (by SHA-256) so one signature check serves many calls; 0: off"},
      {"token-cache-max-seconds", "300", "longest a verified token is remembered (never past its exp)"},
      {"audit-queue-limit", "8192", "audit records waiting for the batch writer; past it a call waits (within its deadline)"},
      {"audit-max-batch", "512", "audit records written by one INSERT (one commit)"},
      {"audit-writers", "2", "audit batch writers, each with its own PostgreSQL connection"},
      {"idempotency-retention-hours", "24",
       "how long a request_id is remembered (and its response kept) for retries; older records are purged; 0: never purge"},
      {"idempotency-purge-interval-s", "600", "how often expired idempotency records are purged"},
      {"memory-trim-interval-ms", "10000",
       "how often the calls started are counted to find the end of a busy spell, when the heap's free memory is "
       "handed back to the system (once a spell); 0: never"},
      {"memory-trim-quiet-calls-per-second", "10", "at most this many calls per second is quiet (the end of a busy spell)"},
      {"event-sequence-interval-ms", "200",
       "how often committed events are numbered in the background (the webhook dispatcher reads them numbered; 0: only by readers)"},
      {"rate-limit-principal-per-second", "0", "calls per second one caller (token subject) may make; 0: no limit"},
      {"rate-limit-principal-burst", "0", "calls one caller may make at once above the rate (0: twice the rate)"},
      {"rate-limit-tenant-per-second", "0", "calls per second all callers of one tenant may make together; 0: no limit"},
      {"rate-limit-tenant-burst", "0", "calls a tenant may make at once above the rate (0: twice the rate)"},
      {"peer-timeout-ms", "3000", "upper bound for one call to another service"},
      {"startup-timeout-ms", "30000", "how long to wait for PostgreSQL at start before giving up"},
      {"startup-phase-warn-ms", "5000",
       "a start phase (stores, migrations, listeners) running longer than this logs where it waits, each period; 0: never"},
      {"http-listen", "",
       "address:port of the HTTP port (Connect protocol); empty: the gRPC port plus 1000 on the same host "
       "(0 when that is 0); off: none"},
      {"metrics-listen", "",
       "address:port of the internal metrics listener (GET /metrics); empty: the gRPC port plus 2000 on the same host "
       "(0 when that is 0); off: none. Keep it off the network callers reach"},
      {"http-tls-client-ca-file", "",
       "the HTTP port asks its callers for client certificates this CA bundle verifies; empty: it does not (browsers "
       "and JSON callers authenticate with their bearer token; the service role is never granted over HTTP)"},
      {"cors-allowed-origins", "", "comma-separated origins browsers may call the HTTP port from (* for any)"},
      {"http-default-timeout-ms", "30000", "deadline of an HTTP call that sends no Connect-Timeout-Ms"},
      {"http-threads", "8", "threads kept serving HTTP connections"},
      {"http-max-threads", "1024",
       "threads the HTTP port may start while every thread is busy (one per open connection, about 120 KiB "
       "resident each, until http-idle-thread-timeout-ms without one); while connections wait for one, answers ask "
       "their clients to close and reconnect"},
      {"http-idle-thread-timeout-ms", "30000",
       "a thread the HTTP port started beyond http-threads ends after this long without a connection"},
      {"http-max-queued-connections", "512", "HTTP connections waiting for a thread; past it a new one is closed at once"},
      {"http-request-read-timeout-ms", "10000",
       "longest reading one whole HTTP request (request line, headers, body) may take, however slowly it arrives"},
      {"http-keepalive-timeout-ms", "5000", "an idle HTTP connection is closed after this"},
      {"event-stream-limit", "4096", "WatchEvents streams open at once per process; past it RESOURCE_EXHAUSTED"},
      {"event-stream-limit-per-tenant", "256", "WatchEvents streams one tenant may hold open per process"},
      {"event-stream-workers", "4", "threads that open WatchEvents streams and read their pages, shared by every stream"},
      {"event-tenant-buffer", "1024", "recent events kept in memory per tenant with open WatchEvents streams"},
      {"event-stream-limit-per-caller", "4", "WatchEvents streams one caller (tenant and subject) may hold open per process"},
      {"event-stream-opens-per-second", "1", "WatchEvents streams one caller may open per second, after the burst"},
      {"event-stream-opens-burst", "10", "WatchEvents streams one caller may open at once"},
      {"unauthenticated-per-address-per-second", "10",
       "failed logins one address may make per second (after the burst); past it, calls from that address without a "
       "valid token are refused RESOURCE_EXHAUSTED before any work"},
      {"unauthenticated-per-address-burst", "50", "failed logins one address may make at once"},
      {"refusal-audit-per-address-per-second", "1",
       "audit records of unauthenticated refusals per address per second; the rest are counted into the next record (repeats)"},
      {"refusal-audit-per-address-burst", "10", "audit records of unauthenticated refusals one address may cause at once"},
      {"event-poll-ms", "200", "how often new events are looked for, for every open WatchEvents stream at once"},
  };
}

namespace {
// `name`'s address, or when empty the gRPC port plus `offset` on its host (0 when that is 0).
std::string ListenBesideGrpc(const Config& config, const char* name, int offset) {
  std::string listen = config.Get(name);
  if (!listen.empty()) return listen;
  const std::string grpc_listen = config.Get("listen");
  const auto colon = grpc_listen.rfind(':');
  if (colon == std::string::npos) throw std::invalid_argument("--listen must be host:port");
  const int grpc_port = std::stoi(grpc_listen.substr(colon + 1));
  return grpc_listen.substr(0, colon) + ":" + std::to_string(grpc_port == 0 ? 0 : grpc_port + offset);
}
}  // namespace

std::string MetricsListenFrom(const Config& config) { return ListenBesideGrpc(config, "metrics-listen", 2000); }

HttpGatewaySettings HttpSettingsFrom(const Config& config) {
  HttpGatewaySettings settings;
  settings.listen = ListenBesideGrpc(config, "http-listen", 1000);
  for (const auto& origin : SplitCommaList(config.Get("cors-allowed-origins"))) {
    if (!origin.empty()) settings.cors_origins.insert(origin);
  }
  settings.default_timeout = std::chrono::milliseconds(config.GetInt("http-default-timeout-ms"));
  settings.threads = config.GetInt("http-threads");
  settings.max_threads = config.GetInt("http-max-threads");
  settings.max_queued_connections = config.GetInt("http-max-queued-connections");
  settings.idle_thread_timeout = std::chrono::milliseconds(config.GetInt("http-idle-thread-timeout-ms"));
  settings.request_read_timeout = std::chrono::milliseconds(config.GetInt("http-request-read-timeout-ms"));
  settings.keepalive_timeout = std::chrono::milliseconds(config.GetInt("http-keepalive-timeout-ms"));
  settings.max_body_bytes = static_cast<std::size_t>(config.GetInt("max-message-bytes"));
  settings.tls_cert_file = config.Get("tls-cert-file");
  settings.tls_key_file = config.Get("tls-key-file");
  settings.tls_client_ca_file = config.Get("http-tls-client-ca-file");
  return settings;
}

ServerSettings ServerSettingsFrom(const Config& config) {
  ServerSettings settings;
  settings.listen = config.Get("listen");
  settings.max_threads = config.GetInt("max-threads");
  settings.max_message_bytes = config.GetInt("max-message-bytes");
  settings.shutdown_grace = std::chrono::milliseconds(config.GetInt("shutdown-grace-ms"));
  settings.health_interval = std::chrono::milliseconds(config.GetInt("health-interval-ms"));
  settings.tls_cert_file = config.Get("tls-cert-file");
  settings.tls_key_file = config.Get("tls-key-file");
  settings.tls_client_ca_file = config.Get("tls-client-ca-file");
  if (settings.tls_cert_file.empty() != settings.tls_key_file.empty()) {
    throw std::invalid_argument("--tls-cert-file and --tls-key-file are set together");
  }
  if (!settings.tls_client_ca_file.empty() && settings.tls_cert_file.empty()) {
    throw std::invalid_argument("--tls-client-ca-file needs --tls-cert-file and --tls-key-file");
  }
  const std::string shared = config.Get("listen-shared");
  if (shared != "true" && shared != "false") throw std::invalid_argument("--listen-shared is true or false");
  settings.listen_shared = shared == "true";
  const std::string reflection = config.Get("reflection");
  if (reflection != "true" && reflection != "false") throw std::invalid_argument("--reflection is true or false");
  settings.reflection = reflection == "true";
  return settings;
}

std::optional<AsyncRedisOptions> FastReadsFrom(const Config& config) {
  const std::string on = config.Get("fast-reads");
  if (on != "true" && on != "false") throw std::invalid_argument("--fast-reads is true or false");
  if (on == "false") return std::nullopt;
  AsyncRedisOptions options;
  options.command_timeout = std::chrono::milliseconds(config.GetInt("fast-read-timeout-ms"));
  if (options.command_timeout.count() < 1) throw std::invalid_argument("--fast-read-timeout-ms must be at least 1");
  return options;
}

RedisOptions RedisOptionsFrom(const Config& config) {
  RedisOptions options;
  options.host = config.Get("redis-host");
  options.port = config.GetInt("redis-port");
  options.pool_size = config.GetInt("redis-pool-size");
  options.command_timeout = std::chrono::milliseconds(config.GetInt("redis-timeout-ms"));
  options.user = config.Get("redis-user");
  options.password = SecretFrom(config, "redis-password");
  options.sentinels = ParseRedisAddresses(config.Get("redis-sentinels"));
  options.master_name = config.Get("redis-master-name");
  options.sentinel_user = config.Get("redis-sentinel-user");
  options.sentinel_password = SecretFrom(config, "redis-sentinel-password");
  options.wait_replicas = config.GetInt("redis-wait-replicas");
  if (options.wait_replicas < 0) throw std::invalid_argument("--redis-wait-replicas must be 0 or more");
  options.wait_timeout = std::chrono::milliseconds(config.GetInt("redis-wait-timeout-ms"));
  return options;
}

PgOptions PgOptionsFrom(const Config& config) {
  PgOptions options;
  options.host = config.Get("pg-host");
  options.ports = config.Get("pg-port");
  options.target_session_attrs = config.Get("pg-target-session-attrs");
  options.connect_timeout = std::chrono::milliseconds(config.GetInt("pg-connect-timeout-ms"));
  PgEndpoints(options);  // a host and port list that do not pair up fails at start
  options.user = config.Get("pg-user");
  options.password = SecretFrom(config, "pg-password");
  options.sslmode = config.Get("pg-sslmode");
  options.sslrootcert = config.Get("pg-sslrootcert");
  options.database = config.Get("pg-database");
  options.pool_size = config.GetInt("pg-pool-size");
  options.statement_timeout = std::chrono::milliseconds(config.GetInt("pg-statement-timeout-ms"));
  const std::string prepared = config.Get("pg-prepared-statements");
  if (prepared != "true" && prepared != "false") {
    throw std::invalid_argument("--pg-prepared-statements is true or false");
  }
  options.prepared_statements = prepared == "true";
  options.plan_cache_mode = config.Get("pg-plan-cache-mode");
  if (options.plan_cache_mode != "auto" && options.plan_cache_mode != "force_custom_plan") {
    throw std::invalid_argument("--pg-plan-cache-mode is auto or force_custom_plan");
  }
  return options;
}

TokenVerifier TokenVerifierFrom(const Config& config) {
  const std::string path = config.Get("jwt-public-key");
  const std::string issuers_file = config.Get("oidc-issuers-file");
  if (path.empty() && issuers_file.empty()) {
    throw std::invalid_argument(
        "--jwt-public-key (PHYSIO_JWT_PUBLIC_KEY) or --oidc-issuers-file (PHYSIO_OIDC_ISSUERS_FILE) is required");
  }
  TokenCacheOptions cache;
  cache.max_entries = static_cast<std::size_t>(config.GetInt("token-cache-size"));
  cache.max_age = std::chrono::seconds(config.GetInt("token-cache-max-seconds"));
  std::vector<IssuerConfig> issuers;
  if (!path.empty()) {
    issuers.push_back(TokenVerifier::PemIssuer(path, config.Get("jwt-issuer"), config.Get("jwt-audience"),
                                               std::chrono::seconds(config.GetInt("jwt-max-lifetime-seconds")),
                                               std::chrono::seconds(config.GetInt("jwt-keys-reload-seconds"))));
  }
  if (!issuers_file.empty()) {
    for (auto& issuer : LoadIssuersFile(issuers_file)) issuers.push_back(std::move(issuer));
  }
  return TokenVerifier(issuers, cache);
}

AuditOptions AuditOptionsFrom(const Config& config) {
  AuditOptions options;
  options.queue_limit = static_cast<std::size_t>(config.GetInt("audit-queue-limit"));
  options.max_batch = static_cast<std::size_t>(config.GetInt("audit-max-batch"));
  options.writers = config.GetInt("audit-writers");
  return options;
}

PeerTls PeerTlsFrom(const Config& config) {
  PeerTls tls{config.Get("peer-ca-file"), config.Get("peer-cert-file"), config.Get("peer-key-file"),
              config.Get("peer-server-name")};
  if (tls.cert_file.empty() != tls.key_file.empty()) {
    throw std::invalid_argument("--peer-cert-file and --peer-key-file are set together");
  }
  if (!tls.cert_file.empty() && tls.ca_file.empty()) throw std::invalid_argument("--peer-cert-file needs --peer-ca-file");
  return tls;
}

ServiceIdentityPolicy ServiceIdentityPolicyFrom(const Config& config) {
  ServiceIdentityPolicy policy;
  policy.require_certificate = !config.Get("tls-client-ca-file").empty();
  std::istringstream names(config.Get("service-identities"));
  for (std::string name; std::getline(names, name, ',');) {
    if (!name.empty()) policy.identities.insert(name);
  }
  return policy;
}

RateLimits RateLimitsFrom(const Config& config) {
  RateLimits limits;
  limits.principal_per_second = config.GetInt("rate-limit-principal-per-second");
  limits.principal_burst = config.GetInt("rate-limit-principal-burst");
  if (limits.principal_burst <= 0) limits.principal_burst = 2 * limits.principal_per_second;
  limits.tenant_per_second = config.GetInt("rate-limit-tenant-per-second");
  limits.tenant_burst = config.GetInt("rate-limit-tenant-burst");
  if (limits.tenant_burst <= 0) limits.tenant_burst = 2 * limits.tenant_per_second;
  if (limits.principal_per_second < 0 || limits.tenant_per_second < 0) {
    throw std::invalid_argument("rate limits are 0 (off) or positive");
  }
  return limits;
}

InputLimits InputLimitsFrom(const Config& config) {
  InputLimits limits;
  limits.max_string_bytes = static_cast<std::size_t>(std::max(1, config.GetInt("max-string-bytes")));
  limits.max_document_bytes = static_cast<std::size_t>(std::max(1, config.GetInt("max-document-bytes")));
  limits.max_repeated = std::max(1, config.GetInt("max-repeated-items"));
  return limits;
}

BidiControls BidiControlsFrom(const Config& config) {
  const std::string value = config.Get("bidi-controls");
  if (value == "refuse-unpaired") return BidiControls::kRefuseUnpaired;
  if (value == "accept") return BidiControls::kAccept;
  throw std::invalid_argument("bidi-controls must be refuse-unpaired or accept, got '" + value + "'");
}

std::string SecretFrom(const Config& config, const std::string& name) {
  const std::string file = config.Get(name + "-file");
  if (file.empty()) return config.Get(name);
  std::string secret = ReadFileOrThrow(file, name + "-file");
  while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r')) secret.pop_back();
  return secret;
}

std::chrono::milliseconds PeerTimeoutFrom(const Config& config) {
  return std::chrono::milliseconds(config.GetInt("peer-timeout-ms"));
}

EventFeedSettings EventFeedSettingsFrom(const Config& config) {
  EventFeedSettings settings;
  settings.max_streams = std::max(1, config.GetInt("event-stream-limit"));
  settings.max_streams_per_tenant = std::max(1, config.GetInt("event-stream-limit-per-tenant"));
  settings.max_streams_per_caller = std::max(1, config.GetInt("event-stream-limit-per-caller"));
  settings.opens_per_second = std::max(0.001, config.GetDouble("event-stream-opens-per-second"));
  settings.opens_burst = std::max(1.0, config.GetDouble("event-stream-opens-burst"));
  settings.poll = std::chrono::milliseconds(std::max(10, config.GetInt("event-poll-ms")));
  settings.workers = std::max(1, config.GetInt("event-stream-workers"));
  settings.tenant_buffer = std::max(settings.page, config.GetInt("event-tenant-buffer"));
  settings.input = InputLimitsFrom(config);
  return settings;
}

RefusalGuardSettings RefusalGuardSettingsFrom(const Config& config) {
  RefusalGuardSettings settings;
  settings.per_second = config.GetDouble("unauthenticated-per-address-per-second");
  settings.burst = config.GetDouble("unauthenticated-per-address-burst");
  settings.audit_per_second = config.GetDouble("refusal-audit-per-address-per-second");
  settings.audit_burst = config.GetDouble("refusal-audit-per-address-burst");
  if (settings.per_second <= 0 || settings.burst < 1 || settings.audit_per_second <= 0 || settings.audit_burst < 1) {
    throw std::invalid_argument("unauthenticated-* and refusal-audit-* rates must be positive, bursts at least 1");
  }
  return settings;
}

BulkExportSettings BulkExportSettingsFrom(const Config& config) {
  BulkExportSettings settings;
  settings.batch_records = std::max(1, config.GetInt("bulk-export-batch-records"));
  settings.pause = std::chrono::milliseconds(std::max(0, config.GetInt("bulk-export-pause-ms")));
  settings.lease = std::chrono::seconds(std::max(2, config.GetInt("bulk-export-lease-s")));
  settings.poll = std::chrono::milliseconds(std::max(10, config.GetInt("bulk-export-poll-ms")));
  settings.cleanup = std::chrono::seconds(std::max(1, config.GetInt("bulk-export-cleanup-s")));
  // A part is one gRPC message when it is read: a margin under max-message-bytes.
  settings.part_bytes = static_cast<std::size_t>(std::max(65536, config.GetInt("max-message-bytes") - 65536));
  return settings;
}

}  // namespace physio
