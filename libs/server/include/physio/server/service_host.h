#pragma once
// Hosts one service's gRPC server the same way for all three services:
// callback API (calls are queued to the service's worker pool by CallPipeline,
// never refused for want of a thread), grpc.health.v1 with a status per service that follows
// the stores, reflection, message-size limits, keepalive policy, and a graceful
// shutdown that lets in-flight calls finish within a bound.
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "physio/common/config.h"
#include "physio/server/service_config.h"

namespace physio {

// The grpc.health.v1 name that stays SERVING while the process runs, whatever
// its stores do (for liveness probes); "" and the service names follow the stores.
inline constexpr const char* kLivenessHealthName = "liveness";

class ServiceHost {
 public:
  // `health_names`: fully qualified service names whose status follows `stores_healthy`
  // (the overall "" status does too).
  ServiceHost(ServerSettings settings, std::vector<std::string> health_names, std::function<bool()> stores_healthy);
  ~ServiceHost();
  ServiceHost(const ServiceHost&) = delete;
  ServiceHost& operator=(const ServiceHost&) = delete;

  void AddService(grpc::Service* service) { services_.push_back(service); }
  // Binds and starts serving; returns the bound port. Throws std::runtime_error if it cannot bind.
  int Start();
  // Reports NOT_SERVING (liveness stays SERVING) and stops following the stores,
  // while calls are still served: balancers and health-checking clients move
  // away before the drain refuses anything.
  void AnnounceShutdown();
  // Stops accepting calls, waits up to the grace period for in-flight ones, then cancels the rest.
  void Shutdown();
  int port() const { return port_; }
  // A channel to this server inside the process (no network, no TLS), for the HTTP gateway.
  std::shared_ptr<grpc::Channel> InProcessChannel();

 private:
  void MonitorHealth();
  // The overall status and each service name's; "liveness" is left alone.
  void SetStoreHealth(bool serving);

  ServerSettings settings_;
  std::vector<std::string> health_names_;
  std::function<bool()> stores_healthy_;
  std::vector<grpc::Service*> services_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::mutex mutex_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;
  bool announced_ = false;
  std::thread health_thread_;
};

// A started service, as main() and the integration tests see it.
class RunningService {
 public:
  virtual ~RunningService() = default;
  virtual int port() const = 0;
  // The HTTP port (Connect protocol); 0 when it is off.
  virtual int http_port() const = 0;
  // The internal metrics listener (GET /metrics); 0 when it is off.
  virtual int metrics_port() const = 0;
  // Health NOT_SERVING while still serving, ahead of Shutdown (see ServiceHost).
  virtual void AnnounceShutdown() = 0;
  virtual void Shutdown() = 0;
};

// The whole main() of a service: parse flags/env, JSON logs, start, wait for
// SIGTERM/SIGINT, announce the shutdown for `shutdown-notice-ms` (a second
// signal cuts it short), then drain within `shutdown-grace-ms`. Returns the process exit code.
int ServiceMain(const std::string& service_name, std::vector<ConfigKey> keys, int argc, char** argv,
                const std::function<std::unique_ptr<RunningService>(const Config&)>& start);

}  // namespace physio
