#pragma once
// Verifies bearer JWTs (RFC 7519; access tokens in the RFC 9068 profile too)
// from the issuers a deployment trusts (physio/auth/issuers.h): the token's
// "iss" picks the issuer, the issuer's allow-list the algorithm (RS256, PS256,
// ES256; "none" and HS256 never), its keys the key ("kid"), then audience, a
// required expiry and issued-at, the lifetime cap and not-before; its claim
// mapping turns the claims into tenant, roles, patient and clinics.
//
// Keys rotate without a restart: an issuer's PEM directory is re-read when its
// contents change, and an OpenID provider's JWKS is refreshed in the
// background and when a token names an unknown kid (physio/auth remote_keys).
// A removed key stops verifying at the next check, and the cache of verified
// tokens is emptied then.
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "physio/auth/call_context.h"
#include "physio/auth/issuers.h"
#include "physio/common/clock.h"

namespace physio {

struct VerifiedClaims {
  std::string tenant;
  std::string subject;
  std::set<Role> roles;
  std::string patient_id;
  std::set<std::string> clinics;  // the clinics a member of staff works at (the issuer's clinics claim)
  bool all_clinics = false;       // an organisation-wide grant (integrators, services, configured values)
  std::string issuer;             // iss
  std::string client_id;          // the OAuth client (RFC 9068 client_id, or azp), when the token names one
  std::string platform;           // the telehealth platform the caller acts through (issuer's mapping), or empty
  bool platform_consent_required = true;  // that platform reaches a patient only with a granted sharing consent
  std::chrono::system_clock::time_point expires;  // exp: a stream opened with it ends then
  // SMART on FHIR resource scopes of the token's scope claim ("system/CarePlan.read",
  // "patient/*.rs"), as written; the FHIR API honours them (SmartScopesAllow).
  std::set<std::string> smart_scopes;
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
  // One issuer with one PEM public key and our own claim names (tenant, roles,
  // patient_id, clinics). `max_lifetime`: the longest a token may live (exp - iat).
  TokenVerifier(std::string public_key_pem, std::string issuer, std::string audience,
                std::chrono::seconds leeway = std::chrono::seconds(30), TokenCacheOptions cache = {},
                std::chrono::seconds max_lifetime = std::chrono::hours(1));
  // The configured issuers. Throws std::runtime_error when a PEM path is
  // unreadable; remote keys are fetched in the background (until the first
  // fetch succeeds, that issuer's tokens are refused: fail closed).
  TokenVerifier(const std::vector<IssuerConfig>& issuers, TokenCacheOptions cache = {});
  ~TokenVerifier();
  TokenVerifier(TokenVerifier&&) noexcept;
  // `path`: one PEM file (any kid, or none, is accepted) or a directory of
  // `<kid>.pem` files (a token must name one). Throws std::runtime_error with
  // the path when unreadable or empty.
  static TokenVerifier FromPath(const std::string& path, std::string issuer, std::string audience,
                                TokenCacheOptions cache = {}, std::chrono::seconds max_lifetime = std::chrono::hours(1),
                                std::chrono::seconds reload_interval = std::chrono::seconds(30));
  // The legacy single issuer as an IssuerConfig (our claim names), for combining with others.
  static IssuerConfig PemIssuer(const std::string& path, std::string issuer, std::string audience,
                                std::chrono::seconds max_lifetime = std::chrono::hours(1),
                                std::chrono::seconds reload_interval = std::chrono::seconds(30));

  // Throws Error(kUnauthenticated, "invalid token") on any failure; which check failed
  // is logged (no token content), never told to the caller. A token naming a kid its
  // provider has not been asked about yet may wait for one JWKS fetch, never past `deadline`.
  VerifiedClaims Verify(const std::string& token, Clock::time_point deadline = Clock::time_point::max()) const;
  // Signature checks done (cache misses), for tests and metrics.
  std::size_t signature_checks() const;
  // JWKS fetches finished (successful or not) over every issuer, for tests.
  std::size_t key_fetches() const;

 private:
  struct Checked;
  class Issuer;
  class Cache;
  Checked VerifySignatureAndClaims(const std::string& token, Clock::time_point deadline) const;
  std::unique_ptr<Cache> cache_;
  std::map<std::string, std::unique_ptr<Issuer>, std::less<>> issuers_;
  std::vector<Issuer*> directory_issuers_;  // those with a PEM key directory, re-checked on every call
};

// A whole file (keys, certificates, secrets); std::runtime_error naming `what`
// (e.g. the setting) and the path when unreadable.
std::string ReadFileOrThrow(const std::string& path, const std::string& what = "file");

}  // namespace physio
