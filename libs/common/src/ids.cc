#include "physio/common/ids.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <stdexcept>

namespace physio {

std::string HexEncode(const std::string& bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out += kDigits[c >> 4];
    out += kDigits[c & 0xf];
  }
  return out;
}

std::string HexDecode(const std::string& hex) {
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    throw std::invalid_argument("not hex");
  };
  if (hex.size() % 2 != 0) throw std::invalid_argument("odd hex length");
  std::string out;
  out.reserve(hex.size() / 2);
  for (size_t i = 0; i < hex.size(); i += 2) out += static_cast<char>(nibble(hex[i]) << 4 | nibble(hex[i + 1]));
  return out;
}

namespace {
// Random bytes from OpenSSL's DRBG, drawn a block at a time: one RAND_bytes per
// call cost every request ~3% of its CPU (issue 33; OpenSSL 3's per-call
// overhead dwarfs 16 bytes). Per thread, so no lock; a forked child never
// reuses its parent's block: each fork moves a generation on (pthread_atfork's
// child handler), which a block compares with its own, with no system call
// (getpid() per id was 1-2% of a cached read's CPU).
std::atomic<std::uint64_t> fork_generation{1};
void AfterForkInChild() { fork_generation.fetch_add(1, std::memory_order_relaxed); }
const bool kForkHandled = pthread_atfork(nullptr, nullptr, &AfterForkInChild) == 0;

void FillRandom(unsigned char* out, std::size_t bytes) {
  struct Block {
    unsigned char data[512];
    std::size_t used = sizeof data;
    std::uint64_t generation = 0;
  };
  thread_local Block block;
  if (bytes > sizeof block.data / 4 || !kForkHandled) {
    if (RAND_bytes(out, static_cast<int>(bytes)) != 1) throw std::runtime_error("RAND_bytes failed");
    return;
  }
  if (const auto generation = fork_generation.load(std::memory_order_relaxed); generation != block.generation) {
    OPENSSL_cleanse(block.data, sizeof block.data);
    block.used = sizeof block.data;
    block.generation = generation;
  }
  if (block.used + bytes > sizeof block.data) {
    if (RAND_bytes(block.data, sizeof block.data) != 1) throw std::runtime_error("RAND_bytes failed");
    block.used = 0;
  }
  std::memcpy(out, block.data + block.used, bytes);
  OPENSSL_cleanse(block.data + block.used, bytes);  // handed out once
  block.used += bytes;
}
}  // namespace

std::string RandomHex(std::size_t bytes) {
  std::string raw(bytes, '\0');
  FillRandom(reinterpret_cast<unsigned char*>(raw.data()), raw.size());
  return HexEncode(raw);
}

std::string NewId(const std::string& prefix) { return prefix + "_" + RandomHex(16); }

std::string Sha256(std::string_view bytes) {
  // Fetched once: OpenSSL 3's SHA256() looks the algorithm up on every call.
  static EVP_MD* const kSha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  struct Context {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    ~Context() { EVP_MD_CTX_free(ctx); }
  };
  thread_local Context context;
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (kSha256 == nullptr || context.ctx == nullptr || EVP_DigestInit_ex(context.ctx, kSha256, nullptr) != 1 ||
      EVP_DigestUpdate(context.ctx, bytes.data(), bytes.size()) != 1 ||
      EVP_DigestFinal_ex(context.ctx, digest, &size) != 1) {
    throw std::runtime_error("SHA-256 failed");
  }
  return std::string(reinterpret_cast<char*>(digest), size);
}

std::string Sha256Hex(const std::string& bytes) { return HexEncode(Sha256(bytes)); }

std::string Sha1Hex(const std::string& bytes) {
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), digest);
  return HexEncode(std::string(reinterpret_cast<char*>(digest), sizeof digest));
}

}  // namespace physio
