#pragma once
// Verifies bearer JWTs: RS256 only (an allow-list, so "none" and HS256
// algorithm-confusion tokens fail), signature with the configured public key,
// issuer, audience, a required expiry, and not-before.
#include <chrono>
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

class TokenVerifier {
 public:
  TokenVerifier(std::string public_key_pem, std::string issuer, std::string audience,
                std::chrono::seconds leeway = std::chrono::seconds(30));
  // Reads the PEM file; throws std::runtime_error with the path when unreadable.
  static TokenVerifier FromFile(const std::string& public_key_path, std::string issuer, std::string audience);

  // Throws Error(kUnauthenticated) with a short reason on any failure.
  VerifiedClaims Verify(const std::string& token) const;

 private:
  std::string public_key_pem_;
  std::string issuer_;
  std::string audience_;
  std::chrono::seconds leeway_;
};

std::string ReadFileOrThrow(const std::string& path);

}  // namespace physio
