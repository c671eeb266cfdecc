#include "physio/auth/token_verifier.h"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <unordered_map>

#include "physio/auth/jws.h"
#include "physio/common/error.h"
#include "physio/common/ids.h"
#include "physio/common/validation.h"
#include "remote_keys.h"

namespace physio {

std::string ReadFileOrThrow(const std::string& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(what + ": cannot read " + path);
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

namespace {
using Json = nlohmann::json;

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

std::map<std::string, PublicKey> ReadKeyDirectory(const std::filesystem::path& directory) {
  std::map<std::string, PublicKey> keys;
  for (const auto& entry : std::filesystem::directory_iterator(directory)) {
    if (entry.path().extension() != ".pem") continue;
    const std::string kid = entry.path().stem().string();
    const std::string pem = ReadFileOrThrow(entry.path().string(), "jwt-public-key");
    try {
      if (!IsOpaqueId(kid)) throw std::runtime_error("the name is not a key id");
      keys.emplace(kid, PublicKey::FromPem(pem));
    } catch (const std::exception& e) {
      spdlog::warn("ignoring {} in the JWT key directory: not <kid>.pem with a usable public key ({})",
                   entry.path().filename().string(), e.what());
    }
  }
  return keys;
}

// The reason goes to the log (it names a check, never token content); the caller
// learns only that the token was not accepted.
[[noreturn]] void Reject(const std::string& why) {
  spdlog::info("bearer token rejected: {}", why);
  throw Error(ErrorCode::kUnauthenticated, "invalid token");
}
}  // namespace

struct TokenVerifier::Checked {
  VerifiedClaims claims;
  std::chrono::system_clock::time_point expires;     // exp
  std::chrono::system_clock::time_point not_before;  // nbf (epoch when absent)
  std::chrono::system_clock::time_point issued_at;   // iat
  std::chrono::seconds leeway{30};                   // the issuer's
  std::chrono::seconds max_lifetime{3600};
};
class TokenVerifier::Cache {
 public:
  explicit Cache(TokenCacheOptions options) : options_(options) {}

  // `generation` (out): the cache's generation at this lookup, for Insert.
  bool Find(const std::string& key, std::chrono::system_clock::time_point now, Checked* out,
            std::uint64_t* generation) {
    std::lock_guard lock(mutex_);
    *generation = generation_;
    auto it = entries_.find(key);
    if (it == entries_.end()) return false;
    if (now >= it->second.evict_at) {
      entries_.erase(it);
      return false;
    }
    *out = it->second.checked;
    return true;
  }

  // Not when the cache was cleared since the lookup that missed (`generation`): the token was
  // verified with keys read before a key was removed, perhaps with the removed key itself.
  void Insert(const std::string& key, const Checked& checked, std::chrono::system_clock::time_point now,
              std::uint64_t generation) {
    if (options_.max_entries == 0) return;
    std::lock_guard lock(mutex_);
    if (generation != generation_) return;
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
    ++generation_;
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
  std::uint64_t generation_ = 0;  // cleared this many times
};

// One trusted issuer: its configuration and its keys.
class TokenVerifier::Issuer {
 public:
  Issuer(const IssuerConfig& config, Cache* cache) : config_(config), cache_(cache) {
    if (config.keys != KeySourceKind::kPem) {
      remote_ = std::make_unique<RemoteKeys>(config, [cache] { cache->Clear(); });
      return;
    }
    if (!config.public_key_pem.empty()) {
      single_ = PublicKey::FromPem(config.public_key_pem);
    } else if (std::filesystem::is_directory(config.public_key_path)) {
      directory_ = config.public_key_path;
      signature_ = DirectorySignature(directory_);
      by_kid_ = std::make_shared<const std::map<std::string, PublicKey>>(ReadKeyDirectory(directory_));
      if (by_kid_->empty()) throw std::runtime_error("jwt-public-key: no <kid>.pem public key in " + directory_);
      next_check_ = Clock::now() + config.pem_reload_interval;
    } else {
      const std::string pem = ReadFileOrThrow(config.public_key_path, "jwt-public-key");
      try {
        single_ = PublicKey::FromPem(pem);
      } catch (const std::exception& e) {
        throw std::runtime_error("jwt-public-key " + config.public_key_path + ": " + e.what());
      }
    }
  }

  const IssuerConfig& config() const { return config_; }
  std::size_t fetches() const { return remote_ ? remote_->fetches() : 0; }
  bool has_directory() const { return !directory_.empty(); }
  // A key directory is re-checked (at most every pem_reload_interval) on every call, cache hit or
  // not: a removed key must stop its cached tokens too.
  void CheckDirectory() { DirectoryKeys(); }

  std::optional<PublicKey> FindKey(const std::string& kid, Clock::time_point deadline) {
    if (remote_) return remote_->Find(kid, deadline);
    if (single_) return single_;
    auto keys = DirectoryKeys();
    auto found = keys->find(kid);
    if (found == keys->end()) return std::nullopt;
    return found->second;
  }

 private:
  std::shared_ptr<const std::map<std::string, PublicKey>> DirectoryKeys() {
    std::unique_lock lock(mutex_);
    if (Clock::now() < next_check_) return by_kid_;
    next_check_ = Clock::now() + config_.pem_reload_interval;
    auto current = by_kid_;
    const std::string old_signature = signature_;
    lock.unlock();
    try {
      const std::string signature = DirectorySignature(directory_);
      if (signature == old_signature) return current;
      auto fresh = std::make_shared<const std::map<std::string, PublicKey>>(ReadKeyDirectory(directory_));
      spdlog::info("JWT key directory changed: {} key(s)", fresh->size());
      lock.lock();
      by_kid_ = fresh;
      signature_ = signature;
      // Tokens verified with a key that is gone must not outlive it in the cache: emptied before
      // anyone can read the new keys, as a JWKS refresh does (the cache never calls back here).
      cache_->Clear();
      lock.unlock();
      return fresh;
    } catch (const std::exception& e) {
      spdlog::error("JWT key directory not re-read (keeping the current keys): {}", e.what());
      return current;
    }
  }

  IssuerConfig config_;
  Cache* cache_;
  std::optional<PublicKey> single_;
  std::string directory_;
  std::mutex mutex_;
  std::shared_ptr<const std::map<std::string, PublicKey>> by_kid_;
  std::string signature_;
  Clock::time_point next_check_;
  std::unique_ptr<RemoteKeys> remote_;
};

TokenVerifier::~TokenVerifier() = default;
TokenVerifier::TokenVerifier(TokenVerifier&& other) noexcept = default;

std::size_t TokenVerifier::signature_checks() const { return cache_->signature_checks.load(); }

std::size_t TokenVerifier::key_fetches() const {
  std::size_t total = 0;
  for (const auto& [name, issuer] : issuers_) total += issuer->fetches();
  return total;
}

TokenVerifier::TokenVerifier(const std::vector<IssuerConfig>& issuers, TokenCacheOptions cache)
    : cache_(std::make_unique<Cache>(cache)) {
  if (issuers.empty()) throw std::runtime_error("no token issuer configured");
  for (const auto& config : issuers) {
    if (issuers_.contains(config.issuer)) throw std::runtime_error("token issuer configured twice: " + config.issuer);
    auto issuer = std::make_unique<Issuer>(config, cache_.get());
    if (issuer->has_directory()) directory_issuers_.push_back(issuer.get());
    issuers_.emplace(config.issuer, std::move(issuer));
  }
}

IssuerConfig TokenVerifier::PemIssuer(const std::string& path, std::string issuer, std::string audience,
                                      std::chrono::seconds max_lifetime, std::chrono::seconds reload_interval) {
  IssuerConfig config;
  config.issuer = std::move(issuer);
  config.audiences = {std::move(audience)};
  config.max_lifetime = max_lifetime;
  config.keys = KeySourceKind::kPem;
  config.public_key_path = path;
  config.pem_reload_interval = reload_interval;
  config.claims.tenant_claim = "tenant";
  return config;
}

namespace {
std::vector<IssuerConfig> OneKey(std::string pem, std::string issuer, std::string audience, std::chrono::seconds leeway,
                                 std::chrono::seconds max_lifetime) {
  if (pem.find("PUBLIC KEY") == std::string::npos) throw std::runtime_error("the JWT public key is not a PEM public key");
  IssuerConfig config = TokenVerifier::PemIssuer("", std::move(issuer), std::move(audience), max_lifetime);
  config.public_key_pem = std::move(pem);
  config.leeway = leeway;
  return {config};
}
}  // namespace

TokenVerifier::TokenVerifier(std::string public_key_pem, std::string issuer, std::string audience,
                             std::chrono::seconds leeway, TokenCacheOptions cache, std::chrono::seconds max_lifetime)
    : TokenVerifier(OneKey(std::move(public_key_pem), std::move(issuer), std::move(audience), leeway, max_lifetime),
                    cache) {}

TokenVerifier TokenVerifier::FromPath(const std::string& path, std::string issuer, std::string audience,
                                      TokenCacheOptions cache, std::chrono::seconds max_lifetime,
                                      std::chrono::seconds reload_interval) {
  return TokenVerifier({PemIssuer(path, std::move(issuer), std::move(audience), max_lifetime, reload_interval)}, cache);
}

VerifiedClaims TokenVerifier::Verify(const std::string& token, Clock::time_point deadline) const {
  if (token.empty()) Reject("missing");
  if (token.size() > 8192) Reject("too long");
  // Three base64url segments, nothing else reaches a parser.
  int dots = 0;
  for (unsigned char c : token) {
    if (c == '.') {
      ++dots;
    } else if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_')) {
      Reject("malformed");
    }
  }
  if (dots != 2) Reject("malformed");
  const std::string key = Sha256(token);
  for (Issuer* issuer : directory_issuers_) issuer->CheckDirectory();
  const auto now = std::chrono::system_clock::now();
  Checked checked;
  std::uint64_t generation = 0;
  if (!cache_->Find(key, now, &checked, &generation)) {
    checked = VerifySignatureAndClaims(token, deadline);
    cache_->Insert(key, checked, now, generation);
  }
  // Every call: the token's time window, whether or not its signature was checked just now.
  const auto leeway = checked.leeway;
  if (now >= checked.expires + leeway) Reject("token expired");
  if (now + leeway < checked.not_before) Reject("token not yet valid");
  // A token minted "in the future" would otherwise live past the lifetime cap.
  if (checked.issued_at > now + leeway) Reject("issued in the future");
  if (checked.expires - now > checked.max_lifetime + leeway) Reject("expiry further ahead than the maximum lifetime");
  VerifiedClaims claims = checked.claims;
  claims.expires = checked.expires;
  return claims;
}

namespace {
Json DecodeSegment(std::string_view segment, const char* what) {
  std::string bytes;
  if (!Base64UrlDecode(segment, &bytes)) Reject(std::string("malformed ") + what);
  auto json = Json::parse(bytes, nullptr, false);
  if (json.is_discarded() || !json.is_object()) Reject(std::string("malformed ") + what);
  return json;
}

// A claim by mapping path: the top-level claim of exactly that name, else dots descend.
const Json* ClaimAt(const Json& payload, const std::string& path) {
  if (path.empty()) return nullptr;
  if (auto found = payload.find(path); found != payload.end()) return &*found;
  const Json* node = &payload;
  std::size_t start = 0;
  while (start <= path.size()) {
    const auto dot = path.find('.', start);
    const std::string part = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (!node->is_object()) return nullptr;
    auto found = node->find(part);
    if (found == node->end()) return nullptr;
    node = &*found;
    if (dot == std::string::npos) return node;
    start = dot + 1;
  }
  return nullptr;
}

// An array of strings, or one space-separated string (OAuth "scope").
std::vector<std::string> ValuesAt(const Json& payload, const std::string& path, const char* what) {
  std::vector<std::string> values;
  const Json* claim = ClaimAt(payload, path);
  if (claim == nullptr) return values;
  if (claim->is_string()) {
    std::istringstream words(claim->get<std::string>());
    for (std::string word; words >> word;) values.push_back(word);
  } else if (claim->is_array()) {
    for (const auto& item : *claim) {
      if (!item.is_string()) Reject(std::string("malformed ") + what + " claim");
      values.push_back(item.get<std::string>());
    }
  } else {
    Reject(std::string("malformed ") + what + " claim");
  }
  if (values.size() > 256) Reject(std::string("too many values in the ") + what + " claim");
  return values;
}

std::string StringAt(const Json& payload, const std::string& path, const char* what) {
  const Json* claim = ClaimAt(payload, path);
  if (claim == nullptr) return "";
  if (!claim->is_string()) Reject(std::string("malformed ") + what + " claim");
  return claim->get<std::string>();
}

// Provider subjects are not all our ids ("auth0|5f7c", Entra's base64url object ids).
bool IsPrincipal(const std::string& value) {
  if (value.empty() || value.size() > 255) return false;
  for (unsigned char c : value) {
    if (!(std::isalnum(c) || std::string_view("._:-|@+=/").find(static_cast<char>(c)) != std::string_view::npos)) {
      return false;
    }
  }
  return true;
}

std::chrono::system_clock::time_point Seconds(const Json& payload, const char* name) {
  const Json& value = payload[name];
  if (!value.is_number()) Reject(std::string("malformed ") + name);
  const double seconds = value.get<double>();
  if (!(seconds >= 0 && seconds < 1e11)) Reject(std::string("malformed ") + name);
  return std::chrono::system_clock::time_point(std::chrono::seconds(static_cast<long long>(seconds)));
}

// What the issuer's mapping says about the token's holder.
void MapClaims(const ClaimMapping& mapping, const Json& payload, VerifiedClaims& claims) {
  claims.tenant = mapping.tenant.empty() ? StringAt(payload, mapping.tenant_claim, "tenant") : mapping.tenant;
  if (claims.tenant.empty()) Reject("no tenant claim");
  if (!IsOpaqueId(claims.tenant) || claims.tenant.size() > 64) Reject("malformed tenant claim");
  claims.subject = StringAt(payload, mapping.subject_claim, "subject");
  if (claims.subject.empty()) Reject("no subject");
  if (!IsPrincipal(claims.subject)) Reject("malformed subject");

  bool organization_wide = false;
  const Json* roles_claim = ClaimAt(payload, mapping.roles_claim);
  for (const auto& value : ValuesAt(payload, mapping.roles_claim, "roles")) {
    organization_wide = organization_wide || mapping.organization_wide_values.contains(value);
    if (mapping.role_values.empty()) {
      // Our own format: the claim holds our role names, and nothing else.
      Role role;
      if (!ParseRole(value, &role)) Reject("unknown role");
      claims.roles.insert(role);
    } else if (auto found = mapping.role_values.find(value); found != mapping.role_values.end()) {
      claims.roles.insert(found->second.begin(), found->second.end());
    }
  }
  for (const auto& scope : ValuesAt(payload, mapping.scope_claim, "scope")) {
    if (IsSmartResourceScope(scope)) claims.smart_scopes.insert(scope);
    organization_wide = organization_wide || mapping.organization_wide_values.contains(scope);
    if (auto found = mapping.scope_roles.find(scope); found != mapping.scope_roles.end()) {
      claims.roles.insert(found->second.begin(), found->second.end());
    }
  }
  if (roles_claim == nullptr && claims.roles.empty()) Reject("no roles claim");
  if (claims.roles.empty()) Reject("no roles");

  claims.patient_id = StringAt(payload, mapping.patient_claim, "patient");
  if (claims.patient_id.empty() && !mapping.fhir_user_claim.empty()) {
    // SMART on FHIR: fhirUser "Patient/<id>" (or a full URL ending so) names the patient.
    const std::string fhir_user = StringAt(payload, mapping.fhir_user_claim, "fhirUser");
    const auto at = fhir_user.rfind("Patient/");
    if (at != std::string::npos && (at == 0 || fhir_user[at - 1] == '/')) claims.patient_id = fhir_user.substr(at + 8);
  }
  if (claims.roles.contains(Role::kPatient) && !IsOpaqueId(claims.patient_id)) {
    Reject("patient role without a patient claim");
  }
  // A patient is never also staff: the patient-only restrictions must not be lifted by a second role.
  if (claims.roles.contains(Role::kPatient) && claims.roles.size() > 1) Reject("patient role with staff roles");

  for (const auto& clinic : ValuesAt(payload, mapping.clinics_claim, "clinics")) {
    if (!IsClinicId(clinic)) Reject("malformed clinics claim");
    claims.clinics.insert(clinic);
  }
  if (claims.clinics.size() > 64) Reject("more than 64 clinics");
  claims.all_clinics = claims.roles.contains(Role::kIntegrator) || claims.roles.contains(Role::kService) ||
                       (organization_wide && !claims.roles.contains(Role::kPatient));
}
}  // namespace

TokenVerifier::Checked TokenVerifier::VerifySignatureAndClaims(const std::string& token, Clock::time_point deadline) const {
  cache_->signature_checks.fetch_add(1, std::memory_order_relaxed);
  Checked checked;
  VerifiedClaims& claims = checked.claims;
  try {
    const auto first = token.find('.');
    const auto second = token.find('.', first + 1);
    const Json header = DecodeSegment(std::string_view(token).substr(0, first), "header");
    const Json payload = DecodeSegment(std::string_view(token).substr(first + 1, second - first - 1), "payload");
    std::string signature;
    if (!Base64UrlDecode(std::string_view(token).substr(second + 1), &signature)) Reject("malformed signature");

    // The issuer named in the payload picks the rules; nothing is trusted before the signature checks.
    if (!payload.contains("iss") || !payload["iss"].is_string()) Reject("no issuer");
    auto issuer_entry = issuers_.find(payload["iss"].get<std::string>());
    if (issuer_entry == issuers_.end()) Reject("untrusted issuer");
    Issuer& issuer = *issuer_entry->second;
    const IssuerConfig& config = issuer.config();

    if (!header.contains("alg") || !header["alg"].is_string()) Reject("no algorithm");
    const auto alg = ParseJwsAlg(header["alg"].get<std::string>());
    if (!alg || !config.algorithms.contains(*alg)) Reject("algorithm not allowed for this issuer");
    // Extensions we would have to understand (RFC 7515 section 4.1.11): none are.
    if (header.contains("crit")) Reject("critical header extension");
    if (header.contains("typ")) {
      // A JWT or an RFC 9068 access token; not an ID token's or a logout token's other types.
      if (!header["typ"].is_string()) Reject("malformed type");
      std::string typ = header["typ"].get<std::string>();
      std::transform(typ.begin(), typ.end(), typ.begin(), [](unsigned char c) { return std::tolower(c); });
      if (typ != "jwt" && typ != "at+jwt" && typ != "application/at+jwt") Reject("token type not accepted");
    }
    std::string kid;
    if (header.contains("kid")) {
      if (!header["kid"].is_string()) Reject("malformed key id");
      kid = header["kid"].get<std::string>();
    }
    auto key = issuer.FindKey(kid, deadline);
    if (!key) Reject("unknown or missing key id");
    if (!key->Suits(*alg)) Reject("algorithm does not suit the key");
    if (!key->Verify(*alg, std::string_view(token).substr(0, second), signature)) Reject("signature");

    // Signed by a key we trust: the claims.
    claims.issuer = config.issuer;
    checked.leeway = config.leeway;
    checked.max_lifetime = config.max_lifetime;
    bool audience_ok = false;
    if (payload.contains("aud") && payload["aud"].is_string()) {
      audience_ok = config.audiences.contains(payload["aud"].get<std::string>());
    } else if (payload.contains("aud") && payload["aud"].is_array()) {
      for (const auto& aud : payload["aud"]) audience_ok = audience_ok || (aud.is_string() && config.audiences.contains(aud.get<std::string>()));
    }
    if (!audience_ok) Reject("audience");
    // An unbounded token is not acceptable.
    if (!payload.contains("exp")) Reject("no expiry");
    checked.expires = Seconds(payload, "exp");
    // A token's lifetime is bounded: an issuer cannot hand out week-long bearer tokens.
    if (!payload.contains("iat")) Reject("no issued-at");
    checked.issued_at = Seconds(payload, "iat");
    if (checked.expires - checked.issued_at > config.max_lifetime) Reject("lifetime above the maximum");
    if (payload.contains("nbf")) checked.not_before = Seconds(payload, "nbf");
    const auto now = std::chrono::system_clock::now();
    if (now >= checked.expires + config.leeway) Reject("token expired");
    MapClaims(config.claims, payload, claims);
    claims.client_id = payload.contains("client_id") && payload["client_id"].is_string()
                           ? payload["client_id"].get<std::string>()
                           : (payload.contains("azp") && payload["azp"].is_string() ? payload["azp"].get<std::string>() : "");
    if (claims.client_id.size() > 255) claims.client_id.resize(255);
    // The platform the caller acts through: fixed by the issuer, by its client, or named by the token.
    if (!config.platform.empty()) {
      claims.platform = config.platform;
    } else if (auto client = config.platform_clients.find(claims.client_id); client != config.platform_clients.end()) {
      claims.platform = client->second;
    } else if (!config.claims.platform_claim.empty()) {
      claims.platform = StringAt(payload, config.claims.platform_claim, "platform");
      if (!claims.platform.empty() && !IsClinicId(claims.platform)) Reject("malformed platform claim");
    }
    claims.platform_consent_required = config.sharing_consent_required;
  } catch (const Error&) {
    throw;
  } catch (const std::exception&) {
    // A claim of the wrong type.
    Reject("malformed");
  }
  return checked;
}

}  // namespace physio
