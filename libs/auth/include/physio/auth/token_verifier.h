#pragma once
// Verifies bearer JWTs: RS256 only (an allow-list, so "none" and HS256
// algorithm-confusion tokens fail), signature with the configured public key,
// issuer, audience, a required expiry, and not-before.
//
// Keys rotate without a restart: configured with a directory, the verifier
// holds every `<kid>.pem` in it, picks the one a token's `kid` header names,
// and re-reads the directory when its contents change (checked at most every
// `reload_interval`). A removed key stops verifying at the next check, and the
// cache of verified tokens is emptied then.
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "physio/auth/call_context.h"
#include "physio/common/clock.h"

namespace physio {

struct VerifiedClaims {
  std::string tenant;
  std::string subject;
  std::set<Role> roles;
  std::string patient_id;
  std::chrono::system_clock::time_point expires;  // exp: a stream opened with it ends then
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
  // `path`: one PEM file (any kid, or none, is accepted) or a directory of
  // `<kid>.pem` files (a token must name one). Throws std::runtime_error with
  // the path when unreadable or empty.
  static TokenVerifier FromPath(const std::string& path, std::string issuer, std::string audience,
                                TokenCacheOptions cache = {}, std::chrono::seconds max_lifetime = std::chrono::hours(1),
                                std::chrono::seconds reload_interval = std::chrono::seconds(30));

  // Throws Error(kUnauthenticated, "invalid token") on any failure; which check failed
  // is logged (no token content), never told to the caller.
  VerifiedClaims Verify(const std::string& token) const;
  // Signature checks done (cache misses), for tests and metrics.
  std::size_t signature_checks() const;

 private:
  struct Checked;
  struct Keys;
  Checked VerifySignatureAndClaims(const std::string& token, const Keys& keys) const;
  std::shared_ptr<const Keys> CurrentKeys() const;
  // The directory's keys with its signature (names, sizes, times), to notice changes.
  static std::shared_ptr<Keys> LoadKeyDirectory(const std::string& directory);
  class Cache;
  std::string key_directory_;  // empty: one fixed key
  std::chrono::seconds reload_interval_{30};
  mutable std::mutex keys_mutex_;
  mutable std::shared_ptr<const Keys> keys_;
  mutable Clock::time_point next_reload_check_;
  std::string issuer_;
  std::string audience_;
  std::chrono::seconds leeway_;
  std::unique_ptr<Cache> cache_;
  std::chrono::seconds max_lifetime_;
};

// A whole file (keys, certificates, secrets); std::runtime_error naming `what`
// (e.g. the setting) and the path when unreadable.
std::string ReadFileOrThrow(const std::string& path, const std::string& what = "file");

}  // namespace physio
