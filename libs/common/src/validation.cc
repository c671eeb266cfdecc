#include "physio/common/validation.h"

#include "physio/common/error.h"

namespace physio {

bool IsOpaqueId(const std::string& value) {
  if (value.empty() || value.size() > 128) return false;
  for (unsigned char c : value) {
    if (!(std::isalnum(c) || c == '.' || c == '_' || c == ':' || c == '-')) return false;
  }
  return true;
}

void ValidateRequestId(std::string_view field, const std::string& value) {
  if (value.empty()) ThrowInvalidArgument(field, "is required (a client-chosen idempotency key)");
  if (value.size() > 128) ThrowInvalidArgument(field, "must be at most 128 characters");
  for (unsigned char c : value) {
    if (c < 0x21 || c > 0x7e) ThrowInvalidArgument(field, "must be printable ASCII without spaces");
  }
}

void ValidateOpaqueId(std::string_view field, const std::string& value) {
  if (value.empty()) ThrowInvalidArgument(field, "is required");
  if (!IsOpaqueId(value)) ThrowInvalidArgument(field, "must be 1-128 characters of [A-Za-z0-9._:-]");
}

void ValidateRange(std::string_view field, long value, long min, long max) {
  if (value < min || value > max) {
    ThrowInvalidArgument(field, "must be between " + std::to_string(min) + " and " + std::to_string(max) +
                                    ", got " + std::to_string(value));
  }
}

}  // namespace physio
