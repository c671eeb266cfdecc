#include "physio/db/audit_archive.h"

#include <fcntl.h>
#include <unistd.h>

#include <regex>
#include <stdexcept>

#include "physio/common/logging.h"

namespace physio {

namespace {
// The columns, as they are archived (occurred_at in UTC, ISO 8601).
const char* const kColumns[] = {"tenant_id", "event_id",  "occurred_at", "principal",          "roles",  "action",
                                "patient_id", "resource_id", "outcome",   "request_id", "peer", "claimed_patient_id",
                                "repeats"};
constexpr int kColumnCount = sizeof kColumns / sizeof kColumns[0];

void WriteFully(int fd, const std::string& text, const std::string& path) {
  std::size_t written = 0;
  while (written < text.size()) {
    const ssize_t n = write(fd, text.data() + written, text.size() - written);
    if (n <= 0) throw std::runtime_error("cannot write " + path);
    written += static_cast<std::size_t>(n);
  }
}

// Writes `text` to `path` durably: a temporary file, fsynced, renamed, and the directory fsynced.
void WriteDurably(const std::filesystem::path& path, const std::string& text) {
  const std::filesystem::path temporary = path.string() + ".partial";
  const int fd = open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) throw std::runtime_error("cannot create " + temporary.string());
  try {
    WriteFully(fd, text, temporary.string());
    if (fsync(fd) != 0) throw std::runtime_error("cannot fsync " + temporary.string());
  } catch (...) {
    close(fd);
    std::filesystem::remove(temporary);
    throw;
  }
  close(fd);
  std::filesystem::rename(temporary, path);
  const int dir = open(path.parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) throw std::runtime_error("cannot open " + path.parent_path().string());
  const int synced = fsync(dir);
  close(dir);
  if (synced != 0) throw std::runtime_error("cannot fsync " + path.parent_path().string());
}
}  // namespace

AuditArchiveResult ArchiveAuditEvents(PgPool& pool, const std::string& schema, std::chrono::hours retention,
                                      const std::filesystem::path& directory, int batch) {
  static const std::regex kIdentifier("[a-z_][a-z0-9_]{0,62}");
  if (!std::regex_match(schema, kIdentifier)) throw Error(ErrorCode::kInvalidArgument, "schema: a lower-case identifier");
  if (retention.count() < 1) throw Error(ErrorCode::kInvalidArgument, "retention: at least one hour");
  std::filesystem::create_directories(directory);
  std::string columns;
  for (int c = 0; c < kColumnCount; ++c) {
    const std::string name = kColumns[c];
    columns += (c ? ", " : "") +
               (name == "occurred_at" ? "to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
                                      : name + "::text");
  }
  // Oldest first by the numeric id (audit_events.event_id: a bare event_id would be the text
  // output column, sorted as text by a full sort of every record due, for every batch).
  const std::string select = "SELECT " + columns + " FROM " + schema +
                             ".audit_events WHERE occurred_at < now() - make_interval(hours => $1::int)"
                             " ORDER BY audit_events.event_id LIMIT $2 FOR UPDATE";
  const std::string remove = "DELETE FROM " + schema + ".audit_events WHERE event_id = ANY($1::bigint[])";
  AuditArchiveResult result;
  for (;;) {
    long moved = 0;
    WithTransaction(pool, Clock::now() + std::chrono::seconds(120), [&](PgConnection& conn) {
      conn.Exec("SET LOCAL statement_timeout = '120s'");
      auto rows = conn.Exec(select, {std::to_string(retention.count()), std::to_string(batch)});
      moved = rows.rows();
      if (moved == 0) return;
      std::string lines, ids;
      for (int r = 0; r < rows.rows(); ++r) {
        lines += "{";
        for (int c = 0; c < kColumnCount; ++c) {
          const std::string name = kColumns[c];
          lines += (c ? ",\"" : "\"") + name + "\":";
          if (rows.IsNull(r, c)) {
            lines += "null";
          } else if (name == "event_id" || name == "repeats") {
            lines += rows.Get(r, c);
          } else {
            lines += "\"" + JsonEscape(rows.Get(r, c)) + "\"";
          }
        }
        lines += "}\n";
        ids += (r ? "," : "{") + rows.Get(r, 1);
      }
      ids += "}";
      const auto file = directory / (schema + "-audit-" + rows.Get(0, 1) + "-" + rows.Get(rows.rows() - 1, 1) + ".jsonl");
      WriteDurably(file, lines);  // on disk before a row goes
      conn.Exec(remove, {ids});
      result.files.push_back(file.string());
    });
    result.rows += moved;
    if (moved < batch) break;
  }
  return result;
}

}  // namespace physio
