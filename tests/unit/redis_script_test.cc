// How our Lua scripts' refusals are decoded (libs/redis/redis_script.h).
#include <gtest/gtest.h>
#include <hiredis/hiredis.h>

#include <optional>

#include "physio/redis/redis_script.h"

namespace physio {
namespace {

// A reply as hiredis would hand it over.
struct FakeReply {
  explicit FakeReply(int type, std::string message = "") : text(std::move(message)) {
    reply.type = type;
    reply.str = this->text.data();
    reply.len = this->text.size();
  }
  FakeReply(const FakeReply&) = delete;
  const redisReply* get() const { return &reply; }
  std::string text;
  redisReply reply{};
};

std::optional<ErrorCode> CodeThrown(const FakeReply& reply) {
  try {
    ThrowIfScriptRefused(reply.get(), {{"NOT_FOUND", ErrorCode::kNotFound, "gone"},
                                 {"COMPLETED", ErrorCode::kFailedPrecondition, "closed"}});
  } catch (const Error& e) {
    return e.code();
  }
  return std::nullopt;
}

TEST(RedisScript, ARefusalIsFoundWithOrWithoutRedisDecoration) {
  EXPECT_EQ(CodeThrown(FakeReply(REDIS_REPLY_ERROR, "NOT_FOUND intake session")), ErrorCode::kNotFound);
  EXPECT_EQ(CodeThrown(FakeReply(REDIS_REPLY_ERROR, "ERR NOT_FOUND intake session")), ErrorCode::kNotFound);
  EXPECT_EQ(CodeThrown(FakeReply(REDIS_REPLY_ERROR, "COMPLETED visit session script: f_0a1b:3")),
            ErrorCode::kFailedPrecondition);
}

TEST(RedisScript, AnythingElseIsTheStoreFailingAndASuccessIsNotARefusal) {
  EXPECT_EQ(CodeThrown(FakeReply(REDIS_REPLY_ERROR, "OOM command not allowed")), ErrorCode::kUnavailable);
  // A code inside another word is not the code.
  EXPECT_EQ(CodeThrown(FakeReply(REDIS_REPLY_ERROR, "XNOT_FOUNDX")), ErrorCode::kUnavailable);
  EXPECT_EQ(CodeThrown(FakeReply(REDIS_REPLY_INTEGER)), std::nullopt);
  EXPECT_FALSE(ScriptRefusalOf(FakeReply(REDIS_REPLY_STATUS, "OK").get(), {"NOT_FOUND"}));
}

TEST(RedisScript, TheWordAfterTheCodeIsItsArgument) {
  auto refusal = ScriptRefusalOf(FakeReply(REDIS_REPLY_ERROR, "ERR NOT_IN_INTAKE fabq script: x").get(),
                                 {"NOT_FOUND", "NOT_IN_INTAKE"});
  ASSERT_TRUE(refusal);
  EXPECT_EQ(refusal->code, "NOT_IN_INTAKE");
  EXPECT_EQ(refusal->argument, "fabq");
  EXPECT_THROW(ScriptRefusalOf(FakeReply(REDIS_REPLY_ERROR, "BUSY script").get(), {"NOT_FOUND"}), Error);
}

// The log says why the store failed (Redis full, busy, a replica) by Redis's error class only:
// the rest of an error may quote a script's values.
TEST(RedisScript, AStoreFailureNamesRedisErrorClassAndNothingMore) {
  auto message_of = [](const char* text) {
    try {
      ScriptRefusalOf(FakeReply(REDIS_REPLY_ERROR, text).get(), {"NOT_FOUND"});
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(message_of("OOM command not allowed when used memory > 'maxmemory'."), "redis script failed (OOM)");
  EXPECT_EQ(message_of("ERR user_script:3: value pt-123 is wrong"), "redis script failed (ERR)");
  EXPECT_EQ(message_of("something lowercase"), "redis script failed (?)");
}

}  // namespace
}  // namespace physio
