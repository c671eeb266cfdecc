#pragma once
// A small RAII layer over libpq:
//  - PgPool: fixed-size pool; a lease waits at most until the caller's deadline.
//  - Every query is parameterised (never string-built) and bounded twice: each
//    transaction sets statement_timeout to the caller's remaining time (the
//    server's bound; for a one-statement read, the session's: ExecBounded), and
//    the client waits on the socket only until the deadline
//    (non-blocking libpq and poll): a frozen or partitioned server, or a COMMIT
//    waiting for a missing synchronous standby (which ignores statement_timeout),
//    cannot hold a worker past its call. At the deadline the statement is
//    cancelled (best effort, on a background thread) and the connection dropped:
//    UNAVAILABLE, since a COMMIT's outcome is then unknown.
//  - Connects are non-blocking too, bounded per host by connect_timeout (in
//    milliseconds, not libpq's whole seconds) and in all by the deadline; with a
//    host list (a Patroni cluster) each host is tried in turn for one that
//    target_session_attrs accepts (read-write: the primary).
//  - A COMMIT answered with PostgreSQL's "canceling wait for synchronous
//    replication" warning committed locally only: UNAVAILABLE, never OK.
//  - SQLSTATE 25006 (read-only transaction: a demoted primary, a standby) and
//    connection loss make the whole pool redial.
//  - Failures are classified: connection loss -> Error(kUnavailable) and the
//    connection is dropped; serialization/deadlock -> kAborted; statement timeout
//    -> kDeadlineExceeded; unique violation -> PgUniqueViolation (callers decide).
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "physio/common/bounded_pool.h"
#include "physio/common/error.h"
#include "physio/common/clock.h"

// libpq's types (PGconn, PGresult), declared so this header does not bring
// <libpq-fe.h> to every user of the pool.
struct pg_conn;
struct pg_result;

namespace physio {

struct PgOptions {
  // One host, or a comma-separated list tried in order (a highly available cluster).
  std::string host = "127.0.0.1";
  // One port for every host, or a comma-separated list with one per host.
  std::string ports = "5432";
  // libpq target_session_attrs for each host: read-write (the primary), any, primary, ...
  std::string target_session_attrs = "read-write";
  std::string user = "postgres";
  std::string password;
  std::string database = "physio";
  std::string sslmode = "prefer";  // libpq sslmode: disable, prefer, require, verify-ca, verify-full
  std::string sslrootcert;         // CA file for verify-ca / verify-full
  int pool_size = 8;
  std::chrono::milliseconds connect_timeout{2000};
  std::chrono::milliseconds statement_timeout{5000};  // upper bound per transaction
  // Statements with parameters are prepared once per connection (named) and then
  // only bound and run: PostgreSQL parses and analyses each SQL text once, not on
  // every call. Off behind a pooler that hands a session's statements to other
  // server connections (PgBouncer's transaction mode before 1.21).
  bool prepared_statements = true;
  // How the prepared statements are planned (PostgreSQL's plan_cache_mode):
  // - "auto": PostgreSQL's default. A statement is planned for its values on its
  //   first five runs, then keeps a generic plan if that costs no more. A statement
  //   whose best plan depends on its values (PlannedForEachCall: an optional filter,
  //   "$2 = '' OR patient_id = $2"; an array of any length) runs unnamed instead,
  //   so it is planned for each call's values.
  // - "force_custom_plan": every run of every statement planned for its values.
  std::string plan_cache_mode = "auto";
};

// True for a statement whose best plan depends on its values (" OR ", "ANY(", "unnest("):
// under plan_cache_mode=auto it runs unnamed, planned for each call's values.
bool PlannedForEachCall(std::string_view sql);

// True for a statement QueryOnce may run: SHOW, a SELECT, or a WITH ... SELECT
// that modifies nothing (no INSERT, UPDATE, DELETE, MERGE, TRUNCATE, no row locks).
bool IsReadOnlyStatement(std::string_view sql);

// The hosts and ports of `options`, paired; throws std::invalid_argument when the
// lists do not match (one port for all hosts, or one per host).
std::vector<std::pair<std::string, std::string>> PgEndpoints(const PgOptions& options);

class PgUniqueViolation : public Error {
 public:
  PgUniqueViolation(const std::string& constraint, const std::string& message)
      : Error(ErrorCode::kAlreadyExists, message), constraint_(constraint) {}
  const std::string& constraint() const { return constraint_; }

 private:
  std::string constraint_;
};

using PgParam = std::optional<std::string>;  // nullopt is SQL NULL

class PgResult {
 public:
  explicit PgResult(pg_result* result) : result_(result) {}
  PgResult(PgResult&&) noexcept = default;
  PgResult& operator=(PgResult&&) noexcept = default;
  int rows() const;
  bool IsNull(int row, int col) const;
  std::string Get(int row, int col) const;
  long GetLong(int row, int col) const { return std::stol(Get(row, col)); }
  // Rows an INSERT, UPDATE or DELETE touched.
  long affected_rows() const;
  // A bytea column in text (hex) form.
  std::string GetBytes(int row, int col) const;
  pg_result* raw() const { return result_.get(); }
  pg_result* release() { return result_.release(); }

 private:
  struct ResultDeleter {
    void operator()(pg_result* result) const;
  };
  std::unique_ptr<pg_result, ResultDeleter> result_;
};

// One parameterised statement, for sending several in one round trip.
struct PgStatement {
  std::string sql;
  std::vector<PgParam> params;
};

class PgConnection {
 public:
  // `epoch` (optional): the pool's; see ConnectionEpoch.
  explicit PgConnection(const PgOptions& options, ConnectionEpoch* epoch = nullptr) : options_(options), epoch_(epoch) {}
  PgResult Exec(const std::string& sql, const std::vector<PgParam>& params = {});
  // The statements in one round trip (libpq pipeline mode), results in order;
  // throws as Exec does for the first that failed (the rest are then not run).
  std::vector<PgResult> ExecPipeline(const std::vector<PgStatement>& statements);
  // Several statements without parameters (migrations).
  PgResult ExecScript(const std::string& sql);
  // One statement on its own (no transaction block around it), bounded on the
  // server by the session's statement_timeout: `timeout_ms` (the caller's budget,
  // at most the configured bound) rounded down to a quarter of a second from one
  // second up. The SET travels in the same round trip, and only when that value
  // changes, so a read is usually one statement on the wire rather than four
  // (BEGIN, SET LOCAL, it, COMMIT).
  PgResult ExecBounded(const PgStatement& statement, long timeout_ms);
  // A write inside a transaction whose result nobody reads (an INSERT of a new
  // row): held, and sent in order ahead of the connection's next statement, in
  // the same round trip (the transaction's COMMIT at the latest). Its failure is
  // thrown by that statement; a unique violation goes through
  // `on_unique_violation` first when given (which may throw a clearer error).
  // Rolling back drops what is held. Reads after it see it, as they would have.
  void Defer(PgStatement statement, std::function<void(const PgUniqueViolation&)> on_unique_violation = {});
  // Drops the held writes (a rollback; the connection goes back to its pool).
  void DropDeferred() { deferred_.clear(); }
  // Connects if needed (bounded by connect_timeout per host and by `deadline`) and
  // bounds every statement from now on by `deadline`.
  void EnsureConnected(Clock::time_point deadline);
  // Moves the bound of the statements that follow (a long index build).
  void set_deadline(Clock::time_point deadline) { deadline_ = deadline; }
  bool healthy() const;
  // A transaction is open on the server (BEGIN sent and neither committed nor rolled back).
  bool in_transaction() const;
  void Discard() {
    conn_.reset();
    deferred_.clear();
  }
  // The host:port this connection reached (empty when not connected).
  std::string endpoint() const;

 private:
  struct ConnDeleter {
    void operator()(pg_conn* c) const;
  };
  struct Deferred {
    PgStatement statement;
    std::function<void(const PgUniqueViolation&)> on_unique_violation;
  };
  // The pipeline itself; a failure of statement i < deferred.size() goes through its handler.
  std::vector<PgResult> RunPipeline(const std::vector<PgStatement>& statements, const std::vector<Deferred>& deferred);
  // Sends `statement` in pipeline mode, prepared first when it should be and is not yet.
  enum class Sent { kFailed, kStatement, kPrepareAndStatement };
  Sent SendInPipeline(const PgStatement& statement, const char* const* values);
  bool TryHost(const std::string& host, const std::string& port, Clock::time_point until, std::string* why);
  // How long the client waits on the socket: the deadline and a little more.
  Clock::time_point WaitUntil() const;
  // Sends what libpq holds and waits for one result (nullptr: the command's results are over).
  void Flush();
  pg_result* NextResult();
  // The deadline passed with a statement in flight: cancel it, drop the connection, UNAVAILABLE.
  [[noreturn]] void TimedOut();
  // After a command's results: a COMMIT the server could not confirm as replicated.
  void CheckReplicationWarning();
  static void OnNotice(void* self, const pg_result* notice);
  PgResult Checked(pg_result* raw);
  [[noreturn]] void CheckFailed(const pg_result* raw);
  // The connection is gone (PostgreSQL closed it, restarted, shut down).
  [[noreturn]] void Lost(const std::string& why);
  const PgOptions options_;  // its own copy: a connection may outlive the options it was made from
  ConnectionEpoch* epoch_;
  std::uint64_t dialled_epoch_ = 0;
  Clock::time_point deadline_{};
  std::size_t next_host_ = 0;  // the host tried first on the next connect (the last that worked)
  std::string endpoint_;
  bool replication_unconfirmed_ = false;
  std::unique_ptr<pg_conn, ConnDeleter> conn_;
  std::vector<Deferred> deferred_;
  // The statements prepared on this connection (SQL text -> name); cleared with each new connection.
  std::unordered_map<std::string, std::string> prepared_;
  std::uint64_t prepared_count_ = 0;
  // The session's statement_timeout as ExecBounded last set it; -1: unknown (a new session).
  long session_timeout_ms_ = -1;
};

// A bytea parameter in hex text form.
std::string PgBytes(const std::string& bytes);
// A text[] parameter in PostgreSQL's array literal form, each element quoted (pass it as "$n::text[]").
std::string PgTextArray(const std::vector<std::string>& values);

using PgLease = BoundedPool<PgConnection>::Lease;

class PgPool {
 public:
  explicit PgPool(PgOptions options);
  PgLease Lease(Clock::time_point deadline) { return connections_.Acquire(deadline); }
  bool Ping(std::chrono::milliseconds timeout);
  const PgOptions& options() const { return options_; }
  PoolStats Stats() { return connections_.Stats(); }

 private:
  PgOptions options_;  // before connections_, which are made from it
  ConnectionEpoch epoch_;
  BoundedPool<PgConnection> connections_;
};

// Runs `body` in one transaction (READ COMMITTED) bounded by `deadline`;
// commits when it returns, rolls back when it throws. BEGIN is held
// (PgConnection::Defer) and sent with the body's first statement.
void WithTransaction(PgPool& pool, Clock::time_point deadline, const std::function<void(PgConnection&)>& body);

// One read-only statement (IsReadOnlyStatement; anything else throws kInternal
// before it is sent) in one round trip and one implicit transaction, bounded by
// `deadline` (see ExecBounded).
PgResult QueryOnce(PgPool& pool, Clock::time_point deadline, const PgStatement& statement);

// The same with fewer round trips: `opening` statements travel with BEGIN
// (their results are handed to `body`), and the statements `body` returns
// travel with COMMIT. A short write is then three round trips, not six. With
// no `opening`, BEGIN is held (PgConnection::Defer) until the first statement
// that needs an answer, or COMMIT: a transaction of held writes is one round trip.
void WithPipelinedTransaction(
    PgPool& pool, Clock::time_point deadline, const std::vector<PgStatement>& opening,
    const std::function<std::vector<PgStatement>(PgConnection&, std::vector<PgResult>& opened)>& body);

}  // namespace physio
