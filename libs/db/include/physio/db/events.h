#pragma once
// The event feed's outbox (table <schema>.events): a change appends its event in
// its own transaction, unnumbered; a reader numbers the committed ones (per
// tenant, gap-free, never renumbered) and reads them back in sequence order.
// Numbering after commit keeps a tenant's writes from queueing on one counter
// row for the length of each commit.
#include <cstdint>
#include <string>
#include <vector>

#include "physio/db/pg.h"

namespace physio {

struct EventRecord {
  std::int64_t sequence = 0;  // per tenant, gap-free, in the order numbered
  std::string kind;           // e.g. "EVENT_KIND_ALERT_RAISED"
  std::string patient_id;
  std::string resource_id;
  std::int64_t occurred_unix_micros = 0;
};

// Inside the change's transaction; takes no lock.
void AppendEvent(PgConnection& conn, const std::string& schema, const std::string& tenant, const std::string& kind,
                 const std::string& patient_id, const std::string& resource_id);

// Numbers `tenant`'s committed, unnumbered events after its last number, in
// the order they were written; one short transaction, only when there are any.
// A reader calls it before EventsAfter.
void SequencePendingEvents(PgPool& pool, Clock::time_point deadline, const std::string& schema,
                           const std::string& tenant);

// The tenants with committed, unnumbered events (at most `limit`): what a background pass
// numbers, so that readers of other services (the webhook dispatcher) see them numbered.
std::vector<std::string> TenantsWithPendingEvents(PgPool& pool, Clock::time_point deadline, const std::string& schema,
                                                  int limit);

// Numbered events of `tenant` after `after` (0: from the first), oldest first,
// at most `limit`; only `kinds` when not empty. One bounded read (QueryOnce).
std::vector<EventRecord> EventsAfter(PgPool& pool, Clock::time_point deadline, const std::string& schema,
                                     const std::string& tenant, std::int64_t after,
                                     const std::vector<std::string>& kinds, int limit);

}  // namespace physio
