#include "physio/auth/issuers.h"

#include <nlohmann/json.hpp>

#include <stdexcept>

#include "physio/auth/token_verifier.h"

namespace physio {

namespace {
using Json = nlohmann::json;

[[noreturn]] void Fail(const std::string& where, const std::string& why) {
  throw std::runtime_error("oidc-issuers-file: " + where + ": " + why);
}

void OnlyMembers(const Json& object, const std::string& where, std::initializer_list<const char*> allowed) {
  for (const auto& [name, value] : object.items()) {
    bool known = false;
    for (const char* member : allowed) known = known || name == member;
    if (!known) Fail(where, "unknown member \"" + name + "\"");
  }
}

std::string String(const Json& object, const char* member, const std::string& where, const std::string& fallback = "") {
  if (!object.contains(member)) return fallback;
  if (!object[member].is_string()) Fail(where, std::string("\"") + member + "\" must be a string");
  return object[member].get<std::string>();
}

long Number(const Json& object, const char* member, const std::string& where, long fallback, long min, long max) {
  if (!object.contains(member)) return fallback;
  if (!object[member].is_number_integer()) Fail(where, std::string("\"") + member + "\" must be an integer");
  const long value = object[member].get<long>();
  if (value < min || value > max) {
    Fail(where, std::string("\"") + member + "\" must be between " + std::to_string(min) + " and " + std::to_string(max));
  }
  return value;
}

std::vector<std::string> Strings(const Json& object, const char* member, const std::string& where) {
  std::vector<std::string> out;
  if (!object.contains(member)) return out;
  if (!object[member].is_array()) Fail(where, std::string("\"") + member + "\" must be an array of strings");
  for (const auto& item : object[member]) {
    if (!item.is_string()) Fail(where, std::string("\"") + member + "\" must be an array of strings");
    out.push_back(item.get<std::string>());
  }
  return out;
}

std::map<std::string, std::vector<Role>> RoleTable(const Json& object, const char* member, const std::string& where) {
  std::map<std::string, std::vector<Role>> out;
  if (!object.contains(member)) return out;
  if (!object[member].is_object()) Fail(where, std::string("\"") + member + "\" must map values to arrays of roles");
  for (const auto& [value, roles] : object[member].items()) {
    if (!roles.is_array() || roles.empty()) Fail(where, std::string(member) + "." + value + " must be a non-empty array of roles");
    for (const auto& name : roles) {
      Role role;
      if (!name.is_string() || !ParseRole(name.get<std::string>(), &role)) {
        Fail(where, std::string(member) + "." + value + ": roles are integrator, clinician, patient, service, auditor, analyst");
      }
      out[value].push_back(role);
    }
  }
  return out;
}

void CheckUrl(const std::string& url, bool allow_http, const std::string& where, const char* what) {
  if (IsAllowedKeyUrl(url, allow_http)) return;
  if (url.rfind("http://", 0) == 0) {
    if (!allow_http) Fail(where, std::string(what) + " must be https (\"allow_http\" is for loopback tests)");
    Fail(where, std::string(what) + ": plain HTTP is allowed only on loopback");
  }
  Fail(where, std::string(what) + " must be an https URL");
}

IssuerConfig ParseIssuer(const Json& entry, std::size_t index) {
  std::string where = "issuers[" + std::to_string(index) + "]";
  if (!entry.is_object()) Fail(where, "must be an object");
  OnlyMembers(entry, where,
              {"issuer", "audiences", "algorithms", "leeway_seconds", "max_lifetime_seconds", "keys", "allow_http",
               "ca_bundle", "refresh_seconds", "min_refresh_seconds", "max_key_age_seconds", "fetch_timeout_ms",
               "max_keys", "tenant", "tenant_claim", "claims", "platform", "platform_clients", "sharing_consent",
               "comment"});
  IssuerConfig config;
  config.issuer = String(entry, "issuer", where);
  if (config.issuer.empty()) Fail(where, "\"issuer\" is required");
  where += " (" + config.issuer + ")";
  for (const auto& audience : Strings(entry, "audiences", where)) config.audiences.insert(audience);
  if (config.audiences.empty()) Fail(where, "\"audiences\" must name at least one audience");
  if (entry.contains("algorithms")) {
    config.algorithms.clear();
    for (const auto& name : Strings(entry, "algorithms", where)) {
      auto alg = ParseJwsAlg(name);
      if (!alg) Fail(where, "algorithm \"" + name + "\": only RS256, PS256 and ES256 are accepted");
      config.algorithms.insert(*alg);
    }
    if (config.algorithms.empty()) Fail(where, "\"algorithms\" must not be empty");
  }
  config.leeway = std::chrono::seconds(Number(entry, "leeway_seconds", where, 30, 0, 300));
  config.max_lifetime = std::chrono::seconds(Number(entry, "max_lifetime_seconds", where, 3600, 60, 86400));
  config.allow_http = entry.value("allow_http", false);
  config.ca_bundle = String(entry, "ca_bundle", where);
  config.refresh_interval = std::chrono::seconds(Number(entry, "refresh_seconds", where, 300, 1, 86400));
  config.min_refresh_interval = std::chrono::seconds(Number(entry, "min_refresh_seconds", where, 10, 0, 3600));
  config.max_key_age = std::chrono::seconds(Number(entry, "max_key_age_seconds", where, 86400, 60, 30 * 86400));
  config.fetch_timeout = std::chrono::milliseconds(Number(entry, "fetch_timeout_ms", where, 3000, 100, 60000));
  config.max_keys = static_cast<std::size_t>(Number(entry, "max_keys", where, 64, 1, 1000));

  if (!entry.contains("keys") || !entry["keys"].is_object()) {
    Fail(where, "\"keys\" is required: {\"discovery\": true}, {\"jwks_uri\": \"https://...\"} or {\"pem\": \"/path\"}");
  }
  const Json& keys = entry["keys"];
  OnlyMembers(keys, where + ".keys", {"discovery", "jwks_uri", "pem", "pem_reload_seconds"});
  const int sources = (keys.value("discovery", false) ? 1 : 0) + (keys.contains("jwks_uri") ? 1 : 0) + (keys.contains("pem") ? 1 : 0);
  if (sources != 1) Fail(where, "\"keys\" must name exactly one of discovery, jwks_uri, pem");
  if (keys.value("discovery", false)) {
    config.keys = KeySourceKind::kDiscovery;
    CheckUrl(config.issuer, config.allow_http, where, "the issuer (for discovery)");
  } else if (keys.contains("jwks_uri")) {
    config.keys = KeySourceKind::kJwksUri;
    config.jwks_uri = String(keys, "jwks_uri", where);
    CheckUrl(config.jwks_uri, config.allow_http, where, "jwks_uri");
  } else {
    config.keys = KeySourceKind::kPem;
    config.public_key_path = String(keys, "pem", where);
    config.pem_reload_interval = std::chrono::seconds(Number(keys, "pem_reload_seconds", where, 30, 1, 86400));
  }

  ClaimMapping& claims = config.claims;
  claims.tenant = String(entry, "tenant", where);
  claims.tenant_claim = String(entry, "tenant_claim", where);
  if (claims.tenant.empty() == claims.tenant_claim.empty()) Fail(where, "exactly one of \"tenant\" and \"tenant_claim\"");
  if (entry.contains("claims")) {
    const Json& map = entry["claims"];
    if (!map.is_object()) Fail(where, "\"claims\" must be an object");
    OnlyMembers(map, where + ".claims",
                {"subject", "roles", "role_values", "scope", "scope_roles", "patient", "fhir_user", "clinics",
                 "organization_wide", "platform"});
    claims.subject_claim = String(map, "subject", where, claims.subject_claim);
    claims.roles_claim = String(map, "roles", where, claims.roles_claim);
    claims.role_values = RoleTable(map, "role_values", where);
    claims.scope_claim = String(map, "scope", where, claims.scope_claim);
    claims.scope_roles = RoleTable(map, "scope_roles", where);
    claims.patient_claim = String(map, "patient", where, claims.patient_claim);
    claims.fhir_user_claim = String(map, "fhir_user", where);
    claims.clinics_claim = String(map, "clinics", where, claims.clinics_claim);
    for (const auto& value : Strings(map, "organization_wide", where)) claims.organization_wide_values.insert(value);
    claims.platform_claim = String(map, "platform", where, claims.platform_claim);
  }
  config.platform = String(entry, "platform", where);
  if (!config.platform.empty() && !IsClinicId(config.platform)) Fail(where, "platform: 1-64 characters of [A-Za-z0-9._:-]");
  if (entry.contains("platform_clients")) {
    const Json& clients = entry["platform_clients"];
    if (!clients.is_object()) Fail(where, "\"platform_clients\" must be an object of client_id -> platform");
    for (const auto& [client, platform] : clients.items()) {
      if (!platform.is_string() || !IsClinicId(platform.get<std::string>())) {
        Fail(where, "platform_clients." + client + ": a platform id, 1-64 characters of [A-Za-z0-9._:-]");
      }
      config.platform_clients[client] = platform.get<std::string>();
    }
  }
  const std::string consent = String(entry, "sharing_consent", where, "required");
  if (consent != "required" && consent != "unless_withdrawn") {
    Fail(where, "sharing_consent: \"required\" (the default) or \"unless_withdrawn\"");
  }
  config.sharing_consent_required = consent == "required";
  if (claims.subject_claim.empty()) Fail(where, "claims.subject must not be empty");
  return config;
}
}  // namespace

bool IsAllowedKeyUrl(const std::string& url, bool allow_http) {
  if (url.rfind("https://", 0) == 0) return true;
  if (!allow_http) return false;
  for (const char* host : {"http://127.0.0.1", "http://localhost", "http://[::1]"}) {
    const std::string_view prefix(host);
    // The host must end where the prefix does (a port, a path or nothing follows).
    if (url.rfind(prefix, 0) == 0 && (url.size() == prefix.size() || url[prefix.size()] == ':' || url[prefix.size()] == '/')) {
      return true;
    }
  }
  return false;
}

std::vector<IssuerConfig> ParseIssuers(const std::string& json) {
  auto document = Json::parse(json, nullptr, false);
  if (document.is_discarded() || !document.is_object() || !document.contains("issuers") || !document["issuers"].is_array()) {
    throw std::runtime_error("oidc-issuers-file: not a JSON object with an \"issuers\" array");
  }
  std::vector<IssuerConfig> issuers;
  std::set<std::string> seen;
  for (std::size_t i = 0; i < document["issuers"].size(); ++i) {
    issuers.push_back(ParseIssuer(document["issuers"][i], i));
    if (!seen.insert(issuers.back().issuer).second) Fail(issuers.back().issuer, "configured twice");
  }
  if (issuers.empty()) throw std::runtime_error("oidc-issuers-file: no issuers");
  return issuers;
}

std::vector<IssuerConfig> LoadIssuersFile(const std::string& path) {
  return ParseIssuers(ReadFileOrThrow(path, "oidc-issuers-file"));
}

}  // namespace physio
