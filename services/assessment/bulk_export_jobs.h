#pragma once
// The FHIR bulk export jobs' store (docs/fhir.md#bulk): the jobs this service keeps
// (assessment.bulk_export_jobs), and every service's progress and files for them (each
// service's bulk_export_runs and bulk_export_files, read as a member of physio_audit_reader).
// The writing itself is each service's BulkExportWorker (libs/db bulk_export.h).
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "physio/common/clock.h"
#include "physio/db/pg.h"

namespace physio::assessment {

struct BulkExportJobRecord {
  std::string job_id;
  std::string tenant;
  std::string requested_by;
  std::string group_id;            // a clinic, or empty: the whole tenant
  std::vector<std::string> types;
  std::string since;               // RFC 3339, or empty
  std::string request_url;
  std::string status;              // active or cancelled
  std::int64_t created_micros = 0;  // since the epoch
  std::int64_t expires_micros = 0;
  bool expired = false;
};

// What one service has done of a job.
struct BulkExportProgress {
  std::string service;
  bool done = false;
  std::int64_t written = 0;
  std::string error;
};

struct BulkExportFile {
  std::string service;
  std::string type;
  int part = 0;
  int count = 0;
};

class BulkExportJobs {
 public:
  virtual ~BulkExportJobs() = default;
  // Stores a new job (job_id, tenant, requested_by, group, types, since, request_url), kept `keep`.
  virtual void Create(const BulkExportJobRecord& job, std::chrono::seconds keep, Clock::time_point deadline) = 0;
  // The tenant's job, if it exists (expired ones too, until they are deleted).
  virtual std::optional<BulkExportJobRecord> Find(const std::string& tenant, const std::string& job_id,
                                                  Clock::time_point deadline) = 0;
  // The tenant's jobs not yet expired nor cancelled.
  virtual int ActiveJobs(const std::string& tenant, Clock::time_point deadline) = 0;
  // Each service's progress on the job (a service that has not started it has no row).
  virtual std::vector<BulkExportProgress> Progress(const std::string& job_id, Clock::time_point deadline) = 0;
  // The job's files, service, type and part order.
  virtual std::vector<BulkExportFile> Files(const std::string& job_id, Clock::time_point deadline) = 0;
  // One file's NDJSON, if it exists.
  virtual std::optional<std::string> FileBody(const std::string& job_id, const std::string& service,
                                              const std::string& type, int part, Clock::time_point deadline) = 0;
  // Marks the job cancelled (every service's worker then deletes its files).
  virtual void Cancel(const std::string& tenant, const std::string& job_id, Clock::time_point deadline) = 0;
};

class PgBulkExportJobs final : public BulkExportJobs {
 public:
  explicit PgBulkExportJobs(PgPool& pool) : pool_(pool) {}
  void Create(const BulkExportJobRecord& job, std::chrono::seconds keep, Clock::time_point deadline) override;
  std::optional<BulkExportJobRecord> Find(const std::string& tenant, const std::string& job_id,
                                          Clock::time_point deadline) override;
  int ActiveJobs(const std::string& tenant, Clock::time_point deadline) override;
  std::vector<BulkExportProgress> Progress(const std::string& job_id, Clock::time_point deadline) override;
  std::vector<BulkExportFile> Files(const std::string& job_id, Clock::time_point deadline) override;
  std::optional<std::string> FileBody(const std::string& job_id, const std::string& service, const std::string& type,
                                      int part, Clock::time_point deadline) override;
  void Cancel(const std::string& tenant, const std::string& job_id, Clock::time_point deadline) override;

 private:
  PgPool& pool_;
};

// The services whose export tables the status and the files are read from.
inline const std::vector<std::string>& BulkExportServices() {
  static const std::vector<std::string> kServices = {"assessment", "planning", "progress"};
  return kServices;
}

}  // namespace physio::assessment
