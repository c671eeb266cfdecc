#include "physio/db/page_token.h"

#include <chrono>
#include <regex>

#include "physio/common/ids.h"
#include "physio/common/validation.h"

namespace physio {

std::string EncodePageToken(const std::string& scope, const std::string& created_at, const std::string& id) {
  return HexEncode("v1|" + scope + "|" + created_at + "|" + id);
}

namespace {
// PostgreSQL's text form of a timestamptz ("2026-11-23 06:00:00.123456+00"), with real calendar values.
bool IsStoredTimestamp(const std::string& text) {
  static const std::regex kShape(R"((\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})(\.\d{1,6})?[+-]\d{2}(:\d{2})?)");
  std::smatch parts;
  if (!std::regex_match(text, parts, kShape)) return false;
  const std::chrono::year_month_day date{std::chrono::year(std::stoi(parts[1])),
                                         std::chrono::month(static_cast<unsigned>(std::stoi(parts[2]))),
                                         std::chrono::day(static_cast<unsigned>(std::stoi(parts[3])))};
  return date.ok() && std::stoi(parts[4]) < 24 && std::stoi(parts[5]) < 60 && std::stoi(parts[6]) < 60;
}
}  // namespace

KeysetPosition DecodePageToken(const std::string& token, const std::string& scope) {
  if (token.empty()) return {};
  std::string text;
  try {
    text = HexDecode(token);
  } catch (const std::exception&) {
    ThrowInvalidArgument("page_token", "is not a token this service issued");
  }
  const auto first = text.find('|'), second = text.find('|', first + 1), third = text.find('|', second + 1);
  if (text.rfind("v1|", 0) != 0 || third == std::string::npos || text.substr(first + 1, second - first - 1) != scope) {
    ThrowInvalidArgument("page_token", "is not a token this service issued for this list");
  }
  // The position goes into SQL as parameters; a token edited by hand must be
  // refused here, not reach PostgreSQL as a malformed timestamp.
  std::string created_at = text.substr(second + 1, third - second - 1);
  std::string id = text.substr(third + 1);
  if (!IsStoredTimestamp(created_at) || !IsOpaqueId(id)) {
    ThrowInvalidArgument("page_token", "is not a token this service issued for this list");
  }
  return {std::move(created_at), std::move(id)};
}

}  // namespace physio
