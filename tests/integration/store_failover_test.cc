// The store clients past one machine (issue 30), on real servers: a PostgreSQL
// host list finds the primary and follows it when it becomes a standby; a
// frozen server or a COMMIT waiting for a missing synchronous standby cannot
// hold a caller past its deadline, and a COMMIT whose replication was not
// confirmed is never OK; Redis is found through a real redis-sentinel, durable
// writes wait for a replica, and a failover makes the pool redial the new master.
#include <gtest/gtest.h>
#include <hiredis/hiredis.h>
#include <spdlog/spdlog.h>

#include <future>
#include <optional>
#include <set>
#include <thread>

#include "physio/common/error.h"
#include "physio/common/no_blocking.h"
#include "physio/db/idempotency.h"
#include "physio/db/pg.h"
#include "physio/redis/async_redis.h"
#include "physio/redis/generation_cache.h"
#include "physio/redis/redis_pool.h"
#include "physio/server/metrics.h"
#include "physio/server/patient_clinics.h"
#include "physio/server/service_runtime.h"
#include "test_env.h"

namespace physio::testing {
namespace {

using namespace std::chrono_literals;
using Steady = std::chrono::steady_clock;

long MillisSince(Steady::time_point since) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Steady::now() - since).count();
}

PgOptions PgOn(const std::vector<const PostgresServer*>& servers) {
  PgOptions options;
  options.host.clear();
  options.ports.clear();
  for (const auto* server : servers) {
    options.host += (options.host.empty() ? "" : ",") + std::string("127.0.0.1");
    options.ports += (options.ports.empty() ? "" : ",") + std::to_string(server->port());
  }
  options.database = "postgres";
  options.sslmode = "disable";
  options.pool_size = 2;
  options.connect_timeout = 500ms;
  return options;
}

// The endpoint the transaction ran on, after writing one row to `table`.
std::string WriteRow(PgPool& pool, const std::string& table, const std::string& value,
                     std::chrono::milliseconds budget = 3s) {
  std::string endpoint;
  WithTransaction(pool, Clock::now() + budget, [&](PgConnection& conn) {
    conn.Exec("INSERT INTO " + table + " (value) VALUES ($1)", {value});
    endpoint = conn.endpoint();
  });
  return endpoint;
}

// The code `call` threw with; nullopt when it succeeded.
std::optional<ErrorCode> CodeOf(const std::function<void()>& call, std::string* message = nullptr) {
  try {
    call();
  } catch (const Error& e) {
    if (message) *message = e.what();
    return e.code();
  }
  return std::nullopt;
}

// A deferred write travels with the transaction's next statement: a sequence (which no rollback
// or isolation hides from another session) shows when it ran.
TEST(PgDeferredWrites, RunWithTheNextStatementInOrderAndAreSeenByIt) {
  PostgresServer pg;
  pg.Execute("CREATE SEQUENCE s");
  pg.Execute("CREATE TABLE t (position bigint, value text PRIMARY KEY)");
  PgPool pool(PgOn({&pg}));
  WithPipelinedTransaction(pool, Clock::now() + 3s, {}, [&](PgConnection& conn, std::vector<PgResult>&) {
    conn.Defer({"INSERT INTO t VALUES (nextval('s'), $1)", {"first"}});
    conn.Defer({"INSERT INTO t VALUES (nextval('s'), $1)", {"second"}});
    EXPECT_EQ(pg.Execute("SELECT is_called FROM s"), "f");  // held, not sent
    // A read after them sees them (they went first, in the same round trip).
    EXPECT_EQ(conn.Exec("SELECT string_agg(value, ',' ORDER BY position) FROM t").Get(0, 0), "first,second");
    conn.Defer({"INSERT INTO t VALUES (nextval('s'), $1)", {"third"}});
    EXPECT_EQ(pg.Execute("SELECT last_value FROM s"), "2");
    return std::vector<PgStatement>{};  // the third goes with COMMIT
  });
  EXPECT_EQ(pg.Execute("SELECT string_agg(value || '=' || position, ',' ORDER BY position) FROM t"),
            "first=1,second=2,third=3");
}

// A retry sent while its first attempt is still committing (the replica that ran it killed after
// sending COMMIT, the answer lost): the retry's replay check, made with BEGIN, finds nothing; its
// write then waits for the row the first attempt holds and finds it changed. It answers with the
// first attempt's stored response, not with the stale-etag refusal its own write would give (which
// a client must not retry, and which the fault harness once met with two planning replicas).
TEST(PgIdempotentWrites, ARetryThatMeetsItsFirstAttemptCommittingReplaysIt) {
  PostgresServer pg;
  pg.Execute("CREATE SCHEMA s");
  pg.Execute("CREATE TABLE s.idempotency (tenant_id text, principal text, method text, request_id text,"
             " fingerprint text NOT NULL, response bytea NOT NULL,"
             " CONSTRAINT idempotency_pkey PRIMARY KEY (tenant_id, principal, method, request_id))");
  pg.Execute("CREATE TABLE s.plans (id text PRIMARY KEY, version bigint NOT NULL)");
  pg.Execute("INSERT INTO s.plans VALUES ('p', 1)");
  PgPool pool(PgOn({&pg}));  // two connections: one per attempt
  const PgIdempotencyKey key{"s", "acme", "clin-1", "ApprovePlan", "rq-1"};
  std::promise<void> first_holds_the_row, let_first_commit;
  auto release = let_first_commit.get_future().share();
  // The services' shape: read the row for update, refuse a stale version (the etag), change it.
  auto approve = [&](bool first) {
    return [&, first](PgConnection& conn) {
      if (conn.Exec("SELECT version FROM s.plans WHERE id = 'p' FOR UPDATE").Get(0, 0) != "1") {
        throw Error(ErrorCode::kAborted, "etag: the plan changed since it was read; read it again");
      }
      conn.Exec("UPDATE s.plans SET version = 2 WHERE id = 'p'");
      if (first) {
        first_holds_the_row.set_value();
        release.wait();
      }
      return std::string("approved at version 2");
    };
  };
  auto attempt = [&](bool first) {
    try {
      return RunIdempotentWrite(pool, Clock::now() + 10s, key, "fingerprint", approve(first));
    } catch (const Error& e) {
      return std::string("refused: ") + e.what();
    }
  };
  auto first = std::async(std::launch::async, attempt, true);
  first_holds_the_row.get_future().wait();
  auto retry = std::async(std::launch::async, attempt, false);
  // The retry is past its replay check and waits for the row.
  const auto until = Steady::now() + 10s;
  while (pg.Execute("SELECT count(*) FROM pg_locks WHERE NOT granted") == "0" && Steady::now() < until) {
    std::this_thread::sleep_for(10ms);
  }
  ASSERT_EQ(pg.Execute("SELECT count(*) FROM pg_locks WHERE NOT granted"), "1");
  let_first_commit.set_value();
  EXPECT_EQ(first.get(), "approved at version 2");
  EXPECT_EQ(retry.get(), "approved at version 2");
  EXPECT_EQ(pg.Execute("SELECT version FROM s.plans"), "2");
  EXPECT_EQ(pg.Execute("SELECT count(*) FROM s.idempotency"), "1");
  // A different request under the same id is still refused as one; a genuinely stale write as stale.
  EXPECT_EQ(CodeOf([&] { RunIdempotentWrite(pool, Clock::now() + 3s, key, "another", approve(false)); }),
            ErrorCode::kInvalidArgument);
  const PgIdempotencyKey other{"s", "acme", "clin-1", "ApprovePlan", "rq-2"};
  std::string message;
  EXPECT_EQ(CodeOf([&] { RunIdempotentWrite(pool, Clock::now() + 3s, other, "fingerprint", approve(false)); },
                   &message),
            ErrorCode::kAborted);
  EXPECT_NE(message.find("etag"), std::string::npos) << message;
}

// A write seen for the first time is one round trip: no transaction is open on the server while
// the use case builds its writes (BEGIN is held with them), and no replay is looked up first. A
// retry of a write already done is answered with its stored response even when its own write
// fails first on another unique key the first attempt took (not on the idempotency record's),
// and it changes nothing.
TEST(PgIdempotentWrites, AFirstAttemptSendsEverythingAtCommitAndARetryIsAnsweredFromItsRecord) {
  PostgresServer pg;
  pg.Execute("CREATE SCHEMA s");
  pg.Execute("CREATE TABLE s.idempotency (tenant_id text, principal text, method text, request_id text,"
             " fingerprint text NOT NULL, response bytea NOT NULL,"
             " CONSTRAINT idempotency_pkey PRIMARY KEY (tenant_id, principal, method, request_id))");
  pg.Execute("CREATE TABLE s.logs (day text CONSTRAINT logs_day UNIQUE, n int)");
  PgOptions options = PgOn({&pg});
  options.pool_size = 1;
  PgPool pool(options);
  const PgIdempotencyKey key{"s", "acme", "pat-1", "LogDay", "rq-1"};
  const auto open_transactions = [&] {
    return pg.Execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                      " AND state LIKE 'idle in transaction%' AND pid <> pg_backend_pid()");
  };
  int writes = 0;
  std::vector<std::string> open_while_writing;
  auto log_day = [&](PgConnection& conn) {
    ++writes;
    conn.Defer({"INSERT INTO s.logs VALUES ('monday', $1)", {std::to_string(writes)}});
    open_while_writing.push_back(open_transactions());
    return std::string("logged, write ") + std::to_string(writes);
  };
  EXPECT_EQ(RunIdempotentWrite(pool, Clock::now() + 3s, key, "fingerprint", log_day), "logged, write 1");
  EXPECT_EQ(pg.Execute("SELECT count(*) FROM s.idempotency"), "1");
  // The retry's write runs, meets logs_day, is rolled back, and the stored response answers.
  EXPECT_EQ(RunIdempotentWrite(pool, Clock::now() + 3s, key, "fingerprint", log_day), "logged, write 1");
  EXPECT_EQ(writes, 2);
  // Both first attempts: nothing sent yet, so the pool's connection held no transaction open
  // while the use case worked.
  EXPECT_EQ(open_while_writing, (std::vector<std::string>{"0", "0"}));
  EXPECT_EQ(pg.Execute("SELECT string_agg(day || '=' || n, ',') FROM s.logs"), "monday=1");
  EXPECT_EQ(open_transactions(), "0");
  // The same id for another request is refused as one, whichever key its write met first.
  EXPECT_EQ(CodeOf([&] { RunIdempotentWrite(pool, Clock::now() + 3s, key, "another", log_day); }),
            ErrorCode::kInvalidArgument);
  // Another request that meets logs_day is refused as the conflict it is, after one more look.
  const PgIdempotencyKey other{"s", "acme", "pat-1", "LogDay", "rq-2"};
  EXPECT_EQ(CodeOf([&] { RunIdempotentWrite(pool, Clock::now() + 3s, other, "fingerprint", log_day); }),
            ErrorCode::kAlreadyExists);
  // (Its first attempt held BEGIN; the look that followed opened the transaction first.)
  EXPECT_EQ(open_while_writing, (std::vector<std::string>{"0", "0", "0", "0", "1"}));
  EXPECT_EQ(pg.Execute("SELECT count(*) FROM s.idempotency"), "1");
  EXPECT_EQ(open_transactions(), "0");
}

TEST(PgDeferredWrites, AFailureIsThrownByTheStatementThatCarriedItAndARollbackDropsWhatIsHeld) {
  PostgresServer pg;
  pg.Execute("CREATE SEQUENCE s");
  pg.Execute("CREATE TABLE t (position bigint, value text CONSTRAINT t_value UNIQUE)");
  pg.Execute("INSERT INTO t VALUES (0, 'taken')");
  PgOptions options = PgOn({&pg});
  options.pool_size = 1;  // every transaction below gets the same connection
  PgPool pool(options);
  const auto deadline = [] { return Clock::now() + 3s; };
  // A unique violation goes through the statement's handler, which names what it means...
  std::string message;
  EXPECT_EQ(CodeOf([&] {
              WithTransaction(pool, deadline(), [&](PgConnection& conn) {
                conn.Defer({"INSERT INTO t VALUES (nextval('s'), 'taken')", {}}, [](const PgUniqueViolation& violation) {
                  if (violation.constraint() == "t_value") throw Error(ErrorCode::kFailedPrecondition, "value: taken");
                });
              });
            }, &message),
            ErrorCode::kFailedPrecondition);
  EXPECT_EQ(message, "value: taken");
  // ...a handler that does not claim it leaves it as it was, and one without a handler throws as Exec would.
  EXPECT_EQ(CodeOf([&] {
              WithTransaction(pool, deadline(), [&](PgConnection& conn) {
                conn.Defer({"INSERT INTO t VALUES (1, 'taken')", {}}, [](const PgUniqueViolation&) {});
              });
            }),
            ErrorCode::kAlreadyExists);
  EXPECT_EQ(CodeOf([&] {
              WithTransaction(pool, deadline(), [&](PgConnection& conn) {
                conn.Defer({"INSERT INTO t VALUES (1, 'new')", {}});
                conn.Exec("SELECT 1");
                conn.Defer({"INSERT INTO t VALUES (2, 'taken')", {}});
                conn.Defer({"INSERT INTO t VALUES (3, 'never')", {}});
              });
            }),
            ErrorCode::kAlreadyExists);
  // A body that throws with writes held: they are never sent, in this transaction or the next.
  EXPECT_EQ(CodeOf([&] {
              WithTransaction(pool, deadline(), [&](PgConnection& conn) {
                conn.Defer({"INSERT INTO t VALUES (nextval('s'), 'dropped')", {}});
                throw Error(ErrorCode::kInvalidArgument, "changed its mind");
              });
            }),
            ErrorCode::kInvalidArgument);
  WithTransaction(pool, deadline(), [&](PgConnection& conn) { conn.Exec("INSERT INTO t VALUES (9, 'kept')"); });
  EXPECT_EQ(pg.Execute("SELECT string_agg(value, ',' ORDER BY position) FROM t"), "taken,kept");
  EXPECT_EQ(pg.Execute("SELECT last_value FROM s"), "1");  // only the first transaction's ran (and rolled back)
}

// A statement with parameters is prepared once per connection and run by name after that;
// one without (BEGIN, SET LOCAL with its value) is not.
TEST(PgPreparedStatements, EachTextIsPreparedOncePerConnectionAndAgainOnANewOne) {
  PostgresServer pg;
  pg.Execute("CREATE TABLE t (id int PRIMARY KEY, value text)");
  PgOptions options = PgOn({&pg});
  options.pool_size = 1;
  PgPool pool(options);
  const auto prepared = [&] {
    return QueryOnce(pool, Clock::now() + 3s, {"SELECT string_agg(statement, ' | ' ORDER BY statement) FROM"
                                               " pg_prepared_statements WHERE $1::int = 1", {"1"}})
        .Get(0, 0);
  };
  for (int i = 0; i < 3; ++i) {
    WithPipelinedTransaction(pool, Clock::now() + 3s, {{"SELECT value FROM t WHERE id = $1", {"0"}}},
                             [&](PgConnection& conn, std::vector<PgResult>&) {
                               // The same text twice in one round trip: prepared once.
                               conn.Defer({"INSERT INTO t VALUES ($1, $2)", {std::to_string(2 * i), "a"}});
                               conn.Defer({"INSERT INTO t VALUES ($1, $2)", {std::to_string(2 * i + 1), "b"}});
                               return std::vector<PgStatement>{};
                             });
  }
  EXPECT_EQ(pg.Execute("SELECT count(*) FROM t"), "6");
  EXPECT_EQ(prepared(), "INSERT INTO t VALUES ($1, $2) | SELECT string_agg(statement, ' | ' ORDER BY statement) FROM"
                        " pg_prepared_statements WHERE $1::int = 1 | SELECT value FROM t WHERE id = $1");
  // A batch (more than 64 parameters: its text changes with its size) runs unnamed.
  std::string batch = "SELECT $1::int";
  std::vector<PgParam> ones{"1"};
  for (int i = 2; i <= 65; ++i) {
    batch += " + $" + std::to_string(i) + "::int";
    ones.emplace_back("1");
  }
  EXPECT_EQ(QueryOnce(pool, Clock::now() + 3s, {batch, ones}).Get(0, 0), "65");
  EXPECT_EQ(prepared().find("$65"), std::string::npos);
  // A statement that fails to prepare fails as it would have unprepared, and is not remembered.
  EXPECT_EQ(CodeOf([&] { QueryOnce(pool, Clock::now() + 3s, {"SELECT nothing FROM t WHERE id = $1", {"1"}}); }),
            ErrorCode::kInternal);
  EXPECT_EQ(prepared().find("nothing"), std::string::npos);
  // A new connection (the server restarted) prepares again.
  pg.Stop();
  pg.Start();
  // (The pooled connection may learn that it is gone from this call, which is then UNAVAILABLE.)
  CodeOf([&] { QueryOnce(pool, Clock::now() + 3s, {"SELECT 1 WHERE $1::int = 1", {"1"}}); });
  EXPECT_EQ(QueryOnce(pool, Clock::now() + 3s, {"SELECT value FROM t WHERE id = $1", {"1"}}).Get(0, 0), "b");
  EXPECT_NE(prepared().find("SELECT value FROM t WHERE id = $1"), std::string::npos);
  // Off (a pooler in transaction mode): nothing is prepared.
  options.prepared_statements = false;
  PgPool unprepared(options);
  EXPECT_EQ(QueryOnce(unprepared, Clock::now() + 3s,
                      {"SELECT count(*) FROM pg_prepared_statements WHERE $1::int = 1", {"1"}}).Get(0, 0),
            "0");
}

// A read (QueryOnce) is one statement in its own implicit transaction, bounded on the server by the
// session's statement_timeout: the caller's budget rounded down to a quarter second, set in the same
// round trip only when it changes; a SET that failed with its statement (rolled back) does not count.
TEST(PgReads, AReadIsOneStatementBoundedByTheCallersBudget) {
  PostgresServer pg;
  PgOptions options = PgOn({&pg});
  options.pool_size = 1;  // every read on the same session
  PgPool pool(options);
  const auto setting = [&](std::chrono::milliseconds budget) {
    return QueryOnce(pool, Clock::now() + budget, {"SELECT current_setting('statement_timeout')", {}}).Get(0, 0);
  };
  EXPECT_EQ(setting(3100ms), "3s");
  EXPECT_EQ(setting(3100ms), "3s");  // unchanged: not sent again, and still in force
  EXPECT_EQ(setting(1600ms), "1500ms");
  EXPECT_EQ(setting(20s), "5s");  // at most the configured bound
  const std::string under_a_second = setting(700ms);  // the budget itself, a few ms under 700
  ASSERT_TRUE(under_a_second.ends_with("ms")) << under_a_second;
  EXPECT_GT(std::stoi(under_a_second), 600) << under_a_second;
  EXPECT_LE(std::stoi(under_a_second), 700) << under_a_second;
  // Sent only when the value changes: a session value set behind the pool's back (never done by
  // the services) shows that a read with the same budget sent the statement alone.
  setting(3100ms);
  WithTransaction(pool, Clock::now() + 3s, [](PgConnection& conn) { conn.Exec("SET statement_timeout = 4321"); });
  EXPECT_EQ(setting(3100ms), "4321ms");
  EXPECT_EQ(setting(2600ms), "2500ms");
  // A statement that fails rolls back the SET sent with it: the next read sets it again.
  EXPECT_EQ(CodeOf([&] { QueryOnce(pool, Clock::now() + 2100ms, {"SELECT nothing FROM pg_class", {}}); }),
            ErrorCode::kInternal);
  EXPECT_EQ(setting(2100ms), "2s");
  // PostgreSQL's bound comes before the client's (which waits a little past the deadline): a read
  // that runs too long is DEADLINE_EXCEEDED, and the session stays usable.
  std::string message;
  EXPECT_EQ(CodeOf([&] { QueryOnce(pool, Clock::now() + 1200ms, {"SELECT pg_sleep(3)", {}}); }, &message),
            ErrorCode::kDeadlineExceeded)
      << message;
  EXPECT_EQ(setting(3100ms), "3s");
  // Only reads: anything that could write (or lock rows) is refused before it is sent.
  for (const char* write : {"INSERT INTO t VALUES (1)", "WITH d AS (DELETE FROM t RETURNING 1) SELECT count(*) FROM d",
                            "SELECT 1 FROM pg_class FOR UPDATE", "SELECT 1 FROM pg_class FOR SHARE",
                            "BEGIN", "SET statement_timeout = 0"}) {
    EXPECT_FALSE(IsReadOnlyStatement(write)) << write;
    EXPECT_EQ(CodeOf([&] { QueryOnce(pool, Clock::now() + 3s, {write, {}}); }), ErrorCode::kInternal) << write;
  }
  EXPECT_TRUE(IsReadOnlyStatement("WITH RECURSIVE t AS (SELECT 1) SELECT * FROM t"));
  EXPECT_TRUE(IsReadOnlyStatement("SHOW default_transaction_read_only"));
}

// Under plan_cache_mode=auto (the default) a statement keeps a generic plan once PostgreSQL finds it
// costs no more than planning each run: a lookup by key stops being planned after five runs. One
// whose best plan depends on its values (an optional filter, an array) is never prepared, so it is
// planned for each call's values. force_custom_plan plans every run.
TEST(PgPreparedStatements, ALookupKeepsAGenericPlanAndAnOptionalFilterIsPlannedForEachCall) {
  PostgresServer pg;
  pg.Execute("CREATE TABLE t (id int PRIMARY KEY, tenant text, patient text)");
  pg.Execute("CREATE INDEX t_patient ON t (tenant, patient)");
  pg.Execute("INSERT INTO t SELECT i, 'a', 'p' || (i % 50) FROM generate_series(1, 1000) i");
  pg.Execute("ANALYZE t");
  const std::string lookup = "SELECT patient FROM t WHERE id = $1";
  const std::string optional = "SELECT count(*) FROM t WHERE tenant = $1 AND ($2 = '' OR patient = $2)";
  const std::string listed = "SELECT count(*) FROM t WHERE tenant = $1 AND patient = ANY($2::text[])";
  const auto run = [&](PgPool& pool) {
    for (int i = 0; i < 8; ++i) {
      EXPECT_EQ(QueryOnce(pool, Clock::now() + 3s, {lookup, {std::to_string(i + 1)}}).Get(0, 0),
                "p" + std::to_string((i + 1) % 50));
      EXPECT_EQ(QueryOnce(pool, Clock::now() + 3s, {optional, {"a", i % 2 ? "p3" : ""}}).Get(0, 0),
                i % 2 ? "20" : "1000");
      EXPECT_EQ(QueryOnce(pool, Clock::now() + 3s, {listed, {"a", "{p1,p2}"}}).Get(0, 0), "40");
    }
    // Plans of this connection's prepared statements, by text.
    return QueryOnce(pool, Clock::now() + 3s,
                     {"SELECT string_agg(statement || ': ' || generic_plans || ' generic, ' || custom_plans || ' custom',"
                      " ' | ' ORDER BY statement) FROM pg_prepared_statements WHERE strpos(statement, $1) = 0",
                      {"pg_prepared_statements"}})
        .Get(0, 0);
  };
  PgOptions options = PgOn({&pg});
  options.pool_size = 1;
  ASSERT_EQ(options.plan_cache_mode, "auto");
  {
    PgPool pool(options);
    EXPECT_EQ(run(pool), lookup + ": 3 generic, 5 custom");
  }
  options.plan_cache_mode = "force_custom_plan";
  PgPool custom(options);
  EXPECT_EQ(run(custom), optional + ": 0 generic, 8 custom | " + listed + ": 0 generic, 8 custom | " + lookup +
                             ": 0 generic, 8 custom");
}

// A table that changes its row type under a prepared statement (a newer version's migration
// while this one still serves): UNAVAILABLE once, and the retry prepares again and succeeds.
TEST(PgPreparedStatements, ARowTypeChangedUnderAPreparedStatementIsUnavailableOnceThenServed) {
  PostgresServer pg;
  pg.Execute("CREATE TABLE t (id int PRIMARY KEY, value text)");
  pg.Execute("INSERT INTO t VALUES (1, 'a')");
  PgOptions options = PgOn({&pg});
  options.pool_size = 1;
  PgPool pool(options);
  const PgStatement read{"SELECT * FROM t WHERE id = $1", {"1"}};
  EXPECT_EQ(QueryOnce(pool, Clock::now() + 3s, read).Get(0, 1), "a");
  pg.Execute("ALTER TABLE t ADD COLUMN added text DEFAULT 'new'");
  std::string message;
  EXPECT_EQ(CodeOf([&] { QueryOnce(pool, Clock::now() + 3s, read); }, &message), ErrorCode::kUnavailable) << message;
  EXPECT_EQ(QueryOnce(pool, Clock::now() + 3s, read).Get(0, 2), "new");
}

TEST(PgHostList, ConnectsToTheServerThatTakesWritesAndRejectsListsThatDoNotPair) {
  PostgresServer standby_like, primary;
  // A server whose transactions are read-only is what target_session_attrs=read-write skips (a standby).
  standby_like.SetAndReload("default_transaction_read_only", "on");
  // The postmaster applies the reload asynchronously; new sessions see it once it has.
  for (int i = 0; i < 100 && standby_like.Execute("SHOW default_transaction_read_only") != "on"; ++i) {
    std::this_thread::sleep_for(20ms);
  }
  primary.Execute("CREATE TABLE t (value text)");
  PgPool pool(PgOn({&standby_like, &primary}));
  EXPECT_EQ(WriteRow(pool, "t", "a"), "127.0.0.1:" + std::to_string(primary.port()));
  EXPECT_EQ(primary.Execute("SELECT count(*) FROM t"), "1");

  PgOptions mismatched = PgOn({&standby_like, &primary});
  mismatched.ports = "1,2,3";
  EXPECT_THROW(PgEndpoints(mismatched), std::invalid_argument);
  mismatched.ports = "54x";
  EXPECT_THROW(PgEndpoints(mismatched), std::invalid_argument);
}

TEST(PgHostList, AWriteThatReachesAStandbyIsUnavailableAndThePoolFollowsThePrimary) {
  PostgresServer first, second;
  for (auto* server : {&first, &second}) server->Execute("CREATE TABLE t (value text)");
  PgOptions options = PgOn({&first, &second});
  options.pool_size = 1;  // one connection: the one that turns read-only under the pool
  PgPool pool(options);
  ASSERT_EQ(WriteRow(pool, "t", "before"), "127.0.0.1:" + std::to_string(first.port()));
  // A switchover: the first server turns read-only (as a demoted primary does), the second takes writes.
  first.SetAndReload("default_transaction_read_only", "on");
  // A backend applies a reload between commands: until the pooled one reports it, a write could
  // still start its transaction read-write.
  std::string seen;
  for (int i = 0; i < 100 && seen != "on"; ++i) {
    seen = QueryOnce(pool, Clock::now() + 1s, {"SHOW default_transaction_read_only", {}}).Get(0, 0);
    if (seen != "on") std::this_thread::sleep_for(20ms);
  }
  ASSERT_EQ(seen, "on");
  std::string message;
  EXPECT_EQ(CodeOf([&] { WriteRow(pool, "t", "during"); }, &message), ErrorCode::kUnavailable) << message;
  EXPECT_NE(message.find("standby"), std::string::npos) << message;
  // Every pooled connection redials, and finds the server that takes writes.
  EXPECT_EQ(WriteRow(pool, "t", "after"), "127.0.0.1:" + std::to_string(second.port()));
  EXPECT_EQ(second.Execute("SELECT string_agg(value, ',') FROM t"), "after");
  EXPECT_EQ(first.Execute("SELECT string_agg(value, ',') FROM t"), "before");
}

TEST(PgClientBound, AFrozenServerAnswersUnavailableAtTheDeadlineAndHealthSeesIt) {
  PostgresServer server;
  server.Execute("CREATE TABLE t (value text)");
  PgPool pool(PgOn({&server}));
  ASSERT_FALSE(WriteRow(pool, "t", "warm").empty());
  server.Freeze();
  // A pooled connection (the server's socket is open, nothing answers) and a new one (the kernel
  // accepts the connection, the postmaster never answers the startup packet).
  for (int round = 0; round < 2; ++round) {
    const auto start = Steady::now();
    std::string message;
    EXPECT_EQ(CodeOf([&] { WriteRow(pool, "t", "frozen", 700ms); }, &message), ErrorCode::kUnavailable) << message;
    EXPECT_LT(MillisSince(start), 1700) << "a call held past its deadline by more than 1 s (round " << round << ")";
  }
  const auto probe = Steady::now();
  EXPECT_FALSE(pool.Ping(1000ms));
  EXPECT_LT(MillisSince(probe), 2000);
  server.Thaw();
  // Back: the pool redials; nothing hangs on the connections dropped meanwhile.
  std::string endpoint;
  for (int i = 0; i < 50 && endpoint.empty(); ++i) {
    try {
      endpoint = WriteRow(pool, "t", "thawed");
    } catch (const Error&) {
      std::this_thread::sleep_for(100ms);
    }
  }
  EXPECT_FALSE(endpoint.empty());
  EXPECT_TRUE(pool.Ping(1000ms));
}

// A connection keeps its socket timeout while commands ask for the same one, and takes a
// shorter one when a command's deadline is nearer: a frozen Redis is UNAVAILABLE at the
// deadline, not at the (much longer) command timeout a previous command set.
TEST(RedisClientBound, ACommandIsBoundByItsOwnDeadlineOnAConnectionThatServedLongerOnes) {
  spdlog::set_level(spdlog::level::err);
  RedisServer server;
  RedisOptions options;
  options.host = "127.0.0.1";
  options.port = server.port();
  options.pool_size = 1;  // every command on the one connection
  options.command_timeout = 4000ms;
  RedisPool pool(options);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(ReplyString(pool.Command({"SET", "k", std::to_string(i)}, Clock::now() + 30s).get()).value_or(""), "OK");
  }
  server.Freeze();
  for (auto deadline : {300ms, 600ms}) {
    const auto start = Steady::now();
    std::string message;
    EXPECT_EQ(CodeOf([&] { pool.Command({"GET", "k"}, Clock::now() + deadline); }, &message), ErrorCode::kUnavailable)
        << message;
    EXPECT_LT(MillisSince(start), deadline.count() + 1000) << "held to the 4 s command timeout, not the deadline";
  }
  server.Thaw();
  std::optional<std::string> value;
  for (int i = 0; i < 50 && !value; ++i) {
    try {
      value = ReplyString(pool.Command({"GET", "k"}, Clock::now() + 30s).get());
    } catch (const Error&) {
      std::this_thread::sleep_for(100ms);
    }
  }
  EXPECT_EQ(value.value_or(""), "2");
}

// The fast reads' connection (libs/redis async_redis.h) against a real redis-server: replies
// come on the loop thread, never inside Command; a frozen server is given up at the command's
// deadline (every pending read answered "no answer", the connection dropped, Command refused
// at once), and the connection comes back by itself after a thaw and after a restart.
TEST(AsyncRedisReads, AnsweredOnTheLoopAndGivenUpAtTheDeadlineWhenFrozenThenBackByThemselves) {
  spdlog::set_level(spdlog::level::err);
  RedisServer server(/*persistent=*/true);
  RedisOptions options;
  options.host = "127.0.0.1";
  options.port = server.port();
  options.pool_size = 1;
  RedisPool pool(options);
  AsyncRedis async(pool, AsyncRedisOptions{150ms, 200ms});
  auto wait_ready = [&] {
    for (int i = 0; i < 100 && !async.ready(); ++i) std::this_thread::sleep_for(50ms);
    return async.ready();
  };
  struct Outcome {
    std::optional<AsyncRedisReply> reply;
    std::thread::id thread;
  };
  // One MGET; the outcome, or nullopt when Command refused to send it.
  auto mget = [&](Clock::time_point deadline) -> std::optional<Outcome> {
    std::promise<Outcome> promise;
    auto future = promise.get_future();
    if (!async.Command({"MGET", "k", "absent"}, deadline, [&promise](std::optional<AsyncRedisReply> reply) {
          promise.set_value(Outcome{std::move(reply), std::this_thread::get_id()});
        })) {
      return std::nullopt;
    }
    if (future.wait_for(5s) != std::future_status::ready) ADD_FAILURE() << "done never ran";
    return future.get();
  };
  ASSERT_TRUE(wait_ready());
  ASSERT_EQ(RedisCommandAt(server.port(), {"SET", "k", std::string(6000, 'p')}), "OK");
  auto answered = mget(Clock::now() + 5s);
  ASSERT_TRUE(answered && answered->reply);
  ASSERT_EQ(answered->reply->size(), 2u);
  EXPECT_EQ(answered->reply->value(0).value_or(""), std::string(6000, 'p'));
  EXPECT_FALSE(answered->reply->value(1).has_value()) << "a key not set is nil";
  EXPECT_NE(answered->thread, std::this_thread::get_id()) << "done runs on the loop thread";
  EXPECT_EQ(async.drops(), 0u);

  server.Freeze();
  const auto start = Steady::now();
  auto frozen = mget(Clock::now() + 30s);  // the caller's deadline is far; the command timeout is not
  ASSERT_TRUE(frozen);
  EXPECT_FALSE(frozen->reply) << "no answer from a frozen server";
  EXPECT_LT(MillisSince(start), 1000) << "given up at the 150 ms command timeout";
  EXPECT_EQ(async.drops(), 1u);
  EXPECT_FALSE(mget(Clock::now() + 5s)) << "refused at once while the server does not answer";
  server.Thaw();
  ASSERT_TRUE(wait_ready()) << "re-dialled after the thaw";
  auto thawed = mget(Clock::now() + 5s);
  ASSERT_TRUE(thawed && thawed->reply);
  EXPECT_EQ(thawed->reply->value(0).value_or("").size(), 6000u);

  server.Crash();
  std::this_thread::sleep_for(100ms);
  auto crashed = mget(Clock::now() + 5s);
  EXPECT_TRUE(!crashed || !crashed->reply) << "no answer from a server that is gone";
  server.Start();
  ASSERT_TRUE(wait_ready()) << "re-dialled after the restart";
  auto restarted = mget(Clock::now() + 5s);
  ASSERT_TRUE(restarted && restarted->reply);
  EXPECT_EQ(restarted->reply->value(0).value_or("").size(), 6000u) << "the persistent server kept the key";
  EXPECT_GE(async.drops(), 2u);
}

// Commands sent while an earlier one awaits its reply wait in hiredis's buffer and go out
// together when the loop is woken by that reply: every one is sent, each gets its own reply
// (in order, under 8 threads racing), and a frozen server gives every queued one "no answer"
// at the command timeout.
TEST(AsyncRedisReads, CommandsQueuedBehindAnUnansweredOneGoOutTogetherAndEachGetsItsOwnReply) {
  spdlog::set_level(spdlog::level::err);
  RedisServer server(/*persistent=*/false);
  RedisOptions options;
  options.host = "127.0.0.1";
  options.port = server.port();
  options.pool_size = 1;
  RedisPool pool(options);
  AsyncRedis async(pool, AsyncRedisOptions{150ms, 200ms});
  for (int i = 0; i < 100 && !async.ready(); ++i) std::this_thread::sleep_for(50ms);
  ASSERT_TRUE(async.ready());
  constexpr int kKeys = 50;
  for (int k = 0; k < kKeys; ++k) {
    ASSERT_EQ(RedisCommandAt(server.port(), {"SET", "k" + std::to_string(k), "value-" + std::to_string(k)}), "OK");
  }
  constexpr int kThreads = 8, kPerThread = 400;
  std::atomic<int> right{0}, wrong{0}, unanswered{0}, refused{0}, done{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {  // sent back to back: no caller waits for its reply
        const int k = (t * 7 + i) % kKeys;
        const bool sent = async.Command({"GET", "k" + std::to_string(k)}, Clock::now() + 5s,
                                        [&, k](std::optional<AsyncRedisReply> reply) {
                                          if (!reply) {
                                            ++unanswered;
                                          } else if (reply->value(0).value_or("") == "value-" + std::to_string(k)) {
                                            ++right;
                                          } else {
                                            ++wrong;
                                          }
                                          ++done;
                                        });
        if (!sent) {
          ++refused;
          ++done;
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  for (int i = 0; i < 200 && done.load() < kThreads * kPerThread; ++i) std::this_thread::sleep_for(25ms);
  EXPECT_EQ(right.load(), kThreads * kPerThread) << "wrong " << wrong << ", unanswered " << unanswered
                                                 << ", refused " << refused;
  EXPECT_GT(async.corked(), 0u) << "some commands waited for an earlier reply and went out together";
  EXPECT_EQ(async.drops(), 0u);

  server.Freeze();
  std::atomic<int> frozen_unanswered{0}, frozen_done{0};
  const auto start = Steady::now();
  const auto corked_before = async.corked();
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(async.Command({"GET", "k1"}, Clock::now() + 30s, [&](std::optional<AsyncRedisReply> reply) {
      if (!reply) ++frozen_unanswered;
      ++frozen_done;
    }));
  }
  EXPECT_EQ(async.corked() - corked_before, 19u) << "the first is written, the rest wait for its reply";
  for (int i = 0; i < 100 && frozen_done.load() < 20; ++i) std::this_thread::sleep_for(20ms);
  EXPECT_EQ(frozen_unanswered.load(), 20) << "every queued command: no answer";
  EXPECT_LT(MillisSince(start), 1000) << "given up at the 150 ms command timeout";
  server.Thaw();
}

// The rule both Redis caches keep (libs/redis generation_cache.h: active plans, assessments), against
// a real redis-server: a fill made from a read before a change never lands once the change has
// bumped the generation, whether it comes before the commit (the bump in the transaction) or
// after it (the invalidation); an entry is served only under the generation it was filled at,
// the same by Read and by ReadAsync; and an entry not written by this code is not served.
TEST(GenerationCacheRule, AFillReadBeforeAChangeNeverLandsAfterIt) {
  spdlog::set_level(spdlog::level::err);
  RedisServer server(/*persistent=*/false);
  RedisOptions options;
  options.host = "127.0.0.1";
  options.port = server.port();
  options.pool_size = 2;
  RedisPool pool(options);
  AsyncRedis async(pool, AsyncRedisOptions{});
  for (int i = 0; i < 100 && !async.ready(); ++i) std::this_thread::sleep_for(50ms);
  ASSERT_TRUE(async.ready());
  GenerationCache cache(pool, std::chrono::seconds(60), &async);
  const GenerationCache::Keys keys{"entry", "generation"};
  const auto deadline = [] { return Clock::now() + 5s; };
  // What a reader sees: the generation, and the value if one is current.
  using Seen = std::pair<std::string, std::optional<std::string>>;
  auto read = [&]() -> Seen {
    auto seen = cache.Read(keys, deadline(), [](const GenerationCache::Values& values) {
      return Seen{values.generation,
                  values.value ? std::optional<std::string>(std::string(*values.value)) : std::nullopt};
    });
    EXPECT_TRUE(seen.has_value());
    return seen.value_or(Seen{});
  };
  auto read_async = [&]() -> std::optional<std::string> {
    std::promise<std::optional<std::string>> promise;
    auto future = promise.get_future();
    EXPECT_TRUE(cache.ReadAsync(keys, deadline(), [&](std::optional<std::optional<std::string_view>> value) {
      EXPECT_TRUE(value.has_value()) << "Redis answered";
      promise.set_value(value && *value ? std::optional<std::string>(std::string(**value)) : std::nullopt);
    }));
    EXPECT_EQ(future.wait_for(5s), std::future_status::ready);
    return future.get();
  };

  const Seen empty = read();
  EXPECT_EQ(empty, (Seen{"0", std::nullopt})) << "nothing cached, generation 0";
  cache.BumpBeforeCommit(keys, deadline());  // a write's transaction, not yet committed
  cache.Fill(keys, empty.first, "before the change", deadline());  // a reader that read before it
  EXPECT_EQ(read(), (Seen{"1", std::nullopt})) << "a fill under the old generation does not land";
  // A reader between the bump and the commit reads the record of truth as it was, and fills it
  // under the new generation; the invalidation after the commit throws that entry out.
  cache.Fill(keys, "1", "read while the change committed", deadline());
  EXPECT_EQ(read(), (Seen{"1", std::string("read while the change committed")}));
  EXPECT_EQ(read_async(), std::optional<std::string>("read while the change committed")) << "ReadAsync sees the same";
  cache.InvalidateAfterCommit(keys, deadline());
  EXPECT_EQ(read(), (Seen{"2", std::nullopt})) << "after the commit: nothing older is served";
  EXPECT_EQ(read_async(), std::nullopt);
  cache.Fill(keys, "1", "read while the change committed", deadline());
  EXPECT_EQ(read(), (Seen{"2", std::nullopt})) << "nor filled again by a late reader";
  cache.Fill(keys, "2", "after the change", deadline());
  EXPECT_EQ(read(), (Seen{"2", std::string("after the change")}));
  EXPECT_EQ(read_async(), std::optional<std::string>("after the change"));
  const auto ttl = RedisCommandAt(server.port(), {"TTL", "entry"});
  EXPECT_GT(std::stol(ttl), 0) << "an entry expires (a lost invalidation costs at most the TTL)";
  // Whatever else sits at the key (another generation's prefix, no prefix) is a miss.
  ASSERT_EQ(RedisCommandAt(server.port(), {"SET", "entry", "20\nnot this generation"}), "OK");
  EXPECT_EQ(read(), (Seen{"2", std::nullopt}));
  ASSERT_EQ(RedisCommandAt(server.port(), {"SET", "entry", "2"}), "OK");
  EXPECT_EQ(read(), (Seen{"2", std::nullopt}));
  EXPECT_EQ(read_async(), std::nullopt);
}

// A patient's clinics (clinic scoping) as the services cache them: a patient read steadily is always
// found without a query on the caller's thread (a fast read cannot wait for PostgreSQL), while a change
// made elsewhere is still seen within the cache's lifetime, and never undone by a read that began before it.
TEST(PatientReachCache, AReadPatientIsReadAheadAndAChangeIsSeenWithinTheLifetime) {
  PostgresServer pg;
  pg.Execute("CREATE SCHEMA assessment; CREATE SCHEMA progress;"
             " CREATE TABLE assessment.patient_clinics (tenant_id text, patient_id text, clinic_id text);"
             " CREATE TABLE progress.emergency_access (tenant_id text, patient_id text, principal text,"
             " expires_at timestamptz);"
             " CREATE TABLE assessment.consents (tenant_id text, patient_id text, kind text, platform text,"
             " decision text, consent_id bigint);"
             " INSERT INTO assessment.patient_clinics VALUES ('t', 'p', 'north')");
  PgPool pool(PgOn({&pg}));
  constexpr auto kLifetime = 600ms;
  PgPatientClinics clinics(pool, kLifetime);
  using Clinics = std::set<std::string>;
  // What a fast read finds: the cached clinics, or nothing (it would go the ordinary way).
  auto cached = [&]() -> std::optional<Clinics> {
    NoBlockingScope no_blocking;
    try {
      return clinics.ReachOf("t", "p", Clock::now() + 1s).clinics;
    } catch (const WouldBlock&) {
      return std::nullopt;
    }
  };
  EXPECT_EQ(cached(), std::nullopt) << "nothing cached: the first read must query";
  EXPECT_EQ(clinics.ReachOf("t", "p", Clock::now() + 3s).clinics, Clinics{"north"});
  // Four lifetimes of reads every 100 ms: every one is found (without read-ahead the entry expires).
  for (int i = 0; i < 24; ++i) {
    ASSERT_EQ(cached(), Clinics{"north"}) << "read " << i << ", " << i * 100 << " ms after the first";
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_GE(clinics.read_ahead(), 3u);
  // A transfer through another replica: seen within the lifetime, and once seen never undone.
  pg.Execute("UPDATE assessment.patient_clinics SET clinic_id = 'south'");
  const auto changed = Steady::now();
  while (cached() != Clinics{"south"}) {
    ASSERT_LT(MillisSince(changed), 1500) << "the change was not seen";
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_LE(MillisSince(changed), 600 + 300) << "seen within the lifetime (and the read's own time)";
  for (int i = 0; i < 30; ++i) {
    ASSERT_EQ(cached(), Clinics{"south"}) << "read " << i << " after the change was seen";
    std::this_thread::sleep_for(20ms);
  }
  // A change through this process is seen at once; an unread patient expires.
  clinics.Forget("t", "p");
  EXPECT_EQ(cached(), std::nullopt);
  EXPECT_EQ(clinics.ReachOf("t", "p", Clock::now() + 3s).clinics, Clinics{"south"});
  std::this_thread::sleep_for(kLifetime + 100ms);
  EXPECT_EQ(cached(), std::nullopt) << "not read for a lifetime: gone";

  // A read that began before a change through this process (held here behind a lock) may have read
  // what the change replaced: it answers its own call but is not kept.
  PgConnection locker(PgOn({&pg}));
  locker.EnsureConnected(Clock::now() + 3s);
  locker.Exec("BEGIN");
  locker.Exec("LOCK TABLE assessment.patient_clinics IN ACCESS EXCLUSIVE MODE");
  auto straddling = std::async(std::launch::async, [&] { return clinics.ReachOf("t", "p", Clock::now() + 10s); });
  const auto waiting = [&] {
    return pg.Execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'") == "1";
  };
  for (int i = 0; i < 250 && !waiting(); ++i) std::this_thread::sleep_for(20ms);
  ASSERT_TRUE(waiting()) << "the read is under way, behind the lock";
  clinics.Forget("t", "p");
  locker.Exec("COMMIT");
  EXPECT_EQ(straddling.get().clinics, Clinics{"south"});
  EXPECT_EQ(cached(), std::nullopt) << "a read older than the change is not kept";
  EXPECT_EQ(clinics.ReachOf("t", "p", Clock::now() + 3s).clinics, Clinics{"south"});
  EXPECT_EQ(cached(), Clinics{"south"}) << "a read after it is";
}

class SynchronousCommit : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<PostgresServer>(/*durable=*/true);
    server_->Execute("CREATE TABLE t (value text)");
    // A synchronous standby that never connects: every COMMIT waits for it (statement_timeout does not apply).
    server_->SetAndReload("synchronous_standby_names", "'absent_standby'");
    WaitForSetting("absent_standby");
  }
  // New sessions see a reload once the postmaster has applied it (asynchronously).
  void WaitForSetting(const std::string& value) {
    for (int i = 0; i < 100 && server_->Execute("SHOW synchronous_standby_names") != value; ++i) {
      std::this_thread::sleep_for(20ms);
    }
    ASSERT_EQ(server_->Execute("SHOW synchronous_standby_names"), value);
  }
  std::unique_ptr<PostgresServer> server_;
};

TEST_F(SynchronousCommit, ACommitWaitingForAMissingStandbyIsUnavailableAtTheDeadline) {
  PgPool pool(PgOn({server_.get()}));
  const auto start = Steady::now();
  std::string message;
  EXPECT_EQ(CodeOf([&] { WriteRow(pool, "t", "unconfirmed", 800ms); }, &message), ErrorCode::kUnavailable) << message;
  EXPECT_LT(MillisSince(start), 1800);
  // The commit happened locally and was never confirmed: answering OK would have acknowledged a
  // write a failover can lose.
  for (int i = 0; i < 50 && server_->Execute("SELECT count(*) FROM t") != "1"; ++i) std::this_thread::sleep_for(50ms);
  EXPECT_EQ(server_->Execute("SELECT count(*) FROM t"), "1");
}

TEST_F(SynchronousCommit, ACommitWhoseReplicationWaitIsCancelledIsUnavailableNotOk) {
  PgPool pool(PgOn({server_.get()}));
  auto write = std::async(std::launch::async, [&] {
    std::string message;
    const auto code = CodeOf([&] { WriteRow(pool, "t", "cancelled-wait", 10s); }, &message);
    return std::make_pair(code, message);
  });
  // PostgreSQL answers the cancelled wait with success and a WARNING; libpq passes the success on.
  std::string cancelled;
  for (int i = 0; i < 100 && cancelled != "t"; ++i) {
    std::this_thread::sleep_for(50ms);
    cancelled = server_->Execute(
        "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE wait_event = 'SyncRep' LIMIT 1");
  }
  ASSERT_EQ(cancelled, "t") << "no COMMIT was seen waiting for the standby";
  const auto [code, message] = write.get();
  EXPECT_EQ(code, ErrorCode::kUnavailable) << message;
  EXPECT_NE(message.find("synchronous standby"), std::string::npos) << message;
  // The pool is usable afterwards (the connection the warning came on was dropped).
  server_->SetAndReload("synchronous_standby_names", "''");
  WaitForSetting("");
  EXPECT_FALSE(WriteRow(pool, "t", "after").empty());
}

// A master, one replica and one sentinel (quorum 1).
class Sentinel : public ::testing::Test {
 protected:
  void SetUp() override {
    spdlog::set_level(spdlog::level::err);
    master_ = std::make_unique<RedisServer>();
    replica_ = std::make_unique<RedisServer>(
        false, std::vector<std::string>{"--replicaof", "127.0.0.1", std::to_string(master_->port())});
    // The replica in sync (WAIT counts only replicas online).
    for (int i = 0; i < 200 && RedisCommandAt(master_->port(), {"INFO", "replication"}).find("state=online") ==
                                   std::string::npos;
         ++i) {
      std::this_thread::sleep_for(50ms);
    }
    sentinel_ = std::make_unique<RedisSentinelProcess>(master_->port(), 1);
    // The sentinel learns the replica from the master's INFO (asked every 10 s, first at once).
    for (int i = 0; i < 200 && RedisCommandAt(sentinel_->port(), {"SENTINEL", "master", "physio"}).find("num-slaves 1") ==
                                   std::string::npos;
         ++i) {
      std::this_thread::sleep_for(50ms);
    }
  }
  RedisOptions Options(int wait_replicas) const {
    RedisOptions options;
    options.host = "127.0.0.1";
    options.port = 1;  // unused: the sentinels name the master
    options.sentinels = {{"127.0.0.1", sentinel_->port()}};
    options.pool_size = 2;
    options.connect_timeout = 500ms;
    options.command_timeout = 1000ms;
    options.wait_replicas = wait_replicas;
    options.wait_timeout = 300ms;
    return options;
  }
  std::unique_ptr<RedisServer> master_, replica_;
  std::unique_ptr<RedisSentinelProcess> sentinel_;
};

TEST_F(Sentinel, TheMasterIsFoundThroughTheSentinelAndDurableWritesWaitForAReplica) {
  RedisPool pool(Options(1));
  // "online" is not yet "answering": a replica that has just loaded the master's data (or shares
  // two loaded cores with other suites) may miss the first WAIT's 300 ms. The claims below start
  // once it has acknowledged one durable write; a write refused until then is what production does.
  bool acknowledged = false;
  for (int i = 0; i < 20 && !acknowledged; ++i) {
    acknowledged = !CodeOf([&] { pool.CommandDurable({"SET", "warm-up", "x"}, Clock::now() + 2s); }).has_value();
  }
  ASSERT_TRUE(acknowledged) << "the replica never acknowledged a write";
  auto reply = pool.CommandDurable({"SET", "k", "v"}, Clock::now() + 2s);
  EXPECT_EQ(ReplyString(reply.get()).value_or(""), "OK");
  EXPECT_EQ(RedisCommandAt(replica_->port(), {"GET", "k"}), "v") << "acknowledged only once the replica had it";
  {
    auto lease = pool.Lease(Clock::now() + 1s);
    lease->Command({"PING"}, Clock::now() + 1s);
    EXPECT_EQ(lease->endpoint(), "127.0.0.1:" + std::to_string(master_->port()));
  }
  // The replica stalls: a durable write is not acknowledged; a cache fill (not durable) still is.
  replica_->Freeze();
  std::string message;
  EXPECT_EQ(CodeOf([&] { pool.CommandDurable({"SET", "k", "v2"}, Clock::now() + 2s); }, &message),
            ErrorCode::kUnavailable);
  EXPECT_NE(message.find("0 of 1"), std::string::npos) << message;
  EXPECT_EQ(ReplyString(pool.Command({"SET", "cache", "x"}, Clock::now() + 1s).get()).value_or(""), "OK");
  replica_->Thaw();
  EXPECT_FALSE(CodeOf([&] {
                 pool.EvalDurable(RedisScript("return redis.call('SET', KEYS[1], ARGV[1])"), {"k"}, {"v3"}, Clock::now() + 2s);
               }).has_value());
}

TEST_F(Sentinel, SentinelsThatAskForAPasswordGetTheConfiguredOneAndARefusalSaysNoMore) {
  // The default user of the sentinel gets a password (as `requirepass` in sentinel.conf would).
  ASSERT_EQ(RedisCommandAt(sentinel_->port(), {"ACL", "SETUSER", "default", "resetpass", ">sentinel-secret"}), "OK");
  RedisOptions wrong = Options(0);
  wrong.sentinel_password = "not-the-secret";
  RedisPool refused(wrong);
  std::string message;
  EXPECT_EQ(CodeOf([&] { refused.Command({"PING"}, Clock::now() + 1s); }, &message), ErrorCode::kUnavailable);
  EXPECT_NE(message.find("authentication refused"), std::string::npos) << message;
  EXPECT_EQ(message.find("not-the-secret"), std::string::npos) << "the password reached the error: " << message;
  RedisOptions right = Options(0);
  right.sentinel_password = "sentinel-secret";
  RedisPool pool(right);
  EXPECT_EQ(ReplyString(pool.Command({"SET", "k", "v"}, Clock::now() + 1s).get()).value_or(""), "OK");
  EXPECT_EQ(RedisCommandAt(master_->port(), {"GET", "k"}), "v");
}

TEST_F(Sentinel, AfterAFailoverThePoolRedialsTheNewMaster) {
  RedisPool pool(Options(0));
  ASSERT_EQ(ReplyString(pool.Command({"SET", "k", "before"}, Clock::now() + 1s).get()).value_or(""), "OK");
  // The master goes away for good; the sentinel promotes the replica.
  master_->Crash();
  const auto since = Steady::now();
  while (sentinel_->MasterPort() != replica_->port() && MillisSince(since) < 20000) std::this_thread::sleep_for(100ms);
  ASSERT_EQ(sentinel_->MasterPort(), replica_->port()) << "the sentinel did not fail over";
  // The pooled connections were to the old master: the next calls fail at most once each, then
  // the pool has found the new master.
  std::string value;
  for (int i = 0; i < 20 && value.empty(); ++i) {
    try {
      pool.Command({"SET", "k", "after"}, Clock::now() + 1s);
      value = ReplyString(pool.Command({"GET", "k"}, Clock::now() + 1s).get()).value_or("");
    } catch (const Error&) {
      std::this_thread::sleep_for(100ms);
    }
  }
  EXPECT_EQ(value, "after");
  EXPECT_EQ(RedisCommandAt(replica_->port(), {"GET", "k"}), "after");
}

// A master failed over while it still runs (frozen past down-after, then thawed): it answers as a
// master, on its own data, until the sentinels demote it seconds later. The pool's connections and
// the asynchronous reader leave it as soon as the sentinel announces the failover, not when the old
// master finally refuses a write.
TEST_F(Sentinel, AFailoverTheSentinelAnnouncesMovesThePoolAndTheAsyncReaderAtOnce) {
  RedisPool pool(Options(0));
  AsyncRedis async(pool, AsyncRedisOptions{});
  ASSERT_EQ(ReplyString(pool.Command({"SET", "k", "before"}, Clock::now() + 1s).get()).value_or(""), "OK");
  for (int i = 0; i < 100 && !async.ready(); ++i) std::this_thread::sleep_for(50ms);
  ASSERT_TRUE(async.ready());
  ASSERT_EQ(pool.Endpoint(Clock::now() + 1s).second, master_->port());
  master_->Freeze();
  const auto since = Steady::now();
  while (sentinel_->MasterPort() != replica_->port() && MillisSince(since) < 20000) std::this_thread::sleep_for(50ms);
  ASSERT_EQ(sentinel_->MasterPort(), replica_->port()) << "the sentinel did not fail over";
  master_->Thaw();
  // The old master, still a master, takes a write the new one never sees (as a client that
  // stayed on it would).
  ASSERT_EQ(RedisCommandAt(master_->port(), {"SET", "k", "stale"}), "OK");
  ASSERT_EQ(RedisCommandAt(replica_->port(), {"SET", "k", "current"}), "OK");
  // Within a second of the sentinel naming the replica, with no error seen on the way.
  int port = 0;
  for (int i = 0; i < 20 && port != replica_->port(); ++i) {
    port = pool.Endpoint(Clock::now() + 1s).second;
    if (port != replica_->port()) std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(port, replica_->port()) << "the pool stayed on the old master";
  EXPECT_GE(pool.failovers_heard(), 1u);
  EXPECT_EQ(ReplyString(pool.Command({"GET", "k"}, Clock::now() + 1s).get()).value_or(""), "current");
  // The asynchronous reader: no answer while it dials again, then the new master's.
  std::string read;
  for (int i = 0; i < 40 && read.empty(); ++i) {
    std::promise<std::string> promise;
    auto future = promise.get_future();
    if (async.Command({"GET", "k"}, Clock::now() + 1s, [&promise](std::optional<AsyncRedisReply> reply) {
          promise.set_value(reply ? std::string(reply->value(0).value_or("")) : std::string());
        })) {
      read = future.get();
    }
    if (read.empty()) std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(read, "current") << "the asynchronous reader read the old master";
}

TEST_F(Sentinel, AWriteToADemotedMasterWhoseConnectionStaysOpenIsUnavailableNeverOk) {
  // Straight to the master (no sentinel), so nothing reconfigures it back meanwhile.
  RedisOptions options = Options(0);
  options.sentinels.clear();
  options.port = master_->port();
  RedisPool pool(options);
  ASSERT_EQ(ReplyString(pool.Command({"SET", "k", "v"}, Clock::now() + 1s).get()).value_or(""), "OK");
  // Demoted by hand: REPLICAOF keeps ordinary clients' connections open, so the pooled one gets READONLY.
  ASSERT_EQ(RedisCommandAt(replica_->port(), {"REPLICAOF", "NO", "ONE"}), "OK");
  ASSERT_EQ(RedisCommandAt(master_->port(), {"REPLICAOF", "127.0.0.1", std::to_string(replica_->port())}), "OK");
  std::string message;
  const auto code = CodeOf([&] { pool.Command({"SET", "k", "w"}, Clock::now() + 1s); }, &message);
  ASSERT_TRUE(code.has_value()) << "a write to a demoted master was answered OK";
  EXPECT_EQ(*code, ErrorCode::kUnavailable);
  EXPECT_NE(message.find("not the master: READONLY"), std::string::npos) << message;
}

// Two sentinels that disagree, as right after a failover that one of them has not heard of yet:
// the first listed names an old master that answers ROLE "master" (restarted on its old data
// before the sentinels demoted it); the second names the master of a newer configuration. The
// newer one is used, whatever the order (CI, 2026-12-06: asking the sentinels in turn, a pool
// took the old master, and a session acknowledged after the failover was not found there).
TEST(SentinelsThatDisagree, TheMasterOfTheNewestConfigurationIsUsed) {
  spdlog::set_level(spdlog::level::err);
  RedisServer old_master, new_master;
  ASSERT_EQ(RedisCommandAt(old_master.port(), {"SET", "who", "old"}), "OK");
  ASSERT_EQ(RedisCommandAt(new_master.port(), {"SET", "who", "new"}), "OK");
  RedisSentinelProcess stale(old_master.port(), 1);
  RedisSentinelProcess current(new_master.port(), 1, 1000, 10000, /*config_epoch=*/2);
  ASSERT_NE(RedisCommandAt(current.port(), {"SENTINEL", "master", "physio"}).find("config-epoch 2"), std::string::npos);
  const auto options_listing = [&](bool stale_first) {
    RedisOptions options;
    options.port = 1;  // unused: the sentinels name the master
    options.sentinels = {{"127.0.0.1", stale.port()}, {"127.0.0.1", current.port()}};
    if (!stale_first) std::swap(options.sentinels[0], options.sentinels[1]);
    options.pool_size = 1;
    return options;
  };
  for (const bool stale_first : {true, false}) {
    RedisPool pool(options_listing(stale_first));
    EXPECT_EQ(ReplyString(pool.Command({"GET", "who"}, Clock::now() + 2s).get()).value_or(""), "new")
        << (stale_first ? "stale sentinel listed first" : "current sentinel listed first");
    auto lease = pool.Lease(Clock::now() + 1s);
    EXPECT_EQ(lease->endpoint(), "127.0.0.1:" + std::to_string(new_master.port()));
  }
  // The newest configuration's master gone (and its sentinel not yet failed over): the calls are
  // UNAVAILABLE, and the old master, though it answers ROLE "master", is not used instead.
  new_master.Crash();
  RedisPool pool(options_listing(/*stale_first=*/true));
  std::string message;
  EXPECT_EQ(CodeOf([&] { pool.Command({"GET", "who"}, Clock::now() + 2s); }, &message), ErrorCode::kUnavailable);
  EXPECT_NE(message.find("no master found through the sentinels"), std::string::npos) << message;
}

// Three sentinels, the first frozen (its port still accepts connections; nothing answers).
TEST(SentinelsOneFrozen, AFrozenSentinelIsLeftOutOfTheDialsAfterTheFirstUntilItsQuietPeriodEnds) {
  spdlog::set_level(spdlog::level::err);
  RedisServer master;
  RedisSentinelProcess frozen(master.port(), 2), second(master.port(), 2), third(master.port(), 2);
  for (auto* sentinel : {&frozen, &second, &third}) {
    for (int i = 0; i < 100 && sentinel->MasterPort() != master.port(); ++i) std::this_thread::sleep_for(50ms);
    ASSERT_EQ(sentinel->MasterPort(), master.port());
  }
  frozen.Freeze();
  RedisOptions options;
  options.port = 1;  // unused: the sentinels name the master
  options.sentinels = {{"127.0.0.1", frozen.port()}, {"127.0.0.1", second.port()}, {"127.0.0.1", third.port()}};
  options.pool_size = 3;
  options.connect_timeout = 500ms;
  options.sentinel_quiet = 1500ms;
  RedisPool pool(options);
  // The first dial asks all three at once and waits for the frozen one as long as its budget.
  auto first = pool.Lease(Clock::now() + 1s);
  std::string message;
  EXPECT_FALSE(CodeOf([&] { first->Command({"PING"}, Clock::now() + 2s); }, &message).has_value()) << message;
  EXPECT_EQ(first->endpoint(), "127.0.0.1:" + std::to_string(master.port()));
  // What operators see (/metrics): the frozen sentinel left out, after one dial it did not answer.
  auto states = pool.sentinel_states();
  ASSERT_EQ(states.size(), 3U);
  EXPECT_TRUE(states[0].left_out);
  EXPECT_EQ(states[0].silences, 1U);
  EXPECT_FALSE(states[1].left_out || states[2].left_out);
  EXPECT_EQ(states[1].silences + states[2].silences, 0U);
  MetricsText metrics;
  AddSentinelMetrics(metrics, options.sentinels, states);
  const auto label = [](const RedisSentinelProcess& sentinel) {
    return "{sentinel=\"127.0.0.1:" + std::to_string(sentinel.port()) + "\"} ";
  };
  EXPECT_NE(metrics.text().find("\nphysio_redis_sentinel_left_out" + label(frozen) + "1\n"), std::string::npos)
      << metrics.text();
  EXPECT_NE(metrics.text().find("\nphysio_redis_sentinel_silences_total" + label(frozen) + "1\n"), std::string::npos)
      << metrics.text();
  EXPECT_NE(metrics.text().find("\nphysio_redis_sentinel_left_out" + label(second) + "0\n"), std::string::npos)
      << metrics.text();
  // A dial after it does not ask the frozen sentinel, so it is made within a deadline shorter than
  // the frozen sentinel's budget (asked first, as it is listed, it would take all of it).
  auto second_lease = pool.Lease(Clock::now() + 1s);
  EXPECT_FALSE(CodeOf([&] { second_lease->Command({"PING"}, Clock::now() + 300ms); }, &message).has_value())
      << message;
  // Once its quiet period is over it is asked again: with the two others gone, a dial finds the
  // master only through it (thawed meanwhile).
  frozen.Thaw();
  second.Kill();
  third.Kill();
  std::this_thread::sleep_for(options.sentinel_quiet + 100ms);
  auto third_lease = pool.Lease(Clock::now() + 1s);
  EXPECT_FALSE(CodeOf([&] { third_lease->Command({"PING"}, Clock::now() + 2s); }, &message).has_value()) << message;
  EXPECT_EQ(third_lease->endpoint(), "127.0.0.1:" + std::to_string(master.port()));
  // Answering again, it is asked again; the two killed ones are now the silent ones. (Not asked
  // by the second dial, the frozen one was not counted silent twice.)
  states = pool.sentinel_states();
  EXPECT_FALSE(states[0].left_out);
  EXPECT_EQ(states[0].silences, 1U);
  EXPECT_TRUE(states[1].left_out && states[2].left_out);
}

}  // namespace
}  // namespace physio::testing
