#pragma once
// A small RAII layer over libpq:
//  - PgPool: fixed-size pool; a lease waits at most until the caller's deadline.
//  - Every query is parameterised (never string-built) and bounded: each
//    transaction sets statement_timeout to the caller's remaining time.
//  - Failures are classified: connection loss -> Error(kUnavailable) and the
//    connection is dropped; serialization/deadlock -> kAborted; statement timeout
//    -> kDeadlineExceeded; unique violation -> PgUniqueViolation (callers decide).
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
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
  std::string host = "127.0.0.1";
  int port = 5432;
  std::string user = "postgres";
  std::string password;
  std::string database = "physio";
  std::string sslmode = "prefer";  // libpq sslmode: disable, prefer, require, verify-ca, verify-full
  std::string sslrootcert;         // CA file for verify-ca / verify-full
  int pool_size = 8;
  std::chrono::milliseconds connect_timeout{2000};
  std::chrono::milliseconds statement_timeout{5000};  // upper bound per transaction
};

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
  void EnsureConnected(Clock::time_point deadline);
  bool healthy() const;
  void Discard() { conn_.reset(); }

 private:
  struct ConnDeleter {
    void operator()(pg_conn* c) const;
  };
  PgResult Checked(pg_result* raw);
  [[noreturn]] void CheckFailed(const pg_result* raw);
  // The connection is gone (PostgreSQL closed it, restarted, shut down).
  [[noreturn]] void Lost(const std::string& why);
  const PgOptions& options_;
  ConnectionEpoch* epoch_;
  std::uint64_t dialled_epoch_ = 0;
  std::unique_ptr<pg_conn, ConnDeleter> conn_;
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
  PgOptions options_;  // before connections_: they refer to it
  ConnectionEpoch epoch_;
  BoundedPool<PgConnection> connections_;
};

// Runs `body` in one transaction (READ COMMITTED) bounded by `deadline`;
// commits when it returns, rolls back when it throws.
void WithTransaction(PgPool& pool, Clock::time_point deadline, const std::function<void(PgConnection&)>& body);

// One read-only statement in one round trip (BEGIN, the statement timeout, the
// statement and COMMIT travel together), bounded by `deadline`.
PgResult QueryOnce(PgPool& pool, Clock::time_point deadline, const PgStatement& statement);

// The same with fewer round trips: `opening` statements travel with BEGIN
// (their results are handed to `body`), and the statements `body` returns
// travel with COMMIT. A short write is then three round trips, not six.
void WithPipelinedTransaction(
    PgPool& pool, Clock::time_point deadline, const std::vector<PgStatement>& opening,
    const std::function<std::vector<PgStatement>(PgConnection&, std::vector<PgResult>& opened)>& body);

}  // namespace physio
