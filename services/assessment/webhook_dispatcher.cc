#include "webhook_dispatcher.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <random>

#include "physio/common/error.h"
#include "physio/common/ids.h"

namespace physio::assessment {

std::chrono::milliseconds WebhookRetryDelay(const WebhookDispatchSettings& settings, int failures, double unit) {
  const double base = static_cast<double>(settings.retry_base.count());
  const double capped = std::min(base * std::pow(2.0, std::clamp(failures - 1, 0, 40)),
                                 static_cast<double>(settings.retry_max.count()));
  // Jitter: receivers that failed together are not all retried in the same instant.
  const double jittered = capped * (0.8 + 0.4 * std::clamp(unit, 0.0, 1.0));
  return std::chrono::milliseconds(static_cast<std::int64_t>(jittered));
}

namespace {
// The dispatcher's numbers, shared with the metrics collector (which outlives the dispatcher).
struct DispatchStats {
  std::atomic<std::uint64_t> delivered{0}, failed_attempts{0}, gave_up{0};
  std::atomic<std::uint64_t> claims_leased{0}, claims_empty{0}, claims_failed{0};
  std::atomic<std::int64_t> pending{0}, retrying{0};
  std::atomic<double> oldest_pending_seconds{0};
};

std::shared_ptr<DispatchStats> Stats() {
  static auto stats = std::make_shared<DispatchStats>();
  return stats;
}

constexpr const char* kSources[] = {"assessment", "planning", "progress"};
}  // namespace

WebhookDispatcher::WebhookDispatcher(PgWebhookRecords& records, WebhookDispatchSettings settings, Metrics& metrics)
    : records_(records), settings_(std::move(settings)), metrics_(metrics) {
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  owner_ = std::string(host) + ":" + std::to_string(getpid()) + ":" + RandomHex(4);
  metrics_.AddCollector([stats = Stats()](MetricsText& out) {
    out.Counter("physio_webhook_deliveries_total", "webhook delivery attempts by outcome",
                {{R"({outcome="delivered"})", static_cast<double>(stats->delivered.load())},
                 {R"({outcome="failed_attempt"})", static_cast<double>(stats->failed_attempts.load())},
                 {R"({outcome="gave_up"})", static_cast<double>(stats->gave_up.load())}});
    out.Counter("physio_webhook_claims_total",
                "claims of a due delivery by this replica's senders, by whether one was leased (an idle replica "
                "makes one a webhook-poll-ms)",
                {{R"({outcome="leased"})", static_cast<double>(stats->claims_leased.load())},
                 {R"({outcome="none_due"})", static_cast<double>(stats->claims_empty.load())},
                 {R"({outcome="failed"})", static_cast<double>(stats->claims_failed.load())}});
    out.Gauge("physio_webhook_pending_deliveries", "deliveries not yet delivered (all replicas)",
              {{"", static_cast<double>(stats->pending.load())}});
    out.Gauge("physio_webhook_retry_queue_depth", "undelivered deliveries that failed at least once (all replicas)",
              {{"", static_cast<double>(stats->retrying.load())}});
    out.Gauge("physio_webhook_oldest_undelivered_seconds", "age of the oldest undelivered delivery",
              {{"", stats->oldest_pending_seconds.load()}});
  });
  threads_.emplace_back([this](std::stop_token stop) { FanOutLoop(stop); });
  for (int i = 0; i < settings_.senders; ++i) {
    threads_.emplace_back([this](std::stop_token stop) { SendLoop(stop); });
  }
}

WebhookDispatcher::~WebhookDispatcher() {
  for (auto& thread : threads_) thread.request_stop();
  wake_.notify_all();
  threads_.clear();  // joins
}

void WebhookDispatcher::Pause(std::stop_token stop, std::chrono::milliseconds period) {
  std::unique_lock lock(mutex_);
  pause_.wait_for(lock, stop, period, [] { return false; });
}

void WebhookDispatcher::IdleSender(std::stop_token stop) {
  std::unique_lock lock(mutex_);
  const std::uint64_t seen = wakes_;
  const auto woken = [this, seen] { return wakes_ != seen; };
  if (sender_looking_) {
    wake_.wait(lock, stop, woken);  // another idle sender looks again after `poll`
    return;
  }
  sender_looking_ = true;
  wake_.wait_for(lock, stop, settings_.poll, woken);
  sender_looking_ = false;
}

void WebhookDispatcher::Wake(bool all) {
  {
    std::lock_guard lock(mutex_);
    ++wakes_;
  }
  if (all) {
    wake_.notify_all();
  } else {
    wake_.notify_one();
  }
}

void WebhookDispatcher::FanOutLoop(std::stop_token stop) {
  auto stats = Stats();
  auto next_stats = Clock::now(), next_repair = Clock::now();
  std::map<std::string, Clock::time_point> warned;
  while (!stop.stop_requested()) {
    bool more = false;
    try {
      const auto deadline = Clock::now() + std::chrono::seconds(10);
      const auto tenants = records_.SubscribedTenants(deadline);
      for (const char* source : kSources) {
        for (const auto& tenant : tenants) {
          try {
            const int queued = records_.FanOut(source, tenant, settings_.fan_out_batch, deadline);
            if (queued > 0) Wake(true);
            // A full batch: more may be waiting; no pause before the next pass.
            if (queued >= settings_.fan_out_batch) more = true;
          } catch (const Error& error) {
            if (error.code() == ErrorCode::kUnavailable) throw;
            // A feed this replica cannot read: said once a minute, the others go on.
            if (Clock::now() >= warned[source]) {
              spdlog::warn("webhooks: the {} feed cannot be read ({}); grant physio_audit_reader", source, error.what());
              warned[source] = Clock::now() + std::chrono::minutes(1);
            }
          }
        }
      }
      if (Clock::now() >= next_repair) {
        if (records_.RepairHeads(deadline) > 0) Wake(true);
        next_repair = Clock::now() + std::chrono::seconds(1);
      }
      if (Clock::now() >= next_stats) {
        const auto queue = records_.QueueStats(deadline);
        stats->pending = queue.pending;
        stats->retrying = queue.retrying;
        stats->oldest_pending_seconds = queue.oldest_pending_seconds;
        next_stats = Clock::now() + std::chrono::seconds(5);
      }
    } catch (const std::exception& error) {
      spdlog::warn("webhooks: fan-out pass failed: {}", error.what());
    }
    if (!more) Pause(stop, settings_.poll);
  }
}

void WebhookDispatcher::SendLoop(std::stop_token stop) {
  auto stats = Stats();
  std::mt19937_64 random(std::random_device{}());
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  while (!stop.stop_requested()) {
    std::vector<std::string> busy;
    {
      std::lock_guard lock(mutex_);
      for (const auto& [subscription, count] : in_flight_) {
        if (count >= settings_.per_subscription) busy.push_back(subscription);
      }
    }
    std::optional<LeasedDelivery> delivery;
    bool failed = false;
    try {
      delivery = records_.Lease(owner_, busy, settings_.lease, Clock::now() + std::chrono::seconds(5));
    } catch (const std::exception& error) {
      spdlog::warn("webhooks: leasing a delivery failed: {}", error.what());
      failed = true;
    }
    if (!delivery) {
      // Nothing due, or the store refused: one idle sender looks again after `poll`.
      ++(failed ? stats->claims_failed : stats->claims_empty);
      IdleSender(stop);
      continue;
    }
    ++stats->claims_leased;
    Wake(false);
    {
      std::lock_guard lock(mutex_);
      ++in_flight_[delivery->subscription_id];
    }
    WebhookRequest request;
    request.url = delivery->url;
    request.message_id = delivery->message_id;
    request.secrets = delivery->secrets;
    request.body = delivery->body;
    request.connect_timeout = settings_.connect_timeout;
    request.total_timeout = settings_.total_timeout;
    request.ca_file = settings_.ca_file;
    const WebhookResult result = SendWebhook(request, settings_.destinations);
    const auto retry_in = WebhookRetryDelay(settings_, delivery->attempt, unit(random));
    try {
      const auto outcome = records_.RecordAttempt(*delivery, owner_, result.status, result.latency, result.error,
                                                  retry_in, settings_.give_up_after, Clock::now() + std::chrono::seconds(10));
      if (result.error.empty()) {
        ++stats->delivered;
      } else {
        ++stats->failed_attempts;
        if (outcome.gave_up) {
          ++stats->gave_up;
          spdlog::warn("webhooks: subscription {} of tenant {} disabled after failing past the retry window",
                       delivery->subscription_id, delivery->tenant);
        }
      }
    } catch (const std::exception& error) {
      // Not recorded: the lease runs out and the delivery is sent again (at least once).
      spdlog::warn("webhooks: recording delivery {} failed: {}", delivery->delivery_id, error.what());
    }
    {
      std::lock_guard lock(mutex_);
      if (--in_flight_[delivery->subscription_id] <= 0) in_flight_.erase(delivery->subscription_id);
    }
  }
}

}  // namespace physio::assessment
