#include "physio/redis/redis_idempotency.h"

#include <hiredis/hiredis.h>

#include <algorithm>

#include "physio/common/error.h"
#include "physio/common/ids.h"
#include "physio/redis/redis_keys.h"

namespace physio {

namespace {
constexpr const char* kPending = "pending";
}  // namespace

std::string SessionIdempotencyRedisKey(const IdempotencyKey& key) {
  return RedisKey("idem", key.tenant,
                  {key.service_prefix, key.method, Sha256Hex(key.principal + "\n" + key.request_id).substr(0, 40)});
}

std::string ReplayOrThrow(const std::string& stored, const std::string& fingerprint) {
  if (stored == kPending) {
    throw Error(ErrorCode::kAborted, "request_id: the first request with this id is still running; retry");
  }
  auto newline = stored.find('\n');
  if (newline == std::string::npos || stored.substr(0, newline) != fingerprint) {
    throw Error(ErrorCode::kInvalidArgument, "request_id: already used for a different request");
  }
  return stored.substr(newline + 1);
}

std::string RedisIdempotency::Run(const IdempotencyKey& key, const std::string& fingerprint,
                                  Clock::time_point deadline, const std::function<std::string()>& mutate) {
  const std::string redis_key = SessionIdempotencyRedisKey(key);
  // The pending marker lives no longer than this attempt can run (it is bounded
  // by its deadline), plus a margin: an attempt that died (its service killed,
  // Redis frozen while the claim was in flight) blocks its retries only briefly.
  const auto attempt_left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  const auto pending_ttl = std::clamp(attempt_left + std::chrono::seconds(1), std::chrono::milliseconds(1000),
                                      std::chrono::milliseconds(30000));
  auto claimed =
      pool_.CommandDurable({"SET", redis_key, kPending, "NX", "PX", std::to_string(pending_ttl.count())}, deadline);
  std::string refusal;
  if (IsErrorReply(claimed.get(), &refusal)) {
    // e.g. OOM under maxmemory with noeviction: nothing was written; the client retries.
    throw Error(ErrorCode::kUnavailable, "redis refused the write: " + refusal);
  }
  if (claimed->type == REDIS_REPLY_NIL) {
    auto existing = ReplyString(pool_.Command({"GET", redis_key}, deadline).get());
    if (!existing) throw Error(ErrorCode::kAborted, "request_id: concurrent retry; retry");
    return ReplayOrThrow(*existing, fingerprint);
  }
  std::string response;
  try {
    response = mutate();
  } catch (...) {
    try {
      pool_.Command({"DEL", redis_key}, deadline);
    } catch (const Error&) {
      // The pending marker expires on its own.
    }
    throw;
  }
  // Should this fail, the pending marker expires on its own (a retry is ABORTED until then, at most
  // the attempt's deadline and a second).
  pool_.CommandDurable({"SET", redis_key, fingerprint + "\n" + response, "EX", std::to_string(retention_.count())}, deadline);
  return response;
}

}  // namespace physio
