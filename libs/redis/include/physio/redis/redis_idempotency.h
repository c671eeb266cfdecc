#pragma once
// Idempotency records for mutations whose state lives in Redis (intake sessions).
// Clinical writes to Postgres keep their idempotency record in the same
// transaction instead (libs/db), so that record and write commit together.
//
// Protocol: claim the key with SET NX (a short "pending" marker), run the
// mutation, then store "<fingerprint>\n<response>" for `retention`. A retry with
// the same request_id gets the stored response; the same id with a different
// request is INVALID_ARGUMENT; a retry while the first attempt is still running
// is ABORTED (retry later). A failed mutation releases the claim.
#include <google/protobuf/message.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>

#include "physio/common/error.h"
#include "physio/common/stored_message.h"
#include "physio/redis/redis_pool.h"

namespace physio {

struct IdempotencyKey {
  std::string service_prefix;  // e.g. "asmt"
  std::string tenant;
  std::string principal;       // the caller: ids are per caller (see PgIdempotencyKey)
  std::string method;          // e.g. "SubmitIntakeAnswers"
  std::string request_id;
};

// The use cases' seam: Redis below, or an in-memory fake in tests.
class SessionIdempotency {
 public:
  virtual ~SessionIdempotency() = default;
  // `fingerprint` identifies the request's content (e.g. a hash of its bytes);
  // `mutate` returns the serialized response to remember.
  virtual std::string Run(const IdempotencyKey& key, const std::string& fingerprint, Clock::time_point deadline,
                          const std::function<std::string()>& mutate) = 0;
};

class RedisIdempotency final : public SessionIdempotency {
 public:
  explicit RedisIdempotency(RedisPool& pool, std::chrono::seconds retention = std::chrono::hours(24))
      : pool_(pool), retention_(retention) {}

  std::string Run(const IdempotencyKey& key, const std::string& fingerprint, Clock::time_point deadline,
                  const std::function<std::string()>& mutate) override;

 private:
  RedisPool& pool_;
  std::chrono::seconds retention_;
};

// The Redis key of `key`'s record (caller and request id hashed, so any printable id fits the key
// alphabet). Shared with stores that keep the record inside their own script, so one round trip
// claims, changes and records (RedisIntakeStore::Submit).
std::string SessionIdempotencyRedisKey(const IdempotencyKey& key);

// A record RedisIdempotency stored ("pending", or "<fingerprint>\n<response>"): the response when
// `fingerprint` matches; ABORTED while pending; INVALID_ARGUMENT for another request's.
std::string ReplayOrThrow(const std::string& stored, const std::string& fingerprint);

// Which request a session write is: its idempotency key and the fingerprint of its content.
struct SubmissionId {
  IdempotencyKey key;
  std::string fingerprint;
};

// One round trip for a session write recorded once per request (issue 33): the Lua of a script
// whose KEYS[1] is the session's hash and KEYS[2] its record (SessionIdempotencyRedisKey), with
// `change` (Lua that checks the session and changes it, or returns a refusal) in the middle. If
// the record is there, the script answers it again and changes nothing (another request's content
// under the id: the error "REUSED request_id"); otherwise it runs `change`, then records the
// session as it left it, with its expiry on Redis's clock and ARGV[fingerprint_arg], kept
// ARGV[retention_arg] seconds. A refused change records nothing. A record of RedisIdempotency's
// protocol (a string) comes back as {'legacy', record}.
std::string OnceScriptBody(const std::string& change, int fingerprint_arg, int retention_arg);

// Such a script's answer: the session's fields (HGETALL's array) with its absolute expiry in ms
// since the epoch, or the response bytes of a record of the earlier protocol (checked against
// `fingerprint` by ReplayOrThrow). UNAVAILABLE for any other shape; refusals are the caller's
// to decode first.
struct OnceScriptAnswer {
  std::optional<std::string> earlier_protocol_response;
  const redisReply* fields = nullptr;  // owned by the reply
  long long expires_ms = 0;
};
OnceScriptAnswer ParseOnceScriptAnswer(const redisReply* reply, const std::string& fingerprint);

// What a request id used for other content is answered (a once-script's "REUSED", ReplayOrThrow).
inline constexpr const char* kRequestIdReused = "request_id: already used for a different request";

// The session such a script answered: from the session's fields by `from_fields(fields,
// expires_ms)`, or the session of a `Response` the earlier protocol recorded.
template <typename Response, typename FromFields>
auto SessionOfOnceAnswer(const OnceScriptAnswer& answer, FromFields from_fields) {
  if (answer.earlier_protocol_response) {
    Response stored;
    if (!stored.ParseFromString(*answer.earlier_protocol_response)) {
      throw Error(ErrorCode::kInternal, "request_id: stored response does not parse");
    }
    return std::move(*stored.mutable_session());
  }
  return from_fields(answer.fields, answer.expires_ms);
}

// The typed form: `mutate` returns the response, stored and replayed as bytes.
template <typename Response>
Response IdempotentSessionWrite(SessionIdempotency& records, const IdempotencyKey& key,
                                const google::protobuf::Message& request, Clock::time_point deadline,
                                const std::function<Response()>& mutate) {
  return ParseStoredResponse<Response>(
      records.Run(key, RequestFingerprint(request), deadline, [&] { return mutate().SerializeAsString(); }));
}

}  // namespace physio
