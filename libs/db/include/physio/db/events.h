#pragma once
// The event feed's outbox (table <schema>.events): a change appends its event in
// its own transaction; WatchEvents reads them back in sequence order per tenant.
#include <cstdint>
#include <string>
#include <vector>

#include "physio/db/pg.h"

namespace physio {

struct EventRecord {
  std::int64_t sequence = 0;  // per tenant, gap-free in commit order
  std::string kind;           // e.g. "EVENT_KIND_ALERT_RAISED"
  std::string patient_id;
  std::string resource_id;
  std::int64_t occurred_unix_micros = 0;
};

// Inside the change's transaction. Holds the tenant's sequence row until commit.
void AppendEvent(PgConnection& conn, const std::string& schema, const std::string& tenant, const std::string& kind,
                 const std::string& patient_id, const std::string& resource_id);

// Events of `tenant` after `after` (0: from the first), oldest first, at most `limit`;
// only `kinds` when not empty.
std::vector<EventRecord> EventsAfter(PgConnection& conn, const std::string& schema, const std::string& tenant,
                                     std::int64_t after, const std::vector<std::string>& kinds, int limit);

}  // namespace physio
