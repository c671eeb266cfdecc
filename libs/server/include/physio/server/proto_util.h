#pragma once
// Protobuf helpers shared by the services (no gRPC types).
#include <google/protobuf/message.h>

#include <string>

namespace physio {

// A stable fingerprint of a request (for idempotency): SHA-256 of its type name
// and deterministic serialization.
std::string RequestFingerprint(const google::protobuf::Message& request);

// Bounds every request meets before any use case sees it (and so before
// anything is stored): no fields this version does not know (a client built
// against another schema would otherwise have them silently dropped or, worse,
// kept in replayed bytes), no string longer than `max_string_bytes`, no
// repeated field longer than `max_repeated`. INVALID_ARGUMENT names the field.
struct InputLimits {
  std::size_t max_string_bytes = 8192;
  // A whole document carried in a string (a field named *_json, e.g. a FHIR resource to import).
  std::size_t max_document_bytes = 262144;
  int max_repeated = 1000;
};
void CheckRequestBounds(const google::protobuf::Message& request, const InputLimits& limits);

// Proto3 JSON for jsonb columns (field names as in the proto). Throws Error(kInternal) on failure.
std::string ToJson(const google::protobuf::Message& message);
void FromJson(const std::string& json, google::protobuf::Message* message);

}  // namespace physio
