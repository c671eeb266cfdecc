#pragma once
// A request's identity and a stored response's bytes, for the idempotency
// records of both stores (PostgreSQL: libs/db/idempotent.h; Redis:
// libs/redis/redis_idempotency.h).
#include <google/protobuf/message.h>

#include <string>
#include <string_view>

#include "physio/common/error.h"

namespace physio {

// A stable fingerprint of a request: SHA-256 of its type name and deterministic serialization.
std::string RequestFingerprint(const google::protobuf::Message& request);

// The serialised form of a message whose one set field, `field_number`, is a message already
// serialised as `message_bytes` (e.g. a GetAssessmentResponse around a cached Assessment's bytes),
// made without parsing those bytes: the field's tag, their length, then the bytes.
std::string WrapAsMessageField(int field_number, std::string_view message_bytes);

// A response stored by an idempotent write, read back for a replay.
template <typename Response>
Response ParseStoredResponse(const std::string& bytes) {
  Response response;
  if (!response.ParseFromString(bytes)) throw Error(ErrorCode::kInternal, "stored response is unreadable");
  return response;
}

}  // namespace physio
