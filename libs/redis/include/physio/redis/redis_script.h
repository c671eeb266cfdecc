#pragma once
// How our Lua scripts say no, decoded in one place. A script refuses a change
// with redis.error_reply('<CODE> <argument> ...'), e.g. 'NOT_FOUND intake
// session' or 'NOT_IN_INTAKE odi'; Redis may prefix "ERR " or append where in
// the script it happened, so the code is looked for as a word anywhere in the
// message. An error reply that carries none of the script's codes (Redis out of
// memory, a script bug) is the store failing: UNAVAILABLE.
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

#include "physio/common/error.h"
#include "physio/redis/redis_pool.h"

namespace physio {

struct ScriptRefusal {
  std::string code;      // one of the codes the caller listed
  std::string argument;  // the word after the code ("odi" in 'NOT_IN_INTAKE odi'), or empty
};

// nullopt when `reply` is not an error; the refusal when it carries one of
// `codes`; throws Error(kUnavailable) for any other error reply.
std::optional<ScriptRefusal> ScriptRefusalOf(const redisReply* reply, std::initializer_list<std::string_view> codes);

// What one refusal code means to the caller of the store.
struct ScriptRefusalMeaning {
  std::string_view code;
  ErrorCode error;
  std::string message;
};

// Returns when `reply` is not an error; otherwise throws the meaning of its
// code, or Error(kUnavailable) when it carries none of them.
void ThrowIfScriptRefused(const redisReply* reply, std::initializer_list<ScriptRefusalMeaning> meanings);

}  // namespace physio
