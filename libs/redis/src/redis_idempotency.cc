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
    throw Error(ErrorCode::kInvalidArgument, kRequestIdReused);
  }
  return stored.substr(newline + 1);
}

std::string OnceScriptBody(const std::string& change, int fingerprint_arg, int retention_arg) {
  const std::string fingerprint = "ARGV[" + std::to_string(fingerprint_arg) + "]";
  const std::string retention = "ARGV[" + std::to_string(retention_arg) + "]";
  return "local kind = redis.call('TYPE', KEYS[2]).ok\n"
         "if kind == 'string' then return {'legacy', redis.call('GET', KEYS[2])} end\n"
         "if kind == 'hash' then\n"
         "  if redis.call('HGET', KEYS[2], '#fingerprint') ~= " + fingerprint + " then return redis.error_reply('REUSED request_id') end\n"
         "  return {tonumber(redis.call('HGET', KEYS[2], '#expires_ms')), redis.call('HGETALL', KEYS[2])}\n"
         "end\n" +
         change +
         "\nlocal now = redis.call('TIME')\n"
         "local expires = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) + redis.call('PTTL', KEYS[1])\n"
         "local fields = redis.call('HGETALL', KEYS[1])\n"
         "redis.call('HSET', KEYS[2], '#fingerprint', " + fingerprint + ", '#expires_ms', string.format('%.0f', expires))\n"
         "for i = 1, #fields, 2 do redis.call('HSET', KEYS[2], fields[i], fields[i + 1]) end\n"
         "redis.call('EXPIRE', KEYS[2], " + retention + ")\n"
         "return {expires, fields}\n";
}

OnceScriptAnswer ParseOnceScriptAnswer(const redisReply* reply, const std::string& fingerprint) {
  if (reply == nullptr || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2) {
    throw Error(ErrorCode::kUnavailable, "session write: unexpected reply from redis");
  }
  OnceScriptAnswer answer;
  const redisReply* first = reply->element[0];
  const redisReply* second = reply->element[1];
  if (first->type == REDIS_REPLY_STRING) {
    if (second->type != REDIS_REPLY_STRING) throw Error(ErrorCode::kUnavailable, "session write: unexpected record");
    answer.earlier_protocol_response = ReplayOrThrow(std::string(second->str, second->len), fingerprint);
    return answer;
  }
  if (first->type != REDIS_REPLY_INTEGER || second->type != REDIS_REPLY_ARRAY) {
    throw Error(ErrorCode::kUnavailable, "session write: unexpected reply from redis");
  }
  answer.fields = second;
  answer.expires_ms = first->integer;
  return answer;
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
