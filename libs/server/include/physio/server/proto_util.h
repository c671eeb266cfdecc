#pragma once
// The bounds every request is checked against by the call pipeline (no gRPC types).
#include <google/protobuf/message.h>

#include <string>

namespace physio {

// Bounds every request meets before any use case sees it (and so before
// anything is stored): no fields this version does not know (a client built
// against another schema would otherwise have them silently dropped or, worse,
// kept in replayed bytes), no string longer than `max_string_bytes`, no
// repeated field longer than `max_repeated`, no NUL or other control character
// in a string, no Timestamp outside its definition (years 0001-9999, nanos
// 0-999,999,999). INVALID_ARGUMENT names the field.
struct InputLimits {
  std::size_t max_string_bytes = 8192;
  // A whole document carried in a string (a field named *_json, e.g. a FHIR resource to import).
  std::size_t max_document_bytes = 262144;
  int max_repeated = 1000;
};
void CheckRequestBounds(const google::protobuf::Message& request, const InputLimits& limits);

}  // namespace physio
