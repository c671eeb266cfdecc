#pragma once
// Proto3 JSON of a message, written by reflection in one pass. It prints what
// protobuf's MessageToJsonString prints (no whitespace, defaults omitted, enums
// by name, 64-bit integers quoted, Timestamps in RFC 3339) at a fraction of its
// cost: protobuf's printer serialises the message and re-reads it through a type
// resolver, which was a quarter of a JSON GetActivePlan's server CPU (issue 33).
// Messages holding a well-known type other than Timestamp (Any, Struct, Duration,
// wrappers, ...) are handed to protobuf's printer, so every message prints.
#include <google/protobuf/message.h>

#include <string>

namespace physio {

enum class JsonFieldNames {
  kLowerCamel,  // the proto3 JSON default (jsonName), as API callers see it
  kProto,       // the .proto's snake_case names, as the jsonb records store them
};

// False only when protobuf's own printer refuses the message too (e.g. a
// Timestamp out of its range); `json` is then unspecified.
bool PrintProtoJson(const google::protobuf::Message& message, JsonFieldNames names, std::string* json);

}  // namespace physio
