#pragma once
// Typed idempotent writes: the request's fingerprint, the response's
// serialization and its replay in one place, over the two record stores
// (PostgreSQL for clinical writes, Redis for session writes).
#include <google/protobuf/message.h>

#include <functional>
#include <optional>

#include "physio/common/error.h"
#include "physio/db/idempotency.h"
#include "physio/redis/redis_idempotency.h"
#include "physio/server/proto_util.h"

namespace physio {

namespace detail {
template <typename Response>
Response ParseStored(const std::string& bytes) {
  Response response;
  if (!response.ParseFromString(bytes)) throw Error(ErrorCode::kInternal, "stored response is unreadable");
  return response;
}
}  // namespace detail

// `write` runs inside the transaction that also stores the idempotency record
// and the call's audit record; `describe` fills the audit target from the
// response (new or replayed) before that record is written.
template <typename Response>
Response IdempotentWrite(PgPool& pool, Clock::time_point deadline, const PgIdempotencyKey& key,
                         const google::protobuf::Message& request,
                         const std::function<Response(PgConnection&)>& write,
                         const std::function<void(const Response&)>& describe = {}) {
  std::function<void(const std::string&)> describe_bytes;
  if (describe) describe_bytes = [&](const std::string& bytes) { describe(detail::ParseStored<Response>(bytes)); };
  return detail::ParseStored<Response>(RunIdempotentWrite(
      pool, deadline, key, RequestFingerprint(request),
      [&](PgConnection& conn) { return write(conn).SerializeAsString(); }, describe_bytes));
}

// A request already done: its stored response, looked up before any remote call.
template <typename Response>
std::optional<Response> IdempotentReplay(PgPool& pool, Clock::time_point deadline, const PgIdempotencyKey& key,
                                         const google::protobuf::Message& request) {
  auto stored = FindIdempotentReplay(pool, deadline, key, RequestFingerprint(request));
  if (!stored) return std::nullopt;
  return detail::ParseStored<Response>(*stored);
}

template <typename Response>
Response IdempotentSessionWrite(RedisIdempotency& records, const IdempotencyKey& key,
                                const google::protobuf::Message& request, Clock::time_point deadline,
                                const std::function<Response()>& mutate) {
  return detail::ParseStored<Response>(
      records.Run(key, RequestFingerprint(request), deadline, [&] { return mutate().SerializeAsString(); }));
}

}  // namespace physio
