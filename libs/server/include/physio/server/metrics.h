#pragma once
// Prometheus text-format metrics for one service, served at GET /metrics on its
// HTTP port. The call counters use the names of go-grpc-prometheus and the
// dashboards built on it (grpc_server_started_total, grpc_server_handled_total,
// grpc_server_handling_seconds); everything else (pools, audit queue, store
// health, alerts) is added by its owner as a collector read at scrape time.
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace physio {

class MetricsText {
 public:
  // `labels` already formatted: {store="redis"} or "".
  void Gauge(std::string_view name, std::string_view help, const std::vector<std::pair<std::string, double>>& samples);
  void Counter(std::string_view name, std::string_view help, const std::vector<std::pair<std::string, double>>& samples);
  std::string& text() { return text_; }

 private:
  void Family(std::string_view type, std::string_view name, std::string_view help,
              const std::vector<std::pair<std::string, double>>& samples);
  std::string text_;
};

// `{key="value",...}` with Prometheus escaping.
std::string MetricLabels(const std::vector<std::pair<std::string, std::string>>& labels);

class Metrics {
 public:
  explicit Metrics(std::string grpc_service) : grpc_service_(std::move(grpc_service)) {}
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  void CallStarted(std::string_view method);
  // Calls started so far, of every method.
  std::uint64_t CallsStarted() const;
  // `code`: the gRPC status code name ("OK", "NOT_FOUND").
  void CallHandled(std::string_view method, std::string_view code, double seconds);
  // Counts one event by kind (e.g. alerts raised by kind); rendered as the counter `name{kind=...}`.
  void CountEvent(const std::string& name, const std::string& help, const std::string& kind);

  using Collector = std::function<void(MetricsText&)>;
  void AddCollector(Collector collector);
  std::string Render() const;

 private:
  struct MethodStats {
    std::uint64_t started = 0;
    std::map<std::string, std::uint64_t, std::less<>> handled;  // by code
    std::vector<std::uint64_t> buckets;                          // cumulative at render
    double seconds_sum = 0;
    std::uint64_t seconds_count = 0;
  };
  MethodStats& Method(std::string_view method);  // mutex_ held

  std::string grpc_service_;
  mutable std::mutex mutex_;
  std::map<std::string, MethodStats, std::less<>> methods_;
  struct EventCounts {
    std::string help;
    std::map<std::string, std::uint64_t> by_kind;
  };
  std::map<std::string, EventCounts> events_;
  std::vector<Collector> collectors_;
};

}  // namespace physio
