#include "webhook_records.h"

#include <google/protobuf/util/time_util.h>

#include <map>

#include "physio/common/error.h"
#include "physio/common/ids.h"
#include "physio/db/events.h"

namespace physio::assessment {

namespace {
using google::protobuf::util::TimeUtil;

std::int64_t Micros(const PgResult& rows, int row, int col) {
  return rows.IsNull(row, col) ? 0 : std::stoll(rows.Get(row, col));
}

v1::WebhookState StateOf(const std::string& state) {
  if (state == "active") return v1::WEBHOOK_STATE_ACTIVE;
  if (state == "paused") return v1::WEBHOOK_STATE_PAUSED;
  return v1::WEBHOOK_STATE_DISABLED;
}

v1::WebhookDeliveryState DeliveryStateOf(const std::string& state) {
  if (state == "pending") return v1::WEBHOOK_DELIVERY_STATE_PENDING;
  if (state == "delivered") return v1::WEBHOOK_DELIVERY_STATE_DELIVERED;
  if (state == "failed") return v1::WEBHOOK_DELIVERY_STATE_FAILED;
  return v1::WEBHOOK_DELIVERY_STATE_CANCELLED;
}

// Text[] as PostgreSQL prints it, for the kinds column (names of [A-Z_0-9]: no quoting).
std::vector<std::string> ParseTextArray(const std::string& text) {
  std::vector<std::string> values;
  if (text.size() < 2) return values;
  std::string inner = text.substr(1, text.size() - 2);
  std::size_t start = 0;
  while (start < inner.size()) {
    const std::size_t comma = std::min(inner.find(',', start), inner.size());
    values.push_back(inner.substr(start, comma - start));
    start = comma + 1;
  }
  return values;
}

// Whether a delivery being queued heads its (subscription, patient) chain: the first of the
// statement's rows for the chain, and none of it still pending from before.
std::string HeadSql(const std::string& schema, const std::string& subscription, const std::string& patient,
                    const std::string& order) {
  // Only an active subscription's chains have heads (pausing clears them, resuming sets them again).
  return "(s.state = 'active' AND row_number() OVER (PARTITION BY " + subscription + ", " + patient + " ORDER BY " + order +
         ") = 1 AND NOT EXISTS (SELECT 1 FROM " + schema + ".webhook_deliveries p WHERE p.state = 'pending'"
         " AND p.subscription_id = " + subscription + " AND p.patient_id = " + patient + "))";
}

std::string Epoch(const std::string& column) {
  return "(extract(epoch FROM " + column + ") * 1000000)::bigint";
}

// The message id (webhook-id): the same for one event of one tenant's feed, whatever the
// subscription, the attempt or the replay.
std::string MessageIdSql(const std::string& tenant, const std::string& source, const std::string& sequence) {
  return "'msg_' || substr(encode(sha256(convert_to(" + tenant + " || '/' || " + source + " || '/' || " + sequence +
         "::text, 'UTF8')), 'hex'), 1, 32)";
}
}  // namespace

std::string PgWebhookRecords::Columns() const {
  return "subscription_id, url, kinds::text, clinic_id, description, state, disabled_reason, " + Epoch("created_at") +
         ", " + Epoch("updated_at") + ", CASE WHEN previous_secret_until > clock_timestamp() THEN " +
         Epoch("previous_secret_until") + " END, secret";
}

v1::WebhookSubscription PgWebhookRecords::SubscriptionOf(const PgResult& rows, int row) const {
  v1::WebhookSubscription subscription;
  subscription.set_subscription_id(rows.Get(row, 0));
  subscription.set_url(rows.Get(row, 1));
  for (const auto& name : ParseTextArray(rows.Get(row, 2))) {
    common::v1::EventKind kind = common::v1::EVENT_KIND_UNSPECIFIED;
    if (common::v1::EventKind_Parse(name, &kind)) subscription.add_event_kinds(kind);
  }
  subscription.set_clinic_id(rows.Get(row, 3));
  subscription.set_description(rows.Get(row, 4));
  subscription.set_state(StateOf(rows.Get(row, 5)));
  subscription.set_disabled_reason(rows.Get(row, 6));
  *subscription.mutable_create_time() = TimeUtil::MicrosecondsToTimestamp(Micros(rows, row, 7));
  *subscription.mutable_update_time() = TimeUtil::MicrosecondsToTimestamp(Micros(rows, row, 8));
  if (!rows.IsNull(row, 9)) {
    *subscription.mutable_previous_secret_expire_time() = TimeUtil::MicrosecondsToTimestamp(Micros(rows, row, 9));
  }
  return subscription;
}

StoredWebhook PgWebhookRecords::Create(const std::string& tenant, const std::string& request_id, const WebhookSpec& spec,
                                       const std::string& secret, const std::string& created_by,
                                       Clock::time_point deadline) {
  const std::string id = NewId("whs");
  // Where fan-out starts in each feed: after what is numbered now (an event numbered
  // later either committed later, or is older than the subscription and passed over).
  std::vector<std::pair<std::string, std::string>> starts;
  for (const std::string source : {"assessment", "planning", "progress"}) {
    std::string last = "0";
    try {
      last = QueryOnce(pool_, deadline,
                       {"SELECT coalesce(max(sequence), 0) FROM " + source + ".events WHERE tenant_id = $1", {tenant}})
                 .Get(0, 0);
    } catch (const Error& error) {
      if (error.code() == ErrorCode::kUnavailable) throw;
      // A feed this role cannot read (physio_audit_reader not granted): fan-out skips it too.
    }
    starts.emplace_back(source, last);
  }
  StoredWebhook stored;
  WithTransaction(pool_, deadline, [&](PgConnection& conn) {
    auto rows = conn.Exec("INSERT INTO " + schema_ +
                              ".webhook_subscriptions (tenant_id, subscription_id, clinic_id, url, description, kinds,"
                              " secret, created_by, create_request_id) VALUES ($1, $2, $3, $4, $5, $6::text[], $7, $8, $9)"
                              " ON CONFLICT (tenant_id, create_request_id) DO NOTHING RETURNING " + Columns(),
                          {tenant, id, spec.clinic_id, spec.url, spec.description, PgTextArray(spec.kinds), secret,
                           created_by, request_id});
    if (rows.rows() == 0) {
      // A retry of a create that committed: the subscription it made, as it is now.
      rows = conn.Exec("SELECT " + Columns() + " FROM " + schema_ +
                           ".webhook_subscriptions WHERE tenant_id = $1 AND create_request_id = $2",
                       {tenant, request_id});
      if (rows.rows() == 0) throw Error(ErrorCode::kUnavailable, "webhook subscription vanished during create");
      stored.subscription = SubscriptionOf(rows, 0);
      stored.secret = rows.Get(0, 10);
      return;
    }
    stored.subscription = SubscriptionOf(rows, 0);
    stored.secret = rows.Get(0, 10);
    for (const auto& [source, last] : starts) {
      // A cursor left behind by deleted subscriptions moves up to now; one in use stays.
      conn.Exec("INSERT INTO " + schema_ + ".webhook_cursors AS c (source, tenant_id, last_sequence)"
                " VALUES ($1, $2, $3::bigint) ON CONFLICT (source, tenant_id) DO UPDATE"
                " SET last_sequence = greatest(c.last_sequence, EXCLUDED.last_sequence)"
                " WHERE NOT EXISTS (SELECT 1 FROM " + schema_ + ".webhook_subscriptions s WHERE s.tenant_id = $2"
                " AND s.deleted_at IS NULL AND s.subscription_id <> $4)",
                {source, tenant, last, id});
    }
  });
  return stored;
}

int PgWebhookRecords::CountLive(const std::string& tenant, Clock::time_point deadline) {
  return std::stoi(QueryOnce(pool_, deadline,
                             {"SELECT count(*) FROM " + schema_ +
                                  ".webhook_subscriptions WHERE tenant_id = $1 AND deleted_at IS NULL",
                              {tenant}})
                       .Get(0, 0));
}

std::vector<v1::WebhookSubscription> PgWebhookRecords::List(const std::string& tenant,
                                                            const std::vector<std::string>& clinics,
                                                            Clock::time_point deadline) {
  auto rows = QueryOnce(pool_, deadline,
                        {"SELECT " + Columns() + " FROM " + schema_ +
                             ".webhook_subscriptions WHERE tenant_id = $1 AND deleted_at IS NULL"
                             " AND (cardinality($2::text[]) = 0 OR clinic_id = ANY($2::text[]))"
                             " ORDER BY created_at, subscription_id",
                         {tenant, PgTextArray(clinics)}});
  std::vector<v1::WebhookSubscription> out;
  for (int i = 0; i < rows.rows(); ++i) out.push_back(SubscriptionOf(rows, i));
  return out;
}

std::optional<v1::WebhookSubscription> PgWebhookRecords::Find(const std::string& tenant, const std::string& id,
                                                              Clock::time_point deadline) {
  auto rows = QueryOnce(pool_, deadline,
                        {"SELECT " + Columns() + " FROM " + schema_ +
                             ".webhook_subscriptions WHERE tenant_id = $1 AND subscription_id = $2 AND deleted_at IS NULL",
                         {tenant, id}});
  if (rows.rows() == 0) return std::nullopt;
  return SubscriptionOf(rows, 0);
}

v1::WebhookSubscription PgWebhookRecords::Update(const std::string& tenant, const std::string& id,
                                                 const WebhookChange& change, Clock::time_point deadline) {
  v1::WebhookSubscription out;
  WithTransaction(pool_, deadline, [&](PgConnection& conn) {
    auto rows = conn.Exec(
        "UPDATE " + schema_ + ".webhook_subscriptions SET url = coalesce($3, url), kinds = coalesce($4::text[], kinds),"
        " description = coalesce($5, description), state = coalesce($6, state),"
        " disabled_reason = CASE WHEN $6 IS NULL THEN disabled_reason ELSE '' END, updated_at = clock_timestamp()"
        " WHERE tenant_id = $1 AND subscription_id = $2 AND deleted_at IS NULL RETURNING " + Columns(),
        {tenant, id, change.url ? PgParam(*change.url) : PgParam(),
         change.kinds ? PgParam(PgTextArray(*change.kinds)) : PgParam(),
         change.description ? PgParam(*change.description) : PgParam(),
         change.state ? PgParam(*change.state) : PgParam()});
    if (rows.rows() == 0) throw Error(ErrorCode::kNotFound, "webhook subscription not found");
    out = SubscriptionOf(rows, 0);
    if (change.state && *change.state == "paused") {
      conn.Exec("UPDATE " + schema_ + ".webhook_deliveries SET head = false WHERE tenant_id = $1 AND subscription_id = $2"
                " AND state = 'pending' AND head",
                {tenant, id});
    }
    if (change.state && *change.state == "active") {
      // Resumed: what was given up is queued again, and every held delivery starts a new retry window now.
      conn.Exec("UPDATE " + schema_ + ".webhook_deliveries SET state = 'pending', failing_since = NULL,"
                " next_attempt_at = clock_timestamp() WHERE tenant_id = $1 AND subscription_id = $2"
                " AND state IN ('pending', 'failed')",
                {tenant, id});
      // A given-up delivery is back at the front of its chain.
      conn.Exec("UPDATE " + schema_ + ".webhook_deliveries d SET head = (d.delivery_id = h.first) FROM (SELECT"
                " patient_id, min(delivery_id) AS first FROM " + schema_ + ".webhook_deliveries WHERE tenant_id = $1"
                " AND subscription_id = $2 AND state = 'pending' GROUP BY patient_id) h WHERE d.tenant_id = $1"
                " AND d.subscription_id = $2 AND d.state = 'pending' AND d.patient_id = h.patient_id",
                {tenant, id});
    }
  });
  return out;
}

int PgWebhookRecords::Delete(const std::string& tenant, const std::string& id, Clock::time_point deadline) {
  int cancelled = 0;
  WithTransaction(pool_, deadline, [&](PgConnection& conn) {
    auto rows = conn.Exec("UPDATE " + schema_ + ".webhook_subscriptions SET deleted_at = clock_timestamp(),"
                          " updated_at = clock_timestamp() WHERE tenant_id = $1 AND subscription_id = $2"
                          " AND deleted_at IS NULL RETURNING 1",
                          {tenant, id});
    if (rows.rows() == 0) throw Error(ErrorCode::kNotFound, "webhook subscription not found");
    cancelled = static_cast<int>(conn.Exec("UPDATE " + schema_ + ".webhook_deliveries SET state = 'cancelled',"
                                           " lease_owner = NULL, lease_until = NULL WHERE tenant_id = $1"
                                           " AND subscription_id = $2 AND state = 'pending'",
                                           {tenant, id})
                                     .affected_rows());
  });
  return cancelled;
}

StoredWebhook PgWebhookRecords::Rotate(const std::string& tenant, const std::string& id, const std::string& request_id,
                                       const std::string& new_secret, std::chrono::seconds overlap,
                                       Clock::time_point deadline) {
  StoredWebhook stored;
  WithTransaction(pool_, deadline, [&](PgConnection& conn) {
    auto rows = conn.Exec("SELECT rotate_request_id FROM " + schema_ +
                              ".webhook_subscriptions WHERE tenant_id = $1 AND subscription_id = $2 AND deleted_at IS NULL"
                              " FOR UPDATE",
                          {tenant, id});
    if (rows.rows() == 0) throw Error(ErrorCode::kNotFound, "webhook subscription not found");
    if (rows.Get(0, 0) != request_id) {
      conn.Exec("UPDATE " + schema_ + ".webhook_subscriptions SET previous_secret = secret,"
                " previous_secret_until = clock_timestamp() + make_interval(secs => $3::int), secret = $4,"
                " rotate_request_id = $5, updated_at = clock_timestamp() WHERE tenant_id = $1 AND subscription_id = $2",
                {tenant, id, std::to_string(overlap.count()), new_secret, request_id});
    }
    rows = conn.Exec("SELECT " + Columns() + " FROM " + schema_ +
                         ".webhook_subscriptions WHERE tenant_id = $1 AND subscription_id = $2",
                     {tenant, id});
    stored.subscription = SubscriptionOf(rows, 0);
    stored.secret = rows.Get(0, 10);
  });
  return stored;
}

std::vector<v1::WebhookDelivery> PgWebhookRecords::Deliveries(const std::string& tenant, const std::string& id,
                                                              const std::string& state, std::int64_t before_id,
                                                              int limit, Clock::time_point deadline) {
  // d.delivery_id, not delivery_id: a bare name in ORDER BY is the text output column, whose
  // order ("999" after "1000") neither an index gives (every first page sorted the subscription's
  // deliveries) nor the "delivery_id < before" of the next page follows (pages skipped rows).
  auto rows = QueryOnce(
      pool_, deadline,
      {"SELECT delivery_id::text, message_id, kind, source, sequence::text, patient_id, resource_id, " +
           Epoch("occurred_at") + ", state, attempts, " + Epoch("next_attempt_at") + ", " + Epoch("delivered_at") +
           " FROM " + schema_ + ".webhook_deliveries d WHERE tenant_id = $1 AND subscription_id = $2"
           " AND ($3 = '' OR state = $3) AND delivery_id < $4::bigint ORDER BY d.delivery_id DESC LIMIT $5::int",
       {tenant, id, state, std::to_string(before_id), std::to_string(limit)}});
  std::vector<v1::WebhookDelivery> out;
  for (int i = 0; i < rows.rows(); ++i) {
    v1::WebhookDelivery delivery;
    delivery.set_delivery_id(rows.Get(i, 0));
    delivery.set_message_id(rows.Get(i, 1));
    common::v1::EventKind kind = common::v1::EVENT_KIND_UNSPECIFIED;
    common::v1::EventKind_Parse(rows.Get(i, 2), &kind);
    delivery.set_kind(kind);
    delivery.set_source(rows.Get(i, 3));
    delivery.set_cursor(rows.Get(i, 4));
    delivery.set_patient_id(rows.Get(i, 5));
    delivery.set_resource_id(rows.Get(i, 6));
    *delivery.mutable_occur_time() = TimeUtil::MicrosecondsToTimestamp(Micros(rows, i, 7));
    delivery.set_state(DeliveryStateOf(rows.Get(i, 8)));
    delivery.set_attempts(std::stoi(rows.Get(i, 9)));
    if (delivery.state() == v1::WEBHOOK_DELIVERY_STATE_PENDING) {
      *delivery.mutable_next_attempt_time() = TimeUtil::MicrosecondsToTimestamp(Micros(rows, i, 10));
    }
    if (!rows.IsNull(i, 11)) *delivery.mutable_deliver_time() = TimeUtil::MicrosecondsToTimestamp(Micros(rows, i, 11));
    out.push_back(std::move(delivery));
  }
  if (out.empty()) return out;
  // The latest attempts of each, newest first.
  std::vector<std::string> ids;
  std::map<std::string, v1::WebhookDelivery*> by_id;
  for (auto& delivery : out) {
    ids.push_back(delivery.delivery_id());
    by_id[delivery.delivery_id()] = &delivery;
  }
  auto attempts = QueryOnce(
      pool_, deadline,
      {"SELECT delivery_id::text, attempt, " + Epoch("attempted_at") + ", status_code, latency_ms, error FROM"
           " (SELECT a.*, row_number() OVER (PARTITION BY delivery_id ORDER BY attempt DESC) AS n FROM " + schema_ +
           ".webhook_attempts a WHERE delivery_id = ANY($1::bigint[])) a WHERE n <= 10 ORDER BY a.delivery_id, attempt DESC",
       {PgTextArray(ids)}});
  for (int i = 0; i < attempts.rows(); ++i) {
    auto* attempt = by_id[attempts.Get(i, 0)]->add_recent_attempts();
    attempt->set_attempt(std::stoi(attempts.Get(i, 1)));
    *attempt->mutable_attempt_time() = TimeUtil::MicrosecondsToTimestamp(Micros(attempts, i, 2));
    attempt->set_status_code(std::stoi(attempts.Get(i, 3)));
    attempt->set_latency_ms(std::stoi(attempts.Get(i, 4)));
    attempt->set_error(attempts.Get(i, 5));
  }
  return out;
}

int PgWebhookRecords::Replay(const std::string& tenant, const v1::WebhookSubscription& subscription,
                             const WebhookReplayRange& range, int max_events, Clock::time_point deadline) {
  std::vector<std::string> sources;
  if (range.end_micros > 0) {
    sources = {"assessment", "planning", "progress"};
  } else {
    sources = {range.source};
  }
  int queued = 0;
  WithTransaction(pool_, deadline, [&](PgConnection& conn) {
    for (const auto& source : sources) {
      const std::string events =
          " FROM " + source + ".events e JOIN " + schema_ +
          ".webhook_subscriptions s ON s.tenant_id = e.tenant_id AND s.subscription_id = $2"
          " AND (cardinality(s.kinds) = 0 OR e.kind = ANY(s.kinds)) AND (s.clinic_id = '' OR EXISTS (SELECT 1 FROM " +
          schema_ + ".patient_clinics c WHERE c.tenant_id = e.tenant_id AND c.patient_id = e.patient_id"
          " AND c.clinic_id = s.clinic_id))"
          " WHERE e.tenant_id = $1 AND e.sequence IS NOT NULL AND (CASE WHEN $3::bigint > 0"
          " THEN e.occurred_at >= to_timestamp($4::bigint / 1000000.0) AND e.occurred_at < to_timestamp($3::bigint / 1000000.0)"
          " ELSE e.sequence > $5::bigint AND e.sequence <= $6::bigint END)";
      const std::vector<PgParam> params = {tenant,
                                           subscription.subscription_id(),
                                           std::to_string(range.end_micros),
                                           std::to_string(range.start_micros),
                                           std::to_string(range.after),
                                           std::to_string(range.last)};
      const int count = std::stoi(conn.Exec("SELECT count(*)" + events, params).Get(0, 0));
      if (queued + count > max_events) {
        ThrowInvalidArgument(range.end_micros > 0 ? "window" : "events",
                             "holds more than " + std::to_string(max_events) + " events; replay a narrower range");
      }
      queued += static_cast<int>(
          conn.Exec("INSERT INTO " + schema_ +
                        ".webhook_deliveries (tenant_id, subscription_id, message_id, source, sequence, kind, patient_id,"
                        " resource_id, clinic_id, occurred_at, head) SELECT e.tenant_id, s.subscription_id, " +
                        MessageIdSql("e.tenant_id", "'" + source + "'", "e.sequence") + ", '" + source +
                        "', e.sequence, e.kind, coalesce(e.patient_id, ''), coalesce(e.resource_id, ''), s.clinic_id,"
                        " e.occurred_at, " + HeadSql(schema_, "s.subscription_id", "coalesce(e.patient_id, '')", "e.sequence") +
                        events + " ORDER BY e.sequence",
                    params)
              .affected_rows());
    }
  });
  return queued;
}

std::vector<std::string> PgWebhookRecords::SubscribedTenants(Clock::time_point deadline) {
  auto rows = QueryOnce(pool_, deadline,
                        {"SELECT DISTINCT tenant_id FROM " + schema_ + ".webhook_subscriptions WHERE deleted_at IS NULL", {}});
  std::vector<std::string> tenants;
  for (int i = 0; i < rows.rows(); ++i) tenants.push_back(rows.Get(i, 0));
  return tenants;
}

int PgWebhookRecords::FanOut(const std::string& source, const std::string& tenant, int batch,
                             Clock::time_point deadline) {
  int queued = 0;
  WithTransaction(pool_, deadline, [&](PgConnection& conn) {
    // One replica per (feed, tenant) at a time; the others pass.
    auto cursor = conn.Exec("SELECT last_sequence FROM " + schema_ +
                                ".webhook_cursors WHERE source = $1 AND tenant_id = $2 FOR UPDATE SKIP LOCKED",
                            {source, tenant});
    if (cursor.rows() == 0) return;
    const std::string last = cursor.Get(0, 0);
    const std::string upper =
        conn.Exec("SELECT coalesce(max(sequence), $2::bigint) FROM (SELECT sequence FROM " + source +
                      ".events WHERE tenant_id = $1 AND sequence > $2::bigint ORDER BY sequence LIMIT $3::int) t",
                  {tenant, last, std::to_string(batch)})
            .Get(0, 0);
    if (upper == last) return;
    queued = static_cast<int>(
        conn.Exec("INSERT INTO " + schema_ +
                      ".webhook_deliveries (tenant_id, subscription_id, message_id, source, sequence, kind, patient_id,"
                      " resource_id, clinic_id, occurred_at, head) SELECT e.tenant_id, s.subscription_id, " +
                      MessageIdSql("e.tenant_id", "$3::text", "e.sequence") +
                      ", $3, e.sequence, e.kind, coalesce(e.patient_id, ''), coalesce(e.resource_id, ''),"
                      " CASE WHEN s.clinic_id <> '' THEN s.clinic_id ELSE coalesce((SELECT min(c.clinic_id) FROM " +
                      schema_ + ".patient_clinics c WHERE c.tenant_id = e.tenant_id AND c.patient_id = e.patient_id), '')"
                      " END, e.occurred_at, " + HeadSql(schema_, "s.subscription_id", "coalesce(e.patient_id, '')", "e.sequence") +
                      " FROM " + source + ".events e JOIN " + schema_ +
                      ".webhook_subscriptions s ON s.tenant_id = e.tenant_id AND s.deleted_at IS NULL"
                      " AND (cardinality(s.kinds) = 0 OR e.kind = ANY(s.kinds)) AND e.occurred_at >= s.created_at"
                      " AND (s.clinic_id = '' OR EXISTS (SELECT 1 FROM " + schema_ +
                      ".patient_clinics c WHERE c.tenant_id = e.tenant_id AND c.patient_id = e.patient_id"
                      " AND c.clinic_id = s.clinic_id))"
                      " WHERE e.tenant_id = $1 AND e.sequence > $2::bigint AND e.sequence <= $4::bigint"
                      " ORDER BY e.sequence, s.subscription_id",
                  {tenant, last, source, upper})
            .affected_rows());
    conn.Exec("UPDATE " + schema_ + ".webhook_cursors SET last_sequence = $3::bigint WHERE source = $1 AND tenant_id = $2",
              {source, tenant, upper});
  });
  return queued;
}

std::optional<LeasedDelivery> PgWebhookRecords::Lease(const std::string& owner, const std::vector<std::string>& busy,
                                                      std::chrono::seconds lease, Clock::time_point deadline) {
  std::optional<PgResult> leased;
  WithTransaction(pool_, deadline, [&](PgConnection& conn) {
    leased = conn.Exec(
      // The first due heads, not leased and not of a subscription this replica has enough of in
      // flight (index webhook_deliveries_due), then the first of those that may go.
      // Every sender of every replica runs this on each idle poll (4 senders: 20 a second), so it is
      // written to be prepared and keep a generic plan (PlannedForEachCall is false for it): no
      // value changes its plan, the lease and the busy list are filters on the due index's scan.
      // Planned on every poll, it cost 1-2 ms each.
      "WITH candidates AS MATERIALIZED (SELECT d.delivery_id FROM " + schema_ + ".webhook_deliveries d"
           " WHERE d.state = 'pending' AND d.head AND d.next_attempt_at <= clock_timestamp()"
           " AND coalesce(d.lease_until, '-infinity') < clock_timestamp()"
           " AND d.subscription_id <> ALL($2::text[]) ORDER BY d.next_attempt_at, d.delivery_id LIMIT 64),"
           " next AS (SELECT d.delivery_id FROM " + schema_ + ".webhook_deliveries d JOIN candidates c"
           " ON c.delivery_id = d.delivery_id WHERE d.state = 'pending' AND d.head"
           " AND coalesce(d.lease_until, '-infinity') < clock_timestamp()"
           " AND EXISTS (SELECT 1 FROM " + schema_ + ".webhook_subscriptions s WHERE s.tenant_id = d.tenant_id"
           " AND s.subscription_id = d.subscription_id AND s.state = 'active' AND s.deleted_at IS NULL)"
           // In order per patient: only the oldest unsettled delivery of its (subscription, patient)
           // (the head flag says so; checked again, as heads queued by two writers at once could be two).
           " AND NOT EXISTS (SELECT 1 FROM " + schema_ + ".webhook_deliveries p WHERE p.state = 'pending'"
           " AND p.subscription_id = d.subscription_id AND p.patient_id = d.patient_id AND p.delivery_id < d.delivery_id)"
           " ORDER BY d.next_attempt_at, d.delivery_id LIMIT 1 FOR UPDATE OF d SKIP LOCKED)"
           " UPDATE " + schema_ + ".webhook_deliveries d SET lease_owner = $1,"
           " lease_until = clock_timestamp() + make_interval(secs => $3::int), attempts = d.attempts + 1"
           " FROM next, " + schema_ + ".webhook_subscriptions s WHERE d.delivery_id = next.delivery_id"
           " AND s.tenant_id = d.tenant_id AND s.subscription_id = d.subscription_id"
           " RETURNING d.delivery_id, d.attempts, d.tenant_id, d.subscription_id, s.url, d.message_id, s.secret,"
           " d.patient_id,"
           " CASE WHEN s.previous_secret_until > clock_timestamp() THEN s.previous_secret ELSE '' END,"
           " json_build_object('type', d.kind, 'timestamp', to_char(clock_timestamp() AT TIME ZONE 'UTC',"
           " 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), 'data', json_build_object('event_id', d.message_id,"
           " 'subscription_id', d.subscription_id, 'source', d.source, 'sequence', d.sequence::text,"
           " 'cursor', d.sequence::text, 'kind', d.kind, 'tenant_id', d.tenant_id, 'clinic_id', d.clinic_id,"
           " 'patient_id', d.patient_id, 'resource_id', d.resource_id, 'occur_time', to_char(d.occurred_at AT TIME ZONE"
           " 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')))::text",
       {owner, PgTextArray(busy), std::to_string(lease.count())});
  });
  const PgResult& rows = *leased;
  if (rows.rows() == 0) return std::nullopt;
  LeasedDelivery delivery;
  delivery.delivery_id = std::stoll(rows.Get(0, 0));
  delivery.attempt = std::stoi(rows.Get(0, 1));
  delivery.tenant = rows.Get(0, 2);
  delivery.subscription_id = rows.Get(0, 3);
  delivery.url = rows.Get(0, 4);
  delivery.message_id = rows.Get(0, 5);
  delivery.secrets.push_back(rows.Get(0, 6));
  delivery.patient_id = rows.Get(0, 7);
  if (!rows.Get(0, 8).empty()) delivery.secrets.push_back(rows.Get(0, 8));
  delivery.body = rows.Get(0, 9);
  return delivery;
}

PgWebhookRecords::AttemptOutcome PgWebhookRecords::RecordAttempt(const LeasedDelivery& delivery, const std::string& owner,
                                                                 int status, std::chrono::milliseconds latency,
                                                                 const std::string& error,
                                                                 std::chrono::milliseconds retry_in,
                                                                 std::chrono::seconds give_up_after,
                                                                 Clock::time_point deadline) {
  AttemptOutcome outcome;
  const std::string id = std::to_string(delivery.delivery_id);
  const std::string short_error = error.substr(0, 500);
  WithTransaction(pool_, deadline, [&](PgConnection& conn) {
    conn.Exec("INSERT INTO " + schema_ + ".webhook_attempts (delivery_id, attempt, status_code, latency_ms, error)"
              " VALUES ($1::bigint, $2::int, $3::int, $4::int, $5) ON CONFLICT DO NOTHING",
              {id, std::to_string(delivery.attempt), std::to_string(status), std::to_string(latency.count()), short_error});
    // Settled (delivered or given up): the next of its chain becomes the head.
    const auto promote_next = [&] {
      conn.Exec("UPDATE " + schema_ + ".webhook_deliveries SET head = true WHERE delivery_id = (SELECT min(delivery_id)"
                " FROM " + schema_ + ".webhook_deliveries WHERE state = 'pending' AND subscription_id = $1"
                " AND patient_id = $2 AND delivery_id > $3::bigint)",
                {delivery.subscription_id, delivery.patient_id, id});
    };
    if (error.empty()) {
      outcome.recorded = conn.Exec("UPDATE " + schema_ + ".webhook_deliveries SET state = 'delivered', head = false,"
                                   " delivered_at = clock_timestamp(), lease_owner = NULL, lease_until = NULL,"
                                   " last_status = $3::int, last_error = '' WHERE delivery_id = $1::bigint"
                                   " AND lease_owner = $2 AND state = 'pending'",
                                   {id, owner, std::to_string(status)})
                             .affected_rows() > 0;
      if (outcome.recorded) promote_next();
      return;
    }
    auto rows = conn.Exec(
        "UPDATE " + schema_ + ".webhook_deliveries SET failing_since = coalesce(failing_since, clock_timestamp()),"
        " next_attempt_at = clock_timestamp() + make_interval(secs => $5::double precision / 1000),"
        " lease_owner = NULL, lease_until = NULL, last_status = $3::int, last_error = $4"
        " WHERE delivery_id = $1::bigint AND lease_owner = $2 AND state = 'pending'"
        " RETURNING clock_timestamp() - failing_since >= make_interval(secs => $6::int)",
        {id, owner, std::to_string(status), short_error, std::to_string(retry_in.count()),
         std::to_string(give_up_after.count())});
    outcome.recorded = rows.rows() > 0;
    if (!outcome.recorded || rows.Get(0, 0) != "t") return;
    outcome.gave_up = true;
    conn.Exec("UPDATE " + schema_ + ".webhook_deliveries SET state = 'failed', head = false WHERE delivery_id = $1::bigint",
              {id});
    auto disabled = conn.Exec("UPDATE " + schema_ + ".webhook_subscriptions SET state = 'disabled',"
                              " disabled_reason = $3, updated_at = clock_timestamp() WHERE tenant_id = $1"
                              " AND subscription_id = $2 AND state = 'active' AND deleted_at IS NULL RETURNING 1",
                              {delivery.tenant, delivery.subscription_id,
                               "deliveries failed for longer than the retry window; last error: " + short_error});
    // Disabled: nothing of it is sent until it is resumed (which sets the heads again).
    conn.Exec("UPDATE " + schema_ + ".webhook_deliveries SET head = false WHERE tenant_id = $1 AND subscription_id = $2"
              " AND state = 'pending' AND head",
              {delivery.tenant, delivery.subscription_id});
    if (disabled.rows() > 0) {
      // The tenant's integrators learn of it from the feed (and their other subscriptions).
      AppendEvent(conn, schema_, delivery.tenant, "EVENT_KIND_WEBHOOK_DISABLED", "", delivery.subscription_id);
    }
  });
  return outcome;
}

int PgWebhookRecords::RepairHeads(Clock::time_point deadline) {
  int repaired = 0;
  WithTransaction(pool_, deadline, [&](PgConnection& conn) {
    repaired = static_cast<int>(
        conn.Exec("UPDATE " + schema_ + ".webhook_deliveries d SET head = true FROM (SELECT DISTINCT ON (subscription_id,"
                  " patient_id) delivery_id FROM " + schema_ + ".webhook_deliveries WHERE state = 'pending'"
                  " ORDER BY subscription_id, patient_id, delivery_id) h, " + schema_ + ".webhook_subscriptions s"
                  " WHERE d.delivery_id = h.delivery_id AND NOT d.head AND s.tenant_id = d.tenant_id"
                  " AND s.subscription_id = d.subscription_id AND s.state = 'active' AND s.deleted_at IS NULL")
            .affected_rows());
  });
  return repaired;
}

WebhookQueueStats PgWebhookRecords::QueueStats(Clock::time_point deadline) {
  auto rows = QueryOnce(pool_, deadline,
                        {"SELECT count(*), count(*) FILTER (WHERE attempts > 0),"
                         " coalesce(extract(epoch FROM clock_timestamp() - min(created_at)), 0) FROM " + schema_ +
                             ".webhook_deliveries WHERE state = 'pending'",
                         {}});
  WebhookQueueStats stats;
  stats.pending = std::stoll(rows.Get(0, 0));
  stats.retrying = std::stoll(rows.Get(0, 1));
  stats.oldest_pending_seconds = std::stod(rows.Get(0, 2));
  return stats;
}

}  // namespace physio::assessment
