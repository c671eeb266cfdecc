#pragma once
// Verifies bearer JWTs: RS256 only (an allow-list, so "none" and HS256
// algorithm-confusion tokens fail), signature with the configured public key,
// issuer, audience, a required expiry, and not-before.
#include <chrono>
#include <memory>
#include <set>
#include <string>

#include "physio/auth/call_context.h"

namespace physio {

struct VerifiedClaims {
  std::string tenant;
  std::string subject;
  std::set<Role> roles;
  std::string patient_id;
};

// Verified tokens remembered by their SHA-256, so one RS256 signature check
// serves every call that carries the same token. Bounded in entries, and an
// entry lives no longer than its token's expiry or `max_age`, whichever is
// first; the time checks (exp, nbf) still run on every call.
struct TokenCacheOptions {
  std::size_t max_entries = 10000;  // 0: no cache
  std::chrono::seconds max_age{300};
};

class TokenVerifier {
 public:
  // `max_lifetime`: the longest a token may live (exp - iat); longer-lived tokens are refused.
  TokenVerifier(std::string public_key_pem, std::string issuer, std::string audience,
                std::chrono::seconds leeway = std::chrono::seconds(30), TokenCacheOptions cache = {},
                std::chrono::seconds max_lifetime = std::chrono::hours(1));
  ~TokenVerifier();
  TokenVerifier(TokenVerifier&&) noexcept;
  // Reads the PEM file; throws std::runtime_error with the path when unreadable.
  static TokenVerifier FromFile(const std::string& public_key_path, std::string issuer, std::string audience,
                                TokenCacheOptions cache = {}, std::chrono::seconds max_lifetime = std::chrono::hours(1));

  // Throws Error(kUnauthenticated, "invalid token") on any failure; which check failed
  // is logged (no token content), never told to the caller.
  VerifiedClaims Verify(const std::string& token) const;
  // Signature checks done (cache misses), for tests and metrics.
  std::size_t signature_checks() const;

 private:
  struct Checked;
  Checked VerifySignatureAndClaims(const std::string& token) const;
  class Cache;
  std::string public_key_pem_;
  std::string issuer_;
  std::string audience_;
  std::chrono::seconds leeway_;
  std::unique_ptr<Cache> cache_;
  std::chrono::seconds max_lifetime_;
};

std::string ReadFileOrThrow(const std::string& path);

}  // namespace physio
