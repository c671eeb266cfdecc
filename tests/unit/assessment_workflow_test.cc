// The assessment use cases' successful paths over in-memory stores
// (tests/support/fake_stores.h): an intake answered over several screens
// becomes one scored assessment, replays return the first response, and a
// clinician's red-flag judgement is versioned. Milliseconds; the integration
// suites run the same workflow over Redis and PostgreSQL.
#include <gtest/gtest.h>

#include <functional>
#include <thread>

#include "assessment_app.h"
#include "fhir_audit.h"
#include <nlohmann/json.hpp>
#include "clients.h"
#include "fake_stores.h"
#include "physio/common/error.h"
#include "use_case_support.h"

namespace physio::testing {
namespace {

class AssessmentWorkflow : public ::testing::Test {
 protected:
  FakeSessionIdempotency session_idempotency;
  FakeIntakeStore intakes;
  FakeAssessmentRecords records;
  assessment::AssessmentApp app{{session_idempotency, intakes, records}, assessment::AssessmentSettings{}};
  AuditTarget audit;
  const CallContext patient = CallerAs(Role::kPatient, "pt-1");
  const CallContext clinician = CallerAs(Role::kClinician);

  std::string StartIntake() {
    apb::StartIntakeRequest start;
    start.set_request_id("rq-start");
    start.set_patient_id("pt-1");
    return app.StartIntake(patient, start, audit).session().session_id();
  }
  // Pain 6 on the first screen, ODI 2 in every section on the second.
  void AnswerBothScreens(const std::string& session_id) {
    apb::SubmitIntakeAnswersRequest pain;
    pain.set_request_id("rq-pain");
    pain.set_session_id(session_id);
    *pain.add_answers() = Answer(cpb::INSTRUMENT_NPRS, "nprs", 6);
    app.SubmitIntakeAnswers(patient, pain, audit);
    apb::SubmitIntakeAnswersRequest odi;
    odi.set_request_id("rq-odi");
    odi.set_session_id(session_id);
    for (int i = 1; i <= 10; ++i) *odi.add_answers() = Answer(cpb::INSTRUMENT_ODI, "odi." + std::to_string(i), 2);
    app.SubmitIntakeAnswers(patient, odi, audit);
  }
  apb::CompleteIntakeRequest Complete(const std::string& session_id, const std::string& request_id = "rq-done") {
    apb::CompleteIntakeRequest complete;
    complete.set_request_id(request_id);
    complete.set_session_id(session_id);
    return complete;
  }
};

TEST_F(AssessmentWorkflow, AnIntakeAnsweredOverTwoScreensBecomesOneScoredAssessment) {
  const std::string session_id = StartIntake();
  AnswerBothScreens(session_id);
  apb::GetIntakeRequest get_intake;
  get_intake.set_session_id(session_id);
  const auto session = app.GetIntake(patient, get_intake, audit).session();
  ASSERT_EQ(session.progress_size(), 2);  // the default instruments, NPRS and ODI, both complete
  EXPECT_TRUE(session.progress(0).complete() && session.progress(1).complete());

  const auto assessment = app.CompleteIntake(patient, Complete(session_id), audit).assessment();
  EXPECT_EQ(audit.patient_id, "pt-1");
  EXPECT_EQ(assessment.intake_session_id(), session_id);
  ASSERT_EQ(assessment.scores_size(), 2);
  EXPECT_EQ(assessment.scores(0).score(), 6);   // NPRS
  EXPECT_EQ(assessment.scores(1).score(), 40);  // ODI: 20 of 50 points
  EXPECT_EQ(assessment.etag(), "v1");
  EXPECT_EQ(assessment.red_flags().action(), apb::RED_FLAG_ACTION_NOT_SCREENED);
  ASSERT_EQ(records.state.events.size(), 2u);
  EXPECT_EQ(records.state.events[0].kind, "EVENT_KIND_ASSESSMENT_STORED");
  EXPECT_EQ(records.state.events[1].kind, "EVENT_KIND_INTAKE_COMPLETED");
  EXPECT_EQ(records.state.events[1].resource_id, assessment.assessment_id());
  EXPECT_EQ(intakes.sessions.at({"t-1", session_id}).assessment_id(), assessment.assessment_id());

  apb::GetAssessmentRequest get;
  get.set_assessment_id(assessment.assessment_id());
  EXPECT_EQ(app.GetAssessment(clinician, get, audit).assessment().SerializeAsString(), assessment.SerializeAsString());
  apb::ListAssessmentsRequest list;
  list.set_patient_id("pt-1");
  const auto listed = app.ListAssessments(patient, list, audit);
  ASSERT_EQ(listed.assessments_size(), 1);
  EXPECT_EQ(listed.assessments(0).assessment_id(), assessment.assessment_id());
  EXPECT_TRUE(listed.next_page_token().empty());
}

TEST_F(AssessmentWorkflow, ARetriedCompletionReplaysAndAnotherRequestIsRefused) {
  const std::string session_id = StartIntake();
  AnswerBothScreens(session_id);
  const auto first = app.CompleteIntake(patient, Complete(session_id), audit).assessment();
  const auto retried = app.CompleteIntake(patient, Complete(session_id), audit).assessment();
  EXPECT_EQ(retried.assessment_id(), first.assessment_id());
  EXPECT_EQ(records.committed_writes, 1);
  EXPECT_EQ(records.state.assessments.size(), 1u);
  EXPECT_EQ(CodeOf([&] { app.CompleteIntake(patient, Complete(session_id, "rq-again"), audit); }),
            ErrorCode::kFailedPrecondition);
  // Its request id with another request's content is refused, not replayed.
  auto other = Complete("intake_other");
  EXPECT_EQ(CodeOf([&] { app.CompleteIntake(patient, other, audit); }), ErrorCode::kInvalidArgument);
}

TEST_F(AssessmentWorkflow, AnotherPatientsIntakeAndAssessmentAreNotThere) {
  const std::string session_id = StartIntake();
  AnswerBothScreens(session_id);
  const auto assessment = app.CompleteIntake(patient, Complete(session_id), audit).assessment();
  const CallContext other = CallerAs(Role::kPatient, "pt-2");
  apb::GetIntakeRequest get_intake;
  get_intake.set_session_id(session_id);
  EXPECT_EQ(CodeOf([&] { app.GetIntake(other, get_intake, audit); }), ErrorCode::kNotFound);
  apb::GetAssessmentRequest get;
  get.set_assessment_id(assessment.assessment_id());
  EXPECT_EQ(CodeOf([&] { app.GetAssessment(other, get, audit); }), ErrorCode::kNotFound);
  CallContext other_tenant = clinician;
  other_tenant.tenant = "t-2";
  EXPECT_EQ(CodeOf([&] { app.GetAssessment(other_tenant, get, audit); }), ErrorCode::kNotFound);
}

// Which clinics each patient is enrolled at, as the clinic scoping asks it.
class Enrolments final : public PatientClinicsSource {
 public:
  PatientReach ReachOf(const std::string&, const std::string& patient_id, Clock::time_point) const override {
    PatientReach reach;
    if (auto found = clinics.find(patient_id); found != clinics.end()) reach.clinics = {found->second};
    return reach;
  }
  void Forget(const std::string&, const std::string&) const override {}
  std::map<std::string, std::string> clinics;
};

// Staff change an intake only of a patient of their clinics. The session's patient is
// remembered (it never changes), the patient's clinics are not: a transfer counts at once.
TEST_F(AssessmentWorkflow, StaffChangeAnIntakeOnlyOfAPatientOfTheirClinicsAsTheyAreNow) {
  Enrolments enrolments;
  enrolments.clinics["pt-1"] = "north";
  auto staff_of = [&](const std::string& clinic) {
    CallContext ctx = CallerAs(Role::kClinician);
    ctx.clinics = {clinic};
    ctx.patient_clinics = &enrolments;
    return ctx;
  };
  auto pain = [](const std::string& session_id, const std::string& request_id, int value) {
    apb::SubmitIntakeAnswersRequest request;
    request.set_request_id(request_id);
    request.set_session_id(session_id);
    *request.add_answers() = Answer(cpb::INSTRUMENT_NPRS, "nprs", value);
    return request;
  };
  auto pain_stored = [&](const std::string& session_id) {
    const auto& answers = intakes.sessions.at({"t-1", session_id}).answers();
    return answers.empty() ? -1 : answers[0].value();
  };
  const std::string session_id = StartIntake();  // this process now knows the session's patient
  const int reads_before = intakes.reads;
  EXPECT_EQ(CodeOf([&] { app.SubmitIntakeAnswers(staff_of("south"), pain(session_id, "rq-s1", 9), audit); }),
            ErrorCode::kNotFound);
  EXPECT_EQ(pain_stored(session_id), -1);
  EXPECT_EQ(app.SubmitIntakeAnswers(staff_of("north"), pain(session_id, "rq-n1", 4), audit).session().answers(0).value(), 4);
  EXPECT_EQ(intakes.reads, reads_before);  // the clinic check read no session: its patient was known
  EXPECT_EQ(CodeOf([&] { app.CompleteIntake(staff_of("south"), Complete(session_id, "rq-s2"), audit); }),
            ErrorCode::kNotFound);

  // Transferred to south: north's staff no longer change it, south's now do.
  enrolments.clinics["pt-1"] = "south";
  EXPECT_EQ(CodeOf([&] { app.SubmitIntakeAnswers(staff_of("north"), pain(session_id, "rq-n2", 8), audit); }),
            ErrorCode::kNotFound);
  EXPECT_EQ(pain_stored(session_id), 4);
  EXPECT_EQ(app.SubmitIntakeAnswers(staff_of("south"), pain(session_id, "rq-s3", 5), audit).session().answers(0).value(), 5);

  // A process that has not seen the session reads it for the check, with the same answers.
  assessment::AssessmentApp restarted{{session_idempotency, intakes, records}, assessment::AssessmentSettings{}};
  EXPECT_EQ(CodeOf([&] { restarted.SubmitIntakeAnswers(staff_of("north"), pain(session_id, "rq-n3", 7), audit); }),
            ErrorCode::kNotFound);
  EXPECT_EQ(intakes.reads, reads_before + 1);
  EXPECT_EQ(pain_stored(session_id), 5);
  // An unknown session is not found, whoever asks.
  EXPECT_EQ(CodeOf([&] { app.SubmitIntakeAnswers(staff_of("south"), pain("intake_nothere", "rq-s4", 5), audit); }),
            ErrorCode::kNotFound);
}

TEST_F(AssessmentWorkflow, ARedFlagJudgementIsVersionedAndAComputedEmergencyIsLoweredOnlyWhenAcknowledged) {
  // Saddle numbness with new bladder disturbance: suspected cauda equina, an emergency.
  apb::CreateAssessmentRequest create;
  create.set_request_id("rq-create");
  create.set_patient_id("pt-1");
  *create.add_answers() = Answer(cpb::INSTRUMENT_NPRS, "nprs", 6);
  create.mutable_red_flag_screen()->set_saddle_numbness(true);
  create.mutable_red_flag_screen()->set_bladder_or_bowel_disturbance(true);
  const auto assessment = app.CreateAssessment(clinician, create, audit).assessment();
  ASSERT_EQ(assessment.red_flags().action(), apb::RED_FLAG_ACTION_EMERGENCY_REFERRAL);
  ASSERT_EQ(records.state.events.size(), 2u);
  EXPECT_EQ(records.state.events[1].kind, "EVENT_KIND_RED_FLAG_RAISED");

  apb::RecordRedFlagJudgementRequest judge;
  judge.set_request_id("rq-judge");
  judge.set_assessment_id(assessment.assessment_id());
  judge.set_etag(assessment.etag());
  judge.set_action(apb::RED_FLAG_ACTION_ROUTINE_REFERRAL);
  judge.set_rationale("symptoms long-standing, examined today, no neurological deficit");
  EXPECT_EQ(CodeOf([&] { app.RecordRedFlagJudgement(clinician, judge, audit); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(records.state.assessments.begin()->second.version, 1);  // the refused write left nothing

  judge.set_acknowledge_computed_emergency(true);
  const auto judged = app.RecordRedFlagJudgement(clinician, judge, audit).assessment();
  EXPECT_EQ(judged.etag(), "v2");
  EXPECT_EQ(judged.clinician_red_flag_judgement().action(), apb::RED_FLAG_ACTION_ROUTINE_REFERRAL);
  EXPECT_EQ(judged.clinician_red_flag_judgement().clinician(), "staff-1");
  // A judgement made against the old etag is refused: the clinician must read the new one.
  judge.set_request_id("rq-judge-2");
  EXPECT_EQ(CodeOf([&] { app.RecordRedFlagJudgement(clinician, judge, audit); }), ErrorCode::kAborted);
}

// A fake audit trail: the filter and page the use case asked for, and fixed records.
class FakeAuditLog final : public assessment::AuditLog {
 public:
  assessment::AuditPage List(const std::string& tenant, const assessment::AuditFilter& filter, const KeysetPosition&,
                             int page_size, Clock::time_point) override {
    last_tenant = tenant;
    last_filter = filter;
    last_page_size = page_size;
    return {};
  }
  std::string last_tenant;
  assessment::AuditFilter last_filter;
  int last_page_size = 0;
};

TEST_F(AssessmentWorkflow, ConsentsKeepEveryDecisionAndWhoRecordedIt) {
  apb::RecordConsentRequest grant;
  grant.set_request_id("rq-c1");
  grant.set_patient_id("pt-1");
  grant.set_kind(apb::CONSENT_KIND_MANIPULATION);
  grant.set_decision(apb::CONSENT_DECISION_GRANTED);
  grant.set_note("explained risks, verbal consent");
  const auto granted = app.RecordConsent(clinician, grant, audit);
  EXPECT_EQ(granted.consent().recorded_by(), "staff-1");
  EXPECT_EQ(audit.patient_id, "pt-1");
  EXPECT_EQ(audit.resource_id, granted.consent().consent_id());
  ASSERT_EQ(records.state.events.size(), 1u);
  EXPECT_EQ(records.state.events[0].kind, "EVENT_KIND_CONSENT_RECORDED");
  // The patient may withdraw it, not grant it.
  EXPECT_EQ(CodeOf([&] { app.RecordConsent(patient, grant, audit); }), ErrorCode::kPermissionDenied);
  grant.set_request_id("rq-c2");
  grant.set_decision(apb::CONSENT_DECISION_WITHDRAWN);
  app.RecordConsent(patient, grant, audit);
  EXPECT_EQ(records.state.events.back().kind, "EVENT_KIND_CONSENT_WITHDRAWN");
  // Sharing: granted by the patient; a platform's staff may not grant it for their own platform.
  apb::RecordConsentRequest share;
  share.set_request_id("rq-c3");
  share.set_patient_id("pt-1");
  share.set_kind(apb::CONSENT_KIND_DATA_SHARING);
  share.set_platform("acme");
  share.set_decision(apb::CONSENT_DECISION_GRANTED);
  CallContext acme_physio = clinician;
  acme_physio.platform = "acme";
  EXPECT_EQ(CodeOf([&] { app.RecordConsent(acme_physio, share, audit); }), ErrorCode::kPermissionDenied);
  const auto shared = app.RecordConsent(patient, share, audit);
  ASSERT_EQ(shared.current_size(), 2);  // manipulation (withdrawn) and sharing with acme (granted)
  EXPECT_EQ(shared.current(0).kind(), apb::CONSENT_KIND_MANIPULATION);
  EXPECT_EQ(shared.current(0).decision(), apb::CONSENT_DECISION_WITHDRAWN);
  EXPECT_EQ(shared.current(1).platform(), "acme");
  apb::ListConsentsRequest list;
  list.set_patient_id("pt-1");
  EXPECT_EQ(app.ListConsents(clinician, list, audit).history_size(), 3);
  // Another patient's: refused.
  EXPECT_EQ(CodeOf([&] { app.ListConsents(CallerAs(Role::kPatient, "pt-2"), list, audit); }),
            ErrorCode::kPermissionDenied);
}

TEST_F(AssessmentWorkflow, AnAuditorOfSomeClinicsReadsOnlyTheirPatientsRecords) {
  FakeAuditLog trail;
  assessment::AssessmentApp with_trail{{session_idempotency, intakes, records, &trail}, assessment::AssessmentSettings{}};
  CallContext auditor = CallerAs(Role::kAuditor);
  auditor.clinics = {"north", "east"};
  apb::ListAuditEventsRequest request;
  request.mutable_query()->set_patient_id("pt-1");
  with_trail.ListAuditEvents(auditor, request, audit);
  EXPECT_EQ(trail.last_tenant, "t-1");
  EXPECT_EQ(trail.last_filter.clinics, (std::set<std::string>{"east", "north"}));
  EXPECT_EQ(trail.last_page_size, 100);
  EXPECT_EQ(audit.patient_id, "pt-1");  // the read of the patient's trail is audited as theirs
  request.mutable_query()->set_clinic_id("south");
  EXPECT_EQ(CodeOf([&] { with_trail.ListAuditEvents(auditor, request, audit); }), ErrorCode::kPermissionDenied);
  request.mutable_query()->set_clinic_id("north");
  with_trail.ListAuditEvents(auditor, request, audit);
  EXPECT_EQ(trail.last_filter.clinics, std::set<std::string>{"north"});
  // The tenant's compliance office (no clinics in its token): the whole trail.
  const CallContext office = CallerAs(Role::kAuditor);
  request.mutable_query()->clear_clinic_id();
  with_trail.ListAuditEvents(office, request, audit);
  EXPECT_TRUE(trail.last_filter.clinics.empty());
  // Any time a Timestamp holds is a bound, before 1970 too; one past its range is refused.
  request.mutable_query()->mutable_from_time()->set_seconds(-5);
  with_trail.ListAuditEvents(office, request, audit);
  EXPECT_EQ(trail.last_filter.from_time, "1969-12-31T23:59:55Z");
  request.mutable_query()->mutable_from_time()->set_seconds(-62135596801);
  EXPECT_EQ(CodeOf([&] { with_trail.ListAuditEvents(office, request, audit); }), ErrorCode::kInvalidArgument);
}

// A search reads the patient's assessments a page at a time and maps each page to FHIR between the
// reads; every read gets the store's budget from when it starts, so a slow page (or a slow mapping,
// under the sanitizers) leaves the next read its time (a CI run under the sanitizers failed so: a
// later read refused with "deadline exceeded before anything was sent").
TEST_F(AssessmentWorkflow, AFhirSearchGivesEachPageItsOwnStoreBudget) {
  for (int i = 0; i < 250; ++i) {
    apb::Assessment stored;
    stored.set_assessment_id("asm_" + std::to_string(1000 + i));
    stored.set_patient_id("pt-1");
    stored.mutable_create_time()->set_seconds(1'796'000'000 + i);
    auto* score = stored.add_scores();
    score->set_instrument(cpb::INSTRUMENT_NPRS);
    score->set_score(i % 11);
    records.state.assessments[{"t-1", stored.assessment_id()}] = {stored, 1};
    records.state.order[{"t-1", stored.assessment_id()}] = i + 1;
  }
  records.before_list = [] { std::this_thread::sleep_for(std::chrono::milliseconds(30)); };
  CallContext caller = CallerAs(Role::kClinician);
  caller.deadline = Clock::now() + std::chrono::seconds(60);
  apb::SearchFhirRequest search;
  search.set_resource_type("Observation");
  search.set_patient_id("pt-1");
  search.set_count(100);
  const auto page = app.SearchFhir(caller, search, audit);
  ASSERT_EQ(page.resources_json_size(), 100);
  EXPECT_EQ(nlohmann::json::parse(page.resources_json(0))["id"], "asm-1249.obs-nprs");  // newest first
  EXPECT_FALSE(page.next_cursor().empty());
  ASSERT_EQ(records.list_deadlines.size(), 3u);  // pages of 100, 100 and 50
  EXPECT_GE(records.list_deadlines[1] - records.list_deadlines[0], std::chrono::milliseconds(30));
  EXPECT_GE(records.list_deadlines[2] - records.list_deadlines[1], std::chrono::milliseconds(30));
  EXPECT_EQ(audit.patient_id, "pt-1");
}

TEST(FhirAudit, RecordsBecomeBalpAuditEvents) {
  apb::AuditRecord read;
  read.set_service("planning");
  read.set_event_id(42);
  read.mutable_occurred_time()->set_seconds(1795000000);
  read.set_actor("clin-1");
  read.set_actor_roles("clinician");
  read.set_action("GetActivePlan");
  read.set_patient_id("pt-1");
  read.set_outcome("OK");
  read.set_request_id("rq-1");
  read.set_peer("ipv4:10.0.0.7:5123");
  auto event = assessment::AuditEventResource(read, "urn:example:patients");
  EXPECT_EQ(event["id"], "planning-42");
  EXPECT_EQ(event["action"], "R");
  EXPECT_EQ(event["subtype"][0]["code"], "read");
  EXPECT_EQ(event["outcome"], "0");
  EXPECT_EQ(event["meta"]["profile"][0], "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.PatientRead");
  EXPECT_EQ(event["agent"][0]["who"]["identifier"]["value"], "clin-1");
  EXPECT_EQ(event["agent"][1]["network"]["address"], "ipv4:10.0.0.7:5123");
  EXPECT_EQ(event["entity"][1]["what"]["reference"], "Patient/pt-1");
  // A list is a query (Execute); a refused write is a minor failure with no BALP profile; a store failure serious.
  read.set_action("ListAssessments");
  EXPECT_EQ(assessment::AuditEventResource(read, "s")["action"], "E");
  read.set_action("ApprovePlan");
  read.set_outcome("FAILED_PRECONDITION");
  event = assessment::AuditEventResource(read, "s");
  EXPECT_EQ(event["action"], "U");
  EXPECT_EQ(event["outcome"], "4");
  EXPECT_FALSE(event.contains("meta"));
  read.set_outcome("UNAVAILABLE");
  EXPECT_EQ(assessment::AuditEventResource(read, "s")["outcome"], "8");
  // A refused token's claim is not an access to that patient: no Patient-role entity.
  apb::AuditRecord refused;
  refused.set_service("assessment");
  refused.set_action("GetAssessment");
  refused.set_outcome("UNAUTHENTICATED");
  refused.set_claimed_patient_id("pt-9");
  refused.set_repeats(12);
  event = assessment::AuditEventResource(refused, "s");
  for (const auto& entity : event["entity"]) EXPECT_FALSE(entity.contains("role")) << entity.dump();
  const auto bundle = nlohmann::json::parse(assessment::AuditEventBundle({read, refused}, "s"));
  EXPECT_EQ(bundle["entry"].size(), 2u);
}

}  // namespace
}  // namespace physio::testing
