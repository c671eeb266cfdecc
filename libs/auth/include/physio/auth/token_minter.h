#pragma once
// Development and test helpers: an RS256 key pair and tokens signed with it.
// Production tokens come from the deployment's identity provider.
#include <chrono>
#include <string>
#include <vector>

namespace physio {

struct RsaKeyPair {
  std::string private_key_pem;
  std::string public_key_pem;
};

RsaKeyPair GenerateRsaKeyPair(int bits = 2048);

struct TokenRequest {
  std::string issuer;
  std::string audience;
  std::string tenant;
  std::string subject;
  std::vector<std::string> roles;
  std::string patient_id;  // for patient tokens
  std::chrono::seconds lifetime = std::chrono::hours(1);
  std::chrono::seconds not_before_offset = std::chrono::seconds(0);
  std::chrono::seconds issued_at_offset = std::chrono::seconds(0);  // iat = now + this (tests of clock checks)
  std::string key_id;  // the header's "kid", naming the verifying key; empty: none
  std::vector<std::string> clinics;  // the "clinics" claim of staff tokens; empty: none
  std::string platform;              // the "platform" claim: the telehealth platform the caller acts through
  std::string client_id;             // the "client_id" claim (RFC 9068)
  std::string scope;                 // the "scope" claim (space-separated, e.g. SMART "system/CarePlan.read")
};

std::string MintToken(const std::string& private_key_pem, const TokenRequest& request);

}  // namespace physio
