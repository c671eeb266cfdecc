#include <gtest/gtest.h>

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>
#include <cstdlib>
#include <mutex>
#include <set>
#include <sys/wait.h>

#include "physio/common/bounded_pool.h"
#include "physio/common/no_blocking.h"
#include "physio/common/process_stats.h"
#include "physio/common/text_list.h"
#include "physio/common/config.h"
#include "physio/common/error.h"
#include "physio/common/ids.h"
#include "sanitizers.h"
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

// Ids come from a per-thread block of the DRBG's bytes: no two are alike, across
// threads and across a fork (a child never hands out what its parent's block held).
TEST(Ids, NoTwoAlikeAcrossThreadsBlocksAndAFork) {
  std::mutex mu;
  std::set<std::string> seen;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      std::vector<std::string> mine;
      for (int i = 0; i < 2000; ++i) mine.push_back(physio::NewId("x"));  // 32,000 bytes: many blocks
      std::lock_guard lock(mu);
      seen.insert(mine.begin(), mine.end());
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(seen.size(), 8000u);
  const std::string id = physio::NewId("asm");
  ASSERT_EQ(id.size(), 4u + 32u);
  EXPECT_EQ(id.substr(0, 4), "asm_");
  EXPECT_EQ(physio::RandomHex(8).size(), 16u);
  EXPECT_EQ(physio::RandomHex(1000).size(), 2000u);  // larger than a block: drawn directly

  // Draw once so this thread's block is part used; a child then draws its next id.
  (void)physio::NewId("p");
  int pipe_fds[2];
  ASSERT_EQ(pipe(pipe_fds), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    const std::string next = physio::NewId("p");
    const ssize_t written = write(pipe_fds[1], next.data(), next.size());
    _exit(written == static_cast<ssize_t>(next.size()) ? 0 : 1);
  }
  std::string from_child(34, '\0');
  ASSERT_EQ(read(pipe_fds[0], from_child.data(), from_child.size()), 34);
  int status = 0;
  waitpid(child, &status, 0);
  close(pipe_fds[0]);
  close(pipe_fds[1]);
  EXPECT_NE(from_child, physio::NewId("p"));
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

TEST(Validation, BlankTextIsOnlyWhiteSpaceOfAnyKind) {
  for (const std::string blank : {"", " ", "   \t\r\n", "\xC2\xA0", "\xE2\x80\x83 \xE2\x80\x8B", "\xE3\x80\x80",
                                  "\xEF\xBB\xBF", "\xE2\x80\xA8\xE2\x81\x9F"}) {
    EXPECT_TRUE(IsBlank(blank)) << blank;
  }
  for (const std::string text : {"a", "  x  ", "\xC3\xA9", "\xE2\x80\x90", "\xF0\x9F\x98\x80", ".", "\xE2\x80"}) {
    EXPECT_FALSE(IsBlank(text)) << text;
  }
  EXPECT_NO_THROW(ValidateRequiredText("reason", "flare after lifting", 500));
  try {
    ValidateRequiredText("reason", "  \xC2\xA0 ", 500);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "reason: must not be blank (it holds only white space)");
  }
  EXPECT_THROW(ValidateRequiredText("reason", "", 500), Error);
  EXPECT_THROW(ValidateRequiredText("reason", std::string(501, 'a'), 500), Error);
}

TEST(Validation, ControlCharactersAreNamedInMessages) {
  EXPECT_EQ(ControlCharactersNamed("caf\xC3\xA9 ok"), "caf\xC3\xA9 ok");
  EXPECT_EQ(ControlCharactersNamed("a\nb\x1b[2J"), "a<U+000A>b<U+001B>[2J");
  EXPECT_EQ(ControlCharactersNamed(std::string("\0\x7f\xC2\x85", 4)), "<U+0000><U+007F><U+0085>");
}

TEST(Validation, ControlCharactersAreFoundButTabsAndLineBreaksAreText) {
  EXPECT_EQ(ControlCharacterIn("line one\r\nline two\tend, caf\xC3\xA9 \xE2\x80\xAE"), -1);
  EXPECT_EQ(ControlCharacterIn(std::string("a\0b", 3)), 0);
  EXPECT_EQ(ControlCharacterIn("a\x01"), 0x01);
  EXPECT_EQ(ControlCharacterIn("\x1b[2J"), 0x1b);
  EXPECT_EQ(ControlCharacterIn("del\x7f"), 0x7f);
  EXPECT_EQ(ControlCharacterIn("c1 \xC2\x85 next line"), 0x85);
  EXPECT_EQ(ControlCharacterIn("\xC2\xA0 no-break space is text"), -1);
  EXPECT_EQ(CodePointName(0x1b), "U+001B");
  // A one-line value (a search parameter, a webhook's description) takes no tab or line break.
  EXPECT_EQ(ControlCharacterIn("a\tb", LineBreaks::kOneLine), '\t');
  EXPECT_EQ(ControlCharacterIn("a\nb", LineBreaks::kOneLine), '\n');
  EXPECT_EQ(ControlCharacterIn("caf\xC3\xA9 ok", LineBreaks::kOneLine), -1);
  EXPECT_EQ(ControlCharacterRefusal("a\rb", LineBreaks::kOneLine), "must not contain a control character (U+000D)");
  EXPECT_EQ(ControlCharacterRefusal("a\rb"), "");
}

TEST(Validation, BidirectionalControlsMustBePairedWithinTheirLine) {
  const std::string rlo = "\xE2\x80\xAE", pdf = "\xE2\x80\xAC", rle = "\xE2\x80\xAB", lri = "\xE2\x81\xA6",
                    rli = "\xE2\x81\xA7", pdi = "\xE2\x81\xA9", rlm = "\xE2\x80\x8F";
  // Paired, nested, isolates closing what was opened inside them, marks: how bidirectional text is written.
  EXPECT_EQ(UnpairedBidiControlIn("pain " + rli + "\xD7\x9B\xD7\x90\xD7\x91" + pdi + " 2/10"), -1);
  EXPECT_EQ(UnpairedBidiControlIn(rle + "a" + rlo + "b" + pdf + "c" + pdf), -1);
  EXPECT_EQ(UnpairedBidiControlIn(lri + rle + "inside" + pdi), -1);
  EXPECT_EQ(UnpairedBidiControlIn("a" + rlm + "b \xE2\x80\x8E"), -1);
  EXPECT_EQ(UnpairedBidiControlIn(rli + "one" + pdi + "\n" + rlo + "two" + pdf), -1);
  EXPECT_EQ(UnpairedBidiControlIn("caf\xC3\xA9, \xE2\x80\x94 a dash"), -1);
  // Left open: at the end, or at the end of its line (LF, CR, U+2029).
  EXPECT_EQ(UnpairedBidiControlIn(rlo + "01/2"), 0x202E);
  EXPECT_EQ(UnpairedBidiControlIn(rlo + "x\n" + pdf), 0x202E);
  EXPECT_EQ(UnpairedBidiControlIn(rli + "x\r" + pdi), 0x2067);
  EXPECT_EQ(UnpairedBidiControlIn(rlo + "x\xE2\x80\xA9" + pdf), 0x202E);
  EXPECT_EQ(UnpairedBidiControlIn(rle + "a" + rlo + "b" + pdf), 0x202B);  // the outermost one left open
  // A closer with nothing of its kind to close.
  EXPECT_EQ(UnpairedBidiControlIn("x" + pdf), 0x202C);
  EXPECT_EQ(UnpairedBidiControlIn("x" + pdi), 0x2069);
  EXPECT_EQ(UnpairedBidiControlIn(rli + "x" + pdf + pdi), 0x202C);  // a PDF does not close an isolate
  EXPECT_EQ(UnpairedBidiControlIn(rlo + "x" + pdi + pdf), 0x2069);  // nor a PDI an override
  // Cut in the middle of a code point: not a control.
  EXPECT_EQ(UnpairedBidiControlIn("x\xE2\x80"), -1);

  // In a refusal, naming the code point; a control character is named first.
  EXPECT_EQ(ControlCharacterRefusal(rlo + "checked at the visit"),
            "must not contain an unpaired bidirectional control (U+202E): close each embedding or override (U+202A, "
            "U+202B, U+202D, U+202E) with U+202C and each isolate (U+2066-U+2068) with U+2069 before the line ends");
  EXPECT_EQ(ControlCharacterRefusal(rlo + "x\x01"), "must not contain a control character (U+0001)");
  EXPECT_EQ(ControlCharacterRefusal(rli + "x" + pdi), "");
  // `bidi-controls=accept`: stored as sent.
  SetBidiControlPolicy(BidiControls::kAccept);
  EXPECT_EQ(ControlCharacterRefusal(rlo + "x"), "");
  SetBidiControlPolicy(BidiControls::kRefuseUnpaired);
  EXPECT_NE(ControlCharacterRefusal(rlo + "x"), "");
  // Echoed in a message, each is named, paired or not.
  EXPECT_EQ(ControlCharactersNamed(rli + "x" + pdi + rlo), "<U+2067>x<U+2069><U+202E>");
}

TEST(Validation, Utf8IsCheckedStructurally) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("caf\xC3\xA9 \xE2\x80\xAE \xF0\x9F\x98\x80"));
  EXPECT_FALSE(IsValidUtf8("\xFF\xFE"));                  // never in UTF-8
  EXPECT_FALSE(IsValidUtf8("\xC0\x80"));                  // an overlong NUL
  EXPECT_FALSE(IsValidUtf8("\xED\xA0\x80"));             // a surrogate
  EXPECT_FALSE(IsValidUtf8("\xF4\x90\x80\x80"));         // past U+10FFFF
  EXPECT_FALSE(IsValidUtf8("ends mid-character \xE2\x80"));
  EXPECT_FALSE(IsValidUtf8("\x80 a stray continuation"));
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

// What keeps gRPC's threads and the fast reads' loop from waiting on a store: inside a
// NoBlockingScope a lease (the first step of every Redis and PostgreSQL round trip) throws
// WouldBlock, which is no Error (no use case translates it); outside, and after the scope, it is
// granted as usual.
TEST(NoBlockingScope, ALeaseInsideThrowsWouldBlockAndTheScopeEndsWithItsBlock) {
  BoundedPool<int> pool(1, [] { return std::make_unique<int>(7); }, "store");
  const auto soon = [] { return std::chrono::steady_clock::now() + std::chrono::seconds(1); };
  EXPECT_FALSE(BlockingForbidden());
  {
    NoBlockingScope outer;
    EXPECT_TRUE(BlockingForbidden());
    EXPECT_THROW(pool.Acquire(soon()), WouldBlock);
    bool translated = false;
    try {
      pool.Acquire(soon());
    } catch (const Error&) {
      translated = true;
    } catch (const WouldBlock& e) {
      EXPECT_STREQ(e.what(), "a store connection lease");
    }
    EXPECT_FALSE(translated);
    {
      NoBlockingScope inner;
      EXPECT_TRUE(BlockingForbidden());
    }
    EXPECT_TRUE(BlockingForbidden()) << "an inner scope restores the outer one";
  }
  EXPECT_FALSE(BlockingForbidden());
  EXPECT_EQ(*pool.Acquire(soon()), 7);
  // Per thread: another thread is not affected by this one's scope.
  NoBlockingScope here;
  bool other_thread_forbidden = true;
  std::thread([&] { other_thread_forbidden = BlockingForbidden(); }).join();
  EXPECT_FALSE(other_thread_forbidden);
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

namespace physio {
namespace {

// Captures what the process writes to stderr while `write` runs.
std::string CapturedStderr(const std::function<void()>& write) {
  char path[] = "/tmp/physio-log-XXXXXX";
  const int file = mkstemp(path);
  const int saved = dup(STDERR_FILENO);
  dup2(file, STDERR_FILENO);
  write();
  spdlog::default_logger()->flush();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the writer runs at least every 50 ms
  dup2(saved, STDERR_FILENO);
  close(saved);
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  close(file);
  unlink(path);
  return text.str();
}

TEST(JsonLogs, MessageAndAccessLinesAreJsonObjectsWithTheirOwnKeys) {
  InitJsonLogging("logtest", "info");
  const std::string out = CapturedStderr([] {
    spdlog::info("plain \"quoted\" message");
    LogAccess(AccessRecord{"GetThing", "t-1", "clin-1", "req-1", "NOT_FOUND", std::chrono::microseconds(1500)});
  });
  std::stringstream lines(out);
  std::string line;
  int messages = 0, accesses = 0;
  while (std::getline(lines, line)) {
    const auto json = nlohmann::json::parse(line);  // throws (fails the test) on a line that is not JSON
    EXPECT_EQ(json.at("service"), "logtest");
    if (json.contains("msg")) {
      ++messages;
      EXPECT_EQ(json.at("msg"), "plain \"quoted\" message");
      EXPECT_FALSE(json.contains("kind"));
    } else {
      ++accesses;
      EXPECT_EQ(json.at("kind"), "access");
      EXPECT_EQ(json.at("method"), "GetThing");
      EXPECT_EQ(json.at("tenant"), "t-1");
      EXPECT_EQ(json.at("principal"), "clin-1");
      EXPECT_EQ(json.at("request_id"), "req-1");
      EXPECT_EQ(json.at("code"), "NOT_FOUND");
      EXPECT_DOUBLE_EQ(json.at("duration_ms").get<double>(), 1.5);
    }
  }
  EXPECT_EQ(messages, 1);
  EXPECT_EQ(accesses, 1);
  spdlog::set_level(spdlog::level::warn);
}

}  // namespace
}  // namespace physio

namespace physio {
namespace {

TEST(CommaLists, ItemsAreTrimmedAndEmptyOnesKeptForTheCallerToJudge) {
  EXPECT_EQ(SplitCommaList("a, b ,c"), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(SplitCommaList("a,,b,"), (std::vector<std::string>{"a", "", "b", ""}));
  EXPECT_EQ(SplitCommaList(""), (std::vector<std::string>{""}));
  EXPECT_EQ(SplitCommaList("  "), (std::vector<std::string>{""}));
}

TEST(CommaLists, PortNumbersAreOneTo65535InDigits) {
  EXPECT_TRUE(IsPortNumber("1"));
  EXPECT_TRUE(IsPortNumber("65535"));
  for (const char* bad : {"", "0", "65536", "99999", "123456", "54x", "-1", " 80"}) {
    EXPECT_FALSE(IsPortNumber(bad)) << bad;
  }
}

TEST(TrimAfterBusySpell, TrimsOnceAtTheFirstQuietIntervalAfterEachBusySpellAndNeverWhileBusy) {
  TrimAfterBusySpell policy(5);     // at most 5 calls in an interval is quiet
  EXPECT_TRUE(policy.Observe(0));   // the start was a busy spell
  EXPECT_FALSE(policy.Observe(0));  // quiet on: nothing more to hand back
  EXPECT_FALSE(policy.Observe(5));
  EXPECT_FALSE(policy.Observe(6));    // busy
  EXPECT_FALSE(policy.Observe(900));  // still busy: a trim would only be faulted in again
  EXPECT_TRUE(policy.Observe(5));     // quiet again: once
  EXPECT_FALSE(policy.Observe(1));
  EXPECT_FALSE(policy.Observe(7));
  EXPECT_TRUE(policy.Observe(0));
}

TEST(TrimFreeHeap, HandsBackWhatAFreedBurstLeftInAThreadsArena) {
  if (physio::testing::kUnderAddressSanitizer) GTEST_SKIP() << "AddressSanitizer's allocator, not glibc's, serves this build";
  // Many small blocks from another thread (its own arena), freed but for the last,
  // which keeps the freed space below it from being the arena's top: glibc keeps it.
  std::unique_ptr<char[]> pin;
  std::thread burst([&pin] {
    std::vector<std::unique_ptr<char[]>> blocks;
    for (int i = 0; i < 20000; ++i) {
      blocks.push_back(std::make_unique<char[]>(1000));
      blocks.back()[0] = static_cast<char>(i);  // touched: resident
    }
    pin = std::move(blocks.back());
  });
  burst.join();
  EXPECT_GT(TrimFreeHeap(), 4L << 20);  // of about 20 MB freed
}

}  // namespace
}  // namespace physio
