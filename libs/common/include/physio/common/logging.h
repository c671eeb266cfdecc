#pragma once
// One JSON object per line on stderr. Log ids, never patient data: messages are
// written by us, and every value in them is an opaque id or a code.
#include <string>

namespace physio {

void InitJsonLogging(const std::string& service, const std::string& level);
std::string JsonEscape(const std::string& text);

}  // namespace physio
