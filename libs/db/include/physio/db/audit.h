#pragma once
// The audit trail: who touched which patient's data, when, how it ended. Ids
// only, never PHI. Fail-closed: a call hands out patient data only once its
// audit record is committed.
//  - Reads (and failed calls) go to batching writers: a bounded queue drained by
//    a few threads, each on its own connection, one multi-row INSERT per batch,
//    so one commit (one fsync) serves every call that queued meanwhile (group commit).
//    A call is answered only when the batch holding its record has committed.
//  - Writes made through RunIdempotentWrite carry their record in their own
//    transaction (see CallAudit): the write and its audit commit together.
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <vector>
#include <mutex>
#include <string>
#include <thread>

#include "physio/db/pg.h"

namespace physio {

// Who made the call, as the audit trail records it. The call pipeline builds it
// from the verified call context (libs/server AuditActorOf); the trail itself
// knows nothing of tokens or roles.
struct AuditActor {
  std::string tenant;
  std::string principal;
  std::string roles;       // role names, comma-separated
  std::string request_id;
  std::string peer;        // the caller's address; empty when not known
};

struct AuditEvent {
  std::string action;       // the RPC, e.g. "GetAssessment"
  std::string patient_id;   // empty when not known (e.g. the record was not found)
  std::string resource_id;  // the record touched, if any
  std::string outcome;      // "OK" or a status code name
  // The patient an unauthenticated request named: what an unknown caller typed,
  // kept apart from patient_id so it is never read as an access to that patient.
  std::string claimed_patient_id;
  // How many refused calls this record stands for (1, or more when refusals
  // from one address were aggregated under a flood).
  long repeats = 1;
};

// What a call touched, filled in by the handler as it learns it.
struct AuditTarget {
  std::string patient_id;
  std::string resource_id;
};

struct AuditOptions {
  std::size_t queue_limit = 8192;  // records waiting for a batch; past it Submit waits
  std::size_t max_batch = 512;     // records in one INSERT
  int writers = 2;                 // batch writers, each with its own connection: one fills while one commits
};

class AuditTrail {
 public:
  // Opens its own connection(s) with `pg_options`; the schema is the service's.
  AuditTrail(const PgOptions& pg_options, std::string schema, AuditOptions options = {});
  // Writes what is queued, then stops.
  ~AuditTrail();
  AuditTrail(const AuditTrail&) = delete;
  AuditTrail& operator=(const AuditTrail&) = delete;

  // Queues the record; `done(true)` runs (on the writer thread) once the batch
  // holding it has committed, `done(false)` when it could not be written or no
  // room was free in the queue before `deadline`.
  void Submit(const AuditActor& actor, AuditEvent event, Clock::time_point deadline, std::function<void(bool)> done);
  // The same without waiting for room: false (and `done` never runs) when the queue is full.
  bool TrySubmit(const AuditActor& actor, const AuditEvent& event, std::function<void(bool)> done);
  // The record as one statement of the caller's own transaction.
  PgStatement InsertStatement(const AuditActor& actor, const AuditEvent& event) const;
  std::size_t queued() const;

 private:
  struct Pending {
    std::vector<PgParam> row;
    std::function<void(bool)> done;
  };
  void WriteBatches(PgConnection& conn);
  bool Write(PgConnection& conn, std::vector<Pending>& batch);  // takes the rows' parameters

  PgOptions pg_options_;
  std::string schema_;
  AuditOptions options_;
  std::vector<std::unique_ptr<PgConnection>> connections_;
  mutable std::mutex mutex_;
  std::condition_variable has_work_;
  std::condition_variable has_room_;
  std::deque<Pending> queue_;
  bool stopping_ = false;
  std::vector<std::thread> writers_;
};

// The audit record of the call running on this thread, reachable while the
// call's body runs so that a PostgreSQL write made for it (RunIdempotentWrite)
// can insert the record in the write's own transaction.
class CallAudit {
 public:
  CallAudit(const AuditTrail& trail, const AuditActor& actor, std::string action, const AuditTarget& target);
  ~CallAudit();
  CallAudit(const CallAudit&) = delete;
  CallAudit& operator=(const CallAudit&) = delete;

  // The installed record of this thread's call, or nullptr.
  static CallAudit* Current();
  // For the write's transaction: the record with outcome OK and the target as known now.
  PgStatement InsertStatement() const;
  // After that transaction committed.
  void MarkCommitted() { committed_ = true; }
  bool committed() const { return committed_; }

 private:
  const AuditTrail& trail_;
  const AuditActor& actor_;
  std::string action_;
  const AuditTarget& target_;
  CallAudit* previous_;
  bool committed_ = false;
};

}  // namespace physio
