#pragma once
// Versioned schema migrations per service. Each service owns one Postgres schema;
// its migrations are SQL files compiled into the binary (physio_embed_migrations)
// and applied at start in name order, each once. All pending ones run in one
// transaction (all or nothing) under an advisory lock, so replicas starting
// together do not race. Safe to re-run.
// Platform tables every service has (idempotency, audit_events) come first.
#include <string>
#include <vector>

#include "physio/db/pg.h"

namespace physio {

struct Migration {
  std::string name;  // e.g. "0001_assessments"; the order and the identity
  std::string sql;   // may use the placeholder ${schema}
};

// Returns the names applied by this call (empty when the schema was current).
// `runtime_role`, when given, is the role the service runs as, distinct from
// the schema owner `pool` connects as: it gets the least it needs (the
// schema's tables to read and write, the audit table to INSERT only: it can
// neither change nor read back audit records, nor change the schema).
std::vector<std::string> ApplyMigrations(PgPool& pool, const std::string& schema,
                                         const std::vector<Migration>& service_migrations,
                                         const std::string& runtime_role = "");

// An index on a table that may be large (the audit trail holds years of records): a plain
// CREATE INDEX in a migration would block every write to it (every call's audit record) for the
// whole build and could outlast the statement timeout, so the service would not start.
struct ConcurrentIndex {
  std::string name;     // created in the schema
  std::string table;    // of the schema
  std::string columns;  // e.g. "(tenant_id, occurred_at)"
  // An index a later one made redundant: dropped concurrently instead (each index
  // costs every insert into the table its own write).
  bool retired = false;
};
// The ones every service schema has (platform tables).
const std::vector<ConcurrentIndex>& PlatformConcurrentIndexes();
// Builds the missing ones with CREATE INDEX CONCURRENTLY (writes go on meanwhile), one at a time,
// on a connection of its own without a statement timeout; one replica per schema builds (an
// advisory lock), the others return at once. An index a crash left INVALID is dropped and built
// again. Connect as the schema's owner. Returns the names built by this call; throws Error on a
// store failure (the next start tries again). Queries work without the indexes, only slower.
std::vector<std::string> BuildConcurrentIndexes(const PgOptions& options, const std::string& schema,
                                                const std::vector<ConcurrentIndex>& indexes);

}  // namespace physio
