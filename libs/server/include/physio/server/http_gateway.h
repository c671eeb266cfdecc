#pragma once
// The HTTP face of a service: the Connect protocol for unary calls
// (POST /<package>.<Service>/<Method>, application/json in the canonical proto3
// JSON mapping or application/proto), CORS for configured origins, and
// GET /metrics. Each call is passed to the service's own gRPC server over an
// in-process channel, so authentication, quotas, input bounds, deadlines,
// status mapping and audit are the gRPC pipeline's, written once.
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "physio/server/metrics.h"

namespace httplib {
class Server;
}

namespace physio {

struct HttpGatewaySettings {
  std::string listen;                     // host:port; port 0 picks a free one
  std::set<std::string> cors_origins;     // exact origins, or "*"
  std::chrono::milliseconds default_timeout{30000};  // when no Connect-Timeout-Ms is sent
  std::chrono::milliseconds max_timeout{120000};
  int threads = 32;
  std::size_t max_body_bytes = 4 * 1024 * 1024;
  // TLS (and client certificates when client_ca_file is set), as the gRPC port.
  std::string tls_cert_file, tls_key_file, tls_client_ca_file;
};

class HttpGateway {
 public:
  // `services`: the fully qualified gRPC service names this server answers.
  HttpGateway(HttpGatewaySettings settings, std::shared_ptr<grpc::Channel> in_process,
              std::vector<std::string> services, const Metrics& metrics);
  ~HttpGateway();
  HttpGateway(const HttpGateway&) = delete;
  HttpGateway& operator=(const HttpGateway&) = delete;

  // Binds and starts serving; returns the bound port.
  int Start();
  // Stops accepting, lets requests in progress finish.
  void Shutdown();
  int port() const { return port_; }

 private:
  void Routes();
  HttpGatewaySettings settings_;
  std::shared_ptr<grpc::Channel> channel_;
  std::vector<std::string> services_;
  const Metrics& metrics_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
};

// Connect's name for a gRPC code ("not_found", "canceled") and the HTTP status it maps to.
const char* ConnectCodeName(grpc::StatusCode code);
int ConnectHttpStatus(grpc::StatusCode code);

}  // namespace physio
