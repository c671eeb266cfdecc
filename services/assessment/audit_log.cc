#include "audit_log.h"

#include "physio/common/error.h"

namespace physio::assessment {

AuditPage PgAuditLog::List(const std::string& tenant, const AuditFilter& filter, const KeysetPosition& after,
                           int page_size, Clock::time_point deadline) {
  // Which trails exist here (a service never started has none) and which this role may read.
  std::vector<std::string> schemas;
  {
    auto present = QueryOnce(pool_, deadline,
                             {"SELECT s, has_table_privilege(s || '.audit_events', 'SELECT') FROM unnest($1::text[]) s"
                              " WHERE to_regclass(s || '.audit_events') IS NOT NULL",
                              {PgTextArray(kAuditedSchemas)}});
    for (int i = 0; i < present.rows(); ++i) {
      const std::string schema = present.Get(i, 0);
      if (!filter.service.empty() && schema != filter.service) continue;
      if (present.Get(i, 1) != "t") {
        throw Error(ErrorCode::kFailedPrecondition,
                    "the audit trail of the " + schema +
                        " service is not readable by this service's database role; grant it physio_audit_reader "
                        "(docs/security.md, Audit trail)");
      }
      schemas.push_back(schema);
    }
  }
  AuditPage page;
  if (schemas.empty()) return page;
  // $1 tenant, $2 patient, $3 actor, $4 outcome, $5 from, $6 to, $7 clinics, $8/$9/$10 the position, $11 limit.
  std::string cursor_service, cursor_id;
  if (after.created_at.has_value()) {
    const std::string& position = after.id.value();
    const auto colon = position.find(':');
    if (colon == std::string::npos) ThrowInvalidArgument("page_token", "is not a token this service issued for this list");
    cursor_service = position.substr(0, colon);
    cursor_id = position.substr(colon + 1);
    if (cursor_id.empty() || cursor_id.find_first_not_of("0123456789") != std::string::npos || cursor_id.size() > 18) {
      ThrowInvalidArgument("page_token", "is not a token this service issued for this list");
    }
  }
  std::string sql = "SELECT * FROM (";
  for (std::size_t i = 0; i < schemas.size(); ++i) {
    const std::string& schema = schemas[i];
    const std::string select =
        "SELECT '" + schema +
        "' AS service, a.event_id, a.occurred_at, floor(extract(epoch FROM a.occurred_at))::bigint AS seconds,"
        " (extract(microseconds FROM a.occurred_at)::bigint % 1000000) * 1000 AS nanos, a.principal, a.roles, a.action,"
        " coalesce(a.patient_id, ''), coalesce(a.resource_id, ''), a.outcome, a.request_id, coalesce(a.peer, ''),"
        " coalesce(a.claimed_patient_id, ''), a.repeats, a.occurred_at::text AS position_at FROM " +
        schema + ".audit_events a";
    const std::string conditions =
        " a.tenant_id = $1 AND ($2 = '' OR a.patient_id = $2) AND ($3 = '' OR a.principal = $3)"
        " AND ($4 = '' OR a.outcome = $4)"
        " AND ($5::timestamptz IS NULL OR a.occurred_at >= $5::timestamptz)"
        " AND ($6::timestamptz IS NULL OR a.occurred_at < $6::timestamptz)"
        " AND ($8::timestamptz IS NULL OR (a.occurred_at, '" +
        schema + "', a.event_id) < ($8::timestamptz, $9, $10::bigint))";
    const std::string order = " ORDER BY a.occurred_at DESC, a.event_id DESC LIMIT $11";
    if (i > 0) sql += " UNION ALL ";
    if (filter.clinics.empty()) {
      sql += "(" + select + " WHERE cardinality($7::text[]) = 0 AND" + conditions + order + ")";
    } else {
      // The clinic's patients (enrolled now or before), each read from its own index range:
      // the cost follows the clinic's size, not the whole trail's.
      sql += "(SELECT r.* FROM (SELECT patient_id FROM assessment.patient_clinic_history"
             " WHERE tenant_id = $1 AND clinic_id = ANY($7::text[])"
             " UNION SELECT patient_id FROM assessment.patient_clinics WHERE tenant_id = $1 AND clinic_id = ANY($7::text[])) p"
             " CROSS JOIN LATERAL (" + select + " WHERE a.patient_id = p.patient_id AND" + conditions + order +
             ") r ORDER BY r.occurred_at DESC, r.event_id DESC LIMIT $11)";
    }
  }
  sql += ") e ORDER BY occurred_at DESC, service DESC, event_id DESC LIMIT $11";
  auto rows = QueryOnce(
      pool_, deadline,
      {sql,
       {tenant, filter.patient_id, filter.actor, filter.outcome,
        filter.from_time.empty() ? PgParam() : PgParam(filter.from_time),
        filter.to_time.empty() ? PgParam() : PgParam(filter.to_time),
        PgTextArray({filter.clinics.begin(), filter.clinics.end()}), after.created_at,
        !after.created_at.has_value() ? PgParam() : PgParam(cursor_service),
        !after.created_at.has_value() ? PgParam() : PgParam(cursor_id), std::to_string(page_size + 1)}});
  const int returned = std::min(rows.rows(), page_size);
  for (int i = 0; i < returned; ++i) {
    v1::AuditRecord& record = page.events.emplace_back();
    record.set_service(rows.Get(i, 0));
    record.set_event_id(rows.GetLong(i, 1));
    record.mutable_occurred_time()->set_seconds(rows.GetLong(i, 3));
    record.mutable_occurred_time()->set_nanos(static_cast<int>(rows.GetLong(i, 4)));
    record.set_actor(rows.Get(i, 5));
    record.set_actor_roles(rows.Get(i, 6));
    record.set_action(rows.Get(i, 7));
    record.set_patient_id(rows.Get(i, 8));
    record.set_resource_id(rows.Get(i, 9));
    record.set_outcome(rows.Get(i, 10));
    record.set_request_id(rows.Get(i, 11));
    record.set_peer(rows.Get(i, 12));
    record.set_claimed_patient_id(rows.Get(i, 13));
    record.set_repeats(rows.GetLong(i, 14));
  }
  if (rows.rows() > page_size) {
    page.next = KeysetPosition{rows.Get(returned - 1, 15),
                               rows.Get(returned - 1, 0) + ":" + rows.Get(returned - 1, 1)};
  }
  return page;
}

}  // namespace physio::assessment
