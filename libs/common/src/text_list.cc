#include "physio/common/text_list.h"

#include <algorithm>

namespace physio {

std::vector<std::string> SplitCommaList(const std::string& list) {
  std::vector<std::string> items;
  std::size_t start = 0;
  for (;;) {
    const std::size_t comma = std::min(list.find(',', start), list.size());
    std::string item = list.substr(start, comma - start);
    item.erase(0, item.find_first_not_of(' '));
    if (const auto last = item.find_last_not_of(' '); last != std::string::npos) item.erase(last + 1);
    items.push_back(std::move(item));
    if (comma == list.size()) return items;
    start = comma + 1;
  }
}

bool IsPortNumber(const std::string& text) {
  if (text.empty() || text.size() > 5 || text.find_first_not_of("0123456789") != std::string::npos) return false;
  const int port = std::stoi(text);
  return port >= 1 && port <= 65535;
}

}  // namespace physio
