#include "bulk_export_jobs.h"

#include <algorithm>

#include "physio/common/text_list.h"

namespace physio::assessment {

namespace {
constexpr const char* kJobColumns =
    "job_id, tenant_id, requested_by, coalesce(group_id, ''), types,"
    " coalesce(to_char(since AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), ''), request_url, status,"
    " (extract(epoch FROM created_at) * 1000000)::bigint, (extract(epoch FROM expires_at) * 1000000)::bigint,"
    " expires_at <= now()";

BulkExportJobRecord JobAt(const PgResult& rows, int i) {
  BulkExportJobRecord job;
  job.job_id = rows.Get(i, 0);
  job.tenant = rows.Get(i, 1);
  job.requested_by = rows.Get(i, 2);
  job.group_id = rows.Get(i, 3);
  job.types = SplitCommaList(rows.Get(i, 4));
  job.since = rows.Get(i, 5);
  job.request_url = rows.Get(i, 6);
  job.status = rows.Get(i, 7);
  job.created_micros = std::stoll(rows.Get(i, 8));
  job.expires_micros = std::stoll(rows.Get(i, 9));
  job.expired = rows.Get(i, 10) == "t";
  return job;
}

bool KnownService(const std::string& service) {
  const auto& services = BulkExportServices();
  return std::find(services.begin(), services.end(), service) != services.end();
}
}  // namespace

void PgBulkExportJobs::Create(const BulkExportJobRecord& job, std::chrono::seconds keep, Clock::time_point deadline) {
  std::string types;
  for (const auto& type : job.types) types += (types.empty() ? "" : ",") + type;
  WithTransaction(pool_, deadline, [&](PgConnection& conn) {
    conn.Exec("INSERT INTO assessment.bulk_export_jobs (job_id, tenant_id, requested_by, group_id, types, since,"
              " request_url, expires_at) VALUES ($1, $2, $3, nullif($4, ''), $5, nullif($6, '')::timestamptz, $7,"
              " now() + $8::interval)",
              {job.job_id, job.tenant, job.requested_by, job.group_id, types, job.since, job.request_url,
               std::to_string(keep.count()) + " seconds"});
  });
}

std::optional<BulkExportJobRecord> PgBulkExportJobs::Find(const std::string& tenant, const std::string& job_id,
                                                          Clock::time_point deadline) {
  auto rows = QueryOnce(pool_, deadline,
                        {std::string("SELECT ") + kJobColumns +
                             " FROM assessment.bulk_export_jobs WHERE tenant_id = $1 AND job_id = $2",
                         {tenant, job_id}});
  if (rows.rows() == 0) return std::nullopt;
  return JobAt(rows, 0);
}

int PgBulkExportJobs::ActiveJobs(const std::string& tenant, Clock::time_point deadline) {
  auto rows = QueryOnce(pool_, deadline,
                        {"SELECT count(*) FROM assessment.bulk_export_jobs WHERE tenant_id = $1 AND status = 'active'"
                         " AND expires_at > now()",
                         {tenant}});
  return std::stoi(rows.Get(0, 0));
}

std::vector<BulkExportProgress> PgBulkExportJobs::Progress(const std::string& job_id, Clock::time_point deadline) {
  std::string sql;
  for (const auto& service : BulkExportServices()) {
    sql += (sql.empty() ? "" : " UNION ALL ") + std::string("SELECT '") + service + "', done, written, coalesce(error, '')"
           " FROM " + service + ".bulk_export_runs WHERE job_id = $1";
  }
  auto rows = QueryOnce(pool_, deadline, {sql, {job_id}});
  std::vector<BulkExportProgress> out;
  for (int i = 0; i < rows.rows(); ++i) {
    out.push_back({rows.Get(i, 0), rows.Get(i, 1) == "t", std::stoll(rows.Get(i, 2)), rows.Get(i, 3)});
  }
  return out;
}

std::vector<BulkExportFile> PgBulkExportJobs::Files(const std::string& job_id, Clock::time_point deadline) {
  std::string sql;
  for (const auto& service : BulkExportServices()) {
    sql += (sql.empty() ? "" : " UNION ALL ") + std::string("SELECT '") + service +
           "', resource_type, part, line_count FROM " + service + ".bulk_export_files WHERE job_id = $1";
  }
  auto rows = QueryOnce(pool_, deadline, {"SELECT * FROM (" + sql + ") f ORDER BY 1, 2, 3", {job_id}});
  std::vector<BulkExportFile> out;
  for (int i = 0; i < rows.rows(); ++i) {
    out.push_back({rows.Get(i, 0), rows.Get(i, 1), std::stoi(rows.Get(i, 2)), std::stoi(rows.Get(i, 3))});
  }
  return out;
}

std::optional<std::string> PgBulkExportJobs::FileBody(const std::string& job_id, const std::string& service,
                                                      const std::string& type, int part, Clock::time_point deadline) {
  if (!KnownService(service)) return std::nullopt;
  auto rows = QueryOnce(pool_, deadline,
                        {"SELECT body FROM " + service +
                             ".bulk_export_files WHERE job_id = $1 AND resource_type = $2 AND part = $3",
                         {job_id, type, std::to_string(part)}});
  if (rows.rows() == 0) return std::nullopt;
  return rows.Get(0, 0);
}

void PgBulkExportJobs::Cancel(const std::string& tenant, const std::string& job_id, Clock::time_point deadline) {
  WithTransaction(pool_, deadline, [&](PgConnection& conn) {
    conn.Exec("UPDATE assessment.bulk_export_jobs SET status = 'cancelled' WHERE tenant_id = $1 AND job_id = $2",
              {tenant, job_id});
  });
}

}  // namespace physio::assessment
