#include "physio/server/metrics.h"

#include <array>
#include <cstdio>

namespace physio {

namespace {
// Seconds; the upper bounds of the handling-time histogram.
constexpr std::array<double, 13> kBuckets = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                             0.25,  0.5,    1,     2.5,  5,     10};

std::string Number(double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.17g", value);
  return buffer;
}

std::string Escaped(std::string_view value) {
  std::string out;
  for (char c : value) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}
}  // namespace

std::string MetricLabels(const std::vector<std::pair<std::string, std::string>>& labels) {
  if (labels.empty()) return "";
  std::string out = "{";
  for (std::size_t i = 0; i < labels.size(); ++i) {
    out += (i ? "," : "") + labels[i].first + "=\"" + Escaped(labels[i].second) + "\"";
  }
  return out + "}";
}

void MetricsText::Family(std::string_view type, std::string_view name, std::string_view help,
                         const std::vector<std::pair<std::string, double>>& samples) {
  text_ += "# HELP " + std::string(name) + " " + std::string(help) + "\n";
  text_ += "# TYPE " + std::string(name) + " " + std::string(type) + "\n";
  for (const auto& [labels, value] : samples) text_ += std::string(name) + labels + " " + Number(value) + "\n";
}

void MetricsText::Gauge(std::string_view name, std::string_view help,
                        const std::vector<std::pair<std::string, double>>& samples) {
  Family("gauge", name, help, samples);
}

void MetricsText::Counter(std::string_view name, std::string_view help,
                          const std::vector<std::pair<std::string, double>>& samples) {
  Family("counter", name, help, samples);
}

Metrics::MethodStats& Metrics::Method(std::string_view method) {
  auto found = methods_.find(method);
  if (found == methods_.end()) {
    found = methods_.emplace(std::string(method), MethodStats{}).first;
    found->second.buckets.assign(kBuckets.size(), 0);
  }
  return found->second;
}

void Metrics::CallStarted(std::string_view method) {
  std::lock_guard lock(mutex_);
  ++Method(method).started;
}

std::uint64_t Metrics::CallsStarted() const {
  std::lock_guard lock(mutex_);
  std::uint64_t started = 0;
  for (const auto& [method, stats] : methods_) started += stats.started;
  return started;
}

void Metrics::CallHandled(std::string_view method, std::string_view code, double seconds) {
  std::lock_guard lock(mutex_);
  MethodStats& stats = Method(method);
  auto handled = stats.handled.find(code);
  if (handled == stats.handled.end()) handled = stats.handled.emplace(std::string(code), 0).first;
  ++handled->second;
  for (std::size_t i = 0; i < kBuckets.size(); ++i) {
    if (seconds <= kBuckets[i]) {
      ++stats.buckets[i];
      break;
    }
  }
  stats.seconds_sum += seconds;
  ++stats.seconds_count;
}

void Metrics::CountEvent(const std::string& name, const std::string& help, const std::string& kind) {
  std::lock_guard lock(mutex_);
  auto& counts = events_[name];
  counts.help = help;
  ++counts.by_kind[kind];
}

void Metrics::AddCollector(Collector collector) {
  std::lock_guard lock(mutex_);
  collectors_.push_back(std::move(collector));
}

std::string Metrics::Render() const {
  MetricsText out;
  std::vector<Collector> collectors;
  {
    std::lock_guard lock(mutex_);
    const std::string type = "unary";
    std::vector<std::pair<std::string, double>> started, handled;
    for (const auto& [method, stats] : methods_) {
      started.emplace_back(MetricLabels({{"grpc_type", type}, {"grpc_service", grpc_service_}, {"grpc_method", method}}),
                           static_cast<double>(stats.started));
      for (const auto& [code, count] : stats.handled) {
        handled.emplace_back(MetricLabels({{"grpc_type", type},
                                           {"grpc_service", grpc_service_},
                                           {"grpc_method", method},
                                           {"grpc_code", code}}),
                             static_cast<double>(count));
      }
    }
    out.Counter("grpc_server_started_total", "RPCs started on the server.", started);
    out.Counter("grpc_server_handled_total", "RPCs completed on the server, by status code.", handled);
    std::string& text = out.text();
    text += "# HELP grpc_server_handling_seconds Time from a call's arrival to its answer.\n";
    text += "# TYPE grpc_server_handling_seconds histogram\n";
    for (const auto& [method, stats] : methods_) {
      const std::string base = "grpc_type=\"unary\",grpc_service=\"" + Escaped(grpc_service_) + "\",grpc_method=\"" +
                               Escaped(method) + "\"";
      std::uint64_t cumulative = 0;
      for (std::size_t i = 0; i < kBuckets.size(); ++i) {
        cumulative += stats.buckets[i];
        text += "grpc_server_handling_seconds_bucket{" + base + ",le=\"" + Number(kBuckets[i]) + "\"} " +
                std::to_string(cumulative) + "\n";
      }
      text += "grpc_server_handling_seconds_bucket{" + base + ",le=\"+Inf\"} " + std::to_string(stats.seconds_count) +
              "\n";
      text += "grpc_server_handling_seconds_sum{" + base + "} " + Number(stats.seconds_sum) + "\n";
      text += "grpc_server_handling_seconds_count{" + base + "} " + std::to_string(stats.seconds_count) + "\n";
    }
    for (const auto& [name, counts] : events_) {
      std::vector<std::pair<std::string, double>> samples;
      for (const auto& [kind, count] : counts.by_kind) {
        samples.emplace_back(MetricLabels({{"kind", kind}}), static_cast<double>(count));
      }
      out.Counter(name, counts.help, samples);
    }
    collectors = collectors_;
  }
  for (const auto& collect : collectors) collect(out);
  return out.text();
}

}  // namespace physio
