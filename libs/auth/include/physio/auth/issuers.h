#pragma once
// Who we trust to sign tokens, and where each issuer puts what we need.
//
// Every issuer is configured, not coded: its keys (a PEM file or directory for
// offline deployments, or its OpenID Connect discovery / JWKS URL), the
// algorithms and audiences it may use, and a claim mapping saying where the
// tenant, the roles, the patient and the clinics are found in its tokens. The
// services read a JSON file of issuers (`oidc-issuers-file`, documented in
// docs/security.md with examples for Keycloak, Entra ID, Auth0 and SMART backend
// services); the legacy `jwt-public-key` settings become one issuer with our own
// claim names.
#include <chrono>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "physio/auth/call_context.h"
#include "physio/auth/jws.h"

namespace physio {

// Where a claim is found. A top-level claim of exactly this name wins (so a
// namespaced claim such as "https://physio.example/roles" works as written);
// otherwise dots descend into objects ("realm_access.roles"). Empty: not used.
using ClaimPath = std::string;

struct ClaimMapping {
  std::string tenant;            // every token of this issuer belongs to this tenant, or
  ClaimPath tenant_claim;        // the tenant is read from this claim
  ClaimPath subject_claim = "sub";
  // Roles: values of `roles_claim` (an array of strings or one space-separated
  // string) and of `scope_claim`, translated by `role_values` / `scope_roles`.
  ClaimPath roles_claim = "roles";
  // External role value -> our roles. Empty: the claim holds our role names
  // and an unknown one refuses the token (our own token format); otherwise
  // values not listed are ignored (providers add roles of their own).
  std::map<std::string, std::vector<Role>> role_values;
  ClaimPath scope_claim = "scope";  // "scope" (RFC 9068, space-separated) or "scp" (Entra, array)
  std::map<std::string, std::vector<Role>> scope_roles;
  ClaimPath patient_claim = "patient_id";  // SMART: "patient"
  ClaimPath fhir_user_claim;               // SMART: "fhirUser"; "Patient/<id>" names the patient
  ClaimPath clinics_claim = "clinics";     // the clinics a member of staff works at
  // Role or scope values that grant every clinic of the tenant (an explicit,
  // organisation-wide grant). Integrators and services always have it.
  std::set<std::string> organization_wide_values;
  ClaimPath platform_claim = "platform";  // the telehealth platform the caller acts through, when the issuer does not fix it
};

enum class KeySourceKind { kPem, kDiscovery, kJwksUri };

struct IssuerConfig {
  std::string issuer;                // the exact "iss" value
  std::set<std::string> audiences;   // a token's "aud" must name one
  std::set<JwsAlg> algorithms = {JwsAlg::kRs256};
  std::chrono::seconds leeway{30};        // clock skew allowed on exp, nbf and iat
  std::chrono::seconds max_lifetime{3600};  // exp - iat at most this
  ClaimMapping claims;

  KeySourceKind keys = KeySourceKind::kPem;
  std::string public_key_path;  // kPem: one PEM file, or a directory of <kid>.pem, or
  std::string public_key_pem;   // kPem: the key itself
  std::chrono::seconds pem_reload_interval{30};
  std::string jwks_uri;         // kJwksUri (kDiscovery: found in the discovery document)
  bool allow_http = false;      // plain HTTP for discovery and JWKS: loopback tests only
  std::string ca_bundle;        // PEM bundle for HTTPS; empty: the system's CA store
  std::chrono::seconds refresh_interval{300};     // keys re-fetched this often
  std::chrono::seconds min_refresh_interval{10};  // at most one fetch per this, however many unknown kids
  std::chrono::seconds max_key_age{86400};        // keys not refreshed for this long are dropped (fail closed)
  std::chrono::milliseconds fetch_timeout{3000};  // one discovery or JWKS request, start to end
  std::size_t max_keys = 64;                      // a JWKS with more is refused as a whole

  // Telehealth platforms (issue 28, consent): every token of this issuer acts through `platform`,
  // or a token whose client_id is a key of `platform_clients` through its value, or else the
  // platform claim names it. A platform reaches a patient only with the patient's sharing consent:
  // granted (`sharing_consent_required`, the default) or at least not withdrawn.
  std::string platform;
  std::map<std::string, std::string> platform_clients;
  bool sharing_consent_required = true;
};

// Where keys may be fetched from: https, or plain HTTP to a loopback host (127.0.0.1,
// localhost, [::1]; the host itself, not a name that starts like one) when `allow_http`.
// The issuers file is checked with it at start, a discovered jwks_uri at each fetch.
bool IsAllowedKeyUrl(const std::string& url, bool allow_http);

// The issuers of a JSON file ({"issuers": [...]}, see docs/security.md). Throws
// std::runtime_error naming the issuer and the member when anything is wrong:
// a service must not start with an identity setup it cannot honour.
std::vector<IssuerConfig> LoadIssuersFile(const std::string& path);
std::vector<IssuerConfig> ParseIssuers(const std::string& json);

}  // namespace physio
