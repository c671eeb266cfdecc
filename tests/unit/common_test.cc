#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <mutex>

#include "physio/common/bounded_pool.h"
#include "physio/common/config.h"
#include "physio/common/error.h"
#include "physio/common/logging.h"
#include "physio/common/validation.h"
#include "physio/common/worker_pool.h"
#include "physio/redis/redis_keys.h"

namespace physio {
namespace {

TEST(Config, FlagBeatsEnvironmentBeatsDefault) {
  std::vector<ConfigKey> keys = {{"redis-port", "6379", ""}, {"listen", "x", ""}};
  setenv("PHYSIO_REDIS_PORT", "7000", 1);
  Config from_env(keys);
  EXPECT_EQ(from_env.GetInt("redis-port"), 7000);
  const char* argv[] = {"prog", "--redis-port=7100"};
  Config from_flag(keys, 2, argv);
  EXPECT_EQ(from_flag.GetInt("redis-port"), 7100);
  unsetenv("PHYSIO_REDIS_PORT");
  EXPECT_EQ(Config(keys).Get("listen"), "x");
}

TEST(Config, UnknownFlagsAndBadNumbersAreErrors) {
  std::vector<ConfigKey> keys = {{"redis-port", "6379", ""}};
  const char* typo[] = {"prog", "--redis-prot=1"};
  EXPECT_THROW(Config(keys, 2, typo), std::invalid_argument);
  const char* bad[] = {"prog", "--redis-port=12ab"};
  EXPECT_THROW(Config(keys, 2, bad).GetInt("redis-port"), std::invalid_argument);
}

TEST(RedisKeys, CarryTheTenantInAHashTagAndRejectBreakout) {
  EXPECT_EQ(RedisKey("asmt", "t42", {"intake", "abc"}), "asmt:{t:t42}:intake:abc");
  EXPECT_THROW(RedisKey("asmt", "t}42", {"x"}), std::invalid_argument);
  EXPECT_THROW(RedisKey("asmt", "t42", {"a{b"}), std::invalid_argument);
  EXPECT_THROW(RedisKey("asmt", "", {"x"}), std::invalid_argument);
}

TEST(Validation, NamesTheField) {
  try {
    ValidateOpaqueId("patient_id", "has space");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_EQ(std::string(e.what()).rfind("patient_id: ", 0), 0u);
  }
  EXPECT_THROW(ValidateRequestId("request_id", ""), Error);
  EXPECT_THROW(ValidateRequestId("request_id", std::string(129, 'a')), Error);
  EXPECT_NO_THROW(ValidateRequestId("request_id", "retry-7f3a"));
}

TEST(BoundedPool, ALeaseWaitsOnlyUntilTheDeadlineAndReturnsItself) {
  BoundedPool<int> pool(1, [] { return std::make_unique<int>(7); }, "store");
  {
    auto lease = pool.Acquire(std::chrono::steady_clock::now() + std::chrono::seconds(1));
    EXPECT_EQ(*lease, 7);
    auto start = std::chrono::steady_clock::now();
    try {
      pool.Acquire(start + std::chrono::milliseconds(50));
      FAIL() << "second lease should not be granted";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kUnavailable);
      EXPECT_EQ(std::string(e.what()), "store: no connection free before the deadline");
    }
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(1000));
  }
  auto again = pool.Acquire(std::chrono::steady_clock::now() + std::chrono::milliseconds(50));
  EXPECT_EQ(*again, 7);
}

TEST(Logging, JsonEscapeKeepsOneValidLine) {
  EXPECT_EQ(JsonEscape("a\"b\\c\nd\x01"), "a\\\"b\\\\c\\nd\\u0001");
}

}  // namespace
}  // namespace physio

namespace physio {
namespace {

TEST(WorkerPool, QueuesBeyondItsThreadsAndRunsEveryQueuedJob) {
  std::atomic<int> ran{0};
  std::mutex gate;
  std::unique_lock hold(gate);
  {
    WorkerPool pool(2, 100);
    for (int i = 0; i < 50; ++i) {
      ASSERT_TRUE(pool.Submit([&] {
        std::lock_guard wait(gate);
        ++ran;
      }));
    }
    EXPECT_GE(pool.queued(), 48u);  // two are running (blocked on the gate), the rest wait their turn
    hold.unlock();
  }  // the destructor runs what is queued
  EXPECT_EQ(ran.load(), 50);
}

TEST(WorkerPool, RefusesOnlyPastItsQueueLimit) {
  std::mutex gate;
  std::unique_lock hold(gate);
  WorkerPool pool(1, 3);
  int accepted = 0;
  for (int i = 0; i < 10; ++i) accepted += pool.Submit([&] { std::lock_guard wait(gate); }) ? 1 : 0;
  // One taken by the thread (maybe), three queued.
  EXPECT_GE(accepted, 3);
  EXPECT_LE(accepted, 4);
  hold.unlock();
}

}  // namespace
}  // namespace physio
