#pragma once
// Comma-separated settings ("a, b,c"): the items in order, each without its
// surrounding spaces. Empty items are kept (a caller decides whether "a,,b" is
// an error or just untidy).
#include <string>
#include <vector>

namespace physio {

std::vector<std::string> SplitCommaList(const std::string& list);

// A TCP port written in decimal digits, 1 to 65535.
bool IsPortNumber(const std::string& text);

}  // namespace physio
