#pragma once
// Records in jsonb columns: proto3 JSON with the proto's field names, so a row
// reads the same in psql as in the API. Throws Error(kInternal) on failure.
#include <google/protobuf/message.h>

#include <string>

namespace physio {

std::string ToJson(const google::protobuf::Message& message);
// Fields this version does not know are ignored: rows written by a newer version stay readable.
void FromJson(const std::string& json, google::protobuf::Message* message);

}  // namespace physio
