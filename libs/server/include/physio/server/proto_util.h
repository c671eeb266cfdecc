#pragma once
// Protobuf helpers shared by the services (no gRPC types).
#include <google/protobuf/message.h>

#include <string>

namespace physio {

// A stable fingerprint of a request (for idempotency): SHA-256 of its type name
// and deterministic serialization.
std::string RequestFingerprint(const google::protobuf::Message& request);

// Proto3 JSON for jsonb columns (field names as in the proto). Throws Error(kInternal) on failure.
std::string ToJson(const google::protobuf::Message& message);
void FromJson(const std::string& json, google::protobuf::Message* message);

}  // namespace physio
