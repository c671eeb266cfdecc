#pragma once
// Webhook subscriptions and their deliveries (tables webhook_*, migration 0005): the
// use cases' seam (WebhookRecords) and its PostgreSQL implementation, which also holds
// the dispatcher's statements (fan-out from the three services' outboxes, leasing a due
// delivery, recording an attempt). No gRPC here.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "physio/assessment/v1/assessment.pb.h"
#include "physio/common/clock.h"
#include "physio/db/pg.h"

namespace physio::assessment {


// What a subscription is made of, as validated by the use case.
struct WebhookSpec {
  std::string url;
  std::vector<std::string> kinds;  // EventKind names; empty: every kind
  std::string clinic_id;
  std::string description;
};

struct WebhookChange {
  std::optional<std::string> url;
  std::optional<std::vector<std::string>> kinds;
  std::optional<std::string> description;
  std::optional<std::string> state;  // "active" (resume) or "paused"
};

struct StoredWebhook {
  v1::WebhookSubscription subscription;
  std::string secret;  // the current secret (only handed out by create and rotate)
};

// Which events a replay covers: a time window (micros since the epoch) or a feed range.
struct WebhookReplayRange {
  std::int64_t start_micros = 0, end_micros = 0;  // a window, when end_micros > 0
  std::string source;                             // or a range of this service's feed
  std::int64_t after = 0, last = 0;
};

class WebhookRecords {
 public:
  virtual ~WebhookRecords() = default;
  // A new subscription, or the one this request id made before (with its current secret).
  virtual StoredWebhook Create(const std::string& tenant, const std::string& request_id, const WebhookSpec& spec,
                               const std::string& secret, const std::string& created_by, Clock::time_point deadline) = 0;
  virtual int CountLive(const std::string& tenant, Clock::time_point deadline) = 0;
  // Oldest first; `clinics` non-empty: only those clinics' subscriptions.
  virtual std::vector<v1::WebhookSubscription> List(const std::string& tenant, const std::vector<std::string>& clinics,
                                                    Clock::time_point deadline) = 0;
  virtual std::optional<v1::WebhookSubscription> Find(const std::string& tenant, const std::string& id,
                                                      Clock::time_point deadline) = 0;
  virtual v1::WebhookSubscription Update(const std::string& tenant, const std::string& id, const WebhookChange& change,
                                         Clock::time_point deadline) = 0;
  // The deliveries cancelled.
  virtual int Delete(const std::string& tenant, const std::string& id, Clock::time_point deadline) = 0;
  // A new secret (or, for a request id already used, the secret that rotation made).
  virtual StoredWebhook Rotate(const std::string& tenant, const std::string& id, const std::string& request_id,
                               const std::string& new_secret, std::chrono::seconds overlap,
                               Clock::time_point deadline) = 0;
  virtual std::vector<v1::WebhookDelivery> Deliveries(const std::string& tenant, const std::string& id,
                                                      const std::string& state, std::int64_t before_id, int limit,
                                                      Clock::time_point deadline) = 0;
  // Deliveries queued again for the subscription's current kinds and clinic; Error(kInvalidArgument,
  // field) when the range holds more than `max_events` events.
  virtual int Replay(const std::string& tenant, const v1::WebhookSubscription& subscription,
                     const WebhookReplayRange& range, int max_events, Clock::time_point deadline) = 0;
};

// A delivery leased for sending.
struct LeasedDelivery {
  std::int64_t delivery_id = 0;
  int attempt = 0;
  std::string tenant, subscription_id, patient_id, url, message_id;
  std::vector<std::string> secrets;  // the current one, and the previous one while it still signs
  std::string body;                  // the Standard Webhooks payload (ids only)
};

struct WebhookQueueStats {
  std::int64_t pending = 0;   // not yet delivered
  std::int64_t retrying = 0;  // of those, already failed at least once
  double oldest_pending_seconds = 0;
};

class PgWebhookRecords final : public WebhookRecords {
 public:
  // `schema`: this service's (the tables'); `directory_schema`: where patient_clinics lives (the same).
  PgWebhookRecords(PgPool& pool, std::string schema) : pool_(pool), schema_(std::move(schema)) {}

  StoredWebhook Create(const std::string& tenant, const std::string& request_id, const WebhookSpec& spec,
                       const std::string& secret, const std::string& created_by, Clock::time_point deadline) override;
  int CountLive(const std::string& tenant, Clock::time_point deadline) override;
  std::vector<v1::WebhookSubscription> List(const std::string& tenant, const std::vector<std::string>& clinics,
                                            Clock::time_point deadline) override;
  std::optional<v1::WebhookSubscription> Find(const std::string& tenant, const std::string& id,
                                              Clock::time_point deadline) override;
  v1::WebhookSubscription Update(const std::string& tenant, const std::string& id, const WebhookChange& change,
                                 Clock::time_point deadline) override;
  int Delete(const std::string& tenant, const std::string& id, Clock::time_point deadline) override;
  StoredWebhook Rotate(const std::string& tenant, const std::string& id, const std::string& request_id,
                       const std::string& new_secret, std::chrono::seconds overlap, Clock::time_point deadline) override;
  std::vector<v1::WebhookDelivery> Deliveries(const std::string& tenant, const std::string& id, const std::string& state,
                                              std::int64_t before_id, int limit, Clock::time_point deadline) override;
  int Replay(const std::string& tenant, const v1::WebhookSubscription& subscription, const WebhookReplayRange& range,
             int max_events, Clock::time_point deadline) override;

  // The dispatcher's statements.
  // Tenants with a live subscription.
  std::vector<std::string> SubscribedTenants(Clock::time_point deadline);
  // Queues the deliveries of `source`'s events of `tenant` after the fan-out cursor (at most
  // `batch` events), and moves the cursor, in one transaction; another replica holding the
  // cursor: nothing. The deliveries queued.
  int FanOut(const std::string& source, const std::string& tenant, int batch, Clock::time_point deadline);
  // The oldest due delivery whose (subscription, patient) predecessors are all settled, of an
  // active subscription not in `busy`, leased to `owner` for `lease`.
  std::optional<LeasedDelivery> Lease(const std::string& owner, const std::vector<std::string>& busy,
                                      std::chrono::seconds lease, Clock::time_point deadline);
  struct AttemptOutcome {
    bool recorded = false;   // false: the lease had passed to another replica
    bool gave_up = false;    // the retry window ended: the delivery failed, the subscription was disabled
  };
  AttemptOutcome RecordAttempt(const LeasedDelivery& delivery, const std::string& owner, int status,
                               std::chrono::milliseconds latency, const std::string& error,
                               std::chrono::milliseconds retry_in, std::chrono::seconds give_up_after,
                               Clock::time_point deadline);
  WebhookQueueStats QueueStats(Clock::time_point deadline);
  // A chain left without a head (its head settled while fan-out queued the next one, each in
  // its own transaction, neither seeing the other) gets its oldest pending delivery as head.
  int RepairHeads(Clock::time_point deadline);

 private:
  v1::WebhookSubscription SubscriptionOf(const PgResult& rows, int row) const;
  std::string Columns() const;

  PgPool& pool_;
  std::string schema_;
};

}  // namespace physio::assessment
