// Consent records and the audit read API (issue 28, items 4 and 5) through the
// public API: consents with who, when and withdrawal; a telehealth platform's
// access following the patient's sharing decision in every service; an auditor
// reading who touched a patient's record across the three services, filtered,
// paged, as FHIR AuditEvents, and that reading itself audited.
#include <httplib.h>

#include <nlohmann/json.hpp>

#include "foundation.h"

namespace physio::testing {
namespace {

class ConsentAndAudit : public Foundation {
 protected:
  Caller Token(const std::string& subject, const std::vector<std::string>& roles,
               const std::vector<std::string>& clinics = {}, const std::string& platform = "",
               const std::string& patient_id = "") const {
    TokenRequest request{kIssuer, kAudience, tenant_, subject, roles};
    request.clinics = clinics;
    request.platform = platform;
    request.patient_id = patient_id;
    return Caller(*cluster_, MintToken(keys_->private_key_pem, request));
  }
  std::string BearerFor(const std::string& subject, const std::vector<std::string>& roles,
                        const std::string& platform = "") const {
    TokenRequest request{kIssuer, kAudience, tenant_, subject, roles};
    request.platform = platform;
    return "Bearer " + MintToken(keys_->private_key_pem, request);
  }
  Caller PatientThrough(const std::string& platform) const {
    return Token(patient_id_, {"patient"}, {}, platform, patient_id_);
  }
  Caller Auditor(const std::vector<std::string>& clinics = {}) const { return Token("dpo-1", {"auditor"}, clinics); }

  grpc::Status Consent(const Caller& caller, apb::ConsentKind kind, apb::ConsentDecision decision,
                       const std::string& platform = "", apb::RecordConsentResponse* out = nullptr,
                       const std::string& request_id = "") const {
    apb::RecordConsentRequest request;
    request.set_request_id(request_id.empty() ? NewId("rq") : request_id);
    request.set_patient_id(patient_id_);
    request.set_kind(kind);
    request.set_decision(decision);
    request.set_platform(platform);
    apb::RecordConsentResponse response;
    auto status = caller.Call(caller.assessment.get(), &apb::AssessmentService::Stub::RecordConsent, request, &response);
    if (out) *out = response;
    return status;
  }
  grpc::Status ReadAssessments(const Caller& caller) const {
    apb::ListAssessmentsRequest request;
    request.set_patient_id(patient_id_);
    apb::ListAssessmentsResponse response;
    return caller.Call(caller.assessment.get(), &apb::AssessmentService::Stub::ListAssessments, request, &response);
  }
  StatusCode ReadActivePlan(const Caller& caller) const {
    ppb::GetActivePlanRequest request;
    request.set_patient_id(patient_id_);
    ppb::GetActivePlanResponse response;
    return caller.Call(caller.planning.get(), &ppb::PlanningService::Stub::GetActivePlan, request, &response).error_code();
  }
  StatusCode ReadSummary(const Caller& caller) const {
    gpb::GetProgressSummaryRequest request;
    request.set_patient_id(patient_id_);
    gpb::GetProgressSummaryResponse response;
    return caller.Call(caller.progress.get(), &gpb::ProgressService::Stub::GetProgressSummary, request, &response)
        .error_code();
  }
  grpc::Status AuditPage(const Caller& auditor, const apb::AuditQuery& query, apb::ListAuditEventsResponse* out,
                         int page_size = 0, const std::string& token = "") const {
    apb::ListAuditEventsRequest request;
    *request.mutable_query() = query;
    request.set_page_size(page_size);
    request.set_page_token(token);
    return auditor.Call(auditor.assessment.get(), &apb::AssessmentService::Stub::ListAuditEvents, request, out);
  }
  std::vector<apb::AuditRecord> AllAudit(const Caller& auditor, const apb::AuditQuery& query, int page_size = 0) const {
    std::vector<apb::AuditRecord> all;
    std::string token;
    do {
      apb::ListAuditEventsResponse page;
      auto status = AuditPage(auditor, query, &page, page_size, token);
      EXPECT_TRUE(status.ok()) << status.error_message();
      if (!status.ok()) break;
      for (const auto& event : page.events()) all.push_back(event);
      token = page.next_page_token();
    } while (!token.empty());
    return all;
  }
};

// Consent ids are numbers: a withdrawal whose id is longer than the grant's (10,000,000,003
// after 9,999,999,998) is the decision in force and the last of the history. The history used to
// be sorted by the ids' text, so the grant came last and was shown as current.
TEST_F(ConsentAndAudit, TheCurrentDecisionIsTheNewestAcrossADigitBoundary) {
  postgres_->Execute("INSERT INTO assessment.consents (consent_id, tenant_id, patient_id, kind, decision, recorded_by,"
                     " recorded_by_role) OVERRIDING SYSTEM VALUE VALUES (9999999998, '" + tenant_ + "', '" +
                         patient_id_ + "', 'treatment', 'granted', 'clin-1', 'clinician'), (10000000003, '" + tenant_ +
                         "', '" + patient_id_ + "', 'treatment', 'withdrawn', '" + patient_id_ + "', 'patient')",
                     "physio");
  const Caller clinician = Token("clin-1", {"clinician"});
  apb::ListConsentsRequest list;
  list.set_patient_id(patient_id_);
  apb::ListConsentsResponse listed;
  ASSERT_TRUE(clinician.Call(clinician.assessment.get(), &apb::AssessmentService::Stub::ListConsents, list, &listed).ok());
  ASSERT_EQ(listed.history_size(), 2);
  EXPECT_EQ(listed.history(0).consent_id(), "consent-9999999998");
  EXPECT_EQ(listed.history(1).consent_id(), "consent-10000000003");
  ASSERT_EQ(listed.current_size(), 1);
  EXPECT_EQ(listed.current(0).decision(), apb::CONSENT_DECISION_WITHDRAWN);
}

TEST_F(ConsentAndAudit, ConsentsAreRecordsWithWhoAndWhenAndAWithdrawalIsANewRecord) {
  const Caller clinician = Token("clin-1", {"clinician"});
  const Caller patient = Patient();
  apb::RecordConsentResponse recorded;
  const std::string request_id = NewId("rq");
  ASSERT_TRUE(Consent(clinician, apb::CONSENT_KIND_TREATMENT, apb::CONSENT_DECISION_GRANTED, "", &recorded, request_id).ok());
  EXPECT_EQ(recorded.consent().recorded_by(), "clin-1");
  EXPECT_EQ(recorded.consent().recorded_by_role(), "clinician");
  EXPECT_GT(recorded.consent().record_time().seconds(), 0);
  // The same request again is the same record, not a second one.
  apb::RecordConsentResponse replayed;
  ASSERT_TRUE(Consent(clinician, apb::CONSENT_KIND_TREATMENT, apb::CONSENT_DECISION_GRANTED, "", &replayed, request_id).ok());
  EXPECT_EQ(replayed.consent().consent_id(), recorded.consent().consent_id());

  // The patient withdraws; they may not grant consent to manipulation themselves (a clinician obtains it).
  ASSERT_TRUE(Consent(patient, apb::CONSENT_KIND_TREATMENT, apb::CONSENT_DECISION_WITHDRAWN).ok());
  auto refused = Consent(patient, apb::CONSENT_KIND_MANIPULATION, apb::CONSENT_DECISION_GRANTED);
  EXPECT_EQ(refused.error_code(), StatusCode::PERMISSION_DENIED);
  // Another patient's consents are not theirs to change.
  apb::RecordConsentRequest other;
  other.set_request_id(NewId("rq"));
  other.set_patient_id("pt-someone-else");
  other.set_kind(apb::CONSENT_KIND_DATA_SHARING);
  other.set_platform("acme-tele");
  other.set_decision(apb::CONSENT_DECISION_WITHDRAWN);
  apb::RecordConsentResponse ignored;
  EXPECT_EQ(patient.Call(patient.assessment.get(), &apb::AssessmentService::Stub::RecordConsent, other, &ignored).error_code(),
            StatusCode::PERMISSION_DENIED);

  apb::ListConsentsRequest list;
  list.set_patient_id(patient_id_);
  apb::ListConsentsResponse listed;
  ASSERT_TRUE(patient.Call(patient.assessment.get(), &apb::AssessmentService::Stub::ListConsents, list, &listed).ok());
  ASSERT_EQ(listed.history_size(), 2);
  EXPECT_EQ(listed.history(0).decision(), apb::CONSENT_DECISION_GRANTED);
  EXPECT_EQ(listed.history(1).decision(), apb::CONSENT_DECISION_WITHDRAWN);
  EXPECT_EQ(listed.history(1).recorded_by(), patient_id_);
  EXPECT_EQ(listed.history(1).recorded_by_role(), "patient");
  ASSERT_EQ(listed.current_size(), 1);
  EXPECT_EQ(listed.current(0).kind(), apb::CONSENT_KIND_TREATMENT);
  EXPECT_EQ(listed.current(0).decision(), apb::CONSENT_DECISION_WITHDRAWN);

  // Bad input names the field.
  auto bad = Consent(clinician, apb::CONSENT_KIND_UNSPECIFIED, apb::CONSENT_DECISION_GRANTED);
  EXPECT_EQ(bad.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(bad.error_message().rfind("kind", 0), 0u) << bad.error_message();
  bad = Consent(clinician, apb::CONSENT_KIND_DATA_SHARING, apb::CONSENT_DECISION_GRANTED);
  EXPECT_EQ(bad.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(bad.error_message().rfind("platform", 0), 0u) << bad.error_message();
  bad = Consent(clinician, apb::CONSENT_KIND_TREATMENT, apb::CONSENT_DECISION_GRANTED, "acme-tele");
  EXPECT_EQ(bad.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(bad.error_message().rfind("platform", 0), 0u) << bad.error_message();
  bad = Consent(clinician, apb::CONSENT_KIND_TREATMENT, apb::CONSENT_DECISION_UNSPECIFIED);
  EXPECT_EQ(bad.error_message().rfind("decision", 0), 0u) << bad.error_message();
}

TEST_F(ConsentAndAudit, ApprovingAPlanWithoutManipulationRecordsNoConsentToIt) {
  // (A plan with manipulation records the clinician's confirmed consent: safety_test, SharedDecisions...)
  const Caller clinician = Token("clin-1", {"clinician"});
  const ppb::Plan plan = ApprovedPlanFor(clinician, patient_id_);
  ASSERT_EQ(plan.status(), ppb::PLAN_STATUS_ACTIVE);
  ASSERT_TRUE(plan.manipulation_consent_recorded_by().empty());
  apb::ListConsentsRequest list;
  list.set_patient_id(patient_id_);
  apb::ListConsentsResponse listed;
  ASSERT_TRUE(clinician.Call(clinician.assessment.get(), &apb::AssessmentService::Stub::ListConsents, list, &listed).ok());
  EXPECT_EQ(listed.history_size(), 0);
}

TEST_F(ConsentAndAudit, APlatformReachesAPatientOnlyWhileThePatientConsentsToSharingWithIt) {
  const Caller clinician = Token("clin-1", {"clinician"});
  ApprovedPlanFor(clinician, patient_id_);  // an assessment, a plan and their audit rows
  const Caller patient_via_acme = PatientThrough("acme-tele");
  const Caller acme_physio = Token("acme-physio-1", {"clinician"}, {}, "acme-tele");
  const Caller beta_physio = Token("beta-physio-1", {"clinician"}, {}, "beta-tele");

  // No consent yet: the platform's physio learns nothing, the patient is told what is missing.
  EXPECT_EQ(ReadAssessments(acme_physio).error_code(), StatusCode::NOT_FOUND);
  auto refused = ReadAssessments(patient_via_acme);
  EXPECT_EQ(refused.error_code(), StatusCode::PERMISSION_DENIED);
  EXPECT_NE(refused.error_message().find("acme-tele"), std::string::npos) << refused.error_message();
  EXPECT_TRUE(ReadAssessments(Patient()).ok());  // the patient's own app, not through a platform
  // The platform's staff cannot consent on the patient's behalf to their own platform.
  EXPECT_EQ(Consent(acme_physio, apb::CONSENT_KIND_DATA_SHARING, apb::CONSENT_DECISION_GRANTED, "acme-tele").error_code(),
            StatusCode::NOT_FOUND);

  // The patient grants sharing with acme through acme's app.
  ASSERT_TRUE(Consent(patient_via_acme, apb::CONSENT_KIND_DATA_SHARING, apb::CONSENT_DECISION_GRANTED, "acme-tele").ok());
  EXPECT_TRUE(ReadAssessments(patient_via_acme).ok());
  EXPECT_TRUE(ReadAssessments(acme_physio).ok());
  EXPECT_EQ(ReadAssessments(beta_physio).error_code(), StatusCode::NOT_FOUND);  // another platform: no consent
  // Every service honours it (their directory caches last patient-clinics-cache-ms).
  auto eventually = [](const std::function<bool()>& condition) {
    for (int i = 0; i < 60 && !condition(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    return condition();
  };
  EXPECT_TRUE(eventually([&] { return ReadActivePlan(acme_physio) == StatusCode::OK; }));
  EXPECT_TRUE(eventually([&] { return ReadSummary(acme_physio) == StatusCode::OK; }));

  // The patient withdraws, through the same app: answered (not NOT_FOUND after the commit) ...
  apb::RecordConsentResponse withdrawn;
  ASSERT_TRUE(Consent(patient_via_acme, apb::CONSENT_KIND_DATA_SHARING, apb::CONSENT_DECISION_WITHDRAWN, "acme-tele",
                      &withdrawn).ok());
  EXPECT_EQ(withdrawn.consent().recorded_through_platform(), "acme-tele");
  // ... and acme's access stops: at once in the assessment service, within the cache time elsewhere.
  EXPECT_EQ(ReadAssessments(acme_physio).error_code(), StatusCode::NOT_FOUND);
  EXPECT_EQ(ReadAssessments(patient_via_acme).error_code(), StatusCode::PERMISSION_DENIED);
  EXPECT_TRUE(eventually([&] { return ReadActivePlan(acme_physio) == StatusCode::NOT_FOUND; }));
  EXPECT_TRUE(eventually([&] { return ReadSummary(acme_physio) == StatusCode::NOT_FOUND; }));
  EXPECT_TRUE(ReadAssessments(clinician).ok());  // the clinic's own staff are not affected
  // The Connect/JSON port applies the same rule.
  httplib::Client http("127.0.0.1", cluster_->planning_http_port());
  auto answered = http.Post("/physio.planning.v1.PlanningService/GetActivePlan",
                            {{"Authorization", BearerFor("acme-physio-1", {"clinician"}, "acme-tele")}},
                            "{\"patientId\":\"" + patient_id_ + "\"}", "application/json");
  ASSERT_TRUE(answered);
  EXPECT_EQ(answered->status, 404);
}

TEST_F(ConsentAndAudit, AnAuditorReadsWhoTouchedAPatientAcrossTheServicesFilteredAndPaged) {
  const Caller north = Token("clin-north", {"clinician"}, {"north"});
  const Caller south = Token("clin-south", {"clinician"}, {"south"});
  ApprovedPlanFor(north, patient_id_);  // assessment and planning rows, enrolled at north
  EXPECT_EQ(ReadSummary(north), StatusCode::OK);  // a progress row
  EXPECT_EQ(ReadAssessments(south).error_code(), StatusCode::NOT_FOUND);  // a refused look from another clinic
  const Caller auditor = Auditor();

  // Up to now: reading the trail adds records of its own (below), which would move the counts.
  apb::AuditQuery by_patient;
  by_patient.set_patient_id(patient_id_);
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  by_patient.mutable_to_time()->set_seconds(std::chrono::duration_cast<std::chrono::seconds>(now).count());
  by_patient.mutable_to_time()->set_nanos(static_cast<int>(std::chrono::duration_cast<std::chrono::nanoseconds>(now).count() % 1000000000));
  const auto all = AllAudit(auditor, by_patient);
  std::set<std::string> services, actors;
  for (std::size_t i = 0; i < all.size(); ++i) {
    EXPECT_EQ(all[i].patient_id(), patient_id_);
    services.insert(all[i].service());
    actors.insert(all[i].actor());
    if (i > 0) {  // newest first
      const auto& newer = all[i - 1].occurred_time();
      const auto& older = all[i].occurred_time();
      EXPECT_TRUE(newer.seconds() > older.seconds() ||
                  (newer.seconds() == older.seconds() && newer.nanos() >= older.nanos()));
    }
  }
  EXPECT_EQ(services, (std::set<std::string>{"assessment", "planning", "progress"}));
  EXPECT_TRUE(actors.contains("clin-north"));
  EXPECT_TRUE(actors.contains("clin-south"));

  // Paged in twos: the same records, none twice.
  const auto paged = AllAudit(auditor, by_patient, 2);
  ASSERT_EQ(paged.size(), all.size());
  std::set<std::string> seen;
  for (const auto& event : paged) EXPECT_TRUE(seen.insert(event.service() + ":" + std::to_string(event.event_id())).second);

  // By actor and outcome: the other clinic's refused look, and nothing else of theirs.
  apb::AuditQuery refusals = by_patient;
  refusals.set_actor("clin-south");
  const auto south_rows = AllAudit(auditor, refusals);
  ASSERT_EQ(south_rows.size(), 1u);
  EXPECT_EQ(south_rows[0].action(), "ListAssessments");
  EXPECT_EQ(south_rows[0].outcome(), "NOT_FOUND");
  refusals.clear_actor();
  refusals.set_outcome("NOT_FOUND");
  EXPECT_EQ(AllAudit(auditor, refusals).size(), 1u);
  // By service, by clinic, by time.
  apb::AuditQuery planning_only = by_patient;
  planning_only.set_service("planning");
  for (const auto& event : AllAudit(auditor, planning_only)) EXPECT_EQ(event.service(), "planning");
  apb::AuditQuery at_north = by_patient;
  at_north.set_clinic_id("north");
  EXPECT_EQ(AllAudit(auditor, at_north).size(), all.size());
  apb::AuditQuery at_south = by_patient;
  at_south.set_clinic_id("south");
  EXPECT_TRUE(AllAudit(auditor, at_south).empty());
  apb::AuditQuery later = by_patient;
  later.mutable_from_time()->set_seconds(std::time(nullptr) + 3600);
  EXPECT_TRUE(AllAudit(auditor, later).empty());
  apb::AuditQuery earlier = by_patient;
  earlier.mutable_to_time()->set_seconds(std::time(nullptr) - 3600);
  apb::AuditQuery including_reads = by_patient;
  including_reads.clear_to_time();
  EXPECT_GT(AllAudit(auditor, including_reads).size(), all.size());  // the auditor's own reads, since
  EXPECT_TRUE(AllAudit(auditor, earlier).empty());
  // Any time a Timestamp holds is a bound: before the trail began, it matches nothing or narrows nothing.
  apb::AuditQuery before_1970 = by_patient;
  before_1970.mutable_to_time()->set_seconds(-86400);
  EXPECT_TRUE(AllAudit(auditor, before_1970).empty());
  apb::AuditQuery since_year_1 = by_patient;
  since_year_1.mutable_from_time()->set_seconds(-62135596800);
  EXPECT_GE(AllAudit(auditor, since_year_1).size(), all.size());

  // An auditor of the south clinic reads only south's patients.
  const Caller south_auditor = Auditor({"south"});
  EXPECT_TRUE(AllAudit(south_auditor, including_reads).empty());
  apb::ListAuditEventsResponse page;
  EXPECT_EQ(AuditPage(south_auditor, at_north, &page).error_code(), StatusCode::PERMISSION_DENIED);

  // Reading the trail is itself in the trail, naming the patient asked about.
  apb::AuditQuery reads_of_trail;
  reads_of_trail.set_actor("dpo-1");
  reads_of_trail.set_patient_id(patient_id_);
  const auto trail_reads = AllAudit(auditor, reads_of_trail);
  ASSERT_FALSE(trail_reads.empty());
  EXPECT_EQ(trail_reads.front().action(), "ListAuditEvents");
  EXPECT_EQ(trail_reads.front().service(), "assessment");
  EXPECT_EQ(trail_reads.front().actor_roles(), "auditor");

  // Roles: an auditor has no clinical access; a clinician cannot read the trail.
  EXPECT_EQ(ReadAssessments(auditor).error_code(), StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(ReadActivePlan(auditor), StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(AuditPage(north, by_patient, &page).error_code(), StatusCode::PERMISSION_DENIED);

  // Bad input: the field is named; a page token of another query is refused.
  apb::AuditQuery bad = by_patient;
  bad.set_outcome("FINE");
  auto status = AuditPage(auditor, bad, &page);
  EXPECT_EQ(status.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message().rfind("query.outcome", 0), 0u) << status.error_message();
  bad = by_patient;
  bad.set_service("billing");
  EXPECT_EQ(AuditPage(auditor, bad, &page).error_code(), StatusCode::INVALID_ARGUMENT);
  ASSERT_TRUE(AuditPage(auditor, by_patient, &page, 1).ok());
  ASSERT_FALSE(page.next_page_token().empty());
  status = AuditPage(auditor, refusals, &page, 1, page.next_page_token());
  EXPECT_EQ(status.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message().rfind("page_token", 0), 0u) << status.error_message();
  EXPECT_EQ(AuditPage(auditor, by_patient, &page, 1, "zz").error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(AuditPage(auditor, by_patient, &page, 501).error_code(), StatusCode::INVALID_ARGUMENT);
}

TEST_F(ConsentAndAudit, TheTrailExportsAsFhirAuditEventsFollowingBalp) {
  const Caller clinician = Token("clin-1", {"clinician"});
  ApprovedPlanFor(clinician, patient_id_);
  EXPECT_EQ(ReadAssessments(Token("clin-2", {"clinician"}, {}, "acme-tele")).error_code(), StatusCode::NOT_FOUND);
  apb::ExportAuditEventsRequest request;
  request.mutable_query()->set_patient_id(patient_id_);
  request.set_page_size(500);
  apb::ExportAuditEventsResponse response;
  const Caller auditor = Auditor();
  ASSERT_TRUE(auditor.Call(auditor.assessment.get(), &apb::AssessmentService::Stub::ExportAuditEvents, request, &response).ok());
  const auto bundle = nlohmann::json::parse(response.fhir_json());
  EXPECT_EQ(bundle["resourceType"], "Bundle");
  EXPECT_EQ(bundle["type"], "collection");
  ASSERT_GE(bundle["entry"].size(), 4u);
  bool success_seen = false, failure_seen = false;
  for (const auto& entry : bundle["entry"]) {
    const auto& event = entry["resource"];
    EXPECT_EQ(event["resourceType"], "AuditEvent");
    EXPECT_EQ(event["type"]["code"], "rest");
    bool patient_entity = false;
    for (const auto& entity : event["entity"]) {
      if (entity.contains("role") && entity["role"]["code"] == "1") {
        patient_entity = entity["what"]["reference"] == "Patient/" + patient_id_;
      }
    }
    EXPECT_TRUE(patient_entity) << event.dump();
    if (event["outcome"] == "0") {
      success_seen = true;
      ASSERT_TRUE(event.contains("meta"));
      EXPECT_EQ(event["meta"]["profile"][0].get<std::string>().rfind("https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.Patient", 0), 0u);
    } else {
      failure_seen = true;
      EXPECT_EQ(event["outcome"], "4");  // NOT_FOUND: a minor failure
      EXPECT_FALSE(event.contains("meta"));
    }
  }
  EXPECT_TRUE(success_seen);
  EXPECT_TRUE(failure_seen);
  EXPECT_TRUE(FhirValid(response.fhir_json(), "audit"));

  // The Connect/JSON port serves the same API.
  httplib::Client http("127.0.0.1", cluster_->assessment_http_port());
  TokenRequest token{kIssuer, kAudience, tenant_, "dpo-1", {"auditor"}};
  auto answered = http.Post("/physio.assessment.v1.AssessmentService/ListAuditEvents",
                            {{"Authorization", "Bearer " + MintToken(keys_->private_key_pem, token)}},
                            "{\"query\":{\"patientId\":\"" + patient_id_ + "\"},\"pageSize\":3}", "application/json");
  ASSERT_TRUE(answered);
  ASSERT_EQ(answered->status, 200) << answered->body;
  const auto listed = nlohmann::json::parse(answered->body);
  EXPECT_EQ(listed["events"].size(), 3u);
  EXPECT_FALSE(listed["nextPageToken"].get<std::string>().empty());
}

}  // namespace
}  // namespace physio::testing
