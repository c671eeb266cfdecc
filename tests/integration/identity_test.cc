// Identity from a real OpenID provider (issue 28): the npm package oidc-provider
// (OpenID Certified) on loopback issues client-credentials tokens for an
// integration and, through the authorization-code flow, tokens for a clinician
// and a patient; the services find its keys by discovery and JWKS. Also: key
// rotation picked up without a restart, the provider gone (cached keys keep
// working, an unknown kid is refused), an issuer we do not trust, and a JWKS
// endpoint that is malformed, hangs or has thousands of keys.
#include <httplib.h>

#include <atomic>
#include <fstream>
#include <thread>

#include "clients.h"
#include "cluster_fixture.h"
#include "physio/auth/jws.h"
#include "physio/auth/token_minter.h"

namespace physio::testing {
namespace {

// scripts/node/oidc-test-provider.mjs as a child process.
class OidcProvider {
 public:
  OidcProvider() {
    log_ = std::filesystem::temp_directory_path() / ("oidc-provider-" + std::to_string(getpid()) + "-" +
                                                    std::to_string(counter_++) + ".log");
    std::filesystem::remove(log_);
    process_ = std::make_unique<ChildProcess>(
        std::vector<std::string>{"node", std::string(PHYSIO_SOURCE_DIR) + "/scripts/node/oidc-test-provider.mjs"},
        log_.string());
    for (int i = 0; i < 300 && issuer_.empty(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      std::ifstream in(log_);
      for (std::string line; std::getline(in, line);) {
        if (line.rfind("READY ", 0) != 0) continue;
        issuer_ = line.substr(line.find("issuer=") + 7, line.find(' ', 6) - line.find("issuer=") - 7);
        control_port_ = std::stoi(line.substr(line.rfind(':') + 1));
      }
    }
    if (issuer_.empty()) throw std::runtime_error("oidc-provider did not start; see " + log_.string());
  }
  const std::string& issuer() const { return issuer_; }
  // The control port's answer to `path` (a token, or "ok").
  std::string Control(const std::string& path, bool post = false) const {
    httplib::Client client("127.0.0.1", control_port_);
    client.set_read_timeout(std::chrono::seconds(20));
    auto response = post ? client.Post(path) : client.Get(path);
    if (!response || response->status != 200) {
      throw std::runtime_error("oidc-provider control " + path + ": " + (response ? response->body : "no answer"));
    }
    return response->body;
  }
  std::string ClientToken(const std::string& client) const { return Control("/token?client=" + client); }
  std::string UserToken(const std::string& account) const { return Control("/token?user=" + account); }

 private:
  inline static int counter_ = 0;
  std::filesystem::path log_;
  std::unique_ptr<ChildProcess> process_;
  std::string issuer_;
  int control_port_ = 0;
};

// A JWKS endpoint that misbehaves on demand (httplib in this process).
class MisbehavingJwks {
 public:
  enum class Mode { kMalformed, kHang, kThousandsOfKeys, kValid };
  explicit MisbehavingJwks(std::string valid_jwks) : valid_(std::move(valid_jwks)) {
    server_.Get("/jwks", [this](const httplib::Request&, httplib::Response& res) {
      ++requests_;
      switch (mode_.load()) {
        case Mode::kMalformed:
          res.set_content(R"({"keys": [{"kty": "RSA", "kid": 7, "n": )", "application/json");
          break;
        case Mode::kHang:
          for (int i = 0; i < 100 && !stopping_; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
          res.set_content(valid_, "application/json");
          break;
        case Mode::kThousandsOfKeys: {
          std::string many = R"({"keys":[)";
          const std::string key = valid_.substr(valid_.find('[') + 1, valid_.rfind(']') - valid_.find('[') - 1);
          for (int i = 0; i < 3000; ++i) many += (i ? "," : "") + key;
          res.set_content(many + "]}", "application/json");
          break;
        }
        case Mode::kValid:
          res.set_content(valid_, "application/json");
          break;
      }
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  ~MisbehavingJwks() {
    stopping_ = true;
    server_.stop();
    thread_.join();
  }
  std::string issuer() const { return "http://127.0.0.1:" + std::to_string(port_); }
  void Serve(Mode mode) { mode_ = mode; }
  int requests() const { return requests_; }

 private:
  std::string valid_;
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  std::atomic<Mode> mode_{Mode::kMalformed};
  std::atomic<bool> stopping_{false};
  std::atomic<int> requests_{0};
};

class IdentityTest : public ClusterFixture {
 protected:
  static void SetUpTestSuite() {
    provider_ = std::make_unique<OidcProvider>();
    untrusted_ = std::make_unique<OidcProvider>();
    ec_ = std::make_unique<KeyPairPem>(GenerateEcP256KeyPair());
    rsa_ = std::make_unique<RsaKeyPair>(GenerateRsaKeyPair());
    jwks_ = std::make_unique<MisbehavingJwks>(R"({"keys":[)" + PublicKeyJwk(ec_->public_key_pem, "ec-1", "ES256") + "," +
                                              PublicKeyJwk(rsa_->public_key_pem, "rsa-1", "RS256") + "]}");
    issuers_file_ = std::filesystem::temp_directory_path() / ("issuers-" + std::to_string(getpid()) + ".json");
    std::ofstream(issuers_file_) << R"({"issuers": [
      {"issuer": ")" << provider_->issuer() << R"(", "audiences": ["physio-backend"],
       "algorithms": ["RS256", "PS256", "ES256"], "keys": {"discovery": true}, "allow_http": true,
       "min_refresh_seconds": 1, "fetch_timeout_ms": 1000, "tenant_claim": "tenant",
       "claims": {"roles": "realm_access.roles",
                  "role_values": {"physio-clinician": ["clinician"], "physio-patient": ["patient"]},
                  "scope_roles": {"physio.integrate": ["integrator"]},
                  "patient": "patient", "fhir_user": "fhirUser",
                  "clinics": "https://physio.example/clinics", "organization_wide": ["physio-org-wide"]}},
      {"issuer": ")" << jwks_->issuer() << R"(", "audiences": ["physio-backend"], "algorithms": ["ES256"],
       "keys": {"jwks_uri": ")" << jwks_->issuer() << R"(/jwks"}, "allow_http": true,
       "min_refresh_seconds": 1, "fetch_timeout_ms": 400, "tenant": "chain-j",
       "claims": {"roles": "roles"}}]})";
    StartStoresAndCluster([](const std::string&, Config& config) {
      config.Set("oidc-issuers-file", issuers_file_.string());
    });
  }
  static void TearDownTestSuite() {
    ClusterFixture::TearDownTestSuite();
    jwks_.reset();
    untrusted_.reset();
    provider_.reset();
    std::filesystem::remove(issuers_file_);
  }

  // A token of the misbehaving issuer, signed by one of the keys its valid JWKS holds.
  static std::string JwksIssuerToken(JwsAlg alg = JwsAlg::kEs256, const std::string& kid = "ec-1") {
    const long long now =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
    const std::string payload = R"({"iss":")" + jwks_->issuer() + R"(","aud":"physio-backend","sub":"svc-1","iat":)" +
                                std::to_string(now) + R"(,"exp":)" + std::to_string(now + 300) +
                                R"(,"roles":["clinician"],"clinics":["north"]})";
    const std::string header = R"({"alg":")" + JwsAlgName(alg) + R"(","kid":")" + kid + R"("})";
    return SignCompactJws(alg == JwsAlg::kEs256 ? ec_->private_key_pem : rsa_->private_key_pem, alg, header, payload);
  }

  // The status of one staff read (GetActivePlan of a patient with no plan: NOT_FOUND once identity passes).
  static grpc::StatusCode ReadPlan(const std::string& token, const std::string& patient = "oidc-nobody",
                                   std::chrono::milliseconds deadline = std::chrono::seconds(10)) {
    Caller caller(*cluster_, token);
    ppb::GetActivePlanRequest request;
    request.set_patient_id(patient);
    ppb::GetActivePlanResponse response;
    return caller.Call(caller.planning.get(), &ppb::PlanningService::Stub::GetActivePlan, request, &response, deadline)
        .error_code();
  }

  inline static std::unique_ptr<OidcProvider> provider_, untrusted_;
  inline static std::unique_ptr<KeyPairPem> ec_;
  inline static std::unique_ptr<RsaKeyPair> rsa_;
  inline static std::unique_ptr<MisbehavingJwks> jwks_;
  inline static std::filesystem::path issuers_file_;
};

TEST_F(IdentityTest, AnIntegrationsClientCredentialsTokenIsAccepted) {
  const std::string token = provider_->ClientToken("chain-integration");
  // An integrator (from the scope physio.integrate) of tenant chain-a: it starts an intake.
  Caller integration(*cluster_, token);
  apb::StartIntakeRequest start;
  start.set_patient_id("oidc-int-patient");
  start.set_request_id("oidc-start-1");
  apb::StartIntakeResponse started;
  auto status = integration.Call(integration.assessment.get(), &apb::AssessmentService::Stub::StartIntake, start, &started);
  ASSERT_TRUE(status.ok()) << status.error_message();
  // Through the Connect/JSON port too.
  httplib::Client http("127.0.0.1", cluster_->planning_http_port());
  auto answered = http.Post("/physio.planning.v1.PlanningService/GetActivePlan", {{"Authorization", "Bearer " + token}},
                            R"({"patientId":"oidc-int-patient"})", "application/json");
  ASSERT_TRUE(answered);
  EXPECT_EQ(answered->status, 404) << answered->body;  // identity passed; there is no plan yet
  // A token with a broken signature is refused on both ports.
  const std::string broken = token.substr(0, token.size() - 2) + (token.substr(token.size() - 2) == "AA" ? "BB" : "AA");
  EXPECT_EQ(ReadPlan(broken), grpc::StatusCode::UNAUTHENTICATED);
  answered = http.Post("/physio.planning.v1.PlanningService/GetActivePlan", {{"Authorization", "Bearer " + broken}},
                       R"({"patientId":"oidc-int-patient"})", "application/json");
  ASSERT_TRUE(answered);
  EXPECT_EQ(answered->status, 401);
}

TEST_F(IdentityTest, ClinicianAndPatientTokensFromTheLoginFlowCarryRolesClinicsAndThePatient) {
  EXPECT_EQ(ReadPlan(provider_->UserToken("clinician-north")), grpc::StatusCode::NOT_FOUND);
  // The patient's token (SMART-style "patient" claim) reads only their own record.
  const std::string patient = provider_->UserToken("patient-p1");
  EXPECT_EQ(ReadPlan(patient, "oidc-patient-1"), grpc::StatusCode::NOT_FOUND);
  const auto other = ReadPlan(patient, "someone-else");
  EXPECT_TRUE(other == grpc::StatusCode::PERMISSION_DENIED || other == grpc::StatusCode::NOT_FOUND);
  // A patient cannot start an intake as staff does.
  Caller caller(*cluster_, patient);
  apb::StartIntakeRequest start;
  start.set_patient_id("someone-else");
  start.set_request_id("oidc-start-2");
  apb::StartIntakeResponse started;
  EXPECT_FALSE(caller.Call(caller.assessment.get(), &apb::AssessmentService::Stub::StartIntake, start, &started).ok());
}

// The provider's clinics claim (namespaced) and organisation-wide role scope what staff reach.
TEST_F(IdentityTest, TheProvidersClinicsClaimScopesStaffAndItsOrganisationWideRoleReachesEveryClinic) {
  Caller integration(*cluster_, provider_->ClientToken("chain-integration"));
  apb::EnrolPatientRequest enrol;
  enrol.set_request_id("oidc-enrol-1");
  enrol.set_patient_id("oidc-north-patient");
  enrol.set_clinic_id("north");
  apb::EnrolPatientResponse enrolled;
  auto status = integration.Call(integration.assessment.get(), &apb::AssessmentService::Stub::EnrolPatient, enrol, &enrolled);
  ASSERT_TRUE(status.ok()) << status.error_message();
  auto list = [&](const std::string& token) {
    Caller caller(*cluster_, token);
    apb::ListAssessmentsRequest request;
    request.set_patient_id("oidc-north-patient");
    apb::ListAssessmentsResponse response;
    return caller.Call(caller.assessment.get(), &apb::AssessmentService::Stub::ListAssessments, request, &response)
        .error_code();
  };
  EXPECT_EQ(list(provider_->UserToken("clinician-north")), grpc::StatusCode::OK);
  EXPECT_EQ(list(provider_->UserToken("clinician-south")), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(list(provider_->UserToken("lead-physio")), grpc::StatusCode::OK);  // realm role physio-org-wide
}

TEST_F(IdentityTest, Es256AndPs256TokensOfTheProviderAreAccepted) {
  for (const char* alg : {"ES256", "PS256", "RS256"}) {
    provider_->Control(std::string("/alg?alg=") + alg, true);
    const std::string token = provider_->ClientToken("chain-integration");
    EXPECT_EQ(ReadPlan(token), grpc::StatusCode::NOT_FOUND) << alg;
  }
}

TEST_F(IdentityTest, AnIssuerWeDoNotTrustIsRefused) {
  // A real provider, real tokens: but not one this deployment trusts.
  EXPECT_EQ(ReadPlan(untrusted_->ClientToken("chain-integration")), grpc::StatusCode::UNAUTHENTICATED);
}

// Rotation, then the provider gone: one test, since both change the provider's state.
TEST_F(IdentityTest, KeyRotationIsPickedUpAndCachedKeysOutliveTheProvider) {
  const std::string before = provider_->ClientToken("chain-integration");
  EXPECT_EQ(ReadPlan(before), grpc::StatusCode::NOT_FOUND);
  provider_->Control("/rotate", true);
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // past the refresh rate limit
  // A token under the new key (an unknown kid) is accepted at once: the JWKS is fetched again.
  const std::string after = provider_->ClientToken("chain-integration");
  EXPECT_EQ(ReadPlan(after), grpc::StatusCode::NOT_FOUND);
  // The old key is no longer published: its token (cached as verified) stops working.
  EXPECT_EQ(ReadPlan(before), grpc::StatusCode::UNAUTHENTICATED);

  // The provider goes away. A token signed by its current key, never seen by the services,
  // still verifies with the cached keys.
  const std::string unseen = provider_->UserToken("clinician-north");
  provider_->Control("/stop", true);
  EXPECT_EQ(ReadPlan(unseen), grpc::StatusCode::NOT_FOUND);
  // A kid the cache does not hold: the refresh fails (nobody answers), refused promptly.
  const long long now =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  const std::string forged = SignCompactJws(
      rsa_->private_key_pem, JwsAlg::kRs256, R"({"alg":"RS256","kid":"attacker-key"})",
      R"({"iss":")" + provider_->issuer() + R"(","aud":"physio-backend","sub":"x","tenant":"chain-a","iat":)" +
          std::to_string(now) + R"(,"exp":)" + std::to_string(now + 300) + R"(,"scope":"physio.integrate"})");
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // past the refresh rate limit
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(ReadPlan(forged), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  EXPECT_EQ(ReadPlan(unseen), grpc::StatusCode::NOT_FOUND);  // still served from the cached keys
  provider_->Control("/start", true);
}

TEST_F(IdentityTest, AMisbehavingJwksEndpointRefusesTokensCleanlyAndNeverHoldsACallPastItsDeadline) {
  // From the start the endpoint served a malformed JWKS: no keys, every token refused (fail closed).
  jwks_->Serve(MisbehavingJwks::Mode::kMalformed);
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  EXPECT_EQ(ReadPlan(JwksIssuerToken()), grpc::StatusCode::UNAUTHENTICATED);
  jwks_->Serve(MisbehavingJwks::Mode::kThousandsOfKeys);
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  EXPECT_EQ(ReadPlan(JwksIssuerToken()), grpc::StatusCode::UNAUTHENTICATED);
  // A hanging endpoint: the fetch is bounded (400 ms), the call answers within its 2 s deadline.
  jwks_->Serve(MisbehavingJwks::Mode::kHang);
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(ReadPlan(JwksIssuerToken(), "oidc-nobody", std::chrono::seconds(2)), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(1900));
  // Served well again: accepted within a few seconds (the next refresh), without a restart.
  jwks_->Serve(MisbehavingJwks::Mode::kValid);
  grpc::StatusCode accepted = grpc::StatusCode::UNKNOWN;
  for (int i = 0; i < 50 && accepted != grpc::StatusCode::NOT_FOUND; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    accepted = ReadPlan(JwksIssuerToken());
  }
  EXPECT_EQ(accepted, grpc::StatusCode::NOT_FOUND);
  // Its RSA key is published, but RS256 is not an algorithm this issuer may use.
  EXPECT_EQ(ReadPlan(JwksIssuerToken(JwsAlg::kRs256, "rsa-1")), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_GT(jwks_->requests(), 3);
}

}  // namespace
}  // namespace physio::testing
