#include "physio/db/pg.h"

#include <libpq-fe.h>
#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <stdexcept>
#include <string_view>
#include <thread>

#include "physio/common/ids.h"
#include "physio/common/text_list.h"

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

bool PgConnection::in_transaction() const {
  return conn_ != nullptr && PQtransactionStatus(conn_.get()) != PQTRANS_IDLE;
}

std::string PgResult::GetBytes(int row, int col) const {
  std::string text = Get(row, col);
  if (text.rfind("\\x", 0) != 0) throw Error(ErrorCode::kInternal, "postgres: bytea not in hex form");
  return HexDecode(text.substr(2));
}

std::vector<std::pair<std::string, std::string>> PgEndpoints(const PgOptions& options) {
  const auto hosts = SplitCommaList(options.host);
  const auto ports = SplitCommaList(options.ports);
  if (ports.size() != 1 && ports.size() != hosts.size()) {
    throw std::invalid_argument("pg-port: one port for every host, or one per host (" + std::to_string(hosts.size()) +
                                " hosts, " + std::to_string(ports.size()) + " ports)");
  }
  std::vector<std::pair<std::string, std::string>> endpoints;
  for (std::size_t i = 0; i < hosts.size(); ++i) {
    const std::string& port = ports.size() == 1 ? ports[0] : ports[i];
    if (hosts[i].empty()) throw std::invalid_argument("pg-host: an empty host in the list");
    if (!IsPortNumber(port)) {
      throw std::invalid_argument("pg-port: '" + port + "' is not a port number");
    }
    endpoints.emplace_back(hosts[i], port);
  }
  return endpoints;
}

namespace {
// Waits until `fd` is ready for `events` (or has an error), at most until `until`.
bool WaitSocket(int fd, short events, Clock::time_point until) {
  if (fd < 0) return true;  // libpq reports the broken connection on the next call
  for (;;) {
    // Past the deadline the socket is still looked at once: an answer already there is taken.
    const long left = std::clamp<long>(MillisUntil(until), 0, 60'000);
    pollfd watched{fd, events, 0};
    const int ready = ::poll(&watched, 1, static_cast<int>(left));
    if (ready > 0) return true;
    if (ready < 0 && errno != EINTR) return true;  // let libpq find and report the error
    if (ready == 0 && left == 0) return false;
  }
}

// Cancel requests, sent by one background thread: PQcancel blocks until the
// server closes the cancel connection, which a frozen server never does. At most
// one thread waits so; requests past kMaxQueued are dropped (the connection is
// dropped anyway, and the server ends the statement when it notices).
class Canceller {
 public:
  static void Request(PGcancel* cancel) {
    static const std::shared_ptr<State> state = Start();
    {
      std::lock_guard lock(state->mutex);
      if (state->queue.size() >= kMaxQueued) {
        PQfreeCancel(cancel);
        return;
      }
      state->queue.push_back(cancel);
    }
    state->wake.notify_one();
  }

 private:
  static constexpr std::size_t kMaxQueued = 64;
  struct State {
    std::mutex mutex;
    std::condition_variable wake;
    std::deque<PGcancel*> queue;
  };
  static std::shared_ptr<State> Start() {
    auto state = std::make_shared<State>();
    // Detached, holding the state: a cancel stuck on a frozen server never delays the process's exit.
    std::thread([state] {
      for (;;) {
        PGcancel* cancel = nullptr;
        {
          std::unique_lock lock(state->mutex);
          state->wake.wait(lock, [&] { return !state->queue.empty(); });
          cancel = state->queue.front();
          state->queue.pop_front();
        }
        char error[256];
        PQcancel(cancel, error, sizeof error);
        PQfreeCancel(cancel);
      }
    }).detach();
    return state;
  }
};
}  // namespace

std::string PgConnection::endpoint() const { return conn_ ? endpoint_ : ""; }

void PgConnection::OnNotice(void* self, const PGresult* notice) {
  // client_min_messages=warning: only warnings arrive. PostgreSQL warns so when a
  // COMMIT stopped waiting for its synchronous standby (cancelled, or the backend
  // told to end): committed here, perhaps on no standby, and so perhaps lost by a failover.
  const char* message = PQresultErrorField(notice, PG_DIAG_MESSAGE_PRIMARY);
  if (message && std::string_view(message).find("synchronous replication") != std::string_view::npos) {
    static_cast<PgConnection*>(self)->replication_unconfirmed_ = true;
  }
}

bool PgConnection::TryHost(const std::string& host, const std::string& port, Clock::time_point until,
                           std::string* why) {
  // client_min_messages: server NOTICEs would otherwise reach stderr outside the JSON log.
  // plan_cache_mode: how the prepared statements are planned (PgOptions).
  const std::string server_options =
      "-c client_min_messages=warning -c plan_cache_mode=" + options_.plan_cache_mode;
  const char* keys[] = {"host", "port", "user", "password", "dbname", "application_name", "options", "sslmode",
                        "sslrootcert", "target_session_attrs", "keepalives_idle", "keepalives_interval",
                        "keepalives_count", nullptr};
  const char* values[] = {host.c_str(),
                          port.c_str(),
                          options_.user.c_str(),
                          options_.password.empty() ? nullptr : options_.password.c_str(),
                          options_.database.c_str(),
                          "physio",
                          server_options.c_str(),
                          options_.sslmode.c_str(),
                          options_.sslrootcert.empty() ? nullptr : options_.sslrootcert.c_str(),
                          options_.target_session_attrs.c_str(),
                          // A peer that vanished (a host lost, a partition) is noticed by TCP within ~20 s
                          // even on an idle pooled connection.
                          "10",
                          "5",
                          "2",
                          nullptr};
  conn_.reset(PQconnectStartParams(keys, values, 0));
  if (!conn_ || PQstatus(conn_.get()) == CONNECTION_BAD) {
    *why = conn_ ? Trimmed(PQerrorMessage(conn_.get())) : "out of memory";
    conn_.reset();
    return false;
  }
  PostgresPollingStatusType state = PGRES_POLLING_WRITING;
  while (state != PGRES_POLLING_OK) {
    if (state == PGRES_POLLING_FAILED) {
      *why = Trimmed(PQerrorMessage(conn_.get()));
      conn_.reset();
      return false;
    }
    if (!WaitSocket(PQsocket(conn_.get()), state == PGRES_POLLING_READING ? POLLIN : POLLOUT, until)) {
      *why = host + ":" + port + " did not answer in time";
      conn_.reset();
      return false;
    }
    state = PQconnectPoll(conn_.get());
  }
  PQsetnonblocking(conn_.get(), 1);
  PQsetNoticeReceiver(conn_.get(), &PgConnection::OnNotice, this);
  endpoint_ = host + ":" + port;
  prepared_.clear();  // a new session has none of the old one's
  session_timeout_ms_ = -1;
  return true;
}

void PgConnection::EnsureConnected(Clock::time_point deadline) {
  deadline_ = deadline;
  deferred_.clear();  // a new lease: nothing of an earlier one is ever sent
  if (healthy() && epoch_ && dialled_epoch_ != epoch_->Current()) conn_.reset();  // dialled before PostgreSQL went away
  if (healthy()) return;
  conn_.reset();
  dialled_epoch_ = epoch_ ? epoch_->Current() : 0;
  if (MillisUntil(deadline) <= 0) Unavailable("deadline exceeded before connecting");
  const auto endpoints = PgEndpoints(options_);
  std::string failures;
  for (std::size_t tried = 0; tried < endpoints.size(); ++tried) {
    const std::size_t index = (next_host_ + tried) % endpoints.size();
    const auto until = std::min(deadline, Clock::now() + options_.connect_timeout);
    std::string why;
    if (TryHost(endpoints[index].first, endpoints[index].second, until, &why)) {
      next_host_ = index;
      replication_unconfirmed_ = false;
      return;
    }
    failures += (failures.empty() ? "" : "; ") + why;
    if (MillisUntil(deadline) <= 0) break;
  }
  Unavailable("connect failed: " + failures);
}

void PgConnection::TimedOut() {
  if (PGcancel* cancel = PQgetCancel(conn_.get())) Canceller::Request(cancel);
  conn_.reset();
  Unavailable("no answer before the deadline (statement cancelled, connection dropped; a commit's outcome is unknown)");
}

// Kept a little past the caller's deadline: the server's statement_timeout (the
// same deadline) then usually ends a slow statement first, cleanly, keeping the connection.
Clock::time_point PgConnection::WaitUntil() const { return deadline_ + std::chrono::milliseconds(100); }

void PgConnection::Flush() {
  const auto until = WaitUntil();
  for (;;) {
    const int pending = PQflush(conn_.get());
    if (pending == 0) return;
    if (pending < 0) Lost("send failed: " + Trimmed(PQerrorMessage(conn_.get())));
    if (!WaitSocket(PQsocket(conn_.get()), POLLIN | POLLOUT, until)) TimedOut();
    if (PQconsumeInput(conn_.get()) == 0) Lost("connection lost: " + Trimmed(PQerrorMessage(conn_.get())));
  }
}

PGresult* PgConnection::NextResult() {
  const auto until = WaitUntil();
  while (PQisBusy(conn_.get())) {
    if (!WaitSocket(PQsocket(conn_.get()), POLLIN, until)) TimedOut();
    if (PQconsumeInput(conn_.get()) == 0) Lost("connection lost: " + Trimmed(PQerrorMessage(conn_.get())));
  }
  return PQgetResult(conn_.get());
}

void PgConnection::CheckReplicationWarning() {
  if (!replication_unconfirmed_) return;
  replication_unconfirmed_ = false;
  conn_.reset();
  Unavailable("the commit was not confirmed by the synchronous standby (it may be lost in a failover); retry");
}

void PgConnection::Defer(PgStatement statement, std::function<void(const PgUniqueViolation&)> on_unique_violation) {
  deferred_.push_back({std::move(statement), std::move(on_unique_violation)});
}

PgResult PgConnection::Exec(const std::string& sql, const std::vector<PgParam>& params) {
  // Held writes travel with it; a statement with parameters runs prepared (also a pipeline).
  if (!deferred_.empty() || (options_.prepared_statements && !params.empty())) {
    return std::move(ExecPipeline({{sql, params}}).back());
  }
  if (!conn_) Unavailable("not connected");
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
  if (PQsendQueryParams(conn_.get(), sql.c_str(), static_cast<int>(values.size()), nullptr, values.data(), nullptr,
                        nullptr, 0) != 1) {
    Lost("send failed: " + Trimmed(PQerrorMessage(conn_.get())));
  }
  Flush();
  PgResult result(NextResult());
  while (PGresult* extra = NextResult()) PQclear(extra);
  CheckReplicationWarning();
  return Checked(result.release());
}

std::vector<PgResult> PgConnection::ExecPipeline(const std::vector<PgStatement>& statements) {
  if (deferred_.empty()) return RunPipeline(statements, {});
  // The held writes go first, in the same round trip.
  const std::vector<Deferred> deferred = std::exchange(deferred_, {});
  std::vector<PgStatement> all;
  all.reserve(deferred.size() + statements.size());
  for (const auto& held : deferred) all.push_back(held.statement);
  all.insert(all.end(), statements.begin(), statements.end());
  auto results = RunPipeline(all, deferred);
  results.erase(results.begin(), results.begin() + static_cast<std::ptrdiff_t>(deferred.size()));
  return results;
}

namespace {
// Prepared statements per connection at most; beyond that, statements run unnamed.
constexpr std::size_t kMaxPrepared = 512;
// A statement with more parameters than this (a batch of rows, whose text changes with its size)
// runs unnamed: its parse is shared by its rows, and a server-side copy of each size would be large.
constexpr std::size_t kMaxPreparedParams = 64;
}  // namespace

bool PlannedForEachCall(std::string_view sql) {
  return sql.find(" OR ") != std::string_view::npos || sql.find("ANY(") != std::string_view::npos ||
         sql.find("unnest(") != std::string_view::npos;
}

PgConnection::Sent PgConnection::SendInPipeline(const PgStatement& statement, const char* const* values) {
  PGconn* conn = conn_.get();
  const int count = static_cast<int>(statement.params.size());
  // Statements without parameters (BEGIN, COMMIT, SET LOCAL with its value, DDL) stay unnamed, so do
  // batches (kMaxPreparedParams), and so does everything once a connection has prepared kMaxPrepared.
  // Under plan_cache_mode=auto, so does a statement whose plan depends on its values (an unnamed
  // statement is planned for its values).
  auto found = prepared_.find(statement.sql);
  if (!options_.prepared_statements || count == 0 || statement.params.size() > kMaxPreparedParams ||
      (found == prepared_.end() &&
       (prepared_.size() >= kMaxPrepared ||
        (options_.plan_cache_mode == "auto" && PlannedForEachCall(statement.sql))))) {
    const bool ok = PQsendQueryParams(conn, statement.sql.c_str(), count, nullptr, values, nullptr, nullptr, 0) == 1;
    return ok ? Sent::kStatement : Sent::kFailed;
  }
  Sent sent = Sent::kStatement;
  if (found == prepared_.end()) {
    found = prepared_.emplace(statement.sql, "physio_" + std::to_string(++prepared_count_)).first;
    if (PQsendPrepare(conn, found->second.c_str(), statement.sql.c_str(), count, nullptr) != 1) return Sent::kFailed;
    sent = Sent::kPrepareAndStatement;
  }
  if (PQsendQueryPrepared(conn, found->second.c_str(), count, values, nullptr, nullptr, 0) != 1) return Sent::kFailed;
  return sent;
}

std::vector<PgResult> PgConnection::RunPipeline(const std::vector<PgStatement>& statements,
                                                const std::vector<Deferred>& deferred) {
  if (!conn_) Unavailable("not connected");
  PGconn* conn = conn_.get();
  if (PQenterPipelineMode(conn) != 1) Unavailable("cannot enter pipeline mode: " + Trimmed(PQerrorMessage(conn)));
  bool sent = true;
  // Statements whose prepare travels with them (its result comes first).
  std::vector<bool> preparing(statements.size(), false);
  for (std::size_t i = 0; i < statements.size(); ++i) {
    const auto& statement = statements[i];
    std::vector<const char*> values;
    values.reserve(statement.params.size());
    for (const auto& p : statement.params) values.push_back(p ? p->c_str() : nullptr);
    const Sent how = SendInPipeline(statement, values.data());
    if (how == Sent::kFailed) {
      sent = false;
      break;
    }
    preparing[i] = how == Sent::kPrepareAndStatement;
  }
  // A prepare that did not happen on the server is forgotten here.
  const auto forget_unprepared = [&](const std::vector<PgResult>& prepares) {
    for (std::size_t i = 0; i < statements.size(); ++i) {
      if (!preparing[i]) continue;
      if (i < prepares.size() && prepares[i].raw() != nullptr && PQresultStatus(prepares[i].raw()) == PGRES_COMMAND_OK) {
        continue;
      }
      prepared_.erase(statements[i].sql);
    }
  };
  if (!sent || PQpipelineSync(conn) != 1) {
    const std::string why = Trimmed(PQerrorMessage(conn));
    if (PQstatus(conn) != CONNECTION_OK) Lost("pipeline send failed: " + why);
    conn_.reset();  // a half-sent pipeline leaves the connection in no known state
    Unavailable("pipeline send failed: " + why);
  }
  // Owned from here: a timeout or a lost connection below throws past them.
  std::vector<PgResult> results;
  std::vector<PgResult> prepares;
  results.reserve(statements.size());
  prepares.reserve(statements.size());
  Flush();
  // One result per statement (each followed by a null), its prepare's before it, then the sync marker.
  bool complete = true;
  for (std::size_t i = 0; i < statements.size() && complete; ++i) {
    prepares.emplace_back(nullptr);
    for (int part = preparing[i] ? 0 : 1; part < 2; ++part) {
      PGresult* result = NextResult();
      if (result == nullptr) {  // connection lost
        complete = false;
        break;
      }
      (part == 0 ? prepares.back() : results.emplace_back(nullptr)) = PgResult(result);
      while (PGresult* extra = NextResult()) PQclear(extra);
    }
  }
  forget_unprepared(prepares);
  bool synced = false;
  if (complete) {
    if (PGresult* sync = NextResult()) {
      synced = PQresultStatus(sync) == PGRES_PIPELINE_SYNC;
      PQclear(sync);
    }
  }
  if (!synced || PQexitPipelineMode(conn) != 1) {
    const std::string why = Trimmed(PQerrorMessage(conn));
    if (PQstatus(conn) != CONNECTION_OK) Lost("pipeline failed: " + why);
    conn_.reset();
    Unavailable("pipeline failed: " + why);
  }
  CheckReplicationWarning();
  for (std::size_t i = 0; i < results.size(); ++i) {
    // A statement whose prepare failed (its text is wrong) fails with the prepare's error.
    const PgResult& failed_prepare = prepares[i];
    if (failed_prepare.raw() != nullptr) {
      const ExecStatusType status = PQresultStatus(failed_prepare.raw());
      if (status != PGRES_COMMAND_OK && status != PGRES_PIPELINE_ABORTED) CheckFailed(failed_prepare.raw());
    }
    const ExecStatusType status = PQresultStatus(results[i].raw());
    if (status == PGRES_PIPELINE_ABORTED) continue;  // after the one that failed
    if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) continue;
    if (i < deferred.size() && deferred[i].on_unique_violation) {
      try {
        CheckFailed(results[i].raw());
      } catch (const PgUniqueViolation& violation) {
        deferred[i].on_unique_violation(violation);
        throw;
      }
    }
    CheckFailed(results[i].raw());
  }
  return results;
}

PgResult PgConnection::ExecBounded(const PgStatement& statement, long timeout_ms) {
  // Rounded down (never past the caller's deadline, so PostgreSQL's bound still comes first:
  // DEADLINE_EXCEEDED, the connection kept) to a quarter second from one second up: a steady value
  // for calls with the usual budget, so the SET is rarely sent.
  constexpr long kStep = 250;
  const long bounded = std::max<long>(1, timeout_ms >= 4 * kStep ? timeout_ms / kStep * kStep : timeout_ms);
  if (bounded == session_timeout_ms_) return std::move(ExecPipeline({statement})[0]);
  // Both in one implicit transaction: a failure of the statement rolls the SET back too, so the
  // value counts as set only once the round trip succeeded (a lost session starts unknown again).
  auto results = ExecPipeline({{"SET statement_timeout = " + std::to_string(bounded), {}}, statement});
  session_timeout_ms_ = bounded;
  return std::move(results[1]);
}

PgResult PgConnection::ExecScript(const std::string& sql) {
  if (!deferred_.empty()) ExecPipeline({});
  if (!conn_) Unavailable("not connected");
  if (PQsendQuery(conn_.get(), sql.c_str()) != 1) Lost("send failed: " + Trimmed(PQerrorMessage(conn_.get())));
  Flush();
  // As PQexec: the last result, or the first that failed (the statements after it did not run).
  PgResult kept(nullptr);
  bool failed = false;
  while (PGresult* result = NextResult()) {
    const ExecStatusType status = PQresultStatus(result);
    if (failed) {
      PQclear(result);
      continue;
    }
    failed = status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK;
    kept = PgResult(result);
  }
  CheckReplicationWarning();
  return Checked(kept.release());
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
  // A prepared statement the session lost (26000: a pooler moved the session) or whose
  // table changed its row type under it (0A000, a migration by a newer version): a new
  // connection prepares again (TryHost forgets the old session's), and a retry succeeds.
  if (sqlstate == "26000" || (sqlstate == "0A000" && message.find("cached plan") != std::string::npos)) {
    conn_.reset();
    Unavailable("postgres: " + message + " (reconnecting; retry)");
  }
  // A read-only transaction: this server is (now) a standby, after a failover or a
  // switchover. Every pooled connection redials, and finds the new primary.
  if (sqlstate == "25006") Lost("reached a standby (read-only); redialling for the primary");
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
// What is left of the caller's deadline for the statements, at most the configured bound (in ms);
// DEADLINE_EXCEEDED when nothing is.
long StatementBudget(const PgPool& pool, Clock::time_point deadline) {
  const long budget = std::min<long>(pool.options().statement_timeout.count(), MillisUntil(deadline));
  if (budget <= 0) throw Error(ErrorCode::kDeadlineExceeded, "deadline exceeded before anything was sent");
  return budget;
}

// The shape of every transaction: a leased, connected connection, the statement
// timeout (StatementBudget) handed to `run`, and a rollback (or a dropped
// connection) when `run` throws.
template <typename Run>
auto InTransaction(PgPool& pool, Clock::time_point deadline, Run&& run) {
  auto lease = pool.Lease(deadline);
  PgConnection& conn = *lease;
  conn.EnsureConnected(deadline);
  const long budget = StatementBudget(pool, deadline);
  try {
    return run(conn, "SET LOCAL statement_timeout = " + std::to_string(budget));
  } catch (...) {
    conn.DropDeferred();
    // A transaction whose BEGIN was still held (never sent) has nothing to roll back.
    if (conn.healthy() && conn.in_transaction()) {
      try {
        conn.set_deadline(Clock::now() + std::chrono::milliseconds(500));  // the caller's may have passed
        conn.Exec("ROLLBACK");
      } catch (const Error&) {
        conn.Discard();
      }
    }
    throw;
  }
}

// No round trip of their own: the transaction and the bound on its statements (`timeout`) travel
// with the first statement that needs an answer, or with COMMIT.
void HoldBegin(PgConnection& conn, const std::string& timeout) {
  conn.Defer({"BEGIN", {}});
  conn.Defer({timeout, {}});
}
}  // namespace

void WithTransaction(PgPool& pool, Clock::time_point deadline, const std::function<void(PgConnection&)>& body) {
  InTransaction(pool, deadline, [&](PgConnection& conn, const std::string& timeout) {
    HoldBegin(conn, timeout);
    body(conn);
    conn.Exec("COMMIT");
  });
}

bool IsReadOnlyStatement(std::string_view sql) {
  if (sql.starts_with("SHOW ")) return true;
  if (!sql.starts_with("SELECT ") && !sql.starts_with("WITH ")) return false;
  // A data-modifying WITH (or a SELECT ... FOR UPDATE) is not a read.
  for (std::string_view word : {"INSERT", "UPDATE", "DELETE", "MERGE", "TRUNCATE", "FOR SHARE", "FOR KEY SHARE"}) {
    if (sql.find(word) != std::string_view::npos) return false;
  }
  return true;
}

PgResult QueryOnce(PgPool& pool, Clock::time_point deadline, const PgStatement& statement) {
  if (!IsReadOnlyStatement(statement.sql)) {
    throw Error(ErrorCode::kInternal, "QueryOnce takes one read-only statement");
  }
  auto lease = pool.Lease(deadline);
  lease->EnsureConnected(deadline);
  return lease->ExecBounded(statement, StatementBudget(pool, deadline));
}

void WithPipelinedTransaction(
    PgPool& pool, Clock::time_point deadline, const std::vector<PgStatement>& opening,
    const std::function<std::vector<PgStatement>(PgConnection&, std::vector<PgResult>& opened)>& body) {
  InTransaction(pool, deadline, [&](PgConnection& conn, const std::string& timeout) {
    std::vector<PgResult> opened;
    if (opening.empty()) {
      HoldBegin(conn, timeout);  // a transaction of held writes is then one round trip
    } else {
      std::vector<PgStatement> first{{"BEGIN", {}}, {timeout, {}}};
      first.insert(first.end(), opening.begin(), opening.end());
      auto results = conn.ExecPipeline(first);
      for (std::size_t i = 2; i < results.size(); ++i) opened.push_back(std::move(results[i]));
    }
    auto last = body(conn, opened);
    last.push_back({"COMMIT", {}});
    conn.ExecPipeline(last);
  });
}

}  // namespace physio
