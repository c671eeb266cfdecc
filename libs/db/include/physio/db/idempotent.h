#pragma once
// Typed idempotent writes to PostgreSQL: the request's fingerprint, the
// response's serialization and its replay in one place, over the records of
// idempotency.h (kept in the write's own transaction).
#include <google/protobuf/message.h>

#include <functional>
#include <optional>

#include "physio/common/stored_message.h"
#include "physio/db/idempotency.h"

namespace physio {

// `write` runs inside the transaction that also stores the idempotency record
// and the call's audit record; `describe` fills the audit target from the
// response (new or replayed) before that record is written.
template <typename Response>
Response IdempotentWrite(PgPool& pool, Clock::time_point deadline, const PgIdempotencyKey& key,
                         const google::protobuf::Message& request,
                         const std::function<Response(PgConnection&)>& write,
                         const std::function<void(const Response&)>& describe = {}) {
  std::function<void(const std::string&)> describe_bytes;
  if (describe) describe_bytes = [&](const std::string& bytes) { describe(ParseStoredResponse<Response>(bytes)); };
  return ParseStoredResponse<Response>(RunIdempotentWrite(
      pool, deadline, key, RequestFingerprint(request),
      [&](PgConnection& conn) { return write(conn).SerializeAsString(); }, describe_bytes));
}

// A request already done: its stored response, looked up before any remote call.
template <typename Response>
std::optional<Response> IdempotentReplay(PgPool& pool, Clock::time_point deadline, const PgIdempotencyKey& key,
                                         const google::protobuf::Message& request) {
  auto stored = FindIdempotentReplay(pool, deadline, key, RequestFingerprint(request));
  if (!stored) return std::nullopt;
  return ParseStoredResponse<Response>(*stored);
}

}  // namespace physio
