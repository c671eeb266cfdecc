#include "physio/db/bulk_export.h"

#include <spdlog/spdlog.h>

#include <map>

#include "physio/common/error.h"
#include "physio/common/fhir_search.h"
#include "physio/common/ids.h"
#include "physio/common/text_list.h"

namespace physio {

namespace {
constexpr auto kStatementBudget = std::chrono::seconds(30);

// One batch's NDJSON lines for one resource type as parts of at most `part_bytes`: the first
// chunk goes on the open part when `room` (what is left of it) takes at least one line.
struct Chunked {
  bool first_appends = false;
  std::vector<std::pair<std::string, int>> chunks;  // text, lines
};
Chunked Chunks(const std::vector<std::string>& lines, std::size_t room, std::size_t part_bytes) {
  Chunked out;
  out.first_appends = room > 0;
  std::size_t cap = out.first_appends ? room : part_bytes;
  out.chunks.emplace_back();
  for (const auto& line : lines) {
    const std::size_t size = line.size() + 1;
    if (out.chunks.back().second > 0 && out.chunks.back().first.size() + size > cap) {
      out.chunks.emplace_back();
      cap = part_bytes;
    } else if (out.chunks.size() == 1 && out.chunks.back().second == 0 && out.first_appends && size > cap) {
      out.first_appends = false;  // not one line fits the open part: a new part
      cap = part_bytes;
    }
    out.chunks.back().first += line;
    out.chunks.back().first += '\n';
    ++out.chunks.back().second;
  }
  return out;
}
}  // namespace

std::string BulkExportScopeSql() {
  return "r.tenant_id = $1 AND ($2 = '' OR r.patient_id IN (SELECT c.patient_id FROM assessment.patient_clinics c"
         " WHERE c.tenant_id = $1 AND c.clinic_id = $2))";
}

BulkExportWorker::BulkExportWorker(PgPool& pool, std::string schema, BulkExportSource& source,
                                   BulkExportSettings settings)
    : pool_(pool),
      schema_(std::move(schema)),
      source_(source),
      settings_(settings),
      owner_(NewId("export")),
      thread_([this](std::stop_token stop) { Loop(stop); }) {}

BulkExportWorker::~BulkExportWorker() {
  thread_.request_stop();
  wake_.notify_all();
}

void BulkExportWorker::Idle(std::stop_token stop, std::chrono::milliseconds period) {
  std::unique_lock lock(mutex_);
  wake_.wait_for(lock, stop, period, [] { return false; });
}

void BulkExportWorker::Loop(std::stop_token stop) {
  auto next_cleanup = Clock::now();
  while (!stop.stop_requested()) {
    bool worked = false;
    try {
      if (Clock::now() >= next_cleanup) {
        Cleanup();
        next_cleanup = Clock::now() + settings_.cleanup;
      }
      worked = RunOne(stop);
    } catch (const std::exception& error) {
      // The stores down, a job's schema not migrated yet: tried again after a pause.
      spdlog::warn("bulk export ({}): {}", schema_, error.what());
    }
    if (!worked) Idle(stop, settings_.poll);
  }
}

bool BulkExportWorker::RunOne(std::stop_token stop) {
  const std::string runs = schema_ + ".bulk_export_runs", files = schema_ + ".bulk_export_files";
  auto deadline = Clock::now() + kStatementBudget;
  const auto open = QueryOnce(
      pool_, deadline,
      {"SELECT j.job_id, j.tenant_id, coalesce(j.group_id, ''), j.types,"
       " coalesce(to_char(j.since AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), '')"
       " FROM assessment.bulk_export_jobs j LEFT JOIN " + runs + " r ON r.job_id = j.job_id"
       " WHERE j.status = 'active' AND j.expires_at > now()"
       " AND (r.job_id IS NULL OR (NOT r.done AND r.lease_until < now()))"
       " ORDER BY j.created_at LIMIT 1",
       {}});
  if (open.rows() == 0) return false;
  BulkExportJob job{open.Get(0, 0), open.Get(0, 1), open.Get(0, 2), {}, open.Get(0, 4)};
  const auto mine = source_.Types();
  for (const auto& type : SplitCommaList(open.Get(0, 3))) {
    if (mine.contains(type)) job.types.insert(type);
  }
  const std::string lease = std::to_string(settings_.lease.count()) + " seconds";
  std::optional<std::string> claimed;
  WithTransaction(pool_, deadline, [&](PgConnection& conn) {
    const auto rows = conn.Exec(
        "INSERT INTO " + runs + " AS r (job_id, tenant_id, lease_owner, lease_until) VALUES ($1, $2, $3, now() + $4::interval)"
        " ON CONFLICT (job_id) DO UPDATE SET lease_owner = EXCLUDED.lease_owner, lease_until = EXCLUDED.lease_until"
        " WHERE r.lease_until < now() AND NOT r.done RETURNING r.checkpoint",
        {job.job_id, job.tenant, owner_, lease});
    if (rows.rows() > 0) claimed = rows.Get(0, 0);
  });
  if (!claimed) return true;  // another replica took it first
  std::string checkpoint = *claimed;
  const auto since = job.since.empty() ? std::nullopt : ParseFhirDate(job.since);
  spdlog::info("bulk export ({}): job {} from checkpoint '{}'", schema_, job.job_id, checkpoint);

  for (bool done = job.types.empty(); !stop.stop_requested();) {
    bool lost = false, cancelled = false;
    deadline = Clock::now() + kStatementBudget;
    try {
    WithTransaction(pool_, deadline, [&](PgConnection& conn) {
      const auto status = conn.Exec("SELECT status = 'active' AND expires_at > now() FROM assessment.bulk_export_jobs"
                                    " WHERE job_id = $1",
                                    {job.job_id});
      if (status.rows() == 0 || status.Get(0, 0) != "t") {
        cancelled = true;
        return;
      }
      BulkExportSource::Batch batch;
      if (!done) batch = source_.Next(conn, job, checkpoint, settings_.batch_records);
      else batch.done = true;
      std::map<std::string, std::vector<std::string>> lines;
      long written = 0;
      for (const auto& resource : batch.resources) {
        const std::string type = resource.value("resourceType", "");
        if (!job.types.contains(type)) continue;
        if (since) {
          const nlohmann::json* updated = nullptr;
          if (resource.contains("meta") && resource["meta"].contains("lastUpdated")) updated = &resource["meta"]["lastUpdated"];
          const auto changed = updated != nullptr && updated->is_string() ? ParseFhirDate(updated->get<std::string>()) : std::nullopt;
          if (changed && changed->begin <= since->begin) continue;
        }
        lines[type].push_back(resource.dump());
        ++written;
      }
      for (const auto& [type, type_lines] : lines) {
        const auto last = conn.Exec("SELECT part, octet_length(body) FROM " + files +
                                        " WHERE job_id = $1 AND resource_type = $2 ORDER BY part DESC LIMIT 1",
                                    {job.job_id, type});
        int part = last.rows() == 0 ? 0 : std::stoi(last.Get(0, 0));
        const std::size_t used = last.rows() == 0 ? settings_.part_bytes : std::stoul(last.Get(0, 1));
        const std::size_t room = used >= settings_.part_bytes ? 0 : settings_.part_bytes - used;
        const Chunked chunked = Chunks(type_lines, room, settings_.part_bytes);
        for (std::size_t i = 0; i < chunked.chunks.size(); ++i) {
          const auto& [text, count] = chunked.chunks[i];
          if (count == 0) continue;
          if (i == 0 && chunked.first_appends && part > 0) {
            conn.Exec("UPDATE " + files + " SET body = body || $4, line_count = line_count + $5"
                      " WHERE job_id = $1 AND resource_type = $2 AND part = $3",
                      {job.job_id, type, std::to_string(part), text, std::to_string(count)});
          } else {
            ++part;
            conn.Exec("INSERT INTO " + files + " (job_id, tenant_id, resource_type, part, line_count, body)"
                      " VALUES ($1, $2, $3, $4, $5, $6)",
                      {job.job_id, job.tenant, type, std::to_string(part), std::to_string(count), text});
          }
        }
      }
      const auto updated = conn.Exec(
          "UPDATE " + runs + " SET checkpoint = $3, lease_until = now() + $4::interval, done = $5,"
          " written = written + $6 WHERE job_id = $1 AND lease_owner = $2",
          {job.job_id, owner_, batch.checkpoint, lease, batch.done ? "true" : "false", std::to_string(written)});
      if (updated.affected_rows() == 0) {
        lost = true;
        throw Error(ErrorCode::kAborted, "bulk export lease lost");  // rolls the batch back
      }
      checkpoint = batch.checkpoint;
      done = batch.done;
    });
    } catch (const Error&) {
      if (lost) return true;  // another worker has the job now; this batch was rolled back
      throw;
    }
    if (cancelled || lost || done) {
      if (done) spdlog::info("bulk export ({}): job {} written", schema_, job.job_id);
      return true;
    }
    if (settings_.pause.count() > 0) Idle(stop, settings_.pause);
  }
  // Stopping: the lease is given back, so the next start (or another replica) carries on at once.
  WithTransaction(pool_, Clock::now() + std::chrono::seconds(2), [&](PgConnection& conn) {
    conn.Exec("UPDATE " + runs + " SET lease_until = now() WHERE job_id = $1 AND lease_owner = $2", {job.job_id, owner_});
  });
  return true;
}

void BulkExportWorker::Cleanup() {
  const auto deadline = Clock::now() + kStatementBudget;
  // Parts and progress of jobs that expired, were cancelled or are gone.
  WithTransaction(pool_, deadline, [&](PgConnection& conn) {
    for (const char* table : {"bulk_export_files", "bulk_export_runs"}) {
      conn.Exec("DELETE FROM " + schema_ + "." + table + " t WHERE NOT EXISTS (SELECT 1 FROM assessment.bulk_export_jobs j"
                " WHERE j.job_id = t.job_id AND j.status = 'active' AND j.expires_at > now())");
    }
    if (schema_ == "assessment") {
      // The jobs themselves a day after they ended.
      conn.Exec("DELETE FROM assessment.bulk_export_jobs WHERE expires_at < now() - interval '1 day'");
    }
  });
}

}  // namespace physio
