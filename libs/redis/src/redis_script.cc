#include "physio/redis/redis_script.h"

namespace physio {
namespace {
// `code` as a whole word of `message`, with the word after it.
std::optional<ScriptRefusal> FindCode(const std::string& message, std::string_view code) {
  auto is_edge = [&](size_t at) {
    return at >= message.size() || message[at] == ' ' || message[at] == '\r' || message[at] == '\n' ||
           message[at] == ':';
  };
  for (size_t at = message.find(code); at != std::string::npos; at = message.find(code, at + 1)) {
    const size_t end = at + code.size();
    if ((at > 0 && !is_edge(at - 1)) || !is_edge(end)) continue;
    ScriptRefusal refusal{std::string(code), ""};
    if (end < message.size() && message[end] == ' ') {
      refusal.argument = message.substr(end + 1);
      refusal.argument = refusal.argument.substr(0, refusal.argument.find_first_of(" \r\n"));
    }
    return refusal;
  }
  return std::nullopt;
}

// Redis's own error class ("OOM" when full under noeviction, "BUSY", "READONLY" on a replica,
// "ERR"), for the log; never the rest of the message, which may quote a script's values.
[[noreturn]] void ThrowStoreFailed(const std::string& message) {
  const std::string kind = message.substr(0, message.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ_"));
  throw Error(ErrorCode::kUnavailable, "redis script failed (" + (kind.empty() ? std::string("?") : kind) + ")");
}
}  // namespace

std::optional<ScriptRefusal> ScriptRefusalOf(const redisReply* reply, std::initializer_list<std::string_view> codes) {
  std::string message;
  if (!IsErrorReply(reply, &message)) return std::nullopt;
  for (std::string_view code : codes) {
    if (auto refusal = FindCode(message, code)) return refusal;
  }
  ThrowStoreFailed(message);
}

void ThrowIfScriptRefused(const redisReply* reply, std::initializer_list<ScriptRefusalMeaning> meanings) {
  std::string message;
  if (!IsErrorReply(reply, &message)) return;
  for (const auto& meaning : meanings) {
    if (FindCode(message, meaning.code)) throw Error(meaning.error, meaning.message);
  }
  ThrowStoreFailed(message);
}

}  // namespace physio
