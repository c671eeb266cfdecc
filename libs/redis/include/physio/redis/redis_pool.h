#pragma once
// A fixed-size pool of hiredis 0.14 connections.
//  - A lease waits at most until the caller's deadline (UNAVAILABLE after).
//  - Each command's socket timeout is set right before it runs, to the smaller
//    of the configured command timeout and the caller's remaining time, so it is
//    in force after every (re)connect as well (redisReconnect drops it).
//  - hiredis contexts are dead after any I/O or protocol error: such a connection
//    is closed when the lease ends and re-dialled on the next lease.
//  - An error *reply* (e.g. from a Lua script) is returned to the caller; only
//    transport failures throw Error(kUnavailable).
//  - With sentinels (Redis Sentinel), every (re)connect asks them all at once for the master's
//    address (leaving out, for a while, one that did not answer: SentinelSilence), takes the
//    newest configuration (the highest config-epoch) and checks with ROLE
//    that it is the master; a READONLY or NOREPLICAS
//    reply (a demoted master) or a lost connection makes the whole pool redial.
//  - With sentinels, one thread per sentinel listens for its +switch-master notice: a
//    failover makes the whole pool redial at once, not only when the old master refuses a
//    write or is demoted (which the sentinels do up to 10 s later).
//  - Durable writes (CommandDurable, EvalDurable) are followed by WAIT: when fewer
//    replicas than wait_replicas acknowledge it in time the write is UNAVAILABLE
//    (it may be lost by a failover; the caller's retry with the same request_id is safe).
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "physio/common/bounded_pool.h"
#include "physio/common/clock.h"

// hiredis's types, declared so this header does not bring <hiredis/hiredis.h>
// to every user of the pool: only the stores that read replies include it.
struct redisReply;
struct redisContext;

namespace physio {

struct RedisOptions {
  std::string host = "127.0.0.1";
  int port = 6379;
  int pool_size = 8;
  std::chrono::milliseconds connect_timeout{500};
  std::chrono::milliseconds command_timeout{1000};
  // AUTH on every new connection when a password is set (an ACL user when `user` is set too).
  std::string user;
  std::string password;
  // Redis Sentinel: "host:port" of each sentinel; empty: host and port above are the server.
  std::vector<std::pair<std::string, int>> sentinels;
  std::string master_name = "physio";
  std::string sentinel_user;
  std::string sentinel_password;
  // A sentinel that did not answer (down, frozen, unreachable) is not asked again by this pool's
  // dials for this long, unless fewer than a majority of the sentinels would then be asked.
  std::chrono::milliseconds sentinel_quiet{10000};
  // Replicas that must acknowledge a durable write (WAIT); 0: none asked.
  int wait_replicas = 0;
  std::chrono::milliseconds wait_timeout{500};
};

// "host:port,host:port" as sentinel addresses; throws std::invalid_argument naming the bad entry.
std::vector<std::pair<std::string, int>> ParseRedisAddresses(const std::string& list);

struct ReplyDeleter {
  void operator()(redisReply* reply) const;
};
using RedisReply = std::unique_ptr<redisReply, ReplyDeleter>;

// Which of a pool's sentinels did not answer lately. The sentinels are asked together, and a dial
// waits for every one it asks; one that did not answer is left out of the dials after it for
// RedisOptions::sentinel_quiet, so a dead or frozen sentinel costs one dial its budget, not every
// dial (after a failover, every connection of the pool dials at once).
class SentinelSilence {
 public:
  explicit SentinelSilence(std::size_t sentinels) : quiet_until_(sentinels), silences_(sentinels) {}
  // The sentinels to ask at `now`: those not silent, or all of them when fewer than a majority are.
  std::vector<std::size_t> ToAsk(Clock::time_point now) const;
  void NoAnswer(std::size_t index, Clock::time_point until);
  void Answered(std::size_t index);
  // For operators (/metrics), by sentinel: left out of dials at `now`, and how many dials it gave
  // no answer to so far. A sentinel gone quiet is otherwise invisible until a majority is.
  struct State {
    bool left_out = false;
    std::uint64_t silences = 0;
  };
  std::vector<State> States(Clock::time_point now) const;

 private:
  mutable std::mutex mutex_;
  std::vector<Clock::time_point> quiet_until_;
  std::vector<std::uint64_t> silences_;
};

class RedisConnection {
 public:
  // `silence`: the pool's; see SentinelSilence. `epoch` (optional): the pool's; see ConnectionEpoch.
  RedisConnection(const RedisOptions& options, SentinelSilence& silence, ConnectionEpoch* epoch = nullptr)
      : options_(options), epoch_(epoch), silence_(silence) {}
  // Runs one command given as argv (binary safe). Throws Error(kUnavailable) on
  // transport failure or when the deadline has passed.
  RedisReply Command(const std::vector<std::string>& argv, Clock::time_point deadline);
  // WAIT for the configured replicas after a durable write; UNAVAILABLE when too few acknowledge.
  void AwaitReplicas(Clock::time_point deadline);
  // The host:port this connection reached (empty when not connected).
  std::string endpoint() const { return context_ ? endpoint_ : ""; }

 private:
  friend class RedisPool;  // its sentinel watchers dial as the connections do
  void Connect(Clock::time_point deadline);
  struct ContextDeleter {
    void operator()(redisContext* c) const;
  };
  using Context = std::unique_ptr<redisContext, ContextDeleter>;
  // A connection to host:port, authenticated when a password is given; throws Error(kUnavailable).
  static Context Dial(const std::string& host, int port, std::chrono::milliseconds budget, const std::string& user,
                      const std::string& password);
  // The master's address by the newest configuration (config-epoch) any sentinel names, checked with ROLE.
  Context DialMaster(Clock::time_point deadline);
  // A transport error that means Redis itself went away (not a timeout).
  void NoteLostIfGone(int hiredis_error, int saved_errno);
  const RedisOptions& options_;
  ConnectionEpoch* epoch_;
  SentinelSilence& silence_;
  std::uint64_t dialled_epoch_ = 0;
  std::string endpoint_;
  std::chrono::milliseconds applied_timeout_{-1};  // the socket timeout set on context_ (-1: unknown)
  Context context_;
};

using RedisLease = BoundedPool<RedisConnection>::Lease;

// A Lua script with its SHA1, computed once: EVALSHA names the script by it, and hashing a script
// of 1-2 KB on every call was about 2% of an intake submission's CPU (issue 33). Define one per
// script at namespace scope: `const RedisScript kSomeScript{R"LUA(...)LUA"};`.
class RedisScript {
 public:
  explicit RedisScript(std::string body);
  const std::string& body() const { return body_; }
  const std::string& sha1() const { return sha1_; }

 private:
  std::string body_;
  std::string sha1_;
};

class RedisPool {
 public:
  explicit RedisPool(RedisOptions options);
  ~RedisPool();
  RedisPool(const RedisPool&) = delete;
  RedisPool& operator=(const RedisPool&) = delete;
  RedisLease Lease(Clock::time_point deadline) { return connections_.Acquire(deadline); }
  // One command on a leased connection.
  RedisReply Command(const std::vector<std::string>& argv, Clock::time_point deadline);
  // EVALSHA with a fallback to EVAL on NOSCRIPT, so scripts survive a Redis restart.
  RedisReply Eval(const RedisScript& script, const std::vector<std::string>& keys,
                  const std::vector<std::string>& args, Clock::time_point deadline);
  // The same for writes that must survive a failover (sessions, idempotency records,
  // cache generations): followed by WAIT for wait_replicas when that is set.
  RedisReply CommandDurable(const std::vector<std::string>& argv, Clock::time_point deadline);
  RedisReply EvalDurable(const RedisScript& script, const std::vector<std::string>& keys,
                         const std::vector<std::string>& args, Clock::time_point deadline);
  // The address a connection of this pool reaches now (with sentinels: the master,
  // checked with ROLE), after a PING on it; throws Error(kUnavailable).
  std::pair<std::string, int> Endpoint(Clock::time_point deadline);
  // PING with a short timeout; used by health checks.
  bool Ping(std::chrono::milliseconds timeout);
  const RedisOptions& options() const { return options_; }
  PoolStats Stats() { return connections_.Stats(); }
  // Changes whenever the pool's connections must be dialled again (Redis went away, a
  // failover): a connection made outside the pool (AsyncRedis) compares it with its own.
  std::uint64_t epoch() const { return epoch_.Current(); }
  // Failovers the sentinels announced (+switch-master; one per failover, whichever sentinel told first).
  std::uint64_t failovers_heard() const { return failovers_heard_.load(); }
  // Each sentinel's state (SentinelSilence::States), in the order of options().sentinels.
  std::vector<SentinelSilence::State> sentinel_states() const { return silence_.States(Clock::now()); }

 private:
  // Listens to sentinel `index` for +switch-master until the pool goes.
  void WatchSentinel(std::size_t index, std::stop_token stop);
  RedisReply EvalOn(RedisConnection& connection, const RedisScript& script, const std::vector<std::string>& keys,
                    const std::vector<std::string>& args, Clock::time_point deadline);
  RedisOptions options_;  // before connections_: they refer to it
  ConnectionEpoch epoch_;
  SentinelSilence silence_;
  BoundedPool<RedisConnection> connections_;
  std::atomic<std::uint64_t> failovers_heard_{0};
  std::mutex last_switch_mutex_;
  std::string last_switch_;  // the last +switch-master text heard, from whichever sentinel
  int stop_fd_ = -1;  // an eventfd: written once when the pool goes, wakes every watcher
  std::vector<std::jthread> watchers_;
};

// Helpers for reading replies; each throws Error(kInternal) on an unexpected shape.
std::optional<std::string> ReplyString(const redisReply* reply);  // nullopt for nil
bool IsErrorReply(const redisReply* reply, std::string* message = nullptr);

}  // namespace physio
