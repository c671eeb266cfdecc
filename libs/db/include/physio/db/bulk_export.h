#pragma once
// FHIR Bulk Data export, each service's side (docs/fhir.md#bulk). A job is a row of the
// assessment service's bulk_export_jobs (the tenant or one clinic's patients, resource types,
// _since). Every service runs a BulkExportWorker: it leases an open job it has not finished
// (bulk_export_runs in its own schema), reads its records a batch at a time through its
// BulkExportSource, and appends the resources as NDJSON parts (bulk_export_files) together
// with its checkpoint, in one transaction per batch: a restart, or another replica taking over
// an expired lease, carries on from the checkpoint, and no resource is written twice. Memory
// holds one batch. Expired and cancelled jobs' parts are deleted by the same worker.
#include <nlohmann/json.hpp>

#include <chrono>
#include <mutex>
#include <condition_variable>
#include <set>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "physio/db/pg.h"

namespace physio {

struct BulkExportJob {
  std::string job_id;
  std::string tenant;
  std::string group_id;  // a clinic: only its patients; empty: the whole tenant
  std::set<std::string> types;
  std::string since;  // RFC 3339: only resources changed after it; empty: all
};

// A service's records as FHIR resources, a batch at a time.
class BulkExportSource {
 public:
  virtual ~BulkExportSource() = default;
  // The resource types this service writes.
  virtual std::set<std::string> Types() const = 0;
  struct Batch {
    std::vector<nlohmann::json> resources;  // REST form (id, meta.lastUpdated)
    std::string checkpoint;                 // where the next batch starts
    bool done = false;                      // nothing after this batch
  };
  // Up to `limit` records of the job's tenant (and group) after `checkpoint` ("" from the start),
  // read on `conn`, as resources of any of its types (the worker keeps the job's).
  virtual Batch Next(PgConnection& conn, const BulkExportJob& job, const std::string& checkpoint, int limit) = 0;
};

struct BulkExportSettings {
  std::chrono::milliseconds poll{1000};    // how often open jobs are looked for
  std::chrono::seconds lease{30};          // a job unfinished this long after its last batch is taken over
  int batch_records = 500;                 // records read per batch
  std::size_t part_bytes = 3 * 1024 * 1024;  // an NDJSON part is closed past this (one gRPC message)
  std::chrono::milliseconds pause{0};      // between batches, so an export never crowds out calls
  std::chrono::seconds cleanup{60};        // how often expired and cancelled jobs' parts are deleted
};

// The SQL predicate (on a table aliased `r` with tenant_id and patient_id columns) and its
// parameters that scope a batch query to the job: `$1` the tenant, `$2` the group ('' for all).
std::string BulkExportScopeSql();

class BulkExportWorker {
 public:
  // `schema`: this service's schema (its bulk_export_runs and bulk_export_files).
  BulkExportWorker(PgPool& pool, std::string schema, BulkExportSource& source, BulkExportSettings settings);
  ~BulkExportWorker();
  BulkExportWorker(const BulkExportWorker&) = delete;
  BulkExportWorker& operator=(const BulkExportWorker&) = delete;

 private:
  void Loop(std::stop_token stop);
  // Leases one open job and exports it to the end (or until stopped, cancelled or the lease is
  // lost); false when there was none.
  bool RunOne(std::stop_token stop);
  void Cleanup();
  void Idle(std::stop_token stop, std::chrono::milliseconds period);

  PgPool& pool_;
  std::string schema_;
  BulkExportSource& source_;
  BulkExportSettings settings_;
  std::string owner_;  // this worker's lease name
  std::mutex mutex_;
  std::condition_variable_any wake_;
  std::jthread thread_;
};

}  // namespace physio
