#pragma once
// The HTTP face of a service: the Connect protocol for unary calls
// (POST /<package>.<Service>/<Method>, application/json in the canonical proto3
// JSON mapping or application/proto) and CORS for configured origins. Each call
// is passed to the service's own gRPC server over an in-process channel, so
// authentication, quotas, input bounds, deadlines, status mapping and audit are
// the gRPC pipeline's, written once. /metrics is served by a MetricsListener on
// its own (internal) address, never on this port.
//
// The port is open to anyone before login, so every request is bounded before
// any work (cpp-httplib vendored in libs/third_party, see its README):
//  - the request line and each header at most 8 KiB, at most 64 headers;
//  - the whole request read within `request_read_timeout`, however slowly its
//    bytes arrive; the body at most `max_body_bytes` whether or not it says its
//    length (413), and never inflated;
//  - connections wait for a thread in a bounded queue (past it they are closed);
//  - the headers that reach gRPC metadata are checked first (400, never a crash);
//  - the body is read and parsed only once the bearer token has verified; a
//    request without a valid token is refused by the pipeline (which audits and
//    limits it) without its body being read.
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "physio/auth/token_verifier.h"
#include "physio/server/fhir_rest.h"
#include "physio/server/metrics.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}

namespace physio {

struct HttpGatewaySettings {
  std::string listen;                     // host:port; port 0 picks a free one
  std::set<std::string> cors_origins;     // exact origins, or "*"
  std::chrono::milliseconds default_timeout{30000};  // when no Connect-Timeout-Ms is sent
  std::chrono::milliseconds max_timeout{120000};
  int threads = 8;                        // threads kept serving connections
  int max_threads = 256;                  // threads started on demand while all are busy
  int max_queued_connections = 256;       // connections waiting for a thread; past it closed at once
  std::chrono::milliseconds idle_thread_timeout{30000};  // a thread beyond `threads` ends after this idle
  std::chrono::milliseconds request_read_timeout{10000};  // reading one whole request
  std::chrono::milliseconds keepalive_timeout{5000};      // an idle connection is closed after this
  std::size_t max_body_bytes = 4 * 1024 * 1024;
  // TLS (and client certificates when client_ca_file is set), as the gRPC port.
  std::string tls_cert_file, tls_key_file, tls_client_ca_file;
};

// Why a header the gateway forwards as gRPC metadata cannot be forwarded, or
// nullopt when it can: printable ASCII only, at most 8 KiB; Authorization is
// "Bearer <token68>"; X-Request-Id an opaque id; Traceparent a well-formed W3C
// version-00 traceparent. `name` is one of those three (any case).
std::optional<std::string> ForwardedHeaderProblem(std::string_view name, std::string_view value);

// A header token compared case-insensitively (RFC 9110: media types' type and subtype, content
// codings): `value` up to the first ';', without trailing white space, in lower case.
// "Application/JSON ; charset=utf-8" is "application/json".
std::string CaseFoldedToken(std::string_view value);

// Whether a Content-Type's `charset` parameter, if it has one, names UTF-8 (case-insensitive,
// quoted or not: RFC 9110 8.3.2). JSON bodies are read as UTF-8 (RFC 8259 8.1), so a body declared
// as another charset is refused rather than misread: "application/json; charset=utf-16" is not.
bool DeclaresUtf8OrNoCharset(std::string_view content_type);

// Whether the request's Authorization header (already checked as "Bearer <token68>") carries a
// token `verifier` accepts: the one check made before a body is read.
bool BearerVerifies(const std::string& authorization, const TokenVerifier& verifier);

class HttpGateway {
 public:
  // `services`: the fully qualified gRPC service names this server answers.
  // `verifier`: tokens are checked before a body is read (the same verifier as the pipeline's).
  HttpGateway(HttpGatewaySettings settings, std::shared_ptr<grpc::Channel> in_process,
              std::vector<std::string> services, const TokenVerifier& verifier);
  ~HttpGateway();
  HttpGateway(const HttpGateway&) = delete;
  HttpGateway& operator=(const HttpGateway&) = delete;

  // Serves the FHIR REST API under /fhir/R4/ too (fhir_rest.h); before Start.
  void EnableFhir(FhirRestSettings settings);
  // Binds and starts serving; returns the bound port.
  int Start();
  // Stops accepting, lets requests in progress finish.
  void Shutdown();
  int port() const { return port_; }
  // Kept-alive connections closed without a request, since the start: after `keepalive_timeout`,
  // or to make room (to give their thread to a connection waiting for one while every thread was
  // started). A client that sends on one just as it closes gets no answer and sends again (RFC
  // 9112, 9.3.1).
  struct IdleCloses {
    std::uint64_t timeout = 0, make_room = 0;
  };
  IdleCloses IdleConnectionsClosed() const;

 private:
  void Routes();
  // One unary call with the request's forwarded headers (already checked): on the in-process
  // channel when `channel` is null (with the HTTP client's address for the audit trail), else on
  // that peer channel (the caller's token, request id and trace only).
  grpc::Status Invoke(const httplib::Request& req, const std::shared_ptr<grpc::Channel>& channel,
                      std::chrono::milliseconds timeout, const std::string& path, const std::string& request_bytes,
                      std::string* response_bytes, httplib::Response* res);
  void Cors(const httplib::Request& req, httplib::Response& res) const;
  HttpGatewaySettings settings_;
  std::shared_ptr<grpc::Channel> channel_;
  std::vector<std::string> services_;
  const TokenVerifier& verifier_;
  // Connections accepted and waiting for a thread (each thread serves one connection at a time).
  std::shared_ptr<std::atomic<std::size_t>> waiting_connections_ = std::make_shared<std::atomic<std::size_t>>(0);
  std::unique_ptr<httplib::Server> server_;
  std::unique_ptr<FhirRest> fhir_;
  std::thread thread_;
  int port_ = 0;
};

// GET /metrics (Prometheus text) on an address of its own, so the Connect port
// that callers reach never shows the service's internals. Two threads, small
// queue, the same request bounds as the gateway; anything but GET /metrics is 404.
class MetricsListener {
 public:
  // `listen`: host:port; port 0 picks a free one.
  MetricsListener(std::string listen, const Metrics& metrics);
  ~MetricsListener();
  MetricsListener(const MetricsListener&) = delete;
  MetricsListener& operator=(const MetricsListener&) = delete;
  int Start();
  void Shutdown();
  int port() const { return port_; }

 private:
  std::string listen_;
  const Metrics& metrics_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
};

// Connect's name for a gRPC code ("not_found", "canceled") and the HTTP status it maps to.
const char* ConnectCodeName(grpc::StatusCode code);
int ConnectHttpStatus(grpc::StatusCode code);

}  // namespace physio
