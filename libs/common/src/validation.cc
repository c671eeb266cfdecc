#include "physio/common/validation.h"

#include <algorithm>

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

std::vector<std::string> DistinctIds(std::string_view field, const std::vector<std::string>& ids, std::size_t max) {
  if (ids.size() > max) ThrowInvalidArgument(field, "at most " + std::to_string(max) + " items");
  std::vector<std::string> distinct;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    ValidateOpaqueId(std::string(field) + "[" + std::to_string(i) + "]", ids[i]);
    if (std::find(distinct.begin(), distinct.end(), ids[i]) == distinct.end()) distinct.push_back(ids[i]);
  }
  return distinct;
}

}  // namespace physio
