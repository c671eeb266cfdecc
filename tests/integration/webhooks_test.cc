// Webhooks (issue 29): subscriptions through gRPC and the Connect port, deliveries verified
// by a receiver built on the npm `standardwebhooks` package (scripts/node/webhook-receiver.mjs),
// which fails, hangs and recovers; every event delivered, in order per patient, none lost;
// secret rotation; destinations inside our network refused; a replica killed mid-delivery.
#include <gtest/gtest.h>
#include <httplib.h>
#include <libpq-fe.h>
#include <google/protobuf/util/time_util.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "clients.h"
#include "cluster_fixture.h"
#include "physio/auth/token_minter.h"
#include "physio/common/ids.h"
#include "physio/db/pg.h"
#include "webhook_records.h"

namespace physio::testing {
namespace {

using namespace std::chrono_literals;

// The receiver, a Node process.
class Receiver {
 public:
  // With `cert` and `key`: HTTPS with that certificate.
  explicit Receiver(const std::string& cert = "", const std::string& key = "") : https_(!cert.empty()) {
    log_ = std::filesystem::temp_directory_path() /
           ("webhook-receiver-" + std::to_string(getpid()) + "-" + std::to_string(counter_++) + ".log");
    std::filesystem::remove(log_);
    process_ = std::make_unique<ChildProcess>(
        https_ ? std::vector<std::string>{"node", std::string(PHYSIO_SOURCE_DIR) + "/scripts/node/webhook-receiver.mjs",
                                          cert, key}
               : std::vector<std::string>{"node", std::string(PHYSIO_SOURCE_DIR) + "/scripts/node/webhook-receiver.mjs"},
        log_.string());
    for (int i = 0; i < 300 && port_ == 0; ++i) {
      std::this_thread::sleep_for(50ms);
      std::ifstream in(log_);
      for (std::string line; std::getline(in, line);) {
        if (line.rfind("{\"port\":", 0) == 0) port_ = nlohmann::json::parse(line)["port"].get<int>();
      }
    }
    if (port_ == 0) throw std::runtime_error("webhook receiver did not start; see " + log_.string());
  }
  std::string url() const {
    return https_ ? "https://localhost:" + std::to_string(port_) + "/hook" : "http://127.0.0.1:" + std::to_string(port_) + "/hook";
  }
  void Control(const std::string& mode, const std::vector<std::string>& secrets = {}) const {
    nlohmann::json control = {{"mode", mode}};
    if (!secrets.empty()) control["secrets"] = secrets;
    auto client = Client();
    auto answer = client.Post("/control", control.dump(), "application/json");
    if (!answer || answer->status != 204) throw std::runtime_error("receiver control failed");
  }
  nlohmann::json State() const {
    auto client = Client();
    auto answer = client.Get("/received");
    if (!answer || answer->status != 200) throw std::runtime_error("receiver state unreadable");
    return nlohmann::json::parse(answer->body);
  }
  // Distinct webhook-ids verified so far (cheap: no list).
  int Distinct() const {
    auto client = Client();
    auto answer = client.Get("/count");
    if (!answer || answer->status != 200) throw std::runtime_error("receiver count unreadable");
    return nlohmann::json::parse(answer->body)["distinct"].get<int>();
  }
  // Distinct events received (by webhook-id), once `count` of them are there (or the patience ran out).
  nlohmann::json WaitFor(std::size_t count, std::chrono::seconds patience = 60s) const {
    const auto give_up = std::chrono::steady_clock::now() + patience;
    nlohmann::json state;
    while (true) {
      state = State();
      std::set<std::string> ids;
      for (const auto& item : state["received"]) ids.insert(item["id"].get<std::string>());
      if (ids.size() >= count || std::chrono::steady_clock::now() > give_up) return state;
      std::this_thread::sleep_for(100ms);
    }
  }

 private:
  httplib::Client Client() const {
    httplib::Client client((https_ ? "https://127.0.0.1:" : "http://127.0.0.1:") + std::to_string(port_));
    client.enable_server_certificate_verification(false);  // the test's own control calls
    return client;
  }
  inline static int counter_ = 0;
  bool https_ = false;
  std::filesystem::path log_;
  std::unique_ptr<ChildProcess> process_;
  int port_ = 0;
};

// Test certificates (tests/support/make_test_certs.sh): a CA the services trust for webhooks,
// a receiver certificate it signed (localhost, 127.0.0.1), and one a CA nobody trusts signed.
std::filesystem::path Certificates() {
  static const std::filesystem::path dir = [] {
    const auto path = std::filesystem::temp_directory_path() / ("webhook-certs-" + std::to_string(getpid()));
    std::filesystem::create_directories(path);
    const std::string command =
        std::string(PHYSIO_SOURCE_DIR) + "/tests/support/make_test_certs.sh " + path.string() + " >/dev/null 2>&1";
    if (std::system(command.c_str()) != 0) throw std::runtime_error("make_test_certs.sh failed");
    return path;
  }();
  return dir;
}

void WebhookSettings(const std::string& service, Config& config, int senders = 4) {
  config.Set("event-sequence-interval-ms", "50");
  if (service != "assessment") return;
  config.Set("webhook-allow-http", "true");
  // Loopback for the tests' receivers (localhost may resolve to both).
  config.Set("webhook-allowed-networks", "127.0.0.0/8, ::1/128");
  config.Set("webhook-ca-file", (Certificates() / "ca.pem").string());
  config.Set("webhook-poll-ms", "50");
  config.Set("webhook-retry-base-ms", "100");
  config.Set("webhook-retry-max-ms", "800");
  config.Set("webhook-connect-timeout-ms", "1000");
  config.Set("webhook-timeout-ms", "1500");
  config.Set("webhook-lease-s", "4");
  config.Set("webhook-senders", std::to_string(senders));
}

// The events of a tenant's three feeds after a point, as (source, cursor), read from the outboxes.
std::vector<std::pair<std::string, std::string>> OutboxEvents(int pg_port, const std::string& tenant) {
  PGconn* conn = PQconnectdb(("host=127.0.0.1 port=" + std::to_string(pg_port) + " user=postgres dbname=physio").c_str());
  std::vector<std::pair<std::string, std::string>> events;
  // Once the background numbering has caught up (it runs every 50 ms here).
  for (int i = 0; i < 100; ++i) {
    const char* values[] = {tenant.c_str()};
    PGresult* result = PQexecParams(conn,
                                    "SELECT (SELECT count(*) FROM assessment.events WHERE tenant_id = $1 AND sequence IS NULL)"
                                    " + (SELECT count(*) FROM planning.events WHERE tenant_id = $1 AND sequence IS NULL)"
                                    " + (SELECT count(*) FROM progress.events WHERE tenant_id = $1 AND sequence IS NULL)",
                                    1, nullptr, values, nullptr, nullptr, 0);
    const bool numbered = PQntuples(result) == 1 && std::string(PQgetvalue(result, 0, 0)) == "0";
    PQclear(result);
    if (numbered) break;
    std::this_thread::sleep_for(50ms);
  }
  for (const std::string source : {"assessment", "planning", "progress"}) {
    const char* values[] = {tenant.c_str()};
    PGresult* result = PQexecParams(conn,
                                    ("SELECT sequence::text FROM " + source +
                                     ".events WHERE tenant_id = $1 AND sequence IS NOT NULL ORDER BY sequence")
                                        .c_str(),
                                    1, nullptr, values, nullptr, nullptr, 0);
    for (int i = 0; i < PQntuples(result); ++i) events.emplace_back(source, PQgetvalue(result, i, 0));
    PQclear(result);
  }
  PQfinish(conn);
  return events;
}

class WebhooksBase : public ClusterFixture {
 protected:
  static Caller Integrator(const std::string& tenant) {
    return Caller(*cluster_, MakeToken(*keys_, tenant, "integration-engine", {"integrator"}));
  }
  static Caller Clinician(const std::string& tenant) {
    TokenRequest token{kIssuer, kAudience, tenant, "clin-hooks", {"clinician"}};
    token.clinics = {"north", "south"};
    return Caller(*cluster_, MintToken(keys_->private_key_pem, token));
  }
  static apb::CreateWebhookSubscriptionResponse Subscribe(const Caller& integrator, const std::string& url,
                                                          const std::string& clinic = "") {
    apb::CreateWebhookSubscriptionRequest create;
    create.set_request_id(NewId("rq"));
    create.set_url(url);
    create.set_clinic_id(clinic);
    create.set_description("practice management sync");
    apb::CreateWebhookSubscriptionResponse created;
    const auto status = integrator.Call(integrator.assessment.get(),
                                        &apb::AssessmentService::Stub::CreateWebhookSubscription, create, &created);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return created;
  }
  static void Enrol(const Caller& clinician, const std::string& patient, const std::string& clinic) {
    apb::EnrolPatientRequest enrol;
    enrol.set_request_id(NewId("rq"));
    enrol.set_patient_id(patient);
    enrol.set_clinic_id(clinic);
    apb::EnrolPatientResponse enrolled;
    EXPECT_TRUE(clinician.Call(clinician.assessment.get(), &apb::AssessmentService::Stub::EnrolPatient, enrol, &enrolled)
                    .ok());
  }
  // An episode's start in all three services: assessment stored, plan drafted and approved, a visit.
  static void Episode(const Caller& clinician, const std::string& patient) {
    ApprovedPlanFor(clinician, patient);
    gpb::RecordVisitResponse visited;
    EXPECT_TRUE(RecordVisitFor(clinician, patient, gpb::VISIT_KIND_CLINIC, 5, &visited).ok());
  }
  static std::vector<apb::WebhookDelivery> Deliveries(
      const Caller& integrator, const std::string& subscription,
      apb::WebhookDeliveryState state = apb::WEBHOOK_DELIVERY_STATE_UNSPECIFIED, int page_size = 200) {
    std::vector<apb::WebhookDelivery> all;
    apb::ListWebhookDeliveriesRequest list;
    list.set_subscription_id(subscription);
    list.set_state(state);
    list.set_page_size(page_size);
    do {
      apb::ListWebhookDeliveriesResponse page;
      const auto status =
          integrator.Call(integrator.assessment.get(), &apb::AssessmentService::Stub::ListWebhookDeliveries, list, &page);
      EXPECT_TRUE(status.ok()) << status.error_message();
      if (!status.ok()) break;
      all.insert(all.end(), page.deliveries().begin(), page.deliveries().end());
      list.set_page_token(page.next_page_token());
    } while (!list.page_token().empty());
    return all;
  }
  // The subscription's deliveries once each is recorded as delivered, or as they stand after
  // `patience`: the receiver can hold an event a moment before the dispatcher records the answer.
  static std::vector<apb::WebhookDelivery> DeliveriesOnceDelivered(const Caller& integrator,
                                                                   const std::string& subscription,
                                                                   std::chrono::milliseconds patience) {
    const auto until = std::chrono::steady_clock::now() + patience;
    auto deliveries = Deliveries(integrator, subscription);
    while (std::chrono::steady_clock::now() < until &&
           std::any_of(deliveries.begin(), deliveries.end(), [](const apb::WebhookDelivery& delivery) {
             return delivery.state() != apb::WEBHOOK_DELIVERY_STATE_DELIVERED;
           })) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      deliveries = Deliveries(integrator, subscription);
    }
    return deliveries;
  }
};

class Webhooks : public WebhooksBase {
 protected:
  static void SetUpTestSuite() {
    StartStoresAndCluster([](const std::string& service, Config& config) {
      WebhookSettings(service, config);
      if (service == "assessment") config.Set("webhook-give-up-after-s", "600");
    });
  }
};

TEST_F(Webhooks, EveryEventArrivesVerifiedInOrderPerPatientThroughFailuresTimeoutsAndARotation) {
  const std::string tenant = "hooks-main";
  Receiver receiver;
  auto integrator = Integrator(tenant);
  auto clinician = Clinician(tenant);
  const auto created = Subscribe(integrator, receiver.url());
  ASSERT_EQ(created.secret().rfind("whsec_", 0), 0u);
  EXPECT_EQ(created.subscription().state(), apb::WEBHOOK_STATE_ACTIVE);
  receiver.Control("fail", {created.secret()});

  // The receiver fails (HTTP 500), then hangs (timeouts), then recovers, while three patients' episodes run.
  std::thread load([&] {
    for (int round = 0; round < 2; ++round) {
      for (int p = 0; p < 3; ++p) Episode(clinician, "pt-hook-" + std::to_string(p));
    }
  });
  std::this_thread::sleep_for(2s);
  receiver.Control("hang");
  std::this_thread::sleep_for(3s);
  receiver.Control("ok");
  load.join();

  const auto expected = OutboxEvents(postgres_->port(), tenant);
  ASSERT_GE(expected.size(), 24u);  // per episode: stored, drafted, approved, visit (and what else they emit)
  const auto state = receiver.WaitFor(expected.size());
  EXPECT_EQ(state["rejected"].get<int>(), 0) << "every delivery verifies with the stock library";

  // Each event once at least, under one webhook-id; in order per patient within each service's feed.
  std::map<std::string, nlohmann::json> first_by_id;
  std::map<std::pair<std::string, std::string>, std::string> id_of_event;
  std::map<std::string, std::map<std::string, long long>> last_sequence;  // patient -> source -> sequence
  for (const auto& item : state["received"]) {
    const std::string id = item["id"];
    const auto& data = item["data"];
    EXPECT_EQ(data["event_id"], id);
    EXPECT_EQ(data["tenant_id"], tenant);
    EXPECT_EQ(item["type"], data["kind"]);
    EXPECT_FALSE(data.contains("answers")) << "ids and kinds only, never clinical content";
    const auto event = std::make_pair(data["source"].get<std::string>(), data["sequence"].get<std::string>());
    if (auto [it, fresh] = id_of_event.emplace(event, id); !fresh) {
      EXPECT_EQ(it->second, id) << "a duplicate carries the same webhook-id";
      continue;
    }
    first_by_id[id] = item;
    const std::string patient = data["patient_id"];
    auto& last = last_sequence[patient][event.first];
    EXPECT_LT(last, std::stoll(event.second)) << "patient " << patient << ", " << event.first << " feed: out of order";
    last = std::stoll(event.second);
  }
  for (const auto& event : expected) {
    EXPECT_TRUE(id_of_event.contains(event)) << event.first << " event " << event.second << " never delivered";
  }

  // The delivery log shows the failures: HTTP 500s and timeouts, then the success. The receiver
  // can hold an event a moment before the dispatcher records the 200 it answered (or a retry of a
  // delivery whose first attempt timed out after arriving is still due): wait for the log to settle.
  const auto deliveries = DeliveriesOnceDelivered(integrator, created.subscription().subscription_id(), 30s);
  ASSERT_GE(deliveries.size(), expected.size());
  bool saw_500 = false, saw_timeout = false;
  for (const auto& delivery : deliveries) {
    EXPECT_EQ(delivery.state(), apb::WEBHOOK_DELIVERY_STATE_DELIVERED) << delivery.delivery_id();
    for (const auto& attempt : delivery.recent_attempts()) {
      if (attempt.status_code() == 500) saw_500 = true;
      if (attempt.status_code() == 0 && !attempt.error().empty()) saw_timeout = true;
    }
  }
  EXPECT_TRUE(saw_500);
  EXPECT_TRUE(saw_timeout);

  // Rotation: during the overlap each delivery carries two signatures, so a receiver still on the
  // old secret verifies it; after the overlap only the new secret signs.
  apb::RotateWebhookSecretRequest rotate;
  rotate.set_request_id(NewId("rq"));
  rotate.set_subscription_id(created.subscription().subscription_id());
  rotate.set_overlap_seconds(3);
  apb::RotateWebhookSecretResponse rotated;
  ASSERT_TRUE(integrator.Call(integrator.assessment.get(), &apb::AssessmentService::Stub::RotateWebhookSecret, rotate,
                              &rotated).ok());
  ASSERT_NE(rotated.secret(), created.secret());
  EXPECT_TRUE(rotated.subscription().has_previous_secret_expire_time());
  // A retry of the same rotation gives the same secret, not a third one.
  apb::RotateWebhookSecretResponse again;
  ASSERT_TRUE(integrator.Call(integrator.assessment.get(), &apb::AssessmentService::Stub::RotateWebhookSecret, rotate,
                              &again).ok());
  EXPECT_EQ(again.secret(), rotated.secret());

  std::size_t seen = first_by_id.size();
  Episode(clinician, "pt-hook-rotation");  // the receiver still has only the old secret
  auto after = receiver.WaitFor(OutboxEvents(postgres_->port(), tenant).size());
  EXPECT_EQ(after["rejected"].get<int>(), 0);
  ASSERT_GT(after["received"].size(), seen);
  EXPECT_EQ(after["received"].back()["signatures"].get<int>(), 2);

  std::this_thread::sleep_for(3500ms);  // the overlap is over
  receiver.Control("ok", {created.secret()});  // a receiver that missed the rotation now fails to verify
  Episode(clinician, "pt-hook-after-overlap");
  const auto give_up = std::chrono::steady_clock::now() + 20s;
  while (receiver.State()["rejected"].get<int>() == 0 && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_GT(receiver.State()["rejected"].get<int>(), 0) << "the old secret no longer signs";
  receiver.Control("ok", {rotated.secret()});
  after = receiver.WaitFor(OutboxEvents(postgres_->port(), tenant).size());
  EXPECT_EQ(after["received"].back()["signatures"].get<int>(), 1);
  std::set<std::string> ids;
  for (const auto& item : after["received"]) ids.insert(item["id"].get<std::string>());
  EXPECT_EQ(ids.size(), OutboxEvents(postgres_->port(), tenant).size()) << "nothing lost across the rotation";
}

TEST_F(Webhooks, AHangingReceiverAndATenMegabyteAnswerBlockNoOtherSubscription) {
  const std::string tenant = "hooks-isolation";
  Receiver hanging, chatty;
  auto integrator = Integrator(tenant);
  auto clinician = Clinician(tenant);
  const auto slow = Subscribe(integrator, hanging.url());
  const auto big = Subscribe(integrator, chatty.url());
  hanging.Control("hang", {slow.secret()});
  chatty.Control("big", {big.secret()});
  for (int p = 0; p < 4; ++p) Episode(clinician, "pt-iso-" + std::to_string(p));
  const auto expected = OutboxEvents(postgres_->port(), tenant).size();
  // Every event reaches the receiver that answers (with 10 MB each time) while the other never answers.
  const auto state = chatty.WaitFor(expected, 30s);
  std::set<std::string> ids;
  for (const auto& item : state["received"]) ids.insert(item["id"].get<std::string>());
  EXPECT_EQ(ids.size(), expected);
  // The receiver holds an event a moment before the dispatcher records the 200 it answered.
  auto answered = Deliveries(integrator, big.subscription().subscription_id());
  for (int attempt = 0; attempt < 150; ++attempt) {
    if (std::all_of(answered.begin(), answered.end(), [](const apb::WebhookDelivery& delivery) {
          return delivery.state() == apb::WEBHOOK_DELIVERY_STATE_DELIVERED;
        })) {
      break;
    }
    std::this_thread::sleep_for(200ms);
    answered = Deliveries(integrator, big.subscription().subscription_id());
  }
  for (const auto& delivery : answered) {
    EXPECT_EQ(delivery.state(), apb::WEBHOOK_DELIVERY_STATE_DELIVERED) << delivery.delivery_id();
  }
  // The silent one's deliveries time out and wait their turn, one patient at a time.
  const auto waiting = Deliveries(integrator, slow.subscription().subscription_id());
  ASSERT_FALSE(waiting.empty());
  for (const auto& delivery : waiting) EXPECT_EQ(delivery.state(), apb::WEBHOOK_DELIVERY_STATE_PENDING);
  // Once it answers, it gets everything.
  hanging.Control("ok");
  const auto recovered = hanging.WaitFor(expected, 60s);
  ids.clear();
  for (const auto& item : recovered["received"]) ids.insert(item["id"].get<std::string>());
  EXPECT_EQ(ids.size(), expected);
}

TEST_F(Webhooks, AClinicsSubscriptionSeesOnlyItsPatientsAndPausingHoldsDeliveries) {
  const std::string tenant = "hooks-clinic";
  Receiver receiver;
  auto integrator = Integrator(tenant);
  auto clinician = Clinician(tenant);
  const auto north = Subscribe(integrator, receiver.url(), "north");
  receiver.Control("ok", {north.secret()});
  Enrol(clinician, "pt-north", "north");
  Enrol(clinician, "pt-south", "south");
  Episode(clinician, "pt-north");
  Episode(clinician, "pt-south");
  const auto state = receiver.WaitFor(4, 30s);
  std::this_thread::sleep_for(1s);  // anything of the other clinic would have come by now
  const auto seen = receiver.State();  // kept: a range-for over a temporary's member would dangle
  for (const auto& item : seen["received"]) {
    EXPECT_EQ(item["data"]["patient_id"], "pt-north");
    EXPECT_EQ(item["data"]["clinic_id"], "north");
  }
  ASSERT_GE(state["received"].size(), 4u);

  // Paused: queued, not sent; resumed: sent.
  apb::UpdateWebhookSubscriptionRequest pause;
  pause.set_subscription_id(north.subscription().subscription_id());
  pause.set_state(apb::WEBHOOK_STATE_PAUSED);
  apb::UpdateWebhookSubscriptionResponse paused;
  ASSERT_TRUE(integrator.Call(integrator.assessment.get(), &apb::AssessmentService::Stub::UpdateWebhookSubscription,
                              pause, &paused).ok());
  EXPECT_EQ(paused.subscription().state(), apb::WEBHOOK_STATE_PAUSED);
  const std::size_t before = receiver.State()["received"].size();
  gpb::RecordVisitResponse visited;
  ASSERT_TRUE(RecordVisitFor(clinician, "pt-north", gpb::VISIT_KIND_CLINIC, 4, &visited).ok());
  std::this_thread::sleep_for(1500ms);
  EXPECT_EQ(receiver.State()["received"].size(), before);
  pause.set_state(apb::WEBHOOK_STATE_ACTIVE);
  ASSERT_TRUE(integrator.Call(integrator.assessment.get(), &apb::AssessmentService::Stub::UpdateWebhookSubscription,
                              pause, &paused).ok());
  const auto resumed = receiver.WaitFor(before + 1, 20s);
  EXPECT_EQ(resumed["received"].back()["data"]["resource_id"], visited.visit().visit_id());

  // Replay: the same events again, with the same webhook-ids.
  apb::ReplayWebhookDeliveriesRequest replay;
  replay.set_subscription_id(north.subscription().subscription_id());
  *replay.mutable_window()->mutable_start_time() = north.subscription().create_time();
  *replay.mutable_window()->mutable_end_time() = google::protobuf::util::TimeUtil::GetCurrentTime();
  replay.mutable_window()->mutable_end_time()->set_seconds(replay.window().end_time().seconds() + 5);
  apb::ReplayWebhookDeliveriesResponse replayed;
  ASSERT_TRUE(integrator.Call(integrator.assessment.get(), &apb::AssessmentService::Stub::ReplayWebhookDeliveries,
                              replay, &replayed).ok());
  EXPECT_EQ(static_cast<std::size_t>(replayed.queued()), before + 1);
  const auto give_up = std::chrono::steady_clock::now() + 20s;
  while (receiver.State()["received"].size() < 2 * (before + 1) && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(100ms);
  }
  const auto all = receiver.State()["received"];
  ASSERT_EQ(all.size(), 2 * (before + 1));
  std::set<std::string> ids;
  for (const auto& item : all) ids.insert(item["id"].get<std::string>());
  EXPECT_EQ(ids.size(), before + 1) << "a replay repeats the webhook-ids";

  // Deleted: its queue is cancelled, and it is gone from the list.
  apb::DeleteWebhookSubscriptionRequest remove;
  remove.set_subscription_id(north.subscription().subscription_id());
  apb::DeleteWebhookSubscriptionResponse removed;
  ASSERT_TRUE(integrator.Call(integrator.assessment.get(), &apb::AssessmentService::Stub::DeleteWebhookSubscription,
                              remove, &removed).ok());
  apb::ListWebhookSubscriptionsResponse listed;
  ASSERT_TRUE(integrator.Call(integrator.assessment.get(), &apb::AssessmentService::Stub::ListWebhookSubscriptions,
                              apb::ListWebhookSubscriptionsRequest(), &listed).ok());
  EXPECT_EQ(listed.subscriptions_size(), 0);
}

TEST_F(Webhooks, DestinationsInsideOurNetworkAndBadInputAreRefusedByName) {
  const std::string tenant = "hooks-input";
  auto integrator = Integrator(tenant);
  struct Case {
    std::string url;
    std::string says;
  };
  // 127.0.0.0/8 is allowed for these tests; the rest stays refused.
  const std::vector<Case> cases = {
      {"http://10.0.0.1/hook", "private"},
      {"http://169.254.169.254/latest/meta-data/", "link-local"},
      {"http://[::ffff:169.254.169.254]/x", "link-local"},
      {"http://[fd00::1]/x", "private"},
      {"http://192.168.1.10:8080/x", "private"},
      {"http://[fe80::1]:9/x", "link-local"},
      {"http://0.0.0.0:9/x", "unspecified"},
      {"ftp://example.org/x", "https"},
      {"https://user:pw@example.org/x", "user information"},
      {"https://exa mple.org/x", "space"},
      {"https://example.org:99999/x", "port"},
      {"https://example.org/#frag", "fragment"},
      {"https://" + std::string(2100, 'a') + ".org/", "2048"},
      {"", "required"},
  };
  for (const auto& c : cases) {
    apb::CreateWebhookSubscriptionRequest create;
    create.set_request_id(NewId("rq"));
    create.set_url(c.url);
    apb::CreateWebhookSubscriptionResponse created;
    const auto status = integrator.Call(integrator.assessment.get(),
                                        &apb::AssessmentService::Stub::CreateWebhookSubscription, create, &created);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << c.url.substr(0, 60);
    EXPECT_NE(status.error_message().find("url"), std::string::npos) << status.error_message();
    EXPECT_NE(status.error_message().find(c.says), std::string::npos) << status.error_message();
  }
  // Event kinds: unknown, repeated, too many.
  apb::CreateWebhookSubscriptionRequest kinds;
  kinds.set_request_id(NewId("rq"));
  kinds.set_url("http://127.0.0.1:9/hook");
  kinds.add_event_kinds(static_cast<cpb::EventKind>(999));
  apb::CreateWebhookSubscriptionResponse created;
  auto status = integrator.Call(integrator.assessment.get(), &apb::AssessmentService::Stub::CreateWebhookSubscription,
                                kinds, &created);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("event_kinds[0]"), std::string::npos) << status.error_message();
  kinds.clear_event_kinds();
  kinds.add_event_kinds(cpb::EVENT_KIND_VISIT_RECORDED);
  kinds.add_event_kinds(cpb::EVENT_KIND_VISIT_RECORDED);
  status = integrator.Call(integrator.assessment.get(), &apb::AssessmentService::Stub::CreateWebhookSubscription, kinds,
                           &created);
  EXPECT_NE(status.error_message().find("event_kinds[1]"), std::string::npos) << status.error_message();
  kinds.clear_event_kinds();
  for (int i = 0; i < 33; ++i) kinds.add_event_kinds(cpb::EVENT_KIND_VISIT_RECORDED);
  status = integrator.Call(integrator.assessment.get(), &apb::AssessmentService::Stub::CreateWebhookSubscription, kinds,
                           &created);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("at most 32"), std::string::npos) << status.error_message();

  // Only integrators; another tenant's subscription does not exist for them.
  const auto mine = Subscribe(integrator, "http://127.0.0.1:9/hook");
  auto clinician = Clinician(tenant);
  apb::ListWebhookSubscriptionsResponse listed;
  EXPECT_EQ(clinician.Call(clinician.assessment.get(), &apb::AssessmentService::Stub::ListWebhookSubscriptions,
                           apb::ListWebhookSubscriptionsRequest(), &listed)
                .error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  auto stranger = Integrator("hooks-other-tenant");
  apb::DeleteWebhookSubscriptionRequest remove;
  remove.set_subscription_id(mine.subscription().subscription_id());
  apb::DeleteWebhookSubscriptionResponse removed;
  EXPECT_EQ(stranger.Call(stranger.assessment.get(), &apb::AssessmentService::Stub::DeleteWebhookSubscription, remove,
                          &removed)
                .error_code(),
            grpc::StatusCode::NOT_FOUND);

  // The Connect/JSON port: the same refusal, named.
  httplib::Client http("127.0.0.1", cluster_->assessment_http_port());
  auto answered = http.Post("/physio.assessment.v1.AssessmentService/CreateWebhookSubscription",
                            {{"Authorization", "Bearer " + MakeToken(*keys_, tenant, "integration-engine", {"integrator"})}},
                            R"({"requestId":"rq-json-1","url":"http://169.254.169.254/latest/meta-data/"})",
                            "application/json");
  ASSERT_TRUE(answered);
  EXPECT_EQ(answered->status, 400) << answered->body;
  EXPECT_NE(answered->body.find("url"), std::string::npos) << answered->body;
  // And a subscription made there is listed through gRPC.
  answered = http.Post("/physio.assessment.v1.AssessmentService/CreateWebhookSubscription",
                       {{"Authorization", "Bearer " + MakeToken(*keys_, tenant, "integration-engine", {"integrator"})}},
                       R"({"requestId":"rq-json-2","url":"http://127.0.0.1:9/json","eventKinds":["EVENT_KIND_VISIT_RECORDED"]})",
                       "application/json");
  ASSERT_TRUE(answered);
  ASSERT_EQ(answered->status, 200) << answered->body;
  EXPECT_EQ(nlohmann::json::parse(answered->body)["secret"].get<std::string>().rfind("whsec_", 0), 0u);
  ASSERT_TRUE(integrator.Call(integrator.assessment.get(), &apb::AssessmentService::Stub::ListWebhookSubscriptions,
                              apb::ListWebhookSubscriptionsRequest(), &listed).ok());
  ASSERT_EQ(listed.subscriptions_size(), 2);
  EXPECT_EQ(listed.subscriptions(1).url(), "http://127.0.0.1:9/json");
  ASSERT_EQ(listed.subscriptions(1).event_kinds_size(), 1);
}

// Every sender of every replica claims a delivery on each idle poll (4 senders every 200 ms: 20
// claims a second per replica, busy or not). The claim is a prepared statement that keeps a
// generic plan, as PostgreSQL's own pg_prepared_statements counts it on the claiming connection;
// planned on every poll, it cost 1-2 ms of PostgreSQL's CPU each time.
TEST_F(Webhooks, TheDeliveryClaimIsPreparedAndKeepsAGenericPlan) {
  PgOptions options;
  options.ports = std::to_string(postgres_->port());
  options.pool_size = 1;
  ASSERT_EQ(options.plan_cache_mode, "auto");
  PgPool pool(options);
  assessment::PgWebhookRecords records(pool, "assessment");
  // A claim of nothing due to this owner: the subscriptions of the other tests are all busy here
  // (and a claim it did make would lapse in a second, to be sent by the services).
  const std::vector<std::string> busy = {"whsub-none"};
  for (int i = 0; i < 8; ++i) records.Lease("plan-check", busy, 1s, Clock::now() + 3s);
  const auto plans = QueryOnce(pool, Clock::now() + 3s,
                               {"SELECT generic_plans::text || ' generic, ' || custom_plans::text || ' custom'"
                                " FROM pg_prepared_statements WHERE strpos(statement, $1) > 0",
                                {"WITH candidates AS MATERIALIZED"}});
  ASSERT_EQ(plans.rows(), 1) << "the claim ran unnamed: planned on every poll";
  EXPECT_EQ(plans.Get(0, 0), "3 generic, 5 custom");
}

// Retries give up after the window: the subscription is disabled, an event says so, and
// resuming it delivers what was held.
class WebhooksGivingUp : public WebhooksBase {
 protected:
  static void SetUpTestSuite() {
    StartStoresAndCluster([](const std::string& service, Config& config) {
      WebhookSettings(service, config);
      if (service == "assessment") config.Set("webhook-give-up-after-s", "2");
    });
  }
};

TEST_F(WebhooksGivingUp, ASubscriptionFailingPastTheWindowIsDisabledWithAnEventAndResumedWithoutLoss) {
  const std::string tenant = "hooks-give-up";
  Receiver failing, watcher;
  auto integrator = Integrator(tenant);
  auto clinician = Clinician(tenant);
  const auto doomed = Subscribe(integrator, failing.url());
  // Another subscription of the tenant, for the disabled event only.
  apb::CreateWebhookSubscriptionRequest create;
  create.set_request_id(NewId("rq"));
  create.set_url(watcher.url());
  create.add_event_kinds(cpb::EVENT_KIND_WEBHOOK_DISABLED);
  apb::CreateWebhookSubscriptionResponse watching;
  ASSERT_TRUE(integrator.Call(integrator.assessment.get(), &apb::AssessmentService::Stub::CreateWebhookSubscription,
                              create, &watching).ok());
  failing.Control("fail", {doomed.secret()});
  watcher.Control("ok", {watching.secret()});
  Episode(clinician, "pt-doomed");

  const auto told = watcher.WaitFor(1, 30s);
  ASSERT_EQ(told["received"].size(), 1u);
  EXPECT_EQ(told["received"][0]["type"], "EVENT_KIND_WEBHOOK_DISABLED");
  EXPECT_EQ(told["received"][0]["data"]["resource_id"], doomed.subscription().subscription_id());
  apb::ListWebhookSubscriptionsResponse listed;
  ASSERT_TRUE(integrator.Call(integrator.assessment.get(), &apb::AssessmentService::Stub::ListWebhookSubscriptions,
                              apb::ListWebhookSubscriptionsRequest(), &listed).ok());
  ASSERT_EQ(listed.subscriptions(0).subscription_id(), doomed.subscription().subscription_id());
  EXPECT_EQ(listed.subscriptions(0).state(), apb::WEBHOOK_STATE_DISABLED);
  EXPECT_NE(listed.subscriptions(0).disabled_reason().find("HTTP 500"), std::string::npos);
  bool failed = false;
  for (const auto& delivery : Deliveries(integrator, doomed.subscription().subscription_id())) {
    if (delivery.state() == apb::WEBHOOK_DELIVERY_STATE_FAILED) failed = true;
  }
  EXPECT_TRUE(failed);

  // The receiver is fixed and the subscription resumed: everything held arrives.
  failing.Control("ok");
  apb::UpdateWebhookSubscriptionRequest resume;
  resume.set_subscription_id(doomed.subscription().subscription_id());
  resume.set_state(apb::WEBHOOK_STATE_ACTIVE);
  apb::UpdateWebhookSubscriptionResponse resumed;
  ASSERT_TRUE(integrator.Call(integrator.assessment.get(), &apb::AssessmentService::Stub::UpdateWebhookSubscription,
                              resume, &resumed).ok());
  // Everything of the tenant's feeds arrives, the disabled event included (this subscription takes every kind).
  const auto expected = OutboxEvents(postgres_->port(), tenant).size();
  const auto state = failing.WaitFor(expected, 30s);
  std::set<std::string> ids;
  for (const auto& item : state["received"]) ids.insert(item["id"].get<std::string>());
  EXPECT_EQ(ids.size(), expected);
}

// Two replicas share the work; one killed while a delivery is in flight loses nothing.
class WebhookReplicas : public WebhooksBase {
 protected:
  static void SetUpTestSuite() {
    StartStoresAndCluster([](const std::string& service, Config& config) {
      // The in-process replica only fans out; the sending replicas are processes.
      WebhookSettings(service, config, /*senders=*/0);
      if (service == "assessment") {
        config.Set("webhook-timeout-ms", "3000");
        config.Set("webhook-lease-s", "6");
      }
    });
  }
  static std::unique_ptr<ChildProcess> SendingReplica(const std::string& name) {
    const std::string log = (std::filesystem::temp_directory_path() / (name + "-" + std::to_string(getpid()) + ".log"));
    return std::make_unique<ChildProcess>(
        std::vector<std::string>{PHYSIO_ASSESSMENT_BIN, "--listen=127.0.0.1:0", "--http-listen=127.0.0.1:0",
                                 "--metrics-listen=127.0.0.1:0", "--log-level=warn",
                                 "--redis-port=" + std::to_string(redis_->port()),
                                 "--pg-port=" + std::to_string(postgres_->port()), "--pg-database=physio",
                                 "--jwt-public-key=" + keys_->public_key_path.string(),
                                 std::string("--jwt-issuer=") + kIssuer, std::string("--jwt-audience=") + kAudience,
                                 "--webhook-allow-http=true", "--webhook-allowed-networks=127.0.0.0/8",
                                 "--webhook-poll-ms=50", "--webhook-retry-base-ms=100", "--webhook-retry-max-ms=500",
                                 "--webhook-timeout-ms=3000", "--webhook-lease-s=6", "--webhook-senders=2"},
        log);
  }
};

TEST_F(WebhookReplicas, AReplicaKilledMidDeliveryLosesNothing) {
  const std::string tenant = "hooks-replicas";
  Receiver receiver;
  auto integrator = Integrator(tenant);
  auto clinician = Clinician(tenant);
  const auto created = Subscribe(integrator, receiver.url());
  receiver.Control("hang", {created.secret()});
  auto first = SendingReplica("hooks-replica-1");
  for (int p = 0; p < 3; ++p) Episode(clinician, "pt-replica-" + std::to_string(p));
  const auto expected = OutboxEvents(postgres_->port(), tenant).size();

  // Killed the moment a delivery reaches the (silent) receiver: that send is in flight.
  const auto give_up = std::chrono::steady_clock::now() + 30s;
  while (receiver.State()["attempts"].get<int>() == 0 && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(20ms);
  }
  ASSERT_GT(receiver.State()["attempts"].get<int>(), 0) << "the first replica never sent";
  first->Kill();
  first.reset();
  receiver.Control("ok");
  auto second = SendingReplica("hooks-replica-2");
  const auto state = receiver.WaitFor(expected, 60s);
  std::set<std::string> ids;
  for (const auto& item : state["received"]) ids.insert(item["id"].get<std::string>());
  EXPECT_EQ(ids.size(), expected) << "every event delivered after the lease ran out";
  // Every delivery recorded as delivered (the last answer may still be on its way to PostgreSQL).
  const auto deliveries = DeliveriesOnceDelivered(integrator, created.subscription().subscription_id(), 15s);
  // The killed send left its trace: an attempt counted but never recorded.
  bool lost_attempt = false;
  for (const auto& delivery : deliveries) {
    EXPECT_EQ(delivery.state(), apb::WEBHOOK_DELIVERY_STATE_DELIVERED);
    if (delivery.attempts() > delivery.recent_attempts_size() && delivery.attempts() <= 10) lost_attempt = true;
  }
  EXPECT_TRUE(lost_attempt);
}

// An idle replica claims a due delivery once a poll: one idle sender looks again, the others wait
// to be woken. Before, every sender claimed on every poll (4 senders every 200 ms: 20 claims a
// second per replica, each a transaction, busy or not). Woken, the senders still deliver at once
// what fan-out queues.
class WebhooksIdle : public WebhooksBase {
 protected:
  static void SetUpTestSuite() {
    StartStoresAndCluster([](const std::string& service, Config& config) { WebhookSettings(service, config); });
  }
  static double Claims(const std::string& outcome) {
    const std::string series = "physio_webhook_claims_total{outcome=\"" + outcome + "\"}";
    const auto value = ScrapeMetric(cluster_->assessment_metrics_port(), series);
    EXPECT_TRUE(value) << "no " << series << " on /metrics";
    return value.value_or(-1);
  }
};

TEST_F(WebhooksIdle, AnIdleReplicaClaimsOncePerPollNotOncePerSender) {
  // Nothing subscribed, nothing due; 4 senders and a poll of 50 ms (WebhookSettings).
  std::this_thread::sleep_for(300ms);
  const double before = Claims("none_due"), failed_before = Claims("failed");
  const auto started = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(2s);
  const double polls = std::chrono::duration<double>(std::chrono::steady_clock::now() - started) / 50ms;
  const double claims = Claims("none_due") - before;
  EXPECT_GE(claims, polls * 0.3) << "an idle replica must still look for due deliveries (retries come due)";
  EXPECT_LE(claims, polls * 1.5) << "each idle sender claimed on every poll";
  // The counters are the process's (earlier suites' replicas ran here too): this window's only.
  EXPECT_EQ(Claims("failed") - failed_before, 0) << "PostgreSQL is up: no claim may have failed";

  // Three episodes' events: fan-out wakes the senders, and every event arrives.
  const std::string tenant = "hooks-idle";
  Receiver receiver;
  auto integrator = Integrator(tenant);
  auto clinician = Clinician(tenant);
  receiver.Control("ok", {Subscribe(integrator, receiver.url()).secret()});
  for (int p = 0; p < 3; ++p) Episode(clinician, "pt-idle-" + std::to_string(p));
  const auto expected = OutboxEvents(postgres_->port(), tenant).size();
  ASSERT_GE(expected, 12u);
  const auto state = receiver.WaitFor(expected, 30s);
  std::set<std::string> ids;
  for (const auto& item : state["received"]) ids.insert(item["id"].get<std::string>());
  EXPECT_EQ(ids.size(), expected);
  EXPECT_GE(Claims("leased"), static_cast<double>(expected));
}

TEST_F(Webhooks, HttpsIsVerifiedAgainstTheTrustedCasAndRedirectsAreNotFollowed) {
  const std::string tenant = "hooks-tls";
  const auto certs = Certificates();
  Receiver trusted((certs / "clinic-gateway.pem").string(), (certs / "clinic-gateway.key").string());
  Receiver rogue((certs / "rogue-client.pem").string(), (certs / "rogue-client.key").string());
  Receiver redirecting;
  auto integrator = Integrator(tenant);
  auto clinician = Clinician(tenant);
  const auto good = Subscribe(integrator, trusted.url());
  const auto bad = Subscribe(integrator, rogue.url());
  const auto moved = Subscribe(integrator, redirecting.url());
  trusted.Control("ok", {good.secret()});
  rogue.Control("ok", {bad.secret()});
  redirecting.Control("redirect", {moved.secret()});
  Episode(clinician, "pt-tls");
  const auto expected = OutboxEvents(postgres_->port(), tenant).size();
  const auto state = trusted.WaitFor(expected, 30s);
  std::set<std::string> ids;
  for (const auto& item : state["received"]) ids.insert(item["id"].get<std::string>());
  EXPECT_EQ(ids.size(), expected) << "delivered over HTTPS to a certificate of the trusted CA";
  std::this_thread::sleep_for(1s);
  EXPECT_EQ(rogue.State()["attempts"].get<int>(), 0) << "a certificate of another CA: no request is sent";
  bool certificate_error = false;
  for (const auto& delivery : Deliveries(integrator, bad.subscription().subscription_id())) {
    EXPECT_EQ(delivery.state(), apb::WEBHOOK_DELIVERY_STATE_PENDING);
    for (const auto& attempt : delivery.recent_attempts()) {
      if (attempt.status_code() == 0 && !attempt.error().empty()) certificate_error = true;
    }
  }
  EXPECT_TRUE(certificate_error);
  // A 307 is a failure, and its Location is never requested.
  EXPECT_EQ(redirecting.State()["redirectFollowed"].get<int>(), 0);
  bool saw_redirect = false;
  for (const auto& delivery : Deliveries(integrator, moved.subscription().subscription_id())) {
    EXPECT_NE(delivery.state(), apb::WEBHOOK_DELIVERY_STATE_DELIVERED);
    for (const auto& attempt : delivery.recent_attempts()) saw_redirect |= attempt.status_code() == 307;
  }
  EXPECT_TRUE(saw_redirect);
  // The metrics count the outcomes and the queue.
  httplib::Client metrics("127.0.0.1", cluster_->assessment_metrics_port());
  const auto scraped = metrics.Get("/metrics");
  ASSERT_TRUE(scraped);
  EXPECT_NE(scraped->body.find("physio_webhook_deliveries_total{outcome=\"delivered\"}"), std::string::npos);
  EXPECT_NE(scraped->body.find("physio_webhook_retry_queue_depth"), std::string::npos);
  EXPECT_NE(scraped->body.find("physio_webhook_oldest_undelivered_seconds"), std::string::npos);
}

// Throughput, by hand (docs/benchmarks.md): --gtest_also_run_disabled_tests --gtest_filter='*Throughput*'.
// Events are written straight into the outbox (10 per patient, 500 patients), then timed until a
// receiver verifying every signature has them all, for 1 and for 4 subscriptions.
// Delivery ids are numbers: a list across ids of different lengths (9,999,999,999 and then
// 10,000,000,000) pages through every delivery once, newest first, filtered by state or not. The
// list used to be sorted by the ids' text, so its pages skipped every id longer than the first
// page's (and every first page sorted all of the subscription's deliveries).
TEST_F(Webhooks, DeliveryPagesFollowTheIdsAcrossADigitBoundary) {
  const std::string tenant = "t-digits";
  const Caller integrator = Integrator(tenant);
  postgres_->Execute("INSERT INTO assessment.webhook_subscriptions (tenant_id, subscription_id, url, state, secret,"
                     " created_by, create_request_id) VALUES ('" + tenant + "', 'whs_digits', 'https://hooks.example/d',"
                     " 'paused', 'unused', 'integration-engine', 'rq-digits')",
                     "physio");
  // 30 deliveries, ids 9,999,999,985 to 10,000,000,014; every third one failed.
  postgres_->Execute("INSERT INTO assessment.webhook_deliveries (delivery_id, tenant_id, subscription_id, message_id,"
                     " source, sequence, kind, occurred_at, state) OVERRIDING SYSTEM VALUE SELECT 9999999984 + i, '" +
                         tenant + "', 'whs_digits', 'msg_d' || i, 'planning', i, 'EVENT_KIND_PLAN_APPROVED', now(),"
                         " CASE WHEN i % 3 = 0 THEN 'failed' ELSE 'delivered' END FROM generate_series(1, 30) i",
                     "physio");
  const auto listed = [&](apb::WebhookDeliveryState state) {
    std::vector<long long> ids;
    for (const auto& delivery : Deliveries(integrator, "whs_digits", state, 7)) {
      ids.push_back(std::stoll(delivery.delivery_id()));
    }
    return ids;
  };
  std::vector<long long> all, failed;
  for (int i = 30; i >= 1; --i) {
    all.push_back(9999999984LL + i);
    if (i % 3 == 0) failed.push_back(9999999984LL + i);
  }
  EXPECT_EQ(listed(apb::WEBHOOK_DELIVERY_STATE_UNSPECIFIED), all);
  EXPECT_EQ(listed(apb::WEBHOOK_DELIVERY_STATE_FAILED), failed);
}

TEST_F(Webhooks, DISABLED_Throughput) {
  for (const int subscriptions : {1, 4}) {
    const std::string tenant = "hooks-throughput-" + std::to_string(subscriptions);
    auto integrator = Integrator(tenant);
    std::vector<std::unique_ptr<Receiver>> receivers;
    for (int i = 0; i < subscriptions; ++i) {
      receivers.push_back(std::make_unique<Receiver>());
      const auto created = Subscribe(integrator, receivers.back()->url());
      receivers.back()->Control("ok", {created.secret()});
    }
    constexpr int kEvents = 5000;
    PGconn* conn = PQconnectdb(postgres_->Conninfo("physio").c_str());
    const auto started = std::chrono::steady_clock::now();
    const char* values[] = {tenant.c_str()};
    PGresult* result = PQexecParams(conn,
                                    "INSERT INTO assessment.events (tenant_id, kind, patient_id, resource_id)"
                                    " SELECT $1, 'EVENT_KIND_ASSESSMENT_STORED', 'pt-' || (i % 500), 'asm-' || i"
                                    " FROM generate_series(1, 5000) AS i",
                                    1, nullptr, values, nullptr, nullptr, 0);
    ASSERT_EQ(PQresultStatus(result), PGRES_COMMAND_OK) << PQresultErrorMessage(result);
    PQclear(result);
    PQfinish(conn);
    for (const auto& receiver : receivers) {
      const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(300);
      while (receiver->Distinct() < kEvents && std::chrono::steady_clock::now() < give_up) {
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
      }
      ASSERT_EQ(receiver->Distinct(), kEvents);
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    std::cout << subscriptions << " subscription(s): " << kEvents * subscriptions << " deliveries in " << seconds
              << " s = " << kEvents * subscriptions / seconds << " deliveries/s" << std::endl;
    for (const auto& receiver : receivers) EXPECT_EQ(receiver->State()["rejected"].get<int>(), 0);
  }
}

}  // namespace
}  // namespace physio::testing
