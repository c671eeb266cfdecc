#include "physio/server/service_host.h"

#include <absl/synchronization/mutex.h>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/impl/server_builder_option.h>
#include <grpcpp/impl/server_builder_plugin.h>
#include <spdlog/spdlog.h>

#include <csignal>
#include <iostream>

#include "physio/common/crash_handler.h"
#include "physio/common/logging.h"
#include "physio/server/startup.h"

namespace physio {

namespace {
// Turns gRPC's process-wide reflection plugin off for one server.
class NoReflection final : public grpc::ServerBuilderOption {
 public:
  void UpdateArguments(grpc::ChannelArguments*) override {}
  void UpdatePlugins(std::vector<std::unique_ptr<grpc::ServerBuilderPlugin>>* plugins) override {
    std::erase_if(*plugins, [](const auto& plugin) { return plugin->name() == "proto_server_reflection"; });
  }
};

std::shared_ptr<grpc::ServerCredentials> ServerCredentials(const ServerSettings& settings) {
  if (settings.tls_cert_file.empty()) return grpc::InsecureServerCredentials();
  grpc::SslServerCredentialsOptions ssl(settings.tls_client_ca_file.empty()
                                            ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                                            : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  if (!settings.tls_client_ca_file.empty()) {
    ssl.pem_root_certs = ReadFileOrThrow(settings.tls_client_ca_file, "tls-client-ca-file");
  }
  ssl.pem_key_cert_pairs.push_back({ReadFileOrThrow(settings.tls_key_file, "tls-key-file"),
                                    ReadFileOrThrow(settings.tls_cert_file, "tls-cert-file")});
  return grpc::SslServerCredentials(ssl);
}
}  // namespace

ServiceHost::ServiceHost(ServerSettings settings, std::vector<std::string> health_names,
                         std::function<bool()> stores_healthy)
    : settings_(std::move(settings)), health_names_(std::move(health_names)), stores_healthy_(std::move(stores_healthy)) {}

ServiceHost::~ServiceHost() { Shutdown(); }

int ServiceHost::Start() {
  grpc::EnableDefaultHealthCheckService(true);
  // gRPC's reflection plugin registers itself for every server built after
  // this in the process; a server with reflection off disables it on its builder.
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  if (!settings_.reflection) builder.SetOption(std::make_unique<NoReflection>());
  builder.AddListeningPort(settings_.listen, ServerCredentials(settings_), &port_);
  for (auto* service : services_) builder.RegisterService(service);
  builder.SetMaxReceiveMessageSize(settings_.max_message_bytes);
  builder.SetMaxSendMessageSize(settings_.max_message_bytes);
  grpc::ResourceQuota quota("physio-server");
  quota.SetMaxThreads(settings_.max_threads);
  builder.SetResourceQuota(quota);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, static_cast<int>(settings_.keepalive_time.count()));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
                             static_cast<int>(settings_.min_client_ping_interval.count()));
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 2);
  // A port another process serves is refused, not shared: with SO_REUSEPORT (gRPC's default)
  // the kernel splits callers between the two, and a stale process of an earlier build would
  // quietly answer part of the traffic. `listen_shared` is for the fault harness's port holds.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, settings_.listen_shared ? 1 : 0);
  server_ = builder.BuildAndStart();
  if (!server_ || port_ == 0) throw std::runtime_error("cannot listen on " + settings_.listen);
  // "liveness" answers whether the process can serve at all, whatever its stores do:
  // a liveness probe on it restarts a wedged process, not every pod at a Redis blip.
  server_->GetHealthCheckService()->SetServingStatus(kLivenessHealthName, true);
  health_thread_ = std::thread([this] { MonitorHealth(); });
  return port_;
}

void ServiceHost::SetStoreHealth(bool serving) {
  auto* health = server_->GetHealthCheckService();
  // By name: the no-name overload would set every name, "liveness" included.
  health->SetServingStatus("", serving);
  for (const auto& name : health_names_) health->SetServingStatus(name, serving);
}

void ServiceHost::MonitorHealth() {
  int last = -1;
  std::unique_lock lock(mutex_);
  while (!stopping_ && !announced_) {
    lock.unlock();
    const bool healthy = stores_healthy_();
    lock.lock();
    if (stopping_ || announced_) break;
    if (static_cast<int>(healthy) != last) {
      SetStoreHealth(healthy);
      if (last != -1) spdlog::warn("health changed to {}", healthy ? "SERVING" : "NOT_SERVING");
      last = healthy;
    }
    stop_cv_.wait_for(lock, settings_.health_interval, [&] { return stopping_ || announced_; });
  }
}

std::shared_ptr<grpc::Channel> ServiceHost::InProcessChannel() {
  if (!server_) throw std::logic_error("InProcessChannel before Start");
  return server_->InProcessChannel(grpc::ChannelArguments());
}

void ServiceHost::AnnounceShutdown() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ || announced_ || !server_) return;
    announced_ = true;
  }
  stop_cv_.notify_all();
  if (health_thread_.joinable()) health_thread_.join();
  SetStoreHealth(false);
}

void ServiceHost::Shutdown() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ || !server_) return;
    stopping_ = true;
  }
  stop_cv_.notify_all();
  if (health_thread_.joinable()) health_thread_.join();
  // Tell load balancers first, then drain.
  server_->GetHealthCheckService()->Shutdown();
  server_->Shutdown(std::chrono::system_clock::now() + settings_.shutdown_grace);
  server_->Wait();
}

int ServiceMain(const std::string& service_name, std::vector<ConfigKey> keys, int argc, char** argv,
                const std::function<std::unique_ptr<RunningService>(const Config&)>& start) {
  // Before any thread exists: the fatal-signal report (and SIGPIPE ignored) is
  // inherited by every thread; the termination signals are blocked, then waited for synchronously.
  InstallCrashHandler();
  // Debian's Abseil is built with its debug-mode lock-order checking on: every
  // absl::Mutex gRPC takes (several per call) updated a lock graph and every
  // destroyed one (one per call's mutexes) was removed from it, ~2% of a cached
  // read's CPU (issue 33). Deadlocks are found by tests and TSan, not in production.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  try {
    Config config(std::move(keys), argc, argv);
    if (config.help_requested()) {
      std::cout << config.Usage(argv[0]);
      return 0;
    }
    if (config.list_requested()) {
      std::cout << config.SettingsList();
      return 0;
    }
    InitJsonLogging(service_name, config.Get("log-level"));
    StartupTracker startup("loading keys and settings",
                           std::chrono::milliseconds(config.GetInt("startup-phase-warn-ms")));
    auto service = start(config);
    const auto took = startup.Finish();
    spdlog::info("{} listening on port {} (gRPC), {} (HTTP) and {} (metrics); started in {} ms", service_name,
                 service->port(), service->http_port(), service->metrics_port(), took.count());
    const auto notice = std::chrono::milliseconds(config.GetInt("shutdown-notice-ms"));
    int received = 0;
    sigwait(&signals, &received);
    spdlog::info("signal {} received; NOT_SERVING for {} ms, still serving, then draining", received, notice.count());
    service->AnnounceShutdown();
    const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(notice);
    const timespec notice_spec{static_cast<time_t>(seconds.count()),
                               static_cast<long>(std::chrono::nanoseconds(notice - seconds).count())};
    if (notice.count() > 0 && sigtimedwait(&signals, nullptr, &notice_spec) > 0) {
      spdlog::info("second signal received; draining now");
    }
    service->Shutdown();
    spdlog::info("{} stopped", service_name);
    return 0;
  } catch (const std::exception& e) {
    FlushLogsBeforeDeath();
    std::cerr << service_name << ": " << e.what() << "\n";
    return 1;
  }
}

}  // namespace physio
