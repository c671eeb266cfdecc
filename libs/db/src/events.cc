#include "physio/db/events.h"

namespace physio {

void AppendEvent(PgConnection& conn, const std::string& schema, const std::string& tenant, const std::string& kind,
                 const std::string& patient_id, const std::string& resource_id) {
  // The row lock taken here is what orders commits: the next writer of this
  // tenant waits for it, so sequence n+1 can never be visible before n.
  auto next = conn.Exec("INSERT INTO " + schema + ".event_sequences AS s (tenant_id, last) VALUES ($1, 1)"
                        " ON CONFLICT (tenant_id) DO UPDATE SET last = s.last + 1 RETURNING last",
                        {tenant});
  conn.Exec("INSERT INTO " + schema + ".events (tenant_id, sequence, kind, patient_id, resource_id)"
            " VALUES ($1, $2, $3, $4, $5)",
            {tenant, next.Get(0, 0), kind, patient_id.empty() ? PgParam() : PgParam(patient_id),
             resource_id.empty() ? PgParam() : PgParam(resource_id)});
}

std::vector<EventRecord> EventsAfter(PgConnection& conn, const std::string& schema, const std::string& tenant,
                                     std::int64_t after, const std::vector<std::string>& kinds, int limit) {
  std::string kind_list = "{";
  for (std::size_t i = 0; i < kinds.size(); ++i) kind_list += (i ? "," : "") + kinds[i];
  kind_list += "}";
  auto rows = conn.Exec("SELECT sequence, kind, coalesce(patient_id, ''), coalesce(resource_id, ''),"
                        " (extract(epoch FROM occurred_at) * 1000000)::bigint FROM " + schema +
                            ".events WHERE tenant_id = $1 AND sequence > $2::bigint"
                            " AND (cardinality($3::text[]) = 0 OR kind = ANY($3::text[]))"
                            " ORDER BY sequence LIMIT $4::int",
                        {tenant, std::to_string(after), kind_list, std::to_string(limit)});
  std::vector<EventRecord> events;
  events.reserve(rows.rows());
  for (int i = 0; i < rows.rows(); ++i) {
    events.push_back({std::stoll(rows.Get(i, 0)), rows.Get(i, 1), rows.Get(i, 2), rows.Get(i, 3),
                      std::stoll(rows.Get(i, 4))});
  }
  return events;
}

}  // namespace physio
