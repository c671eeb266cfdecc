#pragma once
// Checks shared by every service's request validation. Each throws
// Error(kInvalidArgument) naming the field.
#include <string>
#include <string_view>
#include <vector>

namespace physio {

// request_id: 1-128 printable ASCII characters.
void ValidateRequestId(std::string_view field, const std::string& value);
// Opaque ids (patient, assessment, plan ...): 1-128 of [A-Za-z0-9._:-].
void ValidateOpaqueId(std::string_view field, const std::string& value);
void ValidateRange(std::string_view field, long value, long min, long max);
bool IsOpaqueId(const std::string& value);
// A list of opaque ids: at most `max`, each valid; repeats dropped (first kept, order kept).
std::vector<std::string> DistinctIds(std::string_view field, const std::vector<std::string>& ids, std::size_t max);

}  // namespace physio
