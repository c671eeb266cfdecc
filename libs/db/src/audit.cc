#include "physio/db/audit.h"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace physio {

namespace {
constexpr int kColumns = 11;
const char* const kInsert =
    ".audit_events (tenant_id, principal, roles, action, patient_id, resource_id, outcome, request_id, peer, "
    "claimed_patient_id, repeats)";

std::vector<PgParam> Row(const AuditActor& actor, const AuditEvent& event) {
  return {actor.tenant,
          actor.principal,
          actor.roles,
          event.action,
          event.patient_id.empty() ? PgParam() : PgParam(event.patient_id),
          event.resource_id.empty() ? PgParam() : PgParam(event.resource_id),
          event.outcome,
          actor.request_id,
          actor.peer.empty() ? PgParam() : PgParam(actor.peer),
          event.claimed_patient_id.empty() ? PgParam() : PgParam(event.claimed_patient_id),
          std::to_string(std::max<long>(1, event.repeats))};
}

thread_local CallAudit* current_call_audit = nullptr;
}  // namespace

AuditTrail::AuditTrail(const PgOptions& pg_options, std::string schema, AuditOptions options)
    : pg_options_(pg_options), schema_(std::move(schema)), options_(options) {
  for (int i = 0; i < std::max(1, options_.writers); ++i) {
    connections_.push_back(std::make_unique<PgConnection>(pg_options_));
    writers_.emplace_back([this, conn = connections_.back().get()] { WriteBatches(*conn); });
  }
}

AuditTrail::~AuditTrail() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  has_work_.notify_all();
  for (auto& writer : writers_) writer.join();
}

void AuditTrail::Submit(const AuditActor& actor, AuditEvent event, Clock::time_point deadline,
                        std::function<void(bool)> done) {
  {
    std::unique_lock lock(mutex_);
    if (!has_room_.wait_until(lock, deadline, [&] { return stopping_ || queue_.size() < options_.queue_limit; }) ||
        stopping_) {
      lock.unlock();
      spdlog::error("audit queue full until the deadline action={} request_id={}", event.action, actor.request_id);
      done(false);
      return;
    }
    queue_.push_back(Pending{Row(actor, event), std::move(done)});
  }
  has_work_.notify_one();
}

bool AuditTrail::TrySubmit(const AuditActor& actor, const AuditEvent& event, std::function<void(bool)> done) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ || queue_.size() >= options_.queue_limit) return false;
    queue_.push_back(Pending{Row(actor, event), std::move(done)});
  }
  has_work_.notify_one();
  return true;
}

std::size_t AuditTrail::queued() const {
  std::lock_guard lock(mutex_);
  return queue_.size();
}

PgStatement AuditTrail::InsertStatement(const AuditActor& actor, const AuditEvent& event) const {
  return {"INSERT INTO " + schema_ + kInsert + " VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11)", Row(actor, event)};
}

void AuditTrail::WriteBatches(PgConnection& conn) {
  for (;;) {
    std::vector<Pending> batch;
    {
      std::unique_lock lock(mutex_);
      has_work_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, all written
      // Everything queued while the previous batch committed goes into this one.
      while (!queue_.empty() && batch.size() < options_.max_batch) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    has_room_.notify_all();
    const bool written = Write(conn, batch);
    // The calls' answers are sent from here (CallPipeline): one that fails must not
    // stop the writer or keep the rest of the batch from being answered.
    for (auto& pending : batch) {
      try {
        pending.done(written);
      } catch (const std::exception& e) {
        spdlog::error("audit: answering a call after its batch failed: {}", e.what());
      }
    }
  }
}

bool AuditTrail::Write(PgConnection& conn, std::vector<Pending>& batch) {
  // One statement for the batch, its parameters moved out of the rows (not copied: a row is about
  // eight strings, and this runs once per audited call).
  std::vector<PgStatement> statement(1);
  std::string& sql = statement[0].sql;
  std::vector<PgParam>& params = statement[0].params;
  sql = "INSERT INTO " + schema_ + kInsert + " VALUES ";
  params.reserve(batch.size() * kColumns);
  for (std::size_t i = 0; i < batch.size(); ++i) {
    sql += i == 0 ? "(" : ",(";
    for (int c = 0; c < kColumns; ++c) {
      sql += c == 0 ? "$" : ",$";
      sql += std::to_string(i * kColumns + c + 1);
      params.push_back(std::move(batch[i].row[c]));
    }
    sql += ")";
  }
  // A connection that was idle while PostgreSQL restarted fails on first use:
  // then one more try on a new connection (a duplicate audit row is possible
  // when the reply alone was lost; a missing one is not).
  for (int attempt = 0;; ++attempt) {
    const bool fresh = !conn.healthy();
    try {
      conn.EnsureConnected(Clock::now() + pg_options_.connect_timeout);
      // The server ends a batch at 2 s (below); the client waits a little longer at most.
      conn.set_deadline(Clock::now() + std::chrono::milliseconds(2500));
      // This connection does nothing but audit batches: one bound for all of them.
      if (fresh) conn.Exec("SET statement_timeout = 2000");
      conn.ExecPipeline(statement);  // one statement, one commit
      return true;
    } catch (const Error& e) {
      if (attempt == 0 && !fresh && e.code() == ErrorCode::kUnavailable) continue;
      spdlog::error("audit batch of {} failed: {}", batch.size(), e.what());
      return false;
    } catch (const std::exception& e) {
      spdlog::error("audit batch of {} failed: {}", batch.size(), e.what());
      return false;
    }
  }
}

CallAudit::CallAudit(const AuditTrail& trail, const AuditActor& actor, std::string action, const AuditTarget& target)
    : trail_(trail), actor_(actor), action_(std::move(action)), target_(target), previous_(current_call_audit) {
  current_call_audit = this;
}

CallAudit::~CallAudit() { current_call_audit = previous_; }

CallAudit* CallAudit::Current() { return current_call_audit; }

PgStatement CallAudit::InsertStatement() const {
  return trail_.InsertStatement(actor_, AuditEvent{action_, target_.patient_id, target_.resource_id, "OK"});
}

}  // namespace physio
