// The FHIR R4 REST API (issue 31, docs/fhir.md) on the assessment service's HTTP port: a stock
// FHIR client (npm fhir-kit-client) reads the capability statement, searches and pages, reads and
// creates; searches across two services page as one; bad input gets an OperationOutcome with the
// right status; clinic scope, SMART scopes and the auditor-only AuditEvent hold; every resource
// served passes the independent validator.
#include <httplib.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <thread>
#include <fstream>
#include <sstream>

#include "clients.h"
#include "cluster_fixture.h"
#include "physio/auth/token_minter.h"
#include "physio/common/fhir_search.h"
#include "physio/common/ids.h"
#include "physio/common/process_stats.h"

namespace physio::testing {
namespace {

using nlohmann::json;

constexpr const char* kTenant = "acme-fhir";

class FhirRestApi : public ClusterFixture {
 protected:
  static void SetUpTestSuite() {
    // Small export batches, paused, with a short lease: an export spans many transactions and a
    // restart in the middle is carried on soon.
    StartStoresAndCluster(Customize);
    patient_ = "pt-fhir-" + NewId("p").substr(2, 8);
    Caller integrator(*cluster_, Token("integrator", {"integrator"}));
    apb::EnrolPatientRequest enrol;
    enrol.set_request_id(NewId("rq"));
    enrol.set_patient_id(patient_);
    enrol.set_clinic_id("north");
    apb::EnrolPatientResponse enrolled;
    ASSERT_TRUE(integrator.Call(integrator.assessment.get(), &apb::AssessmentService::Stub::EnrolPatient, enrol, &enrolled).ok());
    Caller north(*cluster_, Token("clin-north", {"clinician"}, {"north"}));
    plan_ = ApprovedPlanFor(north, patient_);
    ASSERT_FALSE(plan_.plan_id().empty());
    gpb::RecordVisitRequest visit;
    visit.set_request_id(NewId("rq"));
    visit.set_patient_id(patient_);
    visit.set_kind(gpb::VISIT_KIND_CLINIC);
    visit.set_pain_before(5);
    visit.set_pain_after(3);
    gpb::RecordVisitResponse visited;
    ASSERT_TRUE(north.Call(north.progress.get(), &gpb::ProgressService::Stub::RecordVisit, visit, &visited).ok());
    apb::RecordConsentRequest consent;
    consent.set_request_id(NewId("rq"));
    consent.set_patient_id(patient_);
    consent.set_kind(apb::CONSENT_KIND_TREATMENT);
    consent.set_decision(apb::CONSENT_DECISION_GRANTED);
    apb::RecordConsentResponse consented;
    ASSERT_TRUE(north.Call(north.assessment.get(), &apb::AssessmentService::Stub::RecordConsent, consent, &consented).ok());
  }

  static void Customize(const std::string& service, Config& config) {
    RouteFhirToPeers(service, config);
    if (service == "assessment") config.Set("bulk-export-max-jobs", "20");
    config.Set("bulk-export-batch-records", "3");
    config.Set("bulk-export-pause-ms", "150");
    config.Set("bulk-export-lease-s", "2");
    config.Set("bulk-export-poll-ms", "100");
    config.Set("bulk-export-cleanup-s", "1");
  }

  static std::string Token(const std::string& subject, std::vector<std::string> roles,
                           std::vector<std::string> clinics = {}, const std::string& scope = "",
                           const std::string& patient = "") {
    TokenRequest request{kIssuer, kAudience, kTenant, subject, std::move(roles), patient};
    request.clinics = std::move(clinics);
    request.scope = scope;
    return MintToken(keys_->private_key_pem, request);
  }
  static std::string North() { return Token("clin-north", {"clinician"}, {"north"}); }

  static std::string Base() { return "http://127.0.0.1:" + std::to_string(cluster_->assessment_http_port()) + "/fhir/R4"; }

  static httplib::Result Get(const std::string& path, const std::string& token, httplib::Headers headers = {}) {
    httplib::Client client("127.0.0.1", cluster_->assessment_http_port());
    client.set_read_timeout(20, 0);
    if (!token.empty()) headers.emplace("Authorization", "Bearer " + token);
    return client.Get(("/fhir/R4/" + path).c_str(), headers);
  }

  // A 200 searchset's match entries' resources.
  static std::vector<json> Matches(const httplib::Result& result) {
    std::vector<json> out;
    EXPECT_TRUE(result);
    if (!result) return out;
    EXPECT_EQ(result->status, 200) << result->body;
    const json bundle = json::parse(result->body);
    EXPECT_EQ(bundle["type"], "searchset");
    for (const auto& entry : bundle["entry"]) {
      if (entry["search"]["mode"] == "match") out.push_back(entry["resource"]);
    }
    return out;
  }

  // The OperationOutcome of an error answer, after checking its status.
  static std::string Outcome(const httplib::Result& result, int status) {
    EXPECT_TRUE(result);
    if (!result) return "";
    EXPECT_EQ(result->status, status) << result->body;
    EXPECT_EQ(result->get_header_value("Content-Type").rfind("application/fhir+json", 0), 0u);
    const json outcome = json::parse(result->body, nullptr, false);
    EXPECT_EQ(outcome.value("resourceType", ""), "OperationOutcome") << result->body;
    return outcome.is_object() && outcome.contains("issue") ? outcome["issue"][0].value("diagnostics", "") : "";
  }

  static int RunNode(const std::string& command, std::string* output) {
    const auto file = std::filesystem::temp_directory_path() / ("physio-fhir-node-" + NewId("o") + ".txt");
    const int status = std::system((command + " > " + file.string() + " 2>&1").c_str());
    std::ifstream in(file);
    std::stringstream text;
    text << in.rdbuf();
    *output = text.str();
    std::filesystem::remove(file);
    return status;
  }

  // A bulk export kicked off over HTTP: the status URL's path (under /fhir/R4/).
  static std::string KickOff(const std::string& path, const std::string& token) {
    auto started = Get(path, token, {{"Prefer", "respond-async"}, {"Accept", "application/fhir+json"}});
    EXPECT_TRUE(started);
    if (!started) return "";
    EXPECT_EQ(started->status, 202) << started->body;
    const std::string location = started->get_header_value("Content-Location");
    EXPECT_EQ(location.rfind(Base() + "/$export-status/", 0), 0u) << location;
    return location.substr(Base().size() + 1);
  }
  // Polls until the manifest (200), at most `seconds`; `on_progress` sees each 202.
  static json Manifest(const std::string& status_path, const std::string& token, int seconds = 60,
                       const std::function<void(const httplib::Result&)>& on_progress = {}) {
    for (int i = 0; i < seconds * 10; ++i) {
      auto polled = Get(status_path, token);
      if (!polled) return json();
      if (polled->status == 200) return json::parse(polled->body);
      EXPECT_EQ(polled->status, 202) << polled->body;
      if (polled->status != 202) return json();
      EXPECT_FALSE(polled->get_header_value("X-Progress").empty());
      if (on_progress) on_progress(polled);
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ADD_FAILURE() << "the export did not finish in " << seconds << " s";
    return json();
  }
  // Every resource of every file of a manifest, by type, each file checked against its count.
  static std::map<std::string, std::vector<json>> Download(const json& manifest, const std::string& token) {
    std::map<std::string, std::vector<json>> by_type;
    for (const auto& output : manifest["output"]) {
      const std::string url = output["url"];
      auto file = Get(url.substr(Base().size() + 1), token);
      EXPECT_TRUE(file);
      if (!file) continue;
      EXPECT_EQ(file->status, 200) << file->body;
      EXPECT_EQ(file->get_header_value("Content-Type"), "application/fhir+ndjson");
      std::istringstream lines(file->body);
      std::string line;
      int count = 0;
      while (std::getline(lines, line)) {
        const json resource = json::parse(line);
        EXPECT_EQ(resource["resourceType"], output["type"]);
        by_type[output["type"]].push_back(resource);
        ++count;
      }
      EXPECT_EQ(count, output["count"].get<int>()) << url;
    }
    return by_type;
  }

  // Every line of an export, checked by the independent validator (a collection Bundle per type).
  static void ExpectValid(const std::map<std::string, std::vector<json>>& by_type) {
    std::vector<std::filesystem::path> files;
    for (const auto& [type, resources] : by_type) {
      json bundle = {{"resourceType", "Bundle"}, {"type", "collection"}, {"entry", json::array()}};
      for (const auto& resource : resources) {
        bundle["entry"].push_back({{"fullUrl", Base() + "/" + type + "/" + resource["id"].get<std::string>()}, {"resource", resource}});
      }
      files.push_back(std::filesystem::temp_directory_path() / ("physio-bulk-" + NewId("f") + ".json"));
      std::ofstream(files.back()) << bundle.dump();
    }
    std::string command = "node " PHYSIO_SOURCE_DIR "/scripts/node/validate-fhir.js";
    for (const auto& file : files) command += " " + file.string();
    std::string output;
    EXPECT_EQ(RunNode(command, &output), 0) << output;
    for (const auto& file : files) std::filesystem::remove(file);
  }

  inline static std::string patient_;
  inline static ppb::Plan plan_;
};

TEST_F(FhirRestApi, AStockFhirClientSearchesPagesReadsAndCreates) {
  std::string output;
  const int status = RunNode("cd " PHYSIO_SOURCE_DIR "/scripts/node && FHIR_BASE=" + Base() + " TOKEN=" + North() +
                                 " PATIENT_ID=" + patient_ + " timeout 120 node fhir-client-test.mjs",
                             &output);
  ASSERT_EQ(status, 0) << output;
  const json summary = json::parse(output.substr(output.find('{')));
  EXPECT_GE(summary["careplans"].get<int>(), 1);
  // The assessment's scores, red-flag screen and classification, and the visit's two pain readings.
  EXPECT_GE(summary["observations"].get<int>(), 5) << output;
  EXPECT_GE(summary["observation_pages"].get<int>(), 3) << output;
  EXPECT_EQ(summary["create_status"], 201);
  EXPECT_EQ(summary["repeat_status"], 200);
}

TEST_F(FhirRestApi, ObservationsOfTwoServicesPageAsOneSearch) {
  std::vector<std::string> ids;
  std::string path = "Observation?patient=" + patient_ + "&_count=2";
  std::string pages_seen;
  for (int page = 0; page < 20 && !path.empty(); ++page) {
    auto result = Get(path, North());
    pages_seen += path + " -> " + (result ? json::parse(result->body)["link"].dump() : "none") + "\n";
    for (const auto& resource : Matches(result)) ids.push_back(resource["id"]);
    path.clear();
    const json bundle = json::parse(result->body);  // kept: a range over a temporary's member would dangle
    for (const auto& link : bundle["link"]) {
      if (link["relation"] == "next") path = link["url"].get<std::string>().substr(Base().size() + 1);
    }
  }
  std::set<std::string> distinct(ids.begin(), ids.end());
  EXPECT_EQ(distinct.size(), ids.size()) << "a resource on two pages";
  const auto visit_pain = std::count_if(ids.begin(), ids.end(), [](const std::string& id) { return id.find(".pain-") != std::string::npos; });
  EXPECT_EQ(visit_pain, 2) << "the progress service's visit pain, after the assessment's scores\n" << pages_seen;
  EXPECT_TRUE(std::any_of(ids.begin(), ids.end(), [](const std::string& id) { return id.find(".obs-odi") != std::string::npos; }));

  // code: only pain (LOINC 72514-3), from both services.
  auto pain = Matches(Get("Observation?patient=" + patient_ + "&code=http://loinc.org|72514-3", North()));
  EXPECT_GE(pain.size(), 3u);  // the assessment's, the visit's two (and any the client test posted)
  for (const auto& observation : pain) EXPECT_EQ(observation["code"]["coding"][0]["code"], "72514-3");
  EXPECT_TRUE(Matches(Get("Observation?patient=" + patient_ + "&_lastUpdated=gt2099", North())).empty());
  EXPECT_EQ(Matches(Get("Observation?patient=" + patient_ + "&date=ge2000-01-01", North())).size(), ids.size());
}

TEST_F(FhirRestApi, EveryResourceTypeReadsAndValidates) {
  std::vector<std::filesystem::path> files;
  auto keep = [&](const std::string& body) {
    files.push_back(std::filesystem::temp_directory_path() / ("physio-fhir-" + NewId("f") + ".json"));
    std::ofstream(files.back()) << body;
  };
  for (const char* type : {"QuestionnaireResponse", "Observation", "CarePlan", "Goal", "Encounter", "Flag", "Consent"}) {
    auto result = Get(std::string(type) + "?patient=" + patient_, North());
    const auto resources = Matches(result);
    keep(result->body);
    if (std::string(type) != "Flag") {
      EXPECT_FALSE(resources.empty()) << type;
    }
    for (const auto& resource : resources) {
      EXPECT_EQ(resource["resourceType"], type);
      EXPECT_TRUE(resource["meta"].contains("lastUpdated")) << resource.dump();
      auto read = Get(std::string(type) + "/" + resource["id"].get<std::string>(), North());
      ASSERT_TRUE(read);
      EXPECT_EQ(read->status, 200) << type << "/" << resource["id"] << ": " << read->body;
      EXPECT_EQ(json::parse(read->body)["id"], resource["id"]);
    }
  }
  auto metadata = Get("metadata", "");
  ASSERT_TRUE(metadata);
  EXPECT_EQ(metadata->status, 200);
  keep(metadata->body);
  std::string command = "node " PHYSIO_SOURCE_DIR "/scripts/node/validate-fhir.js";
  for (const auto& file : files) command += " " + file.string();
  std::string output;
  EXPECT_EQ(RunNode(command, &output), 0) << output;
  for (const auto& file : files) std::filesystem::remove(file);
}

TEST_F(FhirRestApi, BadInputGetsAnOperationOutcome) {
  const std::string base = "Observation?patient=" + patient_;
  // An unknown parameter: ignored and reported, or refused when strict.
  auto lenient = Get(base + "&value-quantity=5", North());
  ASSERT_TRUE(lenient);
  EXPECT_EQ(lenient->status, 200);
  EXPECT_NE(lenient->body.find("value-quantity"), std::string::npos);
  EXPECT_EQ(json::parse(lenient->body)["link"][0]["url"].get<std::string>().find("value-quantity"), std::string::npos)
      << "the self link names only what was applied";
  EXPECT_NE(Outcome(Get(base + "&value-quantity=5", North(), {{"Prefer", "handling=strict"}}), 400).find("value-quantity"),
            std::string::npos);
  // A huge _count is reduced (or refused when strict); a malformed one is refused.
  auto huge = Get(base + "&_count=100000", North());
  ASSERT_TRUE(huge);
  EXPECT_EQ(huge->status, 200);
  EXPECT_NE(json::parse(huge->body)["link"][0]["url"].get<std::string>().find("_count=100"), std::string::npos);
  Outcome(Get(base + "&_count=100000", North(), {{"Prefer", "handling=strict"}}), 400);
  EXPECT_NE(Outcome(Get(base + "&_count=ten", North()), 400).find("_count"), std::string::npos);
  EXPECT_NE(Outcome(Get(base + "&date=2026-13-45", North()), 400).find("date"), std::string::npos);
  EXPECT_NE(Outcome(Get(base + "&date=ap2026", North()), 400).find("prefix"), std::string::npos);
  EXPECT_NE(Outcome(Get(base + "&code:text=pain", North()), 400).find("modifier"), std::string::npos);
  EXPECT_NE(Outcome(Get(base + "&_cursor=junk", North()), 400).find("_cursor"), std::string::npos);
  // No patient: staff must name one.
  EXPECT_NE(Outcome(Get("CarePlan", North()), 400).find("patient"), std::string::npos);
  Outcome(Get("Patient?name=x", North()), 404);
  Outcome(Get("CarePlan/plan-00000000000000000000000000000000", North()), 404);
  Outcome(Get("CarePlan/not_an_id", North()), 404);
  Outcome(Get("Observation?patient=" + patient_ + "&_format=xml", North()), 406);
  // No token: 401 with a challenge; metadata stays public.
  auto anonymous = Get("CarePlan?patient=" + patient_, "");
  Outcome(anonymous, 401);
  EXPECT_EQ(anonymous->get_header_value("WWW-Authenticate").rfind("Bearer", 0), 0u);
  Outcome(Get("CarePlan?patient=" + patient_, "not.a.token"), 401);
  httplib::Client client("127.0.0.1", cluster_->assessment_http_port());
  auto put = client.Put("/fhir/R4/CarePlan/x", {{"Authorization", "Bearer " + North()}}, "{}", "application/fhir+json");
  Outcome(put, 405);
  auto xml = client.Post("/fhir/R4/QuestionnaireResponse", {{"Authorization", "Bearer " + North()}}, "<x/>", "application/xml");
  Outcome(xml, 415);
  auto bad_body = client.Post("/fhir/R4/QuestionnaireResponse", {{"Authorization", "Bearer " + North()}}, "{\"resourceType\":",
                              "application/fhir+json");
  Outcome(bad_body, 400);
  auto no_subject = client.Post("/fhir/R4/QuestionnaireResponse", {{"Authorization", "Bearer " + North()}},
                                R"({"resourceType":"QuestionnaireResponse","status":"completed"})", "application/fhir+json");
  EXPECT_NE(Outcome(no_subject, 400).find("subject"), std::string::npos);
  // A conditional create repeated with another resource: the condition matched something else.
  auto answer = [&](int value) {
    return R"({"resourceType":"QuestionnaireResponse","status":"completed","questionnaire":"https://physio-backend.org/fhir/Questionnaire/nprs","subject":{"reference":"Patient/)" +
           patient_ + R"("},"item":[{"linkId":"nprs","answer":[{"valueInteger":)" + std::to_string(value) + "}]}]}";
  };
  const httplib::Headers conditional = {{"Authorization", "Bearer " + North()},
                                        {"If-None-Exist", "identifier=https://ehr.example/qr|conflict-" + patient_}};
  auto first = client.Post("/fhir/R4/QuestionnaireResponse", conditional, answer(3), "application/fhir+json");
  ASSERT_TRUE(first);
  EXPECT_EQ(first->status, 201) << first->body;
  Outcome(client.Post("/fhir/R4/QuestionnaireResponse", conditional, answer(7), "application/fhir+json"), 412);
  auto create_plan = client.Post("/fhir/R4/CarePlan", {{"Authorization", "Bearer " + North()}}, "{}", "application/fhir+json");
  Outcome(create_plan, 405);
}

TEST_F(FhirRestApi, ClinicScopeHoldsAndOtherClinicsSeeNothing) {
  const std::string south = Token("clin-south", {"clinician"}, {"south"});
  EXPECT_EQ(Matches(Get("CarePlan?patient=" + patient_, North())).size(), 1u);
  EXPECT_TRUE(Matches(Get("CarePlan?patient=" + patient_, south)).empty());
  EXPECT_TRUE(Matches(Get("Observation?patient=" + patient_, south)).empty());
  Outcome(Get("CarePlan/" + FhirIdOf(plan_.plan_id()), south), 404);
  // Another tenant's integrator: nothing either.
  TokenRequest other{kIssuer, kAudience, "other-tenant", "int-other", {"integrator"}, ""};
  const std::string outsider = MintToken(keys_->private_key_pem, other);
  EXPECT_TRUE(Matches(Get("CarePlan?patient=" + patient_, outsider)).empty());
  Outcome(Get("CarePlan/" + FhirIdOf(plan_.plan_id()), outsider), 404);
  // A patient: their own records without naming themselves, nobody else's.
  const std::string own = Token("patient-self", {"patient"}, {}, "", patient_);
  EXPECT_EQ(Matches(Get("CarePlan", own)).size(), 1u);
  Outcome(Get("CarePlan?patient=someone-else", own), 403);
}

TEST_F(FhirRestApi, SmartScopesLimitTheResourceTypes) {
  const std::string careplans_only = Token("int-smart", {"integrator"}, {}, "system/CarePlan.read");
  EXPECT_EQ(Matches(Get("CarePlan?patient=" + patient_, careplans_only)).size(), 1u);
  EXPECT_NE(Outcome(Get("Observation?patient=" + patient_, careplans_only), 403).find("scope"), std::string::npos);
  httplib::Client client("127.0.0.1", cluster_->assessment_http_port());
  auto create = client.Post("/fhir/R4/QuestionnaireResponse", {{"Authorization", "Bearer " + careplans_only}},
                            R"({"resourceType":"QuestionnaireResponse","status":"completed","subject":{"reference":"Patient/)" +
                                patient_ + R"("}})",
                            "application/fhir+json");
  Outcome(create, 403);
}

TEST_F(FhirRestApi, AuditEventsAreForAuditorsAndRecordTheSearches) {
  Matches(Get("Encounter?patient=" + patient_, North()));  // an access to find in the trail
  Outcome(Get("AuditEvent?patient=" + patient_, North()), 403);
  const std::string auditor = Token("auditor-1", {"auditor"});
  std::vector<json> events;
  for (int attempt = 0; attempt < 20; ++attempt) {  // the search's own record is written in a batch
    events = Matches(Get("AuditEvent?patient=" + patient_ + "&date=ge2000-01-01&_count=100", auditor));
    const bool found = std::any_of(events.begin(), events.end(), [](const json& event) { return event.dump().find("SearchFhir") != std::string::npos; });
    if (found) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  ASSERT_FALSE(events.empty());
  for (const auto& event : events) EXPECT_EQ(event["resourceType"], "AuditEvent");
  EXPECT_TRUE(std::any_of(events.begin(), events.end(), [](const json& event) { return event.dump().find("SearchFhir") != std::string::npos; }))
      << "the FHIR searches are audited like every read";
  EXPECT_TRUE(Matches(Get("AuditEvent?patient=" + patient_ + "&date=lt2000-01-01", auditor)).empty());
  // A date before the trail began is one empty page, not an empty page with a `next` link to follow
  // through the whole trail (one record a page here, so the trail is several pages).
  for (const std::string date : {"lt1970-01-01", "eq0001-01-01", "le1969-12-31T23:59:59Z", "0001-01-01T00:00:00%2B14:00"}) {
    const auto answer = Get("AuditEvent?patient=" + patient_ + "&_count=1&date=" + date, auditor);
    ASSERT_TRUE(answer) << date;
    ASSERT_EQ(answer->status, 200) << date << ": " << answer->body;
    const json bundle = json::parse(answer->body);
    EXPECT_FALSE(bundle.contains("entry") && !bundle["entry"].empty()) << date;
    for (const auto& link : bundle["link"]) EXPECT_NE(link.value("relation", ""), "next") << date << ": " << answer->body;
  }
  Outcome(Get("AuditEvent/assessment-1", auditor), 400);
}

TEST_F(FhirRestApi, BulkExportOfTheTenantAndOfAClinicIsComplete) {
  const std::string integrator = Token("int-bulk", {"integrator"});
  // Another patient, at another clinic: in the tenant's export, not in north's.
  const std::string other = "pt-south-" + NewId("p").substr(2, 8);
  Caller caller(*cluster_, integrator);
  Caller south(*cluster_, Token("clin-south", {"clinician"}, {"south"}));
  apb::EnrolPatientRequest enrol;
  enrol.set_request_id(NewId("rq"));
  enrol.set_patient_id(other);
  enrol.set_clinic_id("south");
  apb::EnrolPatientResponse enrolled;
  ASSERT_TRUE(caller.Call(caller.assessment.get(), &apb::AssessmentService::Stub::EnrolPatient, enrol, &enrolled).ok());
  ApprovedPlanFor(south, other);

  const json manifest = Manifest(KickOff("$export?_outputFormat=application/fhir%2Bndjson", integrator), integrator);
  ASSERT_TRUE(manifest.is_object());
  EXPECT_TRUE(manifest["requiresAccessToken"].get<bool>());
  EXPECT_NE(manifest["request"].get<std::string>().find("/fhir/R4/$export"), std::string::npos);
  const auto all = Download(manifest, integrator);
  for (const char* type : {"QuestionnaireResponse", "Observation", "Consent", "CarePlan", "Goal", "Encounter"}) {
    EXPECT_TRUE(all.contains(type)) << type;
  }
  std::set<std::string> patients;
  for (const auto& [type, resources] : all) {
    std::set<std::string> ids;
    for (const auto& resource : resources) {
      EXPECT_TRUE(ids.insert(resource["id"].get<std::string>()).second) << type << "/" << resource["id"] << " twice";
      const json& subject = resource.contains("subject") ? resource["subject"] : resource["patient"];
      patients.insert(subject["reference"].get<std::string>());
    }
  }
  ExpectValid(all);
  EXPECT_TRUE(patients.contains("Patient/" + patient_));
  EXPECT_TRUE(patients.contains("Patient/" + other));

  // One clinic, one type: north's CarePlans only.
  const auto north = Download(Manifest(KickOff("Group/north/$export?_type=CarePlan", integrator), integrator), integrator);
  ASSERT_EQ(north.size(), 1u);
  ASSERT_TRUE(north.contains("CarePlan"));
  for (const auto& plan : north.at("CarePlan")) EXPECT_NE(plan["subject"]["reference"], "Patient/" + other);
  // _since after everything: nothing.
  const json later = Manifest(KickOff("$export?_type=Observation&_since=2099-01-01T00:00:00Z", integrator), integrator);
  EXPECT_TRUE(later["output"].empty()) << later.dump();
}

TEST_F(FhirRestApi, BulkExportIsTheRequestersAndSaysWhatIsWrong) {
  const std::string integrator = Token("int-bulk-2", {"integrator"});
  const std::string status = KickOff("$export?_type=Goal", integrator);
  ASSERT_FALSE(status.empty());
  Manifest(status, integrator);
  // Another caller of the tenant, another tenant: no such export.
  Outcome(Get(status, Token("int-other", {"integrator"})), 404);
  TokenRequest other{kIssuer, kAudience, "other-tenant", "int-bulk-2", {"integrator"}, ""};
  Outcome(Get(status, MintToken(keys_->private_key_pem, other)), 404);
  Outcome(Get(status, North()), 403);  // clinicians do not export
  // Cancelled: gone.
  httplib::Client client("127.0.0.1", cluster_->assessment_http_port());
  auto cancelled = client.Delete("/fhir/R4/" + status, httplib::Headers{{"Authorization", "Bearer " + integrator}});
  ASSERT_TRUE(cancelled);
  EXPECT_EQ(cancelled->status, 202);
  Outcome(Get(status, integrator), 404);
  // Bad kick-offs.
  Outcome(Get("$export", integrator), 400);  // no Prefer: respond-async
  const httplib::Headers async = {{"Prefer", "respond-async"}};
  // Named as the client sent them (`_type`, `_since`), not as our gRPC request's fields.
  EXPECT_NE(Outcome(Get("$export?_type=Patient", integrator, async), 400).find("_type:"), std::string::npos);
  EXPECT_NE(Outcome(Get("$export?_since=yesterday", integrator, async), 400).find("_since:"), std::string::npos);
  EXPECT_NE(Outcome(Get("$export?_outputFormat=text/csv", integrator, async), 400).find("_outputFormat"), std::string::npos);
  EXPECT_NE(Outcome(Get("$export?_typeFilter=x", integrator, async), 400).find("_typeFilter"), std::string::npos);
  auto lenient = Get("$export?_typeFilter=x&_type=Goal", integrator, {{"Prefer", "respond-async, handling=lenient"}});
  ASSERT_TRUE(lenient);
  EXPECT_EQ(lenient->status, 202);
  // SMART scopes must grant every type exported.
  const std::string careplans_only = Token("int-smart-bulk", {"integrator"}, {}, "system/CarePlan.read");
  Outcome(Get("$export", careplans_only, async), 403);
  EXPECT_EQ(KickOff("$export?_type=CarePlan", careplans_only).rfind("$export-status/", 0), 0u);
  Outcome(Get("$export-file/export_nothing/planning/Goal/1", integrator), 404);
}

// The job's state is in PostgreSQL: the services stop in the middle of an export and start again,
// and the export finishes from where each service was, every resource exactly once.
TEST_F(FhirRestApi, BulkExportSurvivesARestartOfEveryService) {
  const std::string tenant_integrator = Token("int-restart", {"integrator"});
  Caller caller(*cluster_, tenant_integrator);
  const std::string patient = "pt-bulk-" + NewId("p").substr(2, 8);
  constexpr int kAssessments = 30;
  for (int i = 0; i < kAssessments; ++i) {
    apb::CreateAssessmentRequest create;
    create.set_request_id(NewId("rq"));
    create.set_patient_id(patient);
    *create.add_answers() = Answer(cpb::INSTRUMENT_NPRS, "nprs", i % 11);
    apb::CreateAssessmentResponse created;
    ASSERT_TRUE(caller.Call(caller.assessment.get(), &apb::AssessmentService::Stub::CreateAssessment, create, &created).ok());
  }
  const std::string status = KickOff("$export?_type=QuestionnaireResponse", tenant_integrator);
  ASSERT_FALSE(status.empty());
  // Some written, not all: then every service stops and starts again (new ports, same stores).
  bool restarted = false;
  for (int i = 0; i < 200 && !restarted; ++i) {
    auto polled = Get(status, tenant_integrator);
    ASSERT_TRUE(polled);
    ASSERT_EQ(polled->status, 202) << "finished before the restart: " << polled->body;
    const std::string progress = polled->get_header_value("X-Progress");
    if (progress.rfind("0 ", 0) != 0) {
      cluster_.reset();
      cluster_ = std::make_unique<ServiceCluster>(*keys_, redis_->port(), postgres_->port(), "physio",
                                                  std::map<std::string, std::string>{}, Customize);
      restarted = true;
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  ASSERT_TRUE(restarted);
  const auto files = Download(Manifest(status, tenant_integrator), tenant_integrator);
  ASSERT_TRUE(files.contains("QuestionnaireResponse"));
  std::set<std::string> ids;
  for (const auto& resource : files.at("QuestionnaireResponse")) {
    if (resource["subject"]["reference"] != "Patient/" + patient) continue;
    EXPECT_TRUE(ids.insert(resource["id"].get<std::string>()).second) << resource["id"] << " written twice";
  }
  EXPECT_EQ(ids.size(), static_cast<std::size_t>(kAssessments));
  ExpectValid(files);
}

// Files are kept bulk-export-retention-s, then deleted by every service (here the job is made
// to expire at once).
TEST_F(FhirRestApi, AnExpiredExportIsGoneWithItsFiles) {
  const std::string integrator = Token("int-expire", {"integrator"});
  const std::string status = KickOff("$export?_type=CarePlan,Encounter,QuestionnaireResponse", integrator);
  const json manifest = Manifest(status, integrator);
  ASSERT_FALSE(manifest["output"].empty());
  const std::string job = status.substr(status.rfind('/') + 1);
  auto files_left = [&] {
    return std::stoi(postgres_->Execute(
        "SELECT (SELECT count(*) FROM assessment.bulk_export_files WHERE job_id = '" + job + "') +"
        " (SELECT count(*) FROM planning.bulk_export_files WHERE job_id = '" + job + "') +"
        " (SELECT count(*) FROM progress.bulk_export_files WHERE job_id = '" + job + "')",
        "physio"));
  };
  ASSERT_GE(files_left(), 3);
  postgres_->Execute("UPDATE assessment.bulk_export_jobs SET expires_at = now() - interval '1 second' WHERE job_id = '" +
                         job + "'",
                     "physio");
  Outcome(Get(status, integrator), 404);
  const std::string url = manifest["output"][0]["url"];
  Outcome(Get(url.substr(Base().size() + 1), integrator), 404);
  for (int i = 0; i < 100 && files_left() > 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(files_left(), 0) << "every service deletes its parts";
}

// Benchmark (run by hand, docs/benchmarks.md): a bulk export of 100,000 episodes (an assessment
// and an approved plan each) with the default settings, its time and the services' peak memory.
//   build/tests/http_test --gtest_also_run_disabled_tests --gtest_filter='*BulkExportOfAHundredThousand*'
TEST_F(FhirRestApi, DISABLED_BulkExportOfAHundredThousandEpisodes) {
  const int episodes = std::getenv("PHYSIO_EXPORT_EPISODES") ? std::atoi(std::getenv("PHYSIO_EXPORT_EPISODES")) : 100000;
  cluster_.reset();  // the default settings: batches of 500, no pause
  cluster_ = std::make_unique<ServiceCluster>(*keys_, redis_->port(), postgres_->port(), "physio",
                                              std::map<std::string, std::string>{}, [](const std::string&, Config&) {});
  // One real episode, then copies of its rows under new ids in another tenant.
  Caller clinician(*cluster_, North());
  const std::string seed_patient = "pt-seed-" + NewId("p").substr(2, 8);
  const auto plan = ApprovedPlanFor(clinician, seed_patient);
  const std::string n = std::to_string(episodes);
  postgres_->Execute(
      "INSERT INTO assessment.assessments (tenant_id, assessment_id, patient_id, created_by, body)"
      " SELECT 'bench-export', 'asm_' || lpad(i::text, 32, '0'), 'pt-bench-' || i, created_by,"
      " replace(replace(body::text, assessment_id, 'asm_' || lpad(i::text, 32, '0')), patient_id, 'pt-bench-' || i)::jsonb"
      " FROM assessment.assessments, generate_series(1, " + n + ") i WHERE assessment_id = '" + plan.assessment_id() + "'",
      "physio");
  postgres_->Execute(
      "INSERT INTO planning.plans (tenant_id, plan_id, patient_id, assessment_id, status, version, body)"
      " SELECT 'bench-export', 'plan_' || lpad(i::text, 32, '0'), 'pt-bench-' || i, 'asm_' || lpad(i::text, 32, '0'),"
      " status, version, replace(replace(body::text, plan_id, 'plan_' || lpad(i::text, 32, '0')), patient_id, 'pt-bench-' || i)::jsonb"
      " FROM planning.plans, generate_series(1, " + n + ") i WHERE plan_id = '" + plan.plan_id() + "'",
      "physio");
  postgres_->Execute("ANALYZE", "physio");
  TokenRequest request{kIssuer, kAudience, "bench-export", "int-bench", {"integrator"}, ""};
  request.lifetime = std::chrono::minutes(30);
  const std::string token = MintToken(keys_->private_key_pem, request);
  const long rss_before = ProcessResidentBytes();
  long rss_peak = rss_before;
  const auto started = std::chrono::steady_clock::now();
  const std::string status = KickOff("$export?_type=QuestionnaireResponse,Observation,CarePlan,Goal", token);
  const json manifest = Manifest(status, token, 1800, [&](const httplib::Result&) { rss_peak = std::max(rss_peak, ProcessResidentBytes()); });
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  long resources = 0;
  std::map<std::string, long> by_type;
  for (const auto& output : manifest["output"]) {
    resources += output["count"].get<long>();
    by_type[output["type"]] += output["count"].get<long>();
  }
  const std::string files_size = postgres_->Execute(
      "SELECT pg_size_pretty(pg_total_relation_size('assessment.bulk_export_files') +"
      " pg_total_relation_size('planning.bulk_export_files'))",
      "physio");
  // One file read back whole (the largest part).
  const auto read_started = std::chrono::steady_clock::now();
  const std::string first = manifest["output"][0]["url"];
  auto file = Get(first.substr(Base().size() + 1), token);
  const double read_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - read_started).count();
  ASSERT_TRUE(file);
  std::printf("bulk export: %d episodes, %ld resources in %zu files, %.1f s (%.0f resources/s); services' RSS %ld MiB"
              " before, peak %ld MiB; files in PostgreSQL %s; one file (%zu bytes) read in %.0f ms\n",
              episodes, resources, manifest["output"].size(), seconds, resources / seconds, rss_before >> 20,
              rss_peak >> 20, files_size.c_str(), file->body.size(), read_ms);
  for (const auto& [type, count] : by_type) std::printf("  %s: %ld\n", type.c_str(), count);
  EXPECT_EQ(by_type["CarePlan"], episodes);
  cluster_.reset();
  cluster_ = std::make_unique<ServiceCluster>(*keys_, redis_->port(), postgres_->port(), "physio",
                                              std::map<std::string, std::string>{}, Customize);
}

}  // namespace
}  // namespace physio::testing
