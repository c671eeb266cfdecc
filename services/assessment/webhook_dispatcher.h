#pragma once
// The webhook dispatcher of one assessment replica: a fan-out thread that turns each
// service's committed events into deliveries (one per matching subscription), and sender
// threads that lease due deliveries and POST them (SendWebhook). Every replica runs one;
// they share the work through the database (cursor rows and delivery leases taken with
// SKIP LOCKED), so a replica killed mid-send loses nothing: its lease runs out and another
// replica sends the delivery again (at least once; the receiver de-duplicates by webhook-id).
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "physio/server/metrics.h"
#include "physio/server/webhook_sender.h"
#include "webhook_records.h"

namespace physio::assessment {

struct WebhookDispatchSettings {
  int senders = 4;                            // sender threads of this replica (0: this replica only fans out)
  int per_subscription = 2;                   // deliveries of one subscription in flight at once, per replica
  std::chrono::milliseconds poll{200};        // how often fan-out looks for new events, and an idle sender for due ones
  int fan_out_batch = 500;                    // events per (feed, tenant) per pass
  std::chrono::seconds lease{60};             // a delivery's lease; longer than a send can take
  std::chrono::milliseconds retry_base{5000}; // the first retry's delay; doubled each time, with jitter
  std::chrono::milliseconds retry_max{3600000};
  std::chrono::seconds give_up_after{86400};  // failing this long: the subscription is disabled
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds total_timeout{10000};
  std::string ca_file;
  WebhookDestinationPolicy destinations;
};

// The delay before retry `failures` (1: after the first failure): retry_base * 2^(failures-1),
// at most retry_max, then a jitter of up to a fifth either way (`unit` in [0, 1)).
std::chrono::milliseconds WebhookRetryDelay(const WebhookDispatchSettings& settings, int failures, double unit);

class WebhookDispatcher {
 public:
  // Starts the threads; the destructor stops them (a send in progress finishes first).
  WebhookDispatcher(PgWebhookRecords& records, WebhookDispatchSettings settings, Metrics& metrics);
  ~WebhookDispatcher();
  WebhookDispatcher(const WebhookDispatcher&) = delete;
  WebhookDispatcher& operator=(const WebhookDispatcher&) = delete;

 private:
  void FanOutLoop(std::stop_token stop);
  void SendLoop(std::stop_token stop);
  // Fan-out's pause between passes: `period`, or until stopped.
  void Pause(std::stop_token stop, std::chrono::milliseconds period);
  // A sender that found nothing due. One idle sender at a time looks again after `poll`; the
  // others wait to be woken (Wake): an idle replica claims once a poll, not once per sender.
  void IdleSender(std::stop_token stop);
  // Wakes idle senders: all of them when fan-out or the repair pass queued deliveries, one when a
  // sender found a delivery (more may be due: each sender that finds one wakes the next).
  void Wake(bool all);

  PgWebhookRecords& records_;
  WebhookDispatchSettings settings_;
  Metrics& metrics_;
  std::string owner_;  // this replica's lease owner name
  std::mutex mutex_;
  std::condition_variable_any wake_;   // idle senders wait on it
  std::condition_variable_any pause_;  // fan-out waits on it (only its stop wakes it), so a Wake(false) meant
                                       // for a sender never lands on fan-out
  std::map<std::string, int> in_flight_;  // by subscription
  std::uint64_t wakes_ = 0;               // Wake's calls, so a waiting sender knows it was woken
  bool sender_looking_ = false;           // an idle sender is waiting out `poll` to look again
  std::vector<std::jthread> threads_;
};

}  // namespace physio::assessment
