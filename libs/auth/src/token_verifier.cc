#include "physio/auth/token_verifier.h"

#include <jwt/jwt.hpp>

#include <openssl/sha.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <unordered_map>

#include "physio/common/error.h"
#include "physio/common/validation.h"

namespace physio {

std::string ReadFileOrThrow(const std::string& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(what + ": cannot read " + path);
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

struct TokenVerifier::Keys {
  std::string single;                        // one configured key (file mode)
  std::map<std::string, std::string> by_kid; // directory mode: <kid>.pem
  std::string signature;                     // the directory's names, sizes and times, to notice changes
};

namespace {
bool IsPublicKeyPem(const std::string& pem) { return pem.find("PUBLIC KEY") != std::string::npos; }

// The directory's state, cheap to compare: names, sizes, modification times.
std::string DirectorySignature(const std::filesystem::path& directory) {
  std::string signature;
  std::vector<std::string> lines;
  for (const auto& entry : std::filesystem::directory_iterator(directory)) {
    if (entry.path().extension() != ".pem") continue;
    lines.push_back(entry.path().filename().string() + ":" + std::to_string(entry.file_size()) + ":" +
                    std::to_string(entry.last_write_time().time_since_epoch().count()));
  }
  std::sort(lines.begin(), lines.end());
  for (const auto& line : lines) signature += line + "\n";
  return signature;
}

std::map<std::string, std::string> ReadKeyDirectory(const std::filesystem::path& directory) {
  std::map<std::string, std::string> keys;
  for (const auto& entry : std::filesystem::directory_iterator(directory)) {
    if (entry.path().extension() != ".pem") continue;
    const std::string kid = entry.path().stem().string();
    std::string pem = ReadFileOrThrow(entry.path().string(), "jwt-public-key");
    if (!IsOpaqueId(kid) || !IsPublicKeyPem(pem)) {
      spdlog::warn("ignoring {} in the JWT key directory: not <kid>.pem with a PEM public key", entry.path().filename().string());
      continue;
    }
    keys.emplace(kid, std::move(pem));
  }
  return keys;
}
}  // namespace

struct TokenVerifier::Checked {
  VerifiedClaims claims;
  std::chrono::system_clock::time_point expires;     // exp
  std::chrono::system_clock::time_point not_before;  // nbf (epoch when absent)
  std::chrono::system_clock::time_point issued_at;   // iat
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

  void Clear() {
    std::lock_guard lock(mutex_);
    entries_.clear();
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
TokenVerifier::TokenVerifier(TokenVerifier&& other) noexcept
    : key_directory_(std::move(other.key_directory_)),
      reload_interval_(other.reload_interval_),
      keys_(std::move(other.keys_)),
      next_reload_check_(other.next_reload_check_),
      issuer_(std::move(other.issuer_)),
      audience_(std::move(other.audience_)),
      leeway_(other.leeway_),
      cache_(std::move(other.cache_)),
      max_lifetime_(other.max_lifetime_) {}

std::size_t TokenVerifier::signature_checks() const { return cache_->signature_checks.load(); }

TokenVerifier::TokenVerifier(std::string public_key_pem, std::string issuer, std::string audience,
                             std::chrono::seconds leeway, TokenCacheOptions cache, std::chrono::seconds max_lifetime)
    : issuer_(std::move(issuer)),
      audience_(std::move(audience)),
      leeway_(leeway),
      cache_(std::make_unique<Cache>(cache)),
      max_lifetime_(max_lifetime) {
  if (!IsPublicKeyPem(public_key_pem)) throw std::runtime_error("the JWT public key is not a PEM public key");
  auto keys = std::make_shared<Keys>();
  keys->single = std::move(public_key_pem);
  keys_ = std::move(keys);
}

TokenVerifier TokenVerifier::FromPath(const std::string& path, std::string issuer, std::string audience,
                                      TokenCacheOptions cache, std::chrono::seconds max_lifetime,
                                      std::chrono::seconds reload_interval) {
  if (!std::filesystem::is_directory(path)) {
    return TokenVerifier(ReadFileOrThrow(path, "jwt-public-key"), std::move(issuer), std::move(audience),
                         std::chrono::seconds(30), cache, max_lifetime);
  }
  auto keys = LoadKeyDirectory(path);
  if (keys->by_kid.empty()) throw std::runtime_error("jwt-public-key: no <kid>.pem public key in " + path);
  // Built around a placeholder key, then switched to the directory's keys.
  TokenVerifier verifier(keys->by_kid.begin()->second, std::move(issuer), std::move(audience), std::chrono::seconds(30),
                         cache, max_lifetime);
  verifier.key_directory_ = path;
  verifier.reload_interval_ = reload_interval;
  verifier.keys_ = std::move(keys);
  verifier.next_reload_check_ = Clock::now() + reload_interval;
  return verifier;
}

std::shared_ptr<TokenVerifier::Keys> TokenVerifier::LoadKeyDirectory(const std::string& directory) {
  auto keys = std::make_shared<Keys>();
  keys->signature = DirectorySignature(directory);
  keys->by_kid = ReadKeyDirectory(directory);
  return keys;
}

std::shared_ptr<const TokenVerifier::Keys> TokenVerifier::CurrentKeys() const {
  std::unique_lock lock(keys_mutex_);
  if (key_directory_.empty() || Clock::now() < next_reload_check_) return keys_;
  next_reload_check_ = Clock::now() + reload_interval_;
  auto current = keys_;
  lock.unlock();
  try {
    const std::string signature = DirectorySignature(key_directory_);
    if (signature == current->signature) return current;
    auto fresh = LoadKeyDirectory(key_directory_);
    spdlog::info("JWT key directory changed: {} key(s)", fresh->by_kid.size());
    lock.lock();
    keys_ = fresh;
    lock.unlock();
    // Tokens verified with a key that is gone must not outlive it in the cache.
    cache_->Clear();
    return fresh;
  } catch (const std::exception& e) {
    spdlog::error("JWT key directory not re-read (keeping the current keys): {}", e.what());
    return current;
  }
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
  // Three base64url segments, nothing else: cpp-jwt's base64 decoder indexes a
  // table with each byte as a signed char, so a byte above 0x7f reads outside
  // it (found by fuzz_jwt). Nothing else reaches the parser.
  int dots = 0;
  for (unsigned char c : token) {
    if (c == '.') {
      ++dots;
    } else if (!std::isalnum(c) && c != '-' && c != '_') {
      Reject("malformed");
    }
  }
  if (dots != 2) Reject("malformed");
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(), digest);
  const std::string key(reinterpret_cast<const char*>(digest), sizeof digest);
  const auto keys = CurrentKeys();
  const auto now = std::chrono::system_clock::now();
  Checked checked;
  if (!cache_->Find(key, now, &checked)) {
    checked = VerifySignatureAndClaims(token, *keys);
    cache_->Insert(key, checked, now);
  }
  // Every call: the token's time window, whether or not its signature was checked just now.
  if (now >= checked.expires + leeway_) Reject("token expired");
  if (now + leeway_ < checked.not_before) Reject("token not yet valid");
  // A token minted "in the future" would otherwise live past the lifetime cap.
  if (checked.issued_at > now + leeway_) Reject("issued in the future");
  if (checked.expires - now > max_lifetime_ + leeway_) Reject("expiry further ahead than the maximum lifetime");
  VerifiedClaims claims = checked.claims;
  claims.expires = checked.expires;
  return claims;
}

namespace {
// The "kid" of a token's header, or "" (the header is read, not trusted: it only picks the key).
std::string KeyIdOf(const std::string& token) {
  const auto dot = token.find('.');
  if (dot == std::string::npos) Reject("malformed");
  auto header = nlohmann::json::parse(jwt::base64_uri_decode(token.data(), dot), nullptr, false);
  if (header.is_discarded() || !header.is_object()) Reject("malformed header");
  if (!header.contains("kid")) return "";
  if (!header["kid"].is_string()) Reject("malformed key id");
  return header["kid"].get<std::string>();
}
}  // namespace

TokenVerifier::Checked TokenVerifier::VerifySignatureAndClaims(const std::string& token, const Keys& keys) const {
  cache_->signature_checks.fetch_add(1, std::memory_order_relaxed);
  std::error_code ec;
  Checked checked;
  VerifiedClaims& claims = checked.claims;
  try {
    const std::string* public_key = &keys.single;
    if (!keys.by_kid.empty()) {
      auto found = keys.by_kid.find(KeyIdOf(token));
      if (found == keys.by_kid.end()) Reject("unknown or missing key id");
      public_key = &found->second;
    }
    auto decoded = jwt::decode(token, jwt::params::algorithms({"RS256"}), ec, jwt::params::secret(*public_key),
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
    checked.issued_at = std::chrono::system_clock::time_point(std::chrono::seconds(json["iat"].get<long long>()));
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
