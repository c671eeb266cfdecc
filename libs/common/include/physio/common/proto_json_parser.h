#pragma once
// Proto3 JSON into a message, read by reflection in one pass: the twin of
// PrintProtoJson for the records the services read back from their jsonb
// columns (PostgreSQL's jsonb text: keys reordered, spaces after ':' and ',',
// characters unescaped). protobuf's parser tokenises into a stream of events,
// resolves every field through a type resolver and writes wire format that is
// then parsed again; in GetAssessment that was a fifth of the service's CPU
// (issue 33).
//
// It takes what the records hold: objects, arrays, strings, numbers, booleans,
// null, enums by name or number, 64-bit integers quoted or not, Timestamps in
// RFC 3339, either field-name style; fields this build does not know are skipped
// (as FromJson asks of protobuf's parser). Anything else (maps, bytes, floats, other
// well-known types, a number with a fraction for an integer field, an enum name
// this build does not know, malformed JSON) it declines, and the caller hands
// the text to protobuf's parser, which then decides: so the result is always
// protobuf's.
#include <google/protobuf/message.h>

#include <string_view>

namespace physio {

// True: `message` holds what `json` says. False: declined (see above); `message`
// is then cleared.
bool ParseProtoJson(std::string_view json, google::protobuf::Message* message);

}  // namespace physio
