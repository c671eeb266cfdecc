// Identity from other issuers, as pure logic: JWS algorithms, JWKS parsing, the
// issuers file and claim mapping (Keycloak, Entra ID, Auth0, SMART shapes). The
// real OpenID provider, JWKS over HTTP and the services are in identity_test.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "physio/auth/issuers.h"
#include "physio/auth/jws.h"
#include "physio/auth/token_minter.h"
#include "physio/auth/token_verifier.h"
#include "physio/common/error.h"

namespace physio {
namespace {
using Json = nlohmann::json;

long long Now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

Json Payload(const std::string& issuer) {
  return {{"iss", issuer}, {"aud", "physio-backend"}, {"sub", "user-1"}, {"iat", Now()}, {"exp", Now() + 600}};
}

std::string Sign(const std::string& private_pem, JwsAlg alg, const Json& payload, Json header = Json::object()) {
  header["alg"] = JwsAlgName(alg);
  if (!header.contains("kid")) header["kid"] = "k1";
  return SignCompactJws(private_pem, alg, header.dump(), payload.dump());
}

IssuerConfig PemIssuer(const std::string& public_pem, std::set<JwsAlg> algorithms) {
  IssuerConfig config;
  config.issuer = "https://idp.example/realms/chain-a";
  config.audiences = {"physio-backend"};
  config.algorithms = std::move(algorithms);
  config.keys = KeySourceKind::kPem;
  config.public_key_pem = public_pem;
  config.claims.tenant = "chain-a";
  return config;
}

std::string Refusal(const TokenVerifier& verifier, const std::string& token) {
  try {
    verifier.Verify(token);
  } catch (const Error& e) {
    return e.what();
  }
  return "accepted";
}

class OidcTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    rsa_ = new RsaKeyPair(GenerateRsaKeyPair());
    ec_ = new KeyPairPem(GenerateEcP256KeyPair());
  }
  static void TearDownTestSuite() {
    delete rsa_;
    delete ec_;
  }
  static RsaKeyPair* rsa_;
  static KeyPairPem* ec_;
};
RsaKeyPair* OidcTest::rsa_ = nullptr;
KeyPairPem* OidcTest::ec_ = nullptr;

TEST(Base64Url, RoundTripsAndRefusesWhatNoEncoderProduces) {
  for (std::string bytes : {"", "f", "fo", "foo", "foob", "fooba", "foobar", "\xff\xfe\x00"}) {
    std::string back;
    ASSERT_TRUE(Base64UrlDecode(Base64UrlEncode(bytes), &back));
    EXPECT_EQ(back, bytes);
  }
  std::string out;
  EXPECT_FALSE(Base64UrlDecode("Zm9v=", &out));  // padding
  EXPECT_FALSE(Base64UrlDecode("Zm+v", &out));   // base64, not base64url
  EXPECT_FALSE(Base64UrlDecode("Z", &out));      // a length no encoder produces
  EXPECT_FALSE(Base64UrlDecode("Zh", &out));     // non-zero leftover bits
}

TEST_F(OidcTest, Es256AndPs256VerifyAndEachIssuerAllowsOnlyItsAlgorithms) {
  TokenVerifier ec_verifier({PemIssuer(ec_->public_key_pem, {JwsAlg::kEs256})});
  Json payload = Payload("https://idp.example/realms/chain-a");
  payload["roles"] = {"clinician"};
  const auto claims = ec_verifier.Verify(Sign(ec_->private_key_pem, JwsAlg::kEs256, payload));
  EXPECT_EQ(claims.tenant, "chain-a");
  EXPECT_TRUE(claims.roles.contains(Role::kClinician));

  TokenVerifier rsa_verifier({PemIssuer(rsa_->public_key_pem, {JwsAlg::kPs256})});
  EXPECT_EQ(rsa_verifier.Verify(Sign(rsa_->private_key_pem, JwsAlg::kPs256, payload)).subject, "user-1");
  // RS256 by the same key: a valid signature, but not an algorithm this issuer may use.
  EXPECT_EQ(Refusal(rsa_verifier, Sign(rsa_->private_key_pem, JwsAlg::kRs256, payload)), "invalid token");
  // A tampered ES256 signature, and one of the wrong length.
  std::string token = Sign(ec_->private_key_pem, JwsAlg::kEs256, payload);
  token[token.size() - 5] = token[token.size() - 5] == 'A' ? 'B' : 'A';
  EXPECT_EQ(Refusal(ec_verifier, token), "invalid token");
  token = Sign(ec_->private_key_pem, JwsAlg::kEs256, payload);
  EXPECT_EQ(Refusal(ec_verifier, token.substr(0, token.size() - 4)), "invalid token");
}

TEST_F(OidcTest, OnlyConfiguredIssuersAudiencesAndTokenTypesAreAccepted) {
  TokenVerifier verifier({PemIssuer(rsa_->public_key_pem, {JwsAlg::kRs256})});
  Json payload = Payload("https://idp.example/realms/chain-a");
  payload["roles"] = {"clinician"};
  EXPECT_EQ(Refusal(verifier, Sign(rsa_->private_key_pem, JwsAlg::kRs256, payload)), "accepted");
  Json other = payload;
  other["iss"] = "https://idp.example/realms/other";
  EXPECT_EQ(Refusal(verifier, Sign(rsa_->private_key_pem, JwsAlg::kRs256, other)), "invalid token");
  Json audiences = payload;
  audiences["aud"] = {"account", "physio-backend"};  // Keycloak names several audiences
  EXPECT_EQ(Refusal(verifier, Sign(rsa_->private_key_pem, JwsAlg::kRs256, audiences)), "accepted");
  audiences["aud"] = {"account"};
  EXPECT_EQ(Refusal(verifier, Sign(rsa_->private_key_pem, JwsAlg::kRs256, audiences)), "invalid token");
  // RFC 9068 access tokens and plain JWTs; not other types, nor extensions we would have to understand.
  EXPECT_EQ(Refusal(verifier, Sign(rsa_->private_key_pem, JwsAlg::kRs256, payload, {{"typ", "at+jwt"}})), "accepted");
  EXPECT_EQ(Refusal(verifier, Sign(rsa_->private_key_pem, JwsAlg::kRs256, payload, {{"typ", "logout+jwt"}})),
            "invalid token");
  EXPECT_EQ(Refusal(verifier, Sign(rsa_->private_key_pem, JwsAlg::kRs256, payload, {{"crit", {"exp"}}})),
            "invalid token");
  // "none" and HS256 are never algorithms.
  const std::string body = Base64UrlEncode(payload.dump());
  EXPECT_EQ(Refusal(verifier, Base64UrlEncode(R"({"alg":"none"})") + "." + body + "."), "invalid token");
  EXPECT_EQ(Refusal(verifier, Base64UrlEncode(R"({"alg":"HS256"})") + "." + body + ".c2ln"), "invalid token");
}

// Keycloak: roles in realm_access.roles (plus roles of its own), clinics in a namespaced claim.
TEST_F(OidcTest, KeycloakRolesAreMappedAndProviderRolesIgnored) {
  auto config = PemIssuer(rsa_->public_key_pem, {JwsAlg::kRs256});
  config.claims.roles_claim = "realm_access.roles";
  config.claims.role_values = {{"physio-clinician", {Role::kClinician}}, {"physio-patient", {Role::kPatient}}};
  config.claims.clinics_claim = "https://physio.example/clinics";
  config.claims.organization_wide_values = {"physio-org-wide"};
  TokenVerifier verifier({config});
  Json payload = Payload(config.issuer);
  payload["realm_access"] = {{"roles", {"physio-clinician", "offline_access", "uma_authorization"}}};
  payload["https://physio.example/clinics"] = {"north", "east"};
  auto claims = verifier.Verify(Sign(rsa_->private_key_pem, JwsAlg::kRs256, payload));
  EXPECT_EQ(claims.roles, std::set<Role>{Role::kClinician});
  EXPECT_EQ(claims.clinics, (std::set<std::string>{"east", "north"}));
  EXPECT_FALSE(claims.all_clinics);
  // The organisation-wide role grants every clinic.
  payload["realm_access"]["roles"].push_back("physio-org-wide");
  EXPECT_TRUE(verifier.Verify(Sign(rsa_->private_key_pem, JwsAlg::kRs256, payload)).all_clinics);
  // Only provider roles: no role of ours, refused.
  payload["realm_access"] = {{"roles", {"offline_access"}}};
  EXPECT_EQ(Refusal(verifier, Sign(rsa_->private_key_pem, JwsAlg::kRs256, payload)), "invalid token");
  // Patient and staff at once: refused, as for our own tokens.
  payload["realm_access"] = {{"roles", {"physio-clinician", "physio-patient"}}};
  payload["patient_id"] = "p-1";
  EXPECT_EQ(Refusal(verifier, Sign(rsa_->private_key_pem, JwsAlg::kRs256, payload)), "invalid token");
}

// SMART backend services / client credentials: roles from scopes, tenant from a claim.
TEST_F(OidcTest, ScopesGrantRolesToIntegrationsWhichSeeEveryClinic) {
  auto config = PemIssuer(rsa_->public_key_pem, {JwsAlg::kRs256});
  config.claims.tenant = "";
  config.claims.tenant_claim = "tenant";
  config.claims.scope_roles = {{"system/*.read", {Role::kIntegrator}}};
  TokenVerifier verifier({config});
  Json payload = Payload(config.issuer);
  payload["tenant"] = "chain-b";
  payload["scope"] = "system/*.read launch";
  payload["client_id"] = "chain-b-ehr";
  auto claims = verifier.Verify(Sign(rsa_->private_key_pem, JwsAlg::kRs256, payload, {{"typ", "at+jwt"}}));
  EXPECT_EQ(claims.tenant, "chain-b");
  EXPECT_EQ(claims.roles, std::set<Role>{Role::kIntegrator});
  EXPECT_TRUE(claims.all_clinics);
  EXPECT_EQ(claims.client_id, "chain-b-ehr");
  payload.erase("tenant");
  EXPECT_EQ(Refusal(verifier, Sign(rsa_->private_key_pem, JwsAlg::kRs256, payload)), "invalid token");
  // Entra ID puts scopes in "scp" as an array when so configured.
  config.claims.scope_claim = "scp";
  TokenVerifier entra({config});
  payload["tenant"] = "chain-b";
  payload.erase("scope");
  payload["scp"] = {"system/*.read"};
  EXPECT_TRUE(entra.Verify(Sign(rsa_->private_key_pem, JwsAlg::kRs256, payload)).roles.contains(Role::kIntegrator));
}

TEST_F(OidcTest, SmartPatientContextNamesThePatient) {
  auto config = PemIssuer(ec_->public_key_pem, {JwsAlg::kEs256});
  config.claims.roles_claim = "";
  config.claims.scope_roles = {{"patient/*.read", {Role::kPatient}}};
  config.claims.patient_claim = "patient";
  config.claims.fhir_user_claim = "fhirUser";
  TokenVerifier verifier({config});
  Json payload = Payload(config.issuer);
  payload["scope"] = "openid fhirUser patient/*.read";
  payload["fhirUser"] = "https://ehr.example/fhir/Patient/p-77";
  auto claims = verifier.Verify(Sign(ec_->private_key_pem, JwsAlg::kEs256, payload));
  EXPECT_EQ(claims.patient_id, "p-77");
  EXPECT_EQ(claims.roles, std::set<Role>{Role::kPatient});
  EXPECT_FALSE(claims.all_clinics);
  payload["patient"] = "p-78";  // the launch context wins over fhirUser
  EXPECT_EQ(verifier.Verify(Sign(ec_->private_key_pem, JwsAlg::kEs256, payload)).patient_id, "p-78");
  payload.erase("patient");
  payload["fhirUser"] = "Practitioner/d-1";  // a patient scope without a patient: refused
  EXPECT_EQ(Refusal(verifier, Sign(ec_->private_key_pem, JwsAlg::kEs256, payload)), "invalid token");
}

TEST_F(OidcTest, ProviderSubjectsAndOurOwnClinicsClaim) {
  TokenVerifier verifier(rsa_->public_key_pem, "iss-test", "aud-test");
  TokenRequest request{"iss-test", "aud-test", "acme", "auth0|5f7c8ec7c33c6c004bbafe82", {"clinician"}};
  request.clinics = {"north"};
  auto claims = verifier.Verify(MintToken(rsa_->private_key_pem, request));
  EXPECT_EQ(claims.subject, "auth0|5f7c8ec7c33c6c004bbafe82");
  EXPECT_EQ(claims.clinics, std::set<std::string>{"north"});
  request.clinics = {"north", "bad clinic"};
  EXPECT_EQ(Refusal(verifier, MintToken(rsa_->private_key_pem, request)), "invalid token");
  request.clinics = {};
  request.roles = {"integrator"};
  EXPECT_TRUE(verifier.Verify(MintToken(rsa_->private_key_pem, request)).all_clinics);
}

TEST_F(OidcTest, JwksParsingKeepsUsableKeysAndRefusesAbuse) {
  const std::string rsa_jwk = PublicKeyJwk(rsa_->public_key_pem, "r1", "RS256");
  const std::string ec_jwk = PublicKeyJwk(ec_->public_key_pem, "e1");
  auto document = ParseJwks(R"({"keys":[)" + rsa_jwk + "," + ec_jwk +
                            R"(,{"kty":"oct","kid":"h","k":"c2VjcmV0"},{"kty":"RSA","kid":"enc","use":"enc","n":"AQAB","e":"AQAB"},)"
                            R"({"kty":"EC","kid":"p384","crv":"P-384","x":"AA","y":"AA"},{"kty":"EC","kid":"off","crv":"P-256",)"
                            R"("x":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","y":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}]})");
  EXPECT_EQ(document.keys.size(), 2u);
  EXPECT_TRUE(document.keys.contains("r1"));
  EXPECT_TRUE(document.keys.at("e1").Suits(JwsAlg::kEs256));
  EXPECT_EQ(document.skipped.size(), 4u);  // oct, enc, P-384, a point off the curve
  // The same kid twice: neither key is trusted.
  auto twice = ParseJwks(R"({"keys":[)" + rsa_jwk + "," + PublicKeyJwk(ec_->public_key_pem, "r1") + "]}");
  EXPECT_TRUE(twice.keys.empty());
  // An "alg" that does not match the key.
  EXPECT_TRUE(ParseJwks(R"({"keys":[)" + PublicKeyJwk(ec_->public_key_pem, "e2", "RS256") + "]}").keys.empty());
  EXPECT_THROW(ParseJwks("not json"), std::runtime_error);
  EXPECT_THROW(ParseJwks(R"({"keys":{}})"), std::runtime_error);
  std::string many = R"({"keys":[)";
  for (int i = 0; i < 5000; ++i) many += (i ? "," : "") + ec_jwk;
  EXPECT_THROW(ParseJwks(many + "]}", 64, 16 * 1024 * 1024), std::runtime_error);  // thousands of keys
  EXPECT_THROW(ParseJwks(many + "]}"), std::runtime_error);                         // and too many bytes
}

// Telehealth platforms: fixed by the issuer, by the token's client, or named by the token.
TEST_F(OidcTest, ThePlatformACallerActsThroughComesFromTheIssuersMapping) {
  auto config = PemIssuer(rsa_->public_key_pem, {JwsAlg::kRs256});
  config.claims.roles_claim = "roles";
  config.platform_clients = {{"acme-app", "acme-tele"}};
  TokenVerifier by_client({config});
  Json payload = Payload(config.issuer);
  payload["roles"] = {"clinician"};
  payload["client_id"] = "acme-app";
  auto claims = by_client.Verify(Sign(rsa_->private_key_pem, JwsAlg::kRs256, payload));
  EXPECT_EQ(claims.platform, "acme-tele");
  EXPECT_TRUE(claims.platform_consent_required);
  // Another client of the same issuer: the token's own platform claim, if any.
  payload["client_id"] = "chain-ehr";
  EXPECT_EQ(by_client.Verify(Sign(rsa_->private_key_pem, JwsAlg::kRs256, payload)).platform, "");
  payload["platform"] = "beta-tele";
  EXPECT_EQ(by_client.Verify(Sign(rsa_->private_key_pem, JwsAlg::kRs256, payload)).platform, "beta-tele");
  payload["platform"] = "no spaces allowed";
  EXPECT_EQ(Refusal(by_client, Sign(rsa_->private_key_pem, JwsAlg::kRs256, payload)), "invalid token");
  // An issuer that is the platform: every token acts through it, whatever it claims.
  config.platform = "gamma-tele";
  config.sharing_consent_required = false;
  TokenVerifier fixed({config});
  payload["platform"] = "beta-tele";
  claims = fixed.Verify(Sign(rsa_->private_key_pem, JwsAlg::kRs256, payload));
  EXPECT_EQ(claims.platform, "gamma-tele");
  EXPECT_FALSE(claims.platform_consent_required);
}

TEST(IssuersFile, ParsesAConfigurationAndNamesWhatIsWrong) {
  const auto issuers = ParseIssuers(R"({"issuers":[{
    "issuer": "https://sso.chain.example/realms/physio", "audiences": ["physio-backend"],
    "algorithms": ["RS256", "ES256"], "keys": {"discovery": true}, "tenant": "chain-a",
    "claims": {"roles": "realm_access.roles", "role_values": {"physio-clinician": ["clinician"]},
               "clinics": "https://physio.example/clinics", "organization_wide": ["physio-org-wide"]}}]})");
  ASSERT_EQ(issuers.size(), 1u);
  EXPECT_EQ(issuers[0].keys, KeySourceKind::kDiscovery);
  EXPECT_EQ(issuers[0].algorithms, (std::set<JwsAlg>{JwsAlg::kRs256, JwsAlg::kEs256}));
  EXPECT_EQ(issuers[0].claims.role_values.at("physio-clinician"), std::vector<Role>{Role::kClinician});
  auto error = [](const std::string& json) {
    try {
      ParseIssuers(json);
    } catch (const std::runtime_error& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  const std::string base = R"("issuer":"https://idp.example","audiences":["a"],"tenant":"t")";
  EXPECT_EQ(error(R"({"issuers":[{)" + base + R"(,"keys":{"jwks_uri":"https://idp.example/jwks"}}]})"), "accepted");
  EXPECT_NE(error(R"({"issuers":[{)" + base + R"(,"keys":{"jwks_uri":"http://idp.example/jwks"}}]})").find("https"),
            std::string::npos);
  EXPECT_NE(error(R"({"issuers":[{)" + base + R"(,"allow_http":true,"keys":{"jwks_uri":"http://idp.example/jwks"}}]})")
                .find("loopback"),
            std::string::npos);
  EXPECT_EQ(error(R"({"issuers":[{)" + base + R"(,"allow_http":true,"keys":{"jwks_uri":"http://127.0.0.1:9/jwks"}}]})"),
            "accepted");
  EXPECT_NE(error(R"({"issuers":[{)" + base + R"(,"keys":{"discovery":true},"algorithms":["HS256"]}]})").find("HS256"),
            std::string::npos);
  EXPECT_NE(error(R"({"issuers":[{)" + base + R"(,"keys":{"discovery":true},"claims":{"role":"x"}}]})").find("\"role\""),
            std::string::npos);
  EXPECT_NE(error(R"({"issuers":[{)" + base + R"(,"keys":{"discovery":true},"tenant_claim":"x"}]})").find("exactly one"),
            std::string::npos);
  EXPECT_NE(error(R"({"issuers":[{)" + base + R"(,"keys":{}}]})").find("exactly one of discovery"), std::string::npos);
  // Platforms.
  const auto platforms = ParseIssuers(R"({"issuers":[{"issuer":"https://idp.example","audiences":["a"],"tenant":"t",
    "keys":{"discovery":true},"platform_clients":{"acme-app":"acme-tele"},"sharing_consent":"unless_withdrawn"}]})");
  EXPECT_EQ(platforms[0].platform_clients.at("acme-app"), "acme-tele");
  EXPECT_FALSE(platforms[0].sharing_consent_required);
  EXPECT_NE(error(R"({"issuers":[{)" + base + R"(,"keys":{"discovery":true},"sharing_consent":"never"}]})")
                .find("sharing_consent"),
            std::string::npos);
  EXPECT_NE(error(R"({"issuers":[{)" + base + R"(,"keys":{"discovery":true},"platform":"a b"}]})").find("platform"),
            std::string::npos);
  EXPECT_NE(error(R"({"issuers":[{)" + base + R"(,"keys":{"discovery":true},"platform_clients":{"x":1}}]})")
                .find("platform_clients.x"),
            std::string::npos);
  // The auditor role can be mapped like any other.
  EXPECT_EQ(ParseIssuers(R"({"issuers":[{"issuer":"https://idp.example","audiences":["a"],"tenant":"t",
    "keys":{"discovery":true},"claims":{"role_values":{"dpo":["auditor"]}}}]})")[0].claims.role_values.at("dpo"),
            std::vector<Role>{Role::kAuditor});
  // The same rule holds for a jwks_uri found by discovery: a loopback host, not a name that starts like one.
  EXPECT_TRUE(IsAllowedKeyUrl("http://127.0.0.1:8080/jwks", true));
  EXPECT_TRUE(IsAllowedKeyUrl("http://localhost/jwks", true));
  EXPECT_FALSE(IsAllowedKeyUrl("http://127.0.0.1.evil.example/jwks", true));
  EXPECT_FALSE(IsAllowedKeyUrl("http://localhost.evil.example/jwks", true));
  EXPECT_FALSE(IsAllowedKeyUrl("http://127.0.0.1:8080/jwks", false));
  EXPECT_TRUE(IsAllowedKeyUrl("https://idp.example/jwks", false));
}

}  // namespace
}  // namespace physio
