// libFuzzer: an OpenID provider's JWKS (untrusted bytes from the network) is
// parsed without crashing, and what it yields is bounded (issue 28).
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string_view>

#include "physio/auth/jws.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  try {
    auto document = physio::ParseJwks(input, 64, 256 * 1024);
    if (document.keys.size() > 64) __builtin_trap();
    // Whatever was accepted verifies nothing random.
    for (const auto& [kid, key] : document.keys) {
      if (key.Verify(physio::JwsAlg::kEs256, input, input.substr(0, 64))) __builtin_trap();
      if (key.Verify(physio::JwsAlg::kRs256, input, input)) __builtin_trap();
    }
  } catch (const std::runtime_error&) {
  }
  return 0;
}
