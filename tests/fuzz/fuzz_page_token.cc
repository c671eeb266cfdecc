// libFuzzer: a page token from a caller is either a position this service
// issued for this list or INVALID_ARGUMENT on page_token, never a crash.
#include <cstddef>
#include <cstdint>
#include <string>

#include "physio/common/error.h"
#include "physio/common/ids.h"
#include "physio/db/page_token.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string raw(reinterpret_cast<const char*>(data), size);
  for (const std::string& token : {raw, physio::HexEncode(raw)}) {
    try {
      physio::DecodePageToken(token, "pat-1");
    } catch (const physio::Error& e) {
      if (e.code() != physio::ErrorCode::kInvalidArgument) __builtin_trap();
    }
  }
  return 0;
}
