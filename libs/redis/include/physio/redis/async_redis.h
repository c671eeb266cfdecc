#pragma once
// Redis reads without a thread waiting for them (issue 33): one hiredis
// asynchronous connection, shared by every caller, driven by one loop thread.
//  - A caller's command is written from the caller's own thread (no hand-off to
//    start it) when no other command awaits its reply; otherwise it waits in
//    hiredis's buffer and the loop thread, woken by that reply, writes every
//    command that queued up in one write (under load: one system call for many
//    commands, and no caller makes a system call holding the lock). The loop
//    thread reads the replies, many per wake-up under load, and runs each
//    command's `done` on the loop thread.
//  - Only for commands that may be skipped or repeated: every failure (not
//    connected, a transport error, an error reply, no reply before the command's
//    deadline) reports "no answer" and the caller goes the ordinary way
//    (RedisPool on a worker thread), which has its own timeouts and fallbacks.
//    Reads, and scripts that record their outcome under the request's id so that
//    the ordinary way's second run only replays it (EvalDurable): "no answer"
//    does not say the script did not run.
//  - A command past its deadline means Redis is slow or frozen: the connection is
//    dropped (every pending command reports no answer at once) and re-dialled at
//    most once per `reconnect_interval`; until then Command() refuses at once.
//  - With sentinels the address is the master the RedisPool found (checked with
//    ROLE). When the pool's epoch moves (a sentinel announced a failover, or the
//    pool lost Redis) the connection is dropped and re-dialled through the pool:
//    the old master may keep answering for seconds before the sentinels demote it.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "physio/common/clock.h"
#include "physio/redis/redis_pool.h"

struct redisAsyncContext;

namespace physio {

struct AsyncRedisOptions {
  // The longest a command may wait for its reply, whatever the caller's deadline.
  std::chrono::milliseconds command_timeout{250};
  // The shortest time between two dials after a failure or a drop.
  std::chrono::milliseconds reconnect_interval{1000};
};

// A reply as hiredis parsed it, owned (not copied: a cached plan is several KB).
class AsyncRedisReply {
 public:
  explicit AsyncRedisReply(RedisReply reply) : reply_(std::move(reply)) {}
  // Values: the elements of an array reply (MGET), or the reply itself.
  std::size_t size() const;
  // A bulk or status string; nullopt for nil (a key not set) and any other type.
  std::optional<std::string_view> value(std::size_t i) const;
  // hiredis's reply itself, for parsers shared with RedisPool's callers.
  const redisReply* get() const { return reply_.get(); }

 private:
  RedisReply reply_;
};

class AsyncRedis {
 public:
  // `pool` gives the address (through the sentinels when configured) and the credentials.
  AsyncRedis(RedisPool& pool, AsyncRedisOptions options);
  ~AsyncRedis();
  AsyncRedis(const AsyncRedis&) = delete;
  AsyncRedis& operator=(const AsyncRedis&) = delete;

  // nullopt: no usable answer (see above). An error reply counts as no answer.
  using Done = std::function<void(std::optional<AsyncRedisReply>)>;
  // Sends `argv` and returns true; `done` then runs exactly once, on the loop
  // thread inside a NoBlockingScope (it must hand blocking work on), never inside this call. False (and `done` never runs) when the
  // connection is not ready.
  bool Command(const std::vector<std::string>& argv, Clock::time_point deadline, Done done);
  // EVALSHA of `script` (never EVAL: a script Redis does not hold is "no answer",
  // and the ordinary way loads it), followed, when the pool asks replicas to
  // acknowledge durable writes (wait_replicas), by WAIT in the same write: `done`
  // gets the script's reply only once enough replicas acknowledged it within the
  // command timeout, and "no answer" otherwise. Same contract as Command. `args` is taken
  // (moved into the command when the caller passes a temporary).
  bool EvalDurable(const RedisScript& script, const std::vector<std::string>& keys, std::vector<std::string> args,
                   Clock::time_point deadline, Done done);

  bool ready() const { return ready_.load(); }
  // Commands answered, and those that got no answer (for /metrics and tests).
  std::uint64_t answered() const { return answered_.load(); }
  std::uint64_t failed() const { return failed_.load(); }
  std::uint64_t drops() const { return drops_.load(); }
  // Commands that waited for an earlier one's reply and went out with others in one write.
  std::uint64_t corked() const { return corked_.load(); }

 private:
  struct Pending {
    Done done;
    Clock::time_point deadline;
    std::list<Pending>::iterator self;
  };
  struct Completion {
    Done done;
    std::optional<AsyncRedisReply> reply;
  };

  // Queues one command; mutex_ held, ready. False when hiredis refused it.
  bool Send(const std::vector<std::string>& argv, Clock::time_point deadline, Done done);
  // After Send: writes now, unless an earlier command's reply will wake the loop to write.
  void WriteOrCork(bool loop_will_write);
  void Loop(std::stop_token stop);
  void Dial();                                   // mutex_ held
  void Drop(const char* why);                    // mutex_ held; not from inside a hiredis callback
  void ApplyInterest();                          // mutex_ held
  void Wake();
  static void OnReply(redisAsyncContext* ac, void* reply, void* privdata);
  static void OnReady(redisAsyncContext* ac, void* reply, void* privdata);
  static void OnConnect(const redisAsyncContext* ac, int status);
  static void OnDisconnect(const redisAsyncContext* ac, int status);
  static void AddRead(void* self);
  static void DelRead(void* self);
  static void AddWrite(void* self);
  static void DelWrite(void* self);
  static void Cleanup(void* self);

  RedisPool& pool_;
  AsyncRedisOptions options_;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;

  std::mutex mutex_;  // every use of ac_ and the state below
  redisAsyncContext* ac_ = nullptr;
  int registered_fd_ = -1;
  unsigned registered_events_ = 0;
  bool want_read_ = false, want_write_ = false;
  bool drop_requested_ = false;
  std::uint64_t dialled_epoch_ = 0;  // the pool's epoch when ac_ was dialled
  Clock::time_point next_dial_{};
  Clock::time_point dial_deadline_{};  // a dialled connection not ready by then is dropped
  std::list<Pending> pending_;
  std::vector<Completion> completions_;

  std::atomic<bool> ready_{false};
  std::atomic<std::uint64_t> answered_{0}, failed_{0}, drops_{0}, corked_{0};
  std::jthread loop_;  // last: started once everything above exists
};

}  // namespace physio
