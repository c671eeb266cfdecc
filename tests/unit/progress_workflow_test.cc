// The progress use cases' successful paths over in-memory stores
// (tests/support/fake_stores.h) and fake peers: a safety-net answer in a home
// log raises one alert and suspends the plan, a red flag at a check-in does the
// same for the clinic that saw the patient, the clinic acknowledges its alert,
// and a visit noted over a session is recorded once. Milliseconds; the
// integration suites run the same paths over PostgreSQL, Redis and the services.
#include <gtest/gtest.h>

#include <algorithm>

#include <functional>

#include "clients.h"
#include "fake_peers.h"
#include "fake_stores.h"
#include "physio/common/error.h"
#include "use_case_support.h"
#include "progress_app.h"

namespace physio::testing {
namespace {

constexpr const char* kExercise = "ex.dir.prone_extension";

bool CallsForReferralLevel(apb::RedFlagAction action) {
  return action == apb::RED_FLAG_ACTION_URGENT_REFERRAL || action == apb::RED_FLAG_ACTION_EMERGENCY_REFERRAL;
}

class ProgressWorkflow : public ::testing::Test {
 protected:
  void SetUp() override {
    ppb::Plan plan;
    plan.set_plan_id("plan_1");
    plan.set_patient_id("pt-1");
    plan.set_status(ppb::PLAN_STATUS_ACTIVE);
    auto* exercise = plan.add_items();
    exercise->set_item_id(kExercise);
    exercise->set_kind(ppb::PLAN_ITEM_KIND_EXERCISE);
    planning.active = plan;
  }
  gpb::LogHomeExerciseRequest HomeLog(const std::string& request_id) const {
    gpb::LogHomeExerciseRequest log;
    log.set_request_id(request_id);
    log.set_patient_id("pt-1");
    log.set_exercise_id(kExercise);
    log.set_sets_done(2);
    log.set_reps_done(10);
    log.set_pain_during(3);
    log.set_pain_after(2);
    return log;
  }
  std::vector<std::string> EventKinds() const {
    std::vector<std::string> kinds;
    for (const auto& event : records.state.events) kinds.push_back(event.kind);
    return kinds;
  }

  const CallContext clinician = CallerAs(Role::kClinician);
  const CallContext patient = CallerAs(Role::kPatient, "pt-1");
  AuditTarget audit;
  FakePlanningClient planning;
  FakeAssessmentClient assessment;
  FakeSessionIdempotency session_idempotency;
  FakeVisitSessionStore visit_sessions;
  FakeProgressRecords records;
  progress::ProgressApp app{{session_idempotency, visit_sessions, records}, planning, assessment};
};

TEST_F(ProgressWorkflow, ASafetyNetAnswerInAHomeLogRaisesOneAlertAndSuspendsThePlan) {
  auto log = HomeLog("rq-log-1");
  log.mutable_safety_net()->set_saddle_numbness(true);
  const auto logged = app.LogHomeExercise(patient, log, audit).log();
  EXPECT_EQ(logged.red_flags().action(), apb::RED_FLAG_ACTION_EMERGENCY_REFERRAL);
  ASSERT_EQ(records.state.alerts.size(), 1u);
  EXPECT_EQ(records.state.alerts[0].second.kind(), gpb::ALERT_KIND_SAFETY_NET);
  EXPECT_EQ(records.state.alerts[0].second.clinic_id(), "unassigned");  // no visit named a clinic yet
  EXPECT_EQ(EventKinds(), (std::vector<std::string>{"EVENT_KIND_HOME_SESSION_LOGGED", "EVENT_KIND_ALERT_RAISED",
                                                    "EVENT_KIND_RED_FLAG_RAISED"}));
  ASSERT_TRUE(planning.last_adjustment.has_value());
  EXPECT_EQ(planning.last_adjustment->adjustment(), ppb::ADJUSTMENT_SUSPEND);
  EXPECT_EQ(planning.last_adjustment->plan_id(), "plan_1");

  // A retry replays the log: one log, one alert.
  EXPECT_EQ(app.LogHomeExercise(patient, log, audit).log().log_id(), logged.log_id());
  EXPECT_EQ(records.state.home_logs.size(), 1u);
  EXPECT_EQ(records.state.alerts.size(), 1u);
  // Once planning has the plan suspended, the home programme takes no more logs.
  planning.active->set_status(ppb::PLAN_STATUS_SUSPENDED);
  EXPECT_EQ(CodeOf([&] { app.LogHomeExercise(patient, HomeLog("rq-log-2"), audit); }), ErrorCode::kFailedPrecondition);
}

// A first attempt's retry record is looked up by its write's own transaction, not by a
// lookup of its own; a retry is still answered from its record when planning refuses the
// log (the plan since suspended or changed) or cannot be reached, and only a log not yet
// stored is refused or fails.
TEST_F(ProgressWorkflow, AHomeLogRetryIsAnsweredFromItsRecordWhateverPlanningSays) {
  const auto log = HomeLog("rq-log-1");
  const auto logged = app.LogHomeExercise(patient, log, audit).log();
  EXPECT_EQ(records.replay_lookups, 0);
  EXPECT_EQ(records.committed_writes, 1);
  EXPECT_EQ(audit.resource_id, logged.log_id());

  // Planning unreachable: the retry is answered from the record; a new log fails UNAVAILABLE.
  planning.unreachable = true;
  audit = {};
  EXPECT_EQ(app.LogHomeExercise(patient, log, audit).log().log_id(), logged.log_id());
  EXPECT_EQ(audit.resource_id, logged.log_id());
  EXPECT_EQ(records.replay_lookups, 1);
  EXPECT_EQ(CodeOf([&] { app.LogHomeExercise(patient, HomeLog("rq-log-2"), audit); }), ErrorCode::kUnavailable);
  planning.unreachable = false;

  // The plan suspended, or the exercise taken out of it, since: the retry is still answered,
  // a new log refused.
  planning.active->set_status(ppb::PLAN_STATUS_SUSPENDED);
  EXPECT_EQ(app.LogHomeExercise(patient, log, audit).log().log_id(), logged.log_id());
  EXPECT_EQ(CodeOf([&] { app.LogHomeExercise(patient, HomeLog("rq-log-3"), audit); }), ErrorCode::kFailedPrecondition);
  planning.active->set_status(ppb::PLAN_STATUS_ACTIVE);
  planning.active->mutable_items(0)->set_item_id("ex.other");
  EXPECT_EQ(app.LogHomeExercise(patient, log, audit).log().log_id(), logged.log_id());
  EXPECT_EQ(CodeOf([&] { app.LogHomeExercise(patient, HomeLog("rq-log-4"), audit); }), ErrorCode::kInvalidArgument);

  // The same id for a different log is refused, whichever way it is looked up.
  auto changed = log;
  changed.set_pain_after(7);
  for (const char* exercise : {"ex.other", kExercise}) {
    planning.active->mutable_items(0)->set_item_id(exercise);
    const auto error = ErrorOf([&] { app.LogHomeExercise(patient, changed, audit); });
    EXPECT_EQ(error.code, ErrorCode::kInvalidArgument);
    EXPECT_EQ(error.message.rfind("request_id", 0), 0u) << error.message;
  }
  EXPECT_EQ(records.committed_writes, 1);
  EXPECT_EQ(records.state.home_logs.size(), 1u);
}

// Issue 26 item 4: symptoms at any time, whatever the plan's state.
TEST_F(ProgressWorkflow, SymptomsAreReportedWithoutAPlanOrWithASuspendedOneAndActedOnAtOnce) {
  gpb::ReportSymptomsRequest report;
  report.set_request_id("rq-sym-1");
  report.set_patient_id("pt-1");
  report.mutable_safety_net()->set_saddle_numbness(true);
  // No plan at all: still judged, stored, alerted, with the emergency advice.
  planning.active.reset();
  const auto answered = app.ReportSymptoms(patient, report, audit);
  EXPECT_EQ(answered.report().red_flags().action(), apb::RED_FLAG_ACTION_EMERGENCY_REFERRAL);
  EXPECT_NE(answered.report().advice().find("emergency department"), std::string::npos) << answered.report().advice();
  EXPECT_FALSE(answered.plan_suspended());
  ASSERT_EQ(records.state.symptom_reports.size(), 1u);
  ASSERT_EQ(records.state.alerts.size(), 1u);
  EXPECT_EQ(records.state.alerts[0].second.kind(), gpb::ALERT_KIND_SAFETY_NET);
  EXPECT_EQ(planning.adjust_calls, 0);
  // A retry replays it: one report, one alert.
  EXPECT_EQ(app.ReportSymptoms(patient, report, audit).report().report_id(), answered.report().report_id());
  EXPECT_EQ(records.state.symptom_reports.size(), 1u);

  // A plan in use is suspended by an urgent answer.
  SetUp();
  gpb::ReportSymptomsRequest weakness;
  weakness.set_request_id("rq-sym-2");
  weakness.set_patient_id("pt-1");
  weakness.mutable_safety_net()->set_worsening_leg_weakness(true);
  const auto urgent = app.ReportSymptoms(clinician, weakness, audit);
  EXPECT_TRUE(CallsForReferralLevel(urgent.report().red_flags().action()));
  EXPECT_TRUE(urgent.plan_suspended());
  ASSERT_TRUE(planning.last_adjustment.has_value());
  EXPECT_EQ(planning.last_adjustment->adjustment(), ppb::ADJUSTMENT_SUSPEND);
  EXPECT_EQ(urgent.report().plan_id(), "plan_1");

  // A suspended plan takes no more home logs, but a report is still accepted.
  planning.active->set_status(ppb::PLAN_STATUS_SUSPENDED);
  const int adjusted = planning.adjust_calls;
  gpb::ReportSymptomsRequest quiet;
  quiet.set_request_id("rq-sym-3");
  quiet.set_patient_id("pt-1");
  quiet.mutable_safety_net();
  const auto none = app.ReportSymptoms(patient, quiet, audit);
  EXPECT_EQ(none.report().red_flags().action(), apb::RED_FLAG_ACTION_NOT_SCREENED);
  EXPECT_FALSE(none.report().advice().empty());
  EXPECT_EQ(planning.adjust_calls, adjusted);

  // The patient reports only for themselves; the answers are required.
  gpb::ReportSymptomsRequest other = quiet;
  other.set_request_id("rq-sym-4");
  other.set_patient_id("pt-2");
  EXPECT_EQ(CodeOf([&] { app.ReportSymptoms(patient, other, audit); }), ErrorCode::kPermissionDenied);
  gpb::ReportSymptomsRequest empty;
  empty.set_request_id("rq-sym-5");
  empty.set_patient_id("pt-1");
  EXPECT_EQ(ErrorOf([&] { app.ReportSymptoms(patient, empty, audit); }).message.rfind("safety_net", 0), 0u);
}

TEST_F(ProgressWorkflow, ARedFlagAtACheckInAlertsTheClinicWhichAcknowledgesIt) {
  gpb::RecordVisitRequest visit;
  visit.set_request_id("rq-visit");
  visit.set_patient_id("pt-1");
  visit.set_kind(gpb::VISIT_KIND_CLINIC);
  visit.set_clinic_id("clinic-1");
  visit.mutable_red_flag_screen()->set_saddle_numbness(true);
  visit.mutable_red_flag_screen()->set_bladder_or_bowel_disturbance(true);
  const auto recorded = app.RecordVisit(clinician, visit, audit).visit();
  EXPECT_EQ(recorded.red_flags().action(), apb::RED_FLAG_ACTION_EMERGENCY_REFERRAL);
  ASSERT_TRUE(planning.last_adjustment.has_value());
  EXPECT_EQ(planning.last_adjustment->request_id(), "suspend-" + recorded.visit_id());

  gpb::ListAlertsRequest list;
  list.set_clinic_id("clinic-1");
  auto open = app.ListAlerts(clinician, list, audit);
  ASSERT_EQ(open.alerts_size(), 1);
  EXPECT_EQ(open.alerts(0).kind(), gpb::ALERT_KIND_RED_FLAG);
  EXPECT_EQ(open.alerts(0).patient_id(), "pt-1");

  gpb::AcknowledgeAlertRequest acknowledge;
  acknowledge.set_request_id("rq-ack");
  acknowledge.set_alert_id(open.alerts(0).alert_id());
  const auto acknowledged = app.AcknowledgeAlert(clinician, acknowledge, audit).alert();
  EXPECT_EQ(acknowledged.status(), gpb::ALERT_STATUS_ACKNOWLEDGED);
  EXPECT_EQ(acknowledged.acknowledged_by(), "staff-1");
  EXPECT_EQ(EventKinds().back(), "EVENT_KIND_ALERT_ACKNOWLEDGED");
  EXPECT_EQ(app.ListAlerts(clinician, list, audit).alerts_size(), 0);
  list.set_include_acknowledged(true);
  EXPECT_EQ(app.ListAlerts(clinician, list, audit).alerts_size(), 1);
  // Another tenant's clinic with the same id sees nothing.
  CallContext other_tenant = clinician;
  other_tenant.tenant = "t-2";
  EXPECT_EQ(app.ListAlerts(other_tenant, list, audit).alerts_size(), 0);
}

// An open monitor-level alert never swallows a later emergency: the new finding is added to
// it, and its events are appended again; the same finding again changes nothing.
TEST_F(ProgressWorkflow, ALaterFindingIsAddedToTheOpenAlertNeverLost) {
  gpb::RecordVisitRequest fall;
  fall.set_request_id("rq-fall");
  fall.set_patient_id("pt-1");
  fall.set_kind(gpb::VISIT_KIND_CLINIC);
  fall.set_clinic_id("clinic-1");
  fall.mutable_red_flag_screen()->set_unexplained_weight_loss(true);  // monitored malignancy concern
  app.RecordVisit(clinician, fall, audit);
  gpb::ListAlertsRequest list;
  list.set_clinic_id("clinic-1");
  auto open = app.ListAlerts(clinician, list, audit);
  ASSERT_EQ(open.alerts_size(), 1);
  const std::string alert_id = open.alerts(0).alert_id();
  auto red_flag_events = [&] {
    const auto kinds = EventKinds();
    return std::count(kinds.begin(), kinds.end(), "EVENT_KIND_RED_FLAG_RAISED");
  };
  ASSERT_EQ(red_flag_events(), 1);

  gpb::RecordVisitRequest emergency = fall;
  emergency.set_request_id("rq-emergency");
  emergency.mutable_red_flag_screen()->set_saddle_numbness(true);
  app.RecordVisit(clinician, emergency, audit);
  open = app.ListAlerts(clinician, list, audit);
  ASSERT_EQ(open.alerts_size(), 1);
  const auto& alert = open.alerts(0);
  EXPECT_EQ(alert.alert_id(), alert_id);
  EXPECT_EQ(alert.occurrences(), 2);
  EXPECT_TRUE(alert.has_last_raise_time());
  std::string reasons;
  for (const auto& reason : alert.reasons()) reasons += reason + "|";
  EXPECT_NE(reasons.find("later: RED_FLAG_ACTION_EMERGENCY_REFERRAL"), std::string::npos) << reasons;
  EXPECT_NE(reasons.find("later: cauda_equina"), std::string::npos) << reasons;
  EXPECT_EQ(red_flag_events(), 2);

  // The same emergency at the next visit adds nothing.
  gpb::RecordVisitRequest same = emergency;
  same.set_request_id("rq-same");
  app.RecordVisit(clinician, same, audit);
  EXPECT_EQ(app.ListAlerts(clinician, list, audit).alerts(0).occurrences(), 2);
  EXPECT_EQ(red_flag_events(), 2);
}

TEST_F(ProgressWorkflow, AVisitNotedOverASessionIsRecordedOnceAndCountsInTheSummary) {
  gpb::StartVisitSessionRequest start;
  start.set_request_id("rq-start");
  start.set_patient_id("pt-1");
  start.set_kind(gpb::VISIT_KIND_TELEHEALTH);
  const std::string session_id = app.StartVisitSession(clinician, start, audit).session().session_id();
  gpb::UpdateVisitSessionRequest before;
  before.set_request_id("rq-before");
  before.set_session_id(session_id);
  before.set_pain_before(6);
  app.UpdateVisitSession(clinician, before, audit);
  gpb::UpdateVisitSessionRequest after;
  after.set_request_id("rq-after");
  after.set_session_id(session_id);
  after.set_pain_after(3);
  after.add_add_delivered_item_ids(kExercise);
  app.UpdateVisitSession(clinician, after, audit);

  gpb::CompleteVisitSessionRequest complete;
  complete.set_request_id("rq-complete");
  complete.set_session_id(session_id);
  const auto visit = app.CompleteVisitSession(clinician, complete, audit).visit();
  EXPECT_EQ(visit.pain_before(), 6);
  EXPECT_EQ(visit.pain_after(), 3);
  ASSERT_EQ(visit.delivered_item_ids_size(), 1);
  // Completing again (a retry, another device) records no second visit.
  complete.set_request_id("rq-complete-again");
  EXPECT_EQ(app.CompleteVisitSession(clinician, complete, audit).visit().visit_id(), visit.visit_id());
  EXPECT_EQ(records.state.visits.size(), 1u);
  const auto kinds = EventKinds();
  EXPECT_EQ(std::count(kinds.begin(), kinds.end(), "EVENT_KIND_VISIT_RECORDED"), 1);  // one visit, one event
  // A retried update answers from its record; a new one finds the session closed.
  EXPECT_NO_THROW(app.UpdateVisitSession(clinician, before, audit));
  before.set_request_id("rq-before-late");
  EXPECT_EQ(CodeOf([&] { app.UpdateVisitSession(clinician, before, audit); }), ErrorCode::kFailedPrecondition);
  gpb::GetProgressSummaryRequest summary;
  summary.set_patient_id("pt-1");
  EXPECT_EQ(app.GetProgressSummary(patient, summary, audit).summary().visit_count(), 1);
}

}  // namespace
}  // namespace physio::testing
