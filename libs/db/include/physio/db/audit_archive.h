#pragma once
// Retention of the audit trail: audit records are kept for years (six by
// default: HIPAA's six years for required documentation, 45 CFR 164.316(b)(2);
// set `audit-retention-days` to your jurisdiction's rule), then archived, never
// silently deleted. Each batch of records older than the retention is written
// to a JSON-lines file (one record a line, every column), the file and its
// directory are fsynced, and only then are those rows deleted, in the same
// transaction that selected (and locked) them. A failure anywhere leaves the
// rows in place; a crash between the file and the commit leaves the batch in a
// file and in the table, and the next run writes it again (event_id tells the
// copies apart), so a record is never lost.
//
// The services' own PostgreSQL role may only INSERT into audit_events; the
// archive runs as the schema's owner (physio-audit-archive, a scheduled job).
#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "physio/db/pg.h"

namespace physio {

struct AuditArchiveResult {
  long rows = 0;                    // records moved to files
  std::vector<std::string> files;   // the files written, in order
};

// Moves `schema`'s audit records that occurred more than `retention` ago into
// files `<schema>-audit-<first event_id>-<last event_id>.jsonl` in `directory`,
// at most `batch` records a file. Throws Error on a store failure, and
// std::runtime_error when a file cannot be written (nothing is deleted then).
AuditArchiveResult ArchiveAuditEvents(PgPool& pool, const std::string& schema, std::chrono::hours retention,
                                      const std::filesystem::path& directory, int batch = 10000);

}  // namespace physio
