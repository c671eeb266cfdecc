#include "physio/auth/token_verifier.h"

#include <jwt/jwt.hpp>

#include <fstream>
#include <sstream>

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

TokenVerifier::TokenVerifier(std::string public_key_pem, std::string issuer, std::string audience,
                             std::chrono::seconds leeway)
    : public_key_pem_(std::move(public_key_pem)),
      issuer_(std::move(issuer)),
      audience_(std::move(audience)),
      leeway_(leeway) {
  if (public_key_pem_.find("PUBLIC KEY") == std::string::npos) {
    throw std::runtime_error("the JWT public key is not a PEM public key");
  }
}

TokenVerifier TokenVerifier::FromFile(const std::string& public_key_path, std::string issuer, std::string audience) {
  return TokenVerifier(ReadFileOrThrow(public_key_path), std::move(issuer), std::move(audience));
}

namespace {
[[noreturn]] void Reject(const std::string& why) {
  throw Error(ErrorCode::kUnauthenticated, "invalid bearer token: " + why);
}
}  // namespace

VerifiedClaims TokenVerifier::Verify(const std::string& token) const {
  if (token.empty()) Reject("missing");
  if (token.size() > 8192) Reject("too long");
  std::error_code ec;
  VerifiedClaims claims;
  try {
    auto decoded = jwt::decode(token, jwt::params::algorithms({"RS256"}), ec, jwt::params::secret(public_key_pem_),
                               jwt::params::issuer(issuer_), jwt::params::aud(audience_), jwt::params::verify(true),
                               jwt::params::leeway(static_cast<uint32_t>(leeway_.count())));
    if (ec) Reject(ec.message());
    const auto& payload = decoded.payload();
    // cpp-jwt checks "exp" only when present; an unbounded token is not acceptable.
    if (!payload.has_claim("exp")) Reject("no expiry");
    auto json = payload.create_json_obj();
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
  } catch (const Error&) {
    throw;
  } catch (const std::exception&) {
    // Malformed base64/JSON or a claim of the wrong type.
    Reject("malformed");
  }
  return claims;
}

}  // namespace physio
