#include "physio/auth/token_verifier.h"

#include <jwt/jwt.hpp>

#include <openssl/sha.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <fstream>
#include <mutex>
#include <sstream>
#include <unordered_map>

#include "physio/common/error.h"
#include "physio/common/validation.h"

namespace physio {

std::string ReadFileOrThrow(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read file " + path);
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

struct TokenVerifier::Checked {
  VerifiedClaims claims;
  std::chrono::system_clock::time_point expires;     // exp
  std::chrono::system_clock::time_point not_before;  // nbf (epoch when absent)
};

class TokenVerifier::Cache {
 public:
  explicit Cache(TokenCacheOptions options) : options_(options) {}

  bool Find(const std::string& key, std::chrono::system_clock::time_point now, Checked* out) {
    std::lock_guard lock(mutex_);
    auto it = entries_.find(key);
    if (it == entries_.end()) return false;
    if (now >= it->second.evict_at) {
      entries_.erase(it);
      return false;
    }
    *out = it->second.checked;
    return true;
  }

  void Insert(const std::string& key, const Checked& checked, std::chrono::system_clock::time_point now) {
    if (options_.max_entries == 0) return;
    std::lock_guard lock(mutex_);
    if (entries_.size() >= options_.max_entries) {
      std::erase_if(entries_, [&](const auto& entry) { return now >= entry.second.evict_at; });
      // Still full of live tokens: start over rather than grow (one signature check each to refill).
      if (entries_.size() >= options_.max_entries) entries_.clear();
    }
    entries_[key] = Entry{checked, std::min(checked.expires, now + options_.max_age)};
  }

  std::atomic<std::size_t> signature_checks{0};

 private:
  struct Entry {
    Checked checked;
    std::chrono::system_clock::time_point evict_at;
  };
  TokenCacheOptions options_;
  std::mutex mutex_;
  std::unordered_map<std::string, Entry> entries_;
};

TokenVerifier::~TokenVerifier() = default;
TokenVerifier::TokenVerifier(TokenVerifier&&) noexcept = default;

std::size_t TokenVerifier::signature_checks() const { return cache_->signature_checks.load(); }

TokenVerifier::TokenVerifier(std::string public_key_pem, std::string issuer, std::string audience,
                             std::chrono::seconds leeway, TokenCacheOptions cache, std::chrono::seconds max_lifetime)
    : public_key_pem_(std::move(public_key_pem)),
      issuer_(std::move(issuer)),
      audience_(std::move(audience)),
      leeway_(leeway),
      cache_(std::make_unique<Cache>(cache)),
      max_lifetime_(max_lifetime) {
  if (public_key_pem_.find("PUBLIC KEY") == std::string::npos) {
    throw std::runtime_error("the JWT public key is not a PEM public key");
  }
}

TokenVerifier TokenVerifier::FromFile(const std::string& public_key_path, std::string issuer, std::string audience,
                                      TokenCacheOptions cache, std::chrono::seconds max_lifetime) {
  return TokenVerifier(ReadFileOrThrow(public_key_path), std::move(issuer), std::move(audience),
                       std::chrono::seconds(30), cache, max_lifetime);
}

namespace {
// The reason goes to the log (it names a check, never token content); the caller
// learns only that the token was not accepted.
[[noreturn]] void Reject(const std::string& why) {
  spdlog::info("bearer token rejected: {}", why);
  throw Error(ErrorCode::kUnauthenticated, "invalid token");
}
}  // namespace

VerifiedClaims TokenVerifier::Verify(const std::string& token) const {
  if (token.empty()) Reject("missing");
  if (token.size() > 8192) Reject("too long");
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(), digest);
  const std::string key(reinterpret_cast<const char*>(digest), sizeof digest);
  const auto now = std::chrono::system_clock::now();
  Checked checked;
  if (!cache_->Find(key, now, &checked)) {
    checked = VerifySignatureAndClaims(token);
    cache_->Insert(key, checked, now);
  }
  // Every call: the token's time window, whether or not its signature was checked just now.
  if (now >= checked.expires + leeway_) Reject("token expired");
  if (now + leeway_ < checked.not_before) Reject("token not yet valid");
  return checked.claims;
}

TokenVerifier::Checked TokenVerifier::VerifySignatureAndClaims(const std::string& token) const {
  cache_->signature_checks.fetch_add(1, std::memory_order_relaxed);
  std::error_code ec;
  Checked checked;
  VerifiedClaims& claims = checked.claims;
  try {
    auto decoded = jwt::decode(token, jwt::params::algorithms({"RS256"}), ec, jwt::params::secret(public_key_pem_),
                               jwt::params::issuer(issuer_), jwt::params::aud(audience_), jwt::params::verify(true),
                               jwt::params::leeway(static_cast<uint32_t>(leeway_.count())));
    if (ec) Reject(ec.message());
    const auto& payload = decoded.payload();
    // cpp-jwt checks "exp" only when present; an unbounded token is not acceptable.
    if (!payload.has_claim("exp")) Reject("no expiry");
    auto json = payload.create_json_obj();
    if (!json["exp"].is_number()) Reject("malformed expiry");
    checked.expires = std::chrono::system_clock::time_point(std::chrono::seconds(json["exp"].get<long long>()));
    // A token's lifetime is bounded: an issuer cannot hand out week-long bearer tokens.
    if (!json.contains("iat") || !json["iat"].is_number()) Reject("no issued-at");
    const long long lifetime = json["exp"].get<long long>() - json["iat"].get<long long>();
    if (lifetime > max_lifetime_.count()) Reject("lifetime above the maximum");
    if (json.contains("nbf")) {
      if (!json["nbf"].is_number()) Reject("malformed not-before");
      checked.not_before = std::chrono::system_clock::time_point(std::chrono::seconds(json["nbf"].get<long long>()));
    }
    if (!json.contains("tenant") || !json["tenant"].is_string()) Reject("no tenant claim");
    claims.tenant = json["tenant"].get<std::string>();
    if (!IsOpaqueId(claims.tenant) || claims.tenant.size() > 64) Reject("malformed tenant claim");
    if (!json.contains("sub") || !json["sub"].is_string()) Reject("no subject");
    claims.subject = json["sub"].get<std::string>();
    if (!IsOpaqueId(claims.subject)) Reject("malformed subject");
    if (!json.contains("roles") || !json["roles"].is_array()) Reject("no roles claim");
    for (const auto& role_json : json["roles"]) {
      Role role;
      if (!role_json.is_string() || !ParseRole(role_json.get<std::string>(), &role)) Reject("unknown role");
      claims.roles.insert(role);
    }
    if (claims.roles.empty()) Reject("no roles");
    if (json.contains("patient_id")) {
      if (!json["patient_id"].is_string()) Reject("malformed patient_id claim");
      claims.patient_id = json["patient_id"].get<std::string>();
    }
    if (claims.roles.contains(Role::kPatient) && !IsOpaqueId(claims.patient_id)) {
      Reject("patient role without a patient_id claim");
    }
    // A patient is never also staff: the patient-only restrictions must not be lifted by a second role.
    if (claims.roles.contains(Role::kPatient) && claims.roles.size() > 1) Reject("patient role with staff roles");
  } catch (const Error&) {
    throw;
  } catch (const std::exception&) {
    // Malformed base64/JSON or a claim of the wrong type.
    Reject("malformed");
  }
  return checked;
}

}  // namespace physio
