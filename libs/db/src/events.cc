#include "physio/db/events.h"

namespace physio {

void AppendEvent(PgConnection& conn, const std::string& schema, const std::string& tenant, const std::string& kind,
                 const std::string& patient_id, const std::string& resource_id) {
  // No sequence yet, so no lock: a tenant's writers commit in parallel (and
  // share WAL flushes). SequencePendingEvents numbers the row once committed.
  conn.Defer({"INSERT INTO " + schema + ".events (tenant_id, kind, patient_id, resource_id) VALUES ($1, $2, $3, $4)",
            {tenant, kind, patient_id.empty() ? PgParam() : PgParam(patient_id),
             resource_id.empty() ? PgParam() : PgParam(resource_id)}});
}

void SequencePendingEvents(PgPool& pool, Clock::time_point deadline, const std::string& schema,
                           const std::string& tenant) {
  auto pending = QueryOnce(
      pool, deadline,
      {"SELECT 1 FROM " + schema + ".events WHERE tenant_id = $1 AND sequence IS NULL LIMIT 1", {tenant}});
  if (pending.rows() == 0) return;
  // One transaction, sent as one pipeline. The upsert locks the tenant's counter
  // row until COMMIT, so numbering passes of two readers (or replicas) take
  // turns; the numbering statement starts after the lock is held, so it sees
  // the previous pass's numbers and only committed rows. Numbers follow the
  // order rows were written in, and a number once given never changes, so a
  // reader past it misses nothing.
  WithPipelinedTransaction(
      pool, deadline,
      {{"INSERT INTO " + schema + ".event_sequences AS s (tenant_id, last) VALUES ($1, 0)"
        " ON CONFLICT (tenant_id) DO UPDATE SET last = s.last",
        {tenant}},
       {"WITH counter AS (SELECT last FROM " + schema + ".event_sequences WHERE tenant_id = $1),"
        " pending AS (SELECT event_id, row_number() OVER (ORDER BY event_id) AS n FROM " + schema +
            ".events WHERE tenant_id = $1 AND sequence IS NULL),"
            " numbered AS (UPDATE " + schema + ".events e SET sequence = (SELECT last FROM counter) + p.n"
            " FROM pending p WHERE e.event_id = p.event_id RETURNING 1)"
            " UPDATE " + schema + ".event_sequences SET last = last + (SELECT count(*) FROM numbered)"
            " WHERE tenant_id = $1",
        {tenant}}},
      [](PgConnection&, std::vector<PgResult>&) { return std::vector<PgStatement>{}; });
}

std::vector<std::string> TenantsWithPendingEvents(PgPool& pool, Clock::time_point deadline, const std::string& schema,
                                                  int limit) {
  // The partial index events_unnumbered holds only unnumbered rows: a loose index scan of its tenants.
  auto rows = QueryOnce(pool, deadline,
                        {"WITH RECURSIVE t AS (SELECT min(tenant_id) AS tenant_id FROM " + schema +
                             ".events WHERE sequence IS NULL UNION ALL SELECT (SELECT min(tenant_id) FROM " + schema +
                             ".events WHERE sequence IS NULL AND tenant_id > t.tenant_id) FROM t WHERE t.tenant_id IS NOT NULL)"
                             " SELECT tenant_id FROM t WHERE tenant_id IS NOT NULL LIMIT $1::int",
                         {std::to_string(limit)}});
  std::vector<std::string> tenants;
  for (int i = 0; i < rows.rows(); ++i) tenants.push_back(rows.Get(i, 0));
  return tenants;
}

std::vector<EventRecord> EventsAfter(PgPool& pool, Clock::time_point deadline, const std::string& schema,
                                     const std::string& tenant, std::int64_t after,
                                     const std::vector<std::string>& kinds, int limit) {
  auto rows = QueryOnce(pool, deadline, {"SELECT sequence, kind, coalesce(patient_id, ''), coalesce(resource_id, ''),"
                        " (extract(epoch FROM occurred_at) * 1000000)::bigint FROM " + schema +
                            ".events WHERE tenant_id = $1 AND sequence > $2::bigint"
                            " AND (cardinality($3::text[]) = 0 OR kind = ANY($3::text[]))"
                            " ORDER BY sequence LIMIT $4::int",
                        {tenant, std::to_string(after), PgTextArray(kinds), std::to_string(limit)}});
  std::vector<EventRecord> events;
  events.reserve(rows.rows());
  for (int i = 0; i < rows.rows(); ++i) {
    events.push_back({std::stoll(rows.Get(i, 0)), rows.Get(i, 1), rows.Get(i, 2), rows.Get(i, 3),
                      std::stoll(rows.Get(i, 4))});
  }
  return events;
}

}  // namespace physio
