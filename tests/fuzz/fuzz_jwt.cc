// libFuzzer: bearer-token parsing and verification never crash, and accept
// nothing that is not signed by the key (issue 11).
#include <cstddef>
#include <cstdint>
#include <string>

#include "physio/auth/token_minter.h"
#include "physio/auth/token_verifier.h"
#include "physio/common/error.h"

#include <spdlog/spdlog.h>

namespace {
const physio::RsaKeyPair& Keys() {
  static const physio::RsaKeyPair keys = physio::GenerateRsaKeyPair(2048);
  return keys;
}
}  // namespace

// Refusals are logged at info; the fuzzer only needs the outcome.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  spdlog::set_level(spdlog::level::off);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static physio::TokenVerifier verifier(Keys().public_key_pem, "iss", "aud", std::chrono::seconds(30),
                                        physio::TokenCacheOptions{0, std::chrono::seconds(0)});
  const std::string token(reinterpret_cast<const char*>(data), size);
  try {
    verifier.Verify(token);
    // Random bytes never carry a valid RS256 signature by this key.
    __builtin_trap();
  } catch (const physio::Error& e) {
    if (e.code() != physio::ErrorCode::kUnauthenticated) __builtin_trap();
  }
  return 0;
}
