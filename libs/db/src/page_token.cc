#include "physio/db/page_token.h"

#include "physio/common/ids.h"

namespace physio {

std::string EncodePageToken(const std::string& scope, const std::string& created_at, const std::string& id) {
  return HexEncode("v1|" + scope + "|" + created_at + "|" + id);
}

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
  return {text.substr(second + 1, third - second - 1), text.substr(third + 1)};
}

}  // namespace physio
