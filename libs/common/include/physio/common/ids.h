#pragma once
#include <cstddef>
#include <string>
#include <string_view>

namespace physio {

// A random, unguessable id: prefix + 128 bits in hex (e.g. "asm_3f2a...").
std::string NewId(const std::string& prefix);
// `bytes` random bytes in lower-case hex (e.g. a W3C trace span id: RandomHex(8)).
std::string RandomHex(std::size_t bytes);
// The SHA-256 digest of the bytes (32 raw bytes), and the same in lower-case hex.
std::string Sha256(std::string_view bytes);
std::string Sha256Hex(const std::string& bytes);
// Lower-case hex SHA-1 (Redis script ids).
std::string Sha1Hex(const std::string& bytes);
std::string HexEncode(const std::string& bytes);
std::string HexDecode(const std::string& hex);

}  // namespace physio
