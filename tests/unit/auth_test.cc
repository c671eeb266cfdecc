#include <gtest/gtest.h>
#include <jwt/jwt.hpp>

#include <memory>
#include <thread>

#include "physio/auth/call_context.h"
#include "physio/auth/token_minter.h"
#include "physio/auth/token_verifier.h"
#include "physio/common/error.h"

namespace physio {
namespace {

class TokenVerifierTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { keys_ = new RsaKeyPair(GenerateRsaKeyPair()); }
  static void TearDownTestSuite() { delete keys_; }

  TokenRequest Request() {
    return {"iss-test", "aud-test", "acme", "clin-1", {"clinician"}, "", std::chrono::hours(1)};
  }
  TokenVerifier Verifier() { return TokenVerifier(keys_->public_key_pem, "iss-test", "aud-test"); }
  ErrorCode Rejects(const std::string& token) {
    try {
      Verifier().Verify(token);
    } catch (const Error& e) {
      return e.code();
    }
    return ErrorCode::kInternal;
  }
  static RsaKeyPair* keys_;
};
RsaKeyPair* TokenVerifierTest::keys_ = nullptr;

TEST_F(TokenVerifierTest, AcceptsAValidTokenAndReadsClaims) {
  auto request = Request();
  request.roles = {"patient"};
  request.patient_id = "pt-1";
  auto claims = Verifier().Verify(MintToken(keys_->private_key_pem, request));
  EXPECT_EQ(claims.tenant, "acme");
  EXPECT_EQ(claims.subject, "clin-1");
  EXPECT_TRUE(claims.roles.contains(Role::kPatient));
  EXPECT_EQ(claims.patient_id, "pt-1");
}

TEST_F(TokenVerifierTest, RejectsExpiredNotYetValidWrongIssuerAndAudience) {
  auto expired = Request();
  expired.lifetime = std::chrono::seconds(-120);
  EXPECT_EQ(Rejects(MintToken(keys_->private_key_pem, expired)), ErrorCode::kUnauthenticated);
  auto future = Request();
  future.not_before_offset = std::chrono::seconds(600);
  EXPECT_EQ(Rejects(MintToken(keys_->private_key_pem, future)), ErrorCode::kUnauthenticated);
  auto issuer = Request();
  issuer.issuer = "someone-else";
  EXPECT_EQ(Rejects(MintToken(keys_->private_key_pem, issuer)), ErrorCode::kUnauthenticated);
  auto audience = Request();
  audience.audience = "other-api";
  EXPECT_EQ(Rejects(MintToken(keys_->private_key_pem, audience)), ErrorCode::kUnauthenticated);
}

TEST_F(TokenVerifierTest, RejectsAnotherKeysSignatureAndTampering) {
  auto other = GenerateRsaKeyPair();
  EXPECT_EQ(Rejects(MintToken(other.private_key_pem, Request())), ErrorCode::kUnauthenticated);
  std::string token = MintToken(keys_->private_key_pem, Request());
  token[token.size() / 2] = token[token.size() / 2] == 'A' ? 'B' : 'A';
  EXPECT_EQ(Rejects(token), ErrorCode::kUnauthenticated);
  EXPECT_EQ(Rejects(""), ErrorCode::kUnauthenticated);
  EXPECT_EQ(Rejects("not.a.token"), ErrorCode::kUnauthenticated);
}

// Found by fuzz_jwt: bytes above 0x7f made cpp-jwt's base64 decoder read
// outside its table (an ASan/UBSan build fails here if that path is reached again).
TEST_F(TokenVerifierTest, RejectsBytesOutsideTheTokenAlphabetBeforeParsing) {
  EXPECT_EQ(Rejects("e\x81JhbGiiOiAibk9uZSJ9.eyJzdWIiOiAieCJ9."), ErrorCode::kUnauthenticated);
  const std::string good = MintToken(keys_->private_key_pem, Request());
  EXPECT_EQ(Rejects(good + "\xff"), ErrorCode::kUnauthenticated);
  EXPECT_EQ(Rejects(good + ".extra"), ErrorCode::kUnauthenticated);
  EXPECT_EQ(Rejects(good.substr(0, good.rfind('.'))), ErrorCode::kUnauthenticated);
  EXPECT_NO_THROW(Verifier().Verify(good));
}

TEST_F(TokenVerifierTest, RejectsAlgorithmConfusionAndNone) {
  // HS256 signed with the public key as the HMAC secret: the classic confusion attack.
  jwt::jwt_object hs{jwt::params::algorithm("HS256"), jwt::params::secret(keys_->public_key_pem)};
  hs.add_claim("iss", "iss-test").add_claim("aud", "aud-test").add_claim("sub", "x").add_claim("tenant", "acme");
  hs.add_claim("exp", std::chrono::system_clock::now() + std::chrono::hours(1));
  hs.payload().add_claim("roles", std::vector<std::string>{"integrator"});
  EXPECT_EQ(Rejects(hs.signature()), ErrorCode::kUnauthenticated);
  // alg "none" with the payload of a valid token and no signature.
  std::string valid = MintToken(keys_->private_key_pem, Request());
  std::string payload = valid.substr(valid.find('.') + 1, valid.rfind('.') - valid.find('.') - 1);
  EXPECT_EQ(Rejects("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0." + payload + "."), ErrorCode::kUnauthenticated);
}

TEST_F(TokenVerifierTest, RequiresExpiryTenantRolesAndPatientIdForPatients) {
  jwt::jwt_object no_exp{jwt::params::algorithm("RS256"), jwt::params::secret(keys_->private_key_pem)};
  no_exp.add_claim("iss", "iss-test").add_claim("aud", "aud-test").add_claim("sub", "x").add_claim("tenant", "acme");
  no_exp.payload().add_claim("roles", std::vector<std::string>{"clinician"});
  EXPECT_EQ(Rejects(no_exp.signature()), ErrorCode::kUnauthenticated);
  auto no_roles = Request();
  no_roles.roles = {};
  EXPECT_EQ(Rejects(MintToken(keys_->private_key_pem, no_roles)), ErrorCode::kUnauthenticated);
  auto unknown_role = Request();
  unknown_role.roles = {"admin"};
  EXPECT_EQ(Rejects(MintToken(keys_->private_key_pem, unknown_role)), ErrorCode::kUnauthenticated);
  auto patient_without_id = Request();
  patient_without_id.roles = {"patient"};
  EXPECT_EQ(Rejects(MintToken(keys_->private_key_pem, patient_without_id)), ErrorCode::kUnauthenticated);
  auto bad_tenant = Request();
  bad_tenant.tenant = "a}b";
  EXPECT_EQ(Rejects(MintToken(keys_->private_key_pem, bad_tenant)), ErrorCode::kUnauthenticated);
}

TEST(CallContextRules, PatientsSeeOnlyThemselvesStaffSeeTheTenant) {
  CallContext patient;
  patient.roles = {Role::kPatient};
  patient.patient_id = "pt-1";
  EXPECT_TRUE(CanSeePatient(patient, "pt-1"));
  EXPECT_FALSE(CanSeePatient(patient, "pt-2"));
  EXPECT_THROW(RequirePatientAccess(patient, "pt-2"), Error);
  CallContext clinician;
  clinician.roles = {Role::kClinician};
  EXPECT_TRUE(CanSeePatient(clinician, "pt-2"));
  // "Staff" is one definition: clinicians, integrators and services; never a patient.
  for (Role role : {Role::kClinician, Role::kIntegrator, Role::kService}) {
    CallContext staff;
    staff.roles = {role};
    EXPECT_TRUE(IsStaff(staff));
    EXPECT_TRUE(CanSeePatient(staff, "pt-9"));
  }
  EXPECT_FALSE(IsStaff(patient));
  try {
    RequireAnyRole(patient, {Role::kClinician});
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kPermissionDenied);
  }
}

// A directory of one patient's reach, as the clinic scoping asks it.
class OneReach final : public PatientClinicsSource {
 public:
  PatientReach ReachOf(const std::string&, const std::string&, Clock::time_point) const override {
    ++asked;
    return reach;
  }
  void Forget(const std::string&, const std::string&) const override {}
  PatientReach reach;
  mutable int asked = 0;
};

TEST(CallContextRules, APlatformReachesAPatientOnlyWithTheirSharingConsent) {
  OneReach directory;
  directory.reach.clinics = {"north"};
  CallContext physio;
  physio.roles = {Role::kClinician};
  physio.clinics = {"north"};
  physio.patient_clinics = &directory;
  physio.platform = "acme";
  EXPECT_TRUE(IsClinicScoped(physio));
  EXPECT_FALSE(SharesClinicWith(physio, "pt-1"));  // no decision yet: consent is required
  physio.reach_checked_patient.clear();
  directory.reach.sharing["acme"] = true;
  EXPECT_TRUE(SharesClinicWith(physio, "pt-1"));
  physio.reach_checked_patient.clear();
  directory.reach.sharing["acme"] = false;  // withdrawn
  EXPECT_FALSE(SharesClinicWith(physio, "pt-1"));
  // An organisation-wide grant or an emergency grant does not lift a withdrawal.
  physio.reach_checked_patient.clear();
  physio.all_clinics = true;
  EXPECT_TRUE(IsClinicScoped(physio));
  EXPECT_FALSE(SharesClinicWith(physio, "pt-1"));
  physio.reach_checked_patient.clear();
  physio.principal = "acme-physio";
  directory.reach.emergency_until["acme-physio"] = std::chrono::system_clock::now() + std::chrono::minutes(5);
  EXPECT_FALSE(SharesClinicWith(physio, "pt-1"));
  // "unless_withdrawn": no decision is enough, a withdrawal still is not.
  physio.reach_checked_patient.clear();
  physio.platform_consent_required = false;
  directory.reach.sharing.clear();
  EXPECT_TRUE(SharesClinicWith(physio, "pt-1"));
  // Without a platform nothing of this applies, and an organisation-wide caller is not even looked up.
  CallContext chain;
  chain.roles = {Role::kIntegrator};
  chain.all_clinics = true;
  chain.patient_clinics = &directory;
  directory.reach.sharing["acme"] = false;
  const int asked = directory.asked;
  EXPECT_TRUE(SharesClinicWith(chain, "pt-1"));
  EXPECT_EQ(directory.asked, asked);

  // The patient through the platform: their own record only while they consent, except to record consent.
  CallContext patient;
  patient.roles = {Role::kPatient};
  patient.patient_id = "pt-1";
  patient.platform = "acme";
  patient.patient_clinics = &directory;
  EXPECT_FALSE(CanSeePatient(patient, "pt-1"));
  try {
    RequirePatientAccess(patient, "pt-1");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kPermissionDenied);
    EXPECT_NE(std::string(e.what()).find("acme"), std::string::npos);
  }
  patient.consent_call = true;
  EXPECT_TRUE(CanSeePatient(patient, "pt-1"));
  EXPECT_FALSE(CanSeePatient(patient, "pt-2"));
  patient.consent_call = false;
  directory.reach.sharing["acme"] = true;
  EXPECT_TRUE(CanSeePatient(patient, "pt-1"));
  // An auditor is not staff: no clinical access through the clinic rules.
  CallContext auditor;
  auditor.roles = {Role::kAuditor};
  EXPECT_FALSE(IsStaff(auditor));
  EXPECT_FALSE(CanSeePatient(auditor, "pt-1"));
}

}  // namespace
}  // namespace physio

namespace physio {
namespace {

class TokenCacheTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { keys_ = std::make_unique<RsaKeyPair>(GenerateRsaKeyPair()); }
  static void TearDownTestSuite() { keys_.reset(); }
  static std::string Token(const std::string& subject, std::chrono::seconds lifetime) {
    return MintToken(keys_->private_key_pem, {"iss-test", "aud-test", "acme", subject, {"clinician"}, "", lifetime});
  }
  inline static std::unique_ptr<RsaKeyPair> keys_;
};

TEST_F(TokenCacheTest, OneSignatureCheckServesRepeatedCallsWithTheSameToken) {
  TokenVerifier verifier(keys_->public_key_pem, "iss-test", "aud-test");
  const std::string token = Token("clin-1", std::chrono::hours(1));
  for (int i = 0; i < 5; ++i) EXPECT_EQ(verifier.Verify(token).subject, "clin-1");
  EXPECT_EQ(verifier.signature_checks(), 1u);
  // A different token is checked on its own.
  EXPECT_EQ(verifier.Verify(Token("clin-2", std::chrono::hours(1))).subject, "clin-2");
  EXPECT_EQ(verifier.signature_checks(), 2u);
  // A tampered copy of a cached token is not served from the cache.
  std::string tampered = token;
  tampered[tampered.size() - 3] = tampered[tampered.size() - 3] == 'A' ? 'B' : 'A';
  EXPECT_THROW(verifier.Verify(tampered), Error);
}

TEST_F(TokenCacheTest, ACachedTokenStillExpiresOnTime) {
  TokenVerifier verifier(keys_->public_key_pem, "iss-test", "aud-test", std::chrono::seconds(0));
  const std::string token = Token("clin-1", std::chrono::seconds(2));
  EXPECT_NO_THROW(verifier.Verify(token));
  EXPECT_NO_THROW(verifier.Verify(token));
  std::this_thread::sleep_for(std::chrono::milliseconds(2100));
  try {
    verifier.Verify(token);
    ADD_FAILURE() << "an expired token was accepted from the cache";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnauthenticated);
  }
}

TEST_F(TokenCacheTest, TheCacheIsBoundedAndCanBeTurnedOff) {
  TokenVerifier bounded(keys_->public_key_pem, "iss-test", "aud-test", std::chrono::seconds(30),
                        TokenCacheOptions{2, std::chrono::seconds(300)});
  const std::string first = Token("clin-1", std::chrono::hours(1));
  bounded.Verify(first);
  bounded.Verify(Token("clin-2", std::chrono::hours(1)));
  bounded.Verify(Token("clin-3", std::chrono::hours(1)));  // full: the cache starts over
  bounded.Verify(first);
  EXPECT_EQ(bounded.signature_checks(), 4u);
  TokenVerifier off(keys_->public_key_pem, "iss-test", "aud-test", std::chrono::seconds(30),
                    TokenCacheOptions{0, std::chrono::seconds(300)});
  off.Verify(first);
  off.Verify(first);
  EXPECT_EQ(off.signature_checks(), 2u);
}

}  // namespace
}  // namespace physio

namespace physio {
namespace {

class TokenRulesTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { keys_ = std::make_unique<RsaKeyPair>(GenerateRsaKeyPair()); }
  static void TearDownTestSuite() { keys_.reset(); }
  static TokenRequest Request() {
    return {"iss-test", "aud-test", "acme", "clin-1", {"clinician"}, "", std::chrono::minutes(30)};
  }
  static std::string Refusal(const std::string& token) {
    try {
      TokenVerifier(keys_->public_key_pem, "iss-test", "aud-test").Verify(token);
    } catch (const Error& e) {
      return std::string(ErrorCodeName(e.code())) + ": " + e.what();
    }
    return "accepted";
  }
  inline static std::unique_ptr<RsaKeyPair> keys_;
};

TEST_F(TokenRulesTest, IssuedAtIsRequiredAndTheLifetimeIsBounded) {
  EXPECT_EQ(Refusal(MintToken(keys_->private_key_pem, Request())), "accepted");
  auto week = Request();
  week.lifetime = std::chrono::hours(24 * 7);
  EXPECT_EQ(Refusal(MintToken(keys_->private_key_pem, week)), "UNAUTHENTICATED: invalid token");
  jwt::jwt_object no_iat{jwt::params::algorithm("RS256"), jwt::params::secret(keys_->private_key_pem)};
  no_iat.add_claim("iss", "iss-test").add_claim("aud", "aud-test").add_claim("sub", "x").add_claim("tenant", "acme");
  no_iat.add_claim("exp", std::chrono::system_clock::now() + std::chrono::minutes(10));
  no_iat.payload().add_claim("roles", std::vector<std::string>{"clinician"});
  EXPECT_EQ(Refusal(no_iat.signature()), "UNAUTHENTICATED: invalid token");
}

// iat in the future with a lifetime within the cap would live past the cap from now.
TEST_F(TokenRulesTest, ATokenIssuedInTheFutureIsRefused) {
  auto ahead = Request();
  ahead.issued_at_offset = std::chrono::minutes(45);
  ahead.not_before_offset = -std::chrono::minutes(45);  // usable now
  EXPECT_EQ(Refusal(MintToken(keys_->private_key_pem, ahead)), "UNAUTHENTICATED: invalid token");
  auto skewed = Request();  // a few seconds of clock skew is within the leeway
  skewed.issued_at_offset = std::chrono::seconds(10);
  skewed.not_before_offset = -std::chrono::seconds(10);
  EXPECT_EQ(Refusal(MintToken(keys_->private_key_pem, skewed)), "accepted");
}

TEST_F(TokenRulesTest, APatientIsNeverAlsoStaff) {
  auto mixed = Request();
  mixed.roles = {"patient", "clinician"};
  mixed.patient_id = "pt-1";
  EXPECT_EQ(Refusal(MintToken(keys_->private_key_pem, mixed)), "UNAUTHENTICATED: invalid token");
  mixed.roles = {"patient"};
  EXPECT_EQ(Refusal(MintToken(keys_->private_key_pem, mixed)), "accepted");
}

TEST_F(TokenRulesTest, RefusalsSayNothingAboutWhichCheckFailed) {
  auto expired = Request();
  expired.lifetime = std::chrono::seconds(-120);
  auto wrong_audience = Request();
  wrong_audience.audience = "someone-else";
  EXPECT_EQ(Refusal(MintToken(keys_->private_key_pem, expired)), "UNAUTHENTICATED: invalid token");
  EXPECT_EQ(Refusal(MintToken(keys_->private_key_pem, wrong_audience)), "UNAUTHENTICATED: invalid token");
  EXPECT_EQ(Refusal("not-a-jwt"), "UNAUTHENTICATED: invalid token");
}

}  // namespace
}  // namespace physio
