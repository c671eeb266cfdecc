#include "physio/db/pg.h"

#include <libpq-fe.h>

#include "physio/common/ids.h"

namespace physio {

namespace {
[[noreturn]] void Unavailable(const std::string& why) { throw Error(ErrorCode::kUnavailable, "postgres: " + why); }

long MillisUntil(Clock::time_point deadline) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
}

std::string Trimmed(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

std::string Field(const PGresult* result, int code) {
  const char* value = PQresultErrorField(result, code);
  return value ? value : "";
}
}  // namespace

std::string PgBytes(const std::string& bytes) { return "\\x" + HexEncode(bytes); }

std::string PgTextArray(const std::vector<std::string>& values) {
  std::string out = "{";
  for (const auto& value : values) {
    if (out.size() > 1) out += ',';
    out += '"';
    for (char c : value) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  return out + "}";
}

void PgResult::ResultDeleter::operator()(pg_result* result) const { PQclear(result); }
int PgResult::rows() const { return PQntuples(result_.get()); }
bool PgResult::IsNull(int row, int col) const { return PQgetisnull(result_.get(), row, col) == 1; }
std::string PgResult::Get(int row, int col) const {
  return std::string(PQgetvalue(result_.get(), row, col), PQgetlength(result_.get(), row, col));
}
long PgResult::affected_rows() const {
  const char* count = PQcmdTuples(result_.get());
  return count[0] == '\0' ? 0 : std::stol(count);
}

void PgConnection::ConnDeleter::operator()(pg_conn* c) const { PQfinish(c); }
bool PgConnection::healthy() const { return conn_ != nullptr && PQstatus(conn_.get()) == CONNECTION_OK; }

std::string PgResult::GetBytes(int row, int col) const {
  std::string text = Get(row, col);
  if (text.rfind("\\x", 0) != 0) throw Error(ErrorCode::kInternal, "postgres: bytea not in hex form");
  return HexDecode(text.substr(2));
}

void PgConnection::EnsureConnected(Clock::time_point deadline) {
  if (healthy() && epoch_ && dialled_epoch_ != epoch_->Current()) conn_.reset();  // dialled before PostgreSQL went away
  if (healthy()) return;
  conn_.reset();
  dialled_epoch_ = epoch_ ? epoch_->Current() : 0;
  long budget_ms = std::min<long>(options_.connect_timeout.count(), MillisUntil(deadline));
  if (budget_ms <= 0) Unavailable("deadline exceeded before connecting");
  // libpq's connect_timeout has one-second granularity and a two-second minimum.
  const std::string timeout = std::to_string(std::max<long>(2, (budget_ms + 999) / 1000));
  const std::string port = std::to_string(options_.port);
  // client_min_messages: server NOTICEs would otherwise reach stderr outside the JSON log.
  const char* keys[] = {"host", "port", "user", "password", "dbname", "connect_timeout", "application_name",
                        "options", "sslmode", "sslrootcert", nullptr};
  const char* values[] = {options_.host.c_str(),
                          port.c_str(),
                          options_.user.c_str(),
                          options_.password.empty() ? nullptr : options_.password.c_str(),
                          options_.database.c_str(),
                          timeout.c_str(),
                          "physio",
                          "-c client_min_messages=warning",
                          options_.sslmode.c_str(),
                          options_.sslrootcert.empty() ? nullptr : options_.sslrootcert.c_str(),
                          nullptr};
  conn_.reset(PQconnectdbParams(keys, values, 0));
  if (!conn_ || PQstatus(conn_.get()) != CONNECTION_OK) {
    std::string why = conn_ ? Trimmed(PQerrorMessage(conn_.get())) : "out of memory";
    conn_.reset();
    Unavailable("connect failed: " + why);
  }
}

PgResult PgConnection::Exec(const std::string& sql, const std::vector<PgParam>& params) {
  if (!conn_) Unavailable("not connected");
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
  return Checked(PQexecParams(conn_.get(), sql.c_str(), static_cast<int>(values.size()), nullptr, values.data(),
                              nullptr, nullptr, 0));
}

std::vector<PgResult> PgConnection::ExecPipeline(const std::vector<PgStatement>& statements) {
  if (!conn_) Unavailable("not connected");
  PGconn* conn = conn_.get();
  if (PQenterPipelineMode(conn) != 1) Unavailable("cannot enter pipeline mode: " + Trimmed(PQerrorMessage(conn)));
  bool sent = true;
  for (const auto& statement : statements) {
    std::vector<const char*> values;
    values.reserve(statement.params.size());
    for (const auto& p : statement.params) values.push_back(p ? p->c_str() : nullptr);
    if (PQsendQueryParams(conn, statement.sql.c_str(), static_cast<int>(values.size()), nullptr, values.data(),
                          nullptr, nullptr, 0) != 1) {
      sent = false;
      break;
    }
  }
  if (!sent || PQpipelineSync(conn) != 1) {
    const std::string why = Trimmed(PQerrorMessage(conn));
    if (PQstatus(conn) != CONNECTION_OK) Lost("pipeline send failed: " + why);
    conn_.reset();  // a half-sent pipeline leaves the connection in no known state
    Unavailable("pipeline send failed: " + why);
  }
  // One result per statement (each followed by a null), then the sync marker.
  std::vector<PGresult*> raw;
  for (std::size_t i = 0; i < statements.size(); ++i) {
    PGresult* result = PQgetResult(conn);
    raw.push_back(result);
    if (result == nullptr) break;  // connection lost
    while (PGresult* extra = PQgetResult(conn)) PQclear(extra);
  }
  bool synced = false;
  if (raw.size() == statements.size() && raw.back() != nullptr) {
    if (PGresult* sync = PQgetResult(conn)) {
      synced = PQresultStatus(sync) == PGRES_PIPELINE_SYNC;
      PQclear(sync);
    }
  }
  if (!synced || PQexitPipelineMode(conn) != 1) {
    for (PGresult* result : raw) PQclear(result);
    const std::string why = Trimmed(PQerrorMessage(conn));
    if (PQstatus(conn) != CONNECTION_OK) Lost("pipeline failed: " + why);
    conn_.reset();
    Unavailable("pipeline failed: " + why);
  }
  std::vector<PgResult> results;
  results.reserve(raw.size());
  for (PGresult* result : raw) results.emplace_back(result);  // owned from here, also if Checked throws
  for (std::size_t i = 0; i < results.size(); ++i) {
    if (PQresultStatus(raw[i]) == PGRES_PIPELINE_ABORTED) continue;  // after the one that failed
    if (PQresultStatus(raw[i]) != PGRES_COMMAND_OK && PQresultStatus(raw[i]) != PGRES_TUPLES_OK) {
      CheckFailed(raw[i]);
    }
  }
  return results;
}

PgResult PgConnection::ExecScript(const std::string& sql) {
  if (!conn_) Unavailable("not connected");
  return Checked(PQexec(conn_.get(), sql.c_str()));
}

PgResult PgConnection::Checked(PGresult* raw) {
  PgResult result(raw);
  const ExecStatusType status = raw ? PQresultStatus(raw) : PGRES_FATAL_ERROR;
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return result;
  CheckFailed(raw);
}

void PgConnection::Lost(const std::string& why) {
  conn_.reset();
  if (epoch_) epoch_->StoreLost();
  Unavailable(why);
}

void PgConnection::CheckFailed(const PGresult* raw) {
  if (raw == nullptr || PQstatus(conn_.get()) != CONNECTION_OK) Lost("connection lost: " + Trimmed(PQerrorMessage(conn_.get())));
  const std::string sqlstate = Field(raw, PG_DIAG_SQLSTATE);
  const std::string message = Field(raw, PG_DIAG_MESSAGE_PRIMARY);
  if (sqlstate == "23505") throw PgUniqueViolation(Field(raw, PG_DIAG_CONSTRAINT_NAME), "postgres: " + message);
  if (sqlstate == "40001" || sqlstate == "40P01") throw Error(ErrorCode::kAborted, "postgres: concurrent update, retry");
  if (sqlstate == "57014") throw Error(ErrorCode::kDeadlineExceeded, "postgres: statement timed out");
  // Class 08 (connection), 53 (resources), 57P0x (shutdown): the store is unavailable.
  if (sqlstate.rfind("08", 0) == 0 || sqlstate.rfind("57P", 0) == 0) Lost(message);
  if (sqlstate.rfind("53", 0) == 0) {  // out of resources: this session is suspect, the others need not be
    conn_.reset();
    Unavailable(message);
  }
  throw Error(ErrorCode::kInternal, "postgres " + sqlstate + ": " + message);
}

PgPool::PgPool(PgOptions options)
    : options_(std::move(options)),
      connections_(options_.pool_size, [this] { return std::make_unique<PgConnection>(options_, &epoch_); },
                   "postgres") {}

bool PgPool::Ping(std::chrono::milliseconds timeout) {
  try {
    auto deadline = Clock::now() + timeout;
    auto lease = Lease(deadline);
    lease->EnsureConnected(deadline);
    lease->Exec("SELECT 1");
    return true;
  } catch (const Error&) {
    return false;
  }
}

namespace {
// The shape of every transaction: a leased, connected connection, the statement
// timeout (what is left of the caller's deadline, at most the configured bound)
// handed to `run`, and a rollback (or a dropped connection) when `run` throws.
template <typename Run>
auto InTransaction(PgPool& pool, Clock::time_point deadline, Run&& run) {
  auto lease = pool.Lease(deadline);
  PgConnection& conn = *lease;
  conn.EnsureConnected(deadline);
  const long budget = std::min<long>(pool.options().statement_timeout.count(), MillisUntil(deadline));
  if (budget <= 0) throw Error(ErrorCode::kDeadlineExceeded, "deadline exceeded before the transaction");
  try {
    return run(conn, "SET LOCAL statement_timeout = " + std::to_string(budget));
  } catch (...) {
    if (conn.healthy()) {
      try {
        conn.Exec("ROLLBACK");
      } catch (const Error&) {
        conn.Discard();
      }
    }
    throw;
  }
}
}  // namespace

void WithTransaction(PgPool& pool, Clock::time_point deadline, const std::function<void(PgConnection&)>& body) {
  InTransaction(pool, deadline, [&](PgConnection& conn, const std::string& timeout) {
    // One round trip: the transaction and the bound on its statements.
    conn.ExecScript("BEGIN; " + timeout);
    body(conn);
    conn.Exec("COMMIT");
  });
}

PgResult QueryOnce(PgPool& pool, Clock::time_point deadline, const PgStatement& statement) {
  return InTransaction(pool, deadline, [&](PgConnection& conn, const std::string& timeout) {
    auto results = conn.ExecPipeline({{"BEGIN READ ONLY", {}}, {timeout, {}}, statement, {"COMMIT", {}}});
    return std::move(results[2]);
  });
}

void WithPipelinedTransaction(
    PgPool& pool, Clock::time_point deadline, const std::vector<PgStatement>& opening,
    const std::function<std::vector<PgStatement>(PgConnection&, std::vector<PgResult>& opened)>& body) {
  InTransaction(pool, deadline, [&](PgConnection& conn, const std::string& timeout) {
    std::vector<PgStatement> first{{"BEGIN", {}}, {timeout, {}}};
    first.insert(first.end(), opening.begin(), opening.end());
    auto results = conn.ExecPipeline(first);
    std::vector<PgResult> opened;
    for (std::size_t i = 2; i < results.size(); ++i) opened.push_back(std::move(results[i]));
    auto last = body(conn, opened);
    last.push_back({"COMMIT", {}});
    conn.ExecPipeline(last);
  });
}

}  // namespace physio
