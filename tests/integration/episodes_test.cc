// Scripted multi-week episodes driven through the public API, each ending in the
// decision and plan change the clinical reference calls for. Plans are approved
// with a back-dated effective time (as an importing system would) so that weeks
// of home logs can be placed in the past.
#include <gtest/gtest.h>

#include <map>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <optional>
#include <set>
#include <atomic>
#include <functional>
#include <thread>
#include <vector>

#include <httplib.h>

#include "clients.h"
#include "cluster_fixture.h"
#include "physio/common/ids.h"

namespace physio::testing {
namespace {

using grpc::StatusCode;
constexpr int64_t kDay = 24 * 3600;

class Episodes : public ClusterFixture {
 protected:
  void SetUp() override {
    tenant_ = "t-" + NewId("x").substr(2, 10);
    patient_id_ = "pt-" + NewId("x").substr(2, 10);
    now_ = std::time(nullptr);
  }
  Caller Clinician() const { return Caller(*cluster_, MakeToken(*keys_, tenant_, "clin-1", {"clinician"})); }
  Caller Patient() const { return Caller(*cluster_, MakeToken(*keys_, tenant_, patient_id_, {"patient"}, patient_id_)); }

  // Pain 6, ODI 16/50 over all sections (32%): movement control, package.
  // `extension_preference`: symptoms centralise with extension (a specific-exercise plan
  // with directional exercises).
  // `episode_days`: how long the episode had lasted at assessment (the history's duration).
  ppb::Plan StartEpisode(int days_ago, bool extension_preference = false, std::optional<int> episode_days = {}) {
    auto clinician = Clinician();
    apb::CreateAssessmentRequest create;
    if (episode_days) create.mutable_history()->set_episode_duration_days(*episode_days);
    if (extension_preference) {
      create.mutable_examination()->set_directional_preference(apb::DIRECTIONAL_PREFERENCE_EXTENSION);
      create.mutable_examination()->set_centralisation(true);
    }
    create.set_request_id(NewId("rq"));
    create.set_patient_id(patient_id_);
    *create.add_answers() = Answer(cpb::INSTRUMENT_NPRS, "nprs", 6);
    const int odi[] = {2, 1, 3, 1, 2, 2, 1, 2, 1, 1};
    for (int i = 0; i < 10; ++i) *create.add_answers() = Answer(cpb::INSTRUMENT_ODI, "odi." + std::to_string(i + 1), odi[i]);
    create.mutable_red_flag_screen();  // screened, nothing found
    apb::CreateAssessmentResponse created;
    EXPECT_TRUE(clinician.Call(clinician.assessment.get(), &apb::AssessmentService::Stub::CreateAssessment, create, &created).ok());
    ppb::GeneratePlanRequest generate;
    generate.set_request_id(NewId("rq"));
    generate.set_assessment_id(created.assessment().assessment_id());
    ppb::GeneratePlanResponse generated;
    EXPECT_TRUE(clinician.Call(clinician.planning.get(), &ppb::PlanningService::Stub::GeneratePlan, generate, &generated).ok());
    ppb::ApprovePlanRequest approve;
    approve.set_request_id(NewId("rq"));
    approve.set_plan_id(generated.plan().plan_id());
    approve.set_etag(generated.plan().etag());
    approve.mutable_effective_time()->set_seconds(now_ - days_ago * kDay);
    ppb::ApprovePlanResponse approved;
    EXPECT_TRUE(clinician.Call(clinician.planning.get(), &ppb::PlanningService::Stub::ApprovePlan, approve, &approved).ok());
    return approved.plan();
  }

  // Logs `percent` of each home exercise's weekly sessions for the week starting
  // `from_day` days ago, at the prescribed dose, with the given pain.
  void LogWeek(const ppb::Plan& plan, int from_day, int percent, int pain, int sets_short = 0) {
    auto patient = Patient();
    for (const auto& item : plan.items()) {
      if (item.kind() != ppb::PLAN_ITEM_KIND_EXERCISE || !item.home_programme()) continue;
      const int sessions = (item.dose().sessions_per_week() * percent + 99) / 100;
      for (int s = 0; s < sessions; ++s) {
        gpb::LogHomeExerciseRequest log;
        log.set_request_id(NewId("rq"));
        log.set_patient_id(patient_id_);
        log.set_exercise_id(item.item_id());
        log.mutable_performed_time()->set_seconds(now_ - from_day * kDay + s * (7 * kDay / std::max(1, sessions)) + 3600);
        log.set_sets_done(std::max(0, item.dose().sets() - sets_short));
        log.set_reps_done(item.dose().reps());
        log.set_pain_during(pain);
        log.set_pain_after(pain);
        log.set_usual_pain(pain);
        gpb::LogHomeExerciseResponse logged;
        auto status = patient.Call(patient.progress.get(), &gpb::ProgressService::Stub::LogHomeExercise, log, &logged);
        ASSERT_TRUE(status.ok()) << status.error_message();
      }
    }
  }

  void LogPain(const ppb::Plan& plan, double days_ago, int pain) {
    auto patient = Patient();
    for (const auto& item : plan.items()) {
      if (item.kind() != ppb::PLAN_ITEM_KIND_EXERCISE) continue;
      gpb::LogHomeExerciseRequest log;
      log.set_request_id(NewId("rq"));
      log.set_patient_id(patient_id_);
      log.set_exercise_id(item.item_id());
      log.mutable_performed_time()->set_seconds(now_ - static_cast<int64_t>(days_ago * kDay));
      log.set_sets_done(item.dose().sets());
      log.set_reps_done(item.dose().reps());
      log.set_pain_during(pain);
      log.set_pain_after(pain);
      log.set_usual_pain(pain);
      gpb::LogHomeExerciseResponse logged;
      ASSERT_TRUE(patient.Call(patient.progress.get(), &gpb::ProgressService::Stub::LogHomeExercise, log, &logged).ok());
      return;
    }
  }

  // One home log of `exercise_id` now, as the patient; `customise` sets the symptom questions.
  grpc::Status LogOnce(const std::string& exercise_id, const std::function<void(gpb::LogHomeExerciseRequest&)>& customise,
                       gpb::LogHomeExerciseResponse* logged, const std::string& request_id = "") {
    gpb::LogHomeExerciseRequest log;
    log.set_request_id(request_id.empty() ? NewId("rq") : request_id);
    log.set_patient_id(patient_id_);
    log.set_exercise_id(exercise_id);
    log.set_sets_done(1);
    log.set_reps_done(5);
    log.set_pain_during(4);
    log.set_pain_after(4);
    customise(log);
    auto patient = Patient();
    return patient.Call(patient.progress.get(), &gpb::ProgressService::Stub::LogHomeExercise, log, logged);
  }

  ppb::Plan CurrentPlan() const { return PlanInUseOrSuspended(Clinician(), patient_id_); }

  // An AdjustPlan request with a fresh request id.
  static ppb::AdjustPlanRequest Adjustment(const std::string& plan_id, ppb::Adjustment adjustment,
                                           const std::string& reason) {
    ppb::AdjustPlanRequest request;
    request.set_request_id(NewId("rq"));
    request.set_plan_id(plan_id);
    request.set_adjustment(adjustment);
    request.set_reason(reason);
    return request;
  }

  void Remeasure(cpb::Instrument instrument, const std::vector<int>& values, const std::string& prefix) {
    auto clinician = Clinician();
    gpb::RecordOutcomeRequest measure;
    measure.set_request_id(NewId("rq"));
    measure.set_patient_id(patient_id_);
    measure.set_instrument(instrument);
    for (size_t i = 0; i < values.size(); ++i) {
      *measure.add_answers() =
          Answer(instrument, values.size() == 1 ? prefix : prefix + "." + std::to_string(i + 1), values[i]);
    }
    gpb::RecordOutcomeResponse recorded;
    auto status = clinician.Call(clinician.progress.get(), &gpb::ProgressService::Stub::RecordOutcome, measure, &recorded);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }

  gpb::Evaluation Evaluate(const std::string& request_id = "") {
    auto clinician = Clinician();
    gpb::EvaluateProgressRequest request;
    request.set_request_id(request_id.empty() ? NewId("rq") : request_id);
    request.set_patient_id(patient_id_);
    gpb::EvaluateProgressResponse response;
    auto status = clinician.Call(clinician.progress.get(), &gpb::ProgressService::Stub::EvaluateProgress, request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response.evaluation();
  }

  gpb::ListAlertsResponse Alerts(const std::string& clinic, bool include_acknowledged = false,
                                 const std::string& tenant = "") {
    Caller clinician(*cluster_, MakeToken(*keys_, tenant.empty() ? tenant_ : tenant, "clin-1", {"clinician"}));
    gpb::ListAlertsRequest request;
    request.set_clinic_id(clinic);
    request.set_include_acknowledged(include_acknowledged);
    gpb::ListAlertsResponse response;
    EXPECT_TRUE(clinician.Call(clinician.progress.get(), &gpb::ProgressService::Stub::ListAlerts, request, &response).ok());
    return response;
  }

  gpb::ProgressSummary Summary() {
    auto clinician = Clinician();
    gpb::GetProgressSummaryRequest request;
    request.set_patient_id(patient_id_);
    gpb::GetProgressSummaryResponse response;
    EXPECT_TRUE(clinician.Call(clinician.progress.get(), &gpb::ProgressService::Stub::GetProgressSummary, request, &response).ok());
    return response.summary();
  }

  std::string tenant_, patient_id_;
  int64_t now_ = 0;
};

TEST_F(Episodes, SteadyImprovementProgressesTheExercisesOnce) {
  auto plan = StartEpisode(14);
  LogWeek(plan, 14, 100, 5);
  LogWeek(plan, 7, 100, 3);
  auto evaluation = Evaluate();
  EXPECT_EQ(evaluation.decision(), gpb::DECISION_PROGRESS) << evaluation.reasons(0);
  EXPECT_EQ(evaluation.responder_status(), gpb::RESPONDER_STATUS_RESPONDER);
  ASSERT_TRUE(evaluation.plan_adjusted());
  EXPECT_EQ(evaluation.plan().revision(), plan.revision() + 1);
  bool progressed = false;
  for (const auto& item : evaluation.plan().items()) progressed |= item.item_id() == "ex.motor.bracing_heel_slide";
  EXPECT_TRUE(progressed);  // abdominal bracing moved along its progression link
  // The same evidence does not move the plan twice.
  auto again = Evaluate();
  EXPECT_EQ(again.decision(), gpb::DECISION_CONTINUE);
  EXPECT_FALSE(again.plan_adjusted());
  EXPECT_EQ(again.plan().revision(), evaluation.plan().revision());
}

// Issue 26 item 8: pain is judged on usual pain, not the soreness right after an exercise.
TEST_F(Episodes, PainIsJudgedOnUsualPainNotSorenessAfterExercise) {
  auto plan = StartEpisode(14);  // baseline pain 6
  std::string exercise;
  for (const auto& item : plan.items()) {
    if (item.kind() == ppb::PLAN_ITEM_KIND_EXERCISE && item.home_programme()) exercise = item.item_id();
  }
  ASSERT_FALSE(exercise.empty());
  auto patient = Patient();
  auto log_at = [&](int64_t days_ago, int after, std::optional<int> usual) {
    gpb::LogHomeExerciseRequest log;
    log.set_request_id(NewId("rq"));
    log.set_patient_id(patient_id_);
    log.set_exercise_id(exercise);
    log.mutable_performed_time()->set_seconds(now_ - days_ago * kDay);
    log.set_sets_done(1);
    log.set_reps_done(5);
    log.set_pain_during(after);
    log.set_pain_after(after);
    if (usual) log.set_usual_pain(*usual);
    gpb::LogHomeExerciseResponse logged;
    return patient.Call(patient.progress.get(), &gpb::ProgressService::Stub::LogHomeExercise, log, &logged);
  };
  // Pain right after exercise is low, but the usual pain of the day has not moved from 6.
  ASSERT_TRUE(log_at(5, 1, 6).ok());
  ASSERT_TRUE(log_at(4, 1, std::nullopt).ok());
  ASSERT_TRUE(log_at(3, 2, 6).ok());
  ASSERT_TRUE(log_at(2, 1, std::nullopt).ok());
  auto summary = Summary();
  EXPECT_EQ(summary.latest_pain(), 6);
  EXPECT_DOUBLE_EQ(summary.recent_pain_mean(), 6.0);
  EXPECT_EQ(summary.pain_change(), 0);
  EXPECT_FALSE(summary.pain_change_meaningful());
  int after = 0, usual = 0;
  for (const auto& point : summary.pain_trend()) {
    after += point.source() == "home_log";
    usual += point.source() == "home_log_usual";
  }
  EXPECT_EQ(after, 4);  // shown on the trend
  EXPECT_EQ(usual, 2);
  // A usual pain out of range is refused, naming the field.
  auto bad = log_at(1, 1, 11);
  EXPECT_EQ(bad.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(bad.error_message().rfind("usual_pain:", 0), 0u) << bad.error_message();
  // Usual pain down to 2 counts (the week's mean of 6, 6, 2, 2 is 4: down 2), even with
  // soreness after exercise at 7.
  ASSERT_TRUE(log_at(1, 7, 2).ok());
  ASSERT_TRUE(log_at(0, 7, 2).ok());
  summary = Summary();
  EXPECT_EQ(summary.latest_pain(), 2);
  EXPECT_TRUE(summary.pain_change_meaningful()) << summary.recent_pain_mean();
}

TEST_F(Episodes, ProgressionNeedsEveryExerciseAtItsDoseForAWeek) {
  // Full adherence and falling pain, but the first week one set short of the dose:
  // the dose has been held for less than a week (its first full log is 7 days less an hour ago).
  auto plan = StartEpisode(14);
  LogWeek(plan, 14, 100, 5, /*sets_short=*/1);
  LogWeek(plan, 7, 100, 3);
  auto evaluation = Evaluate();
  EXPECT_EQ(evaluation.decision(), gpb::DECISION_CONTINUE) << evaluation.reasons(0);
  EXPECT_FALSE(evaluation.plan_adjusted());
  EXPECT_EQ(evaluation.reasons(0), "prescribed dose not yet completed");
}

TEST_F(Episodes, FlareUpRegresses) {
  auto plan = StartEpisode(10);
  LogWeek(plan, 10, 100, 3);
  LogPain(plan, 2.5, 6);
  LogPain(plan, 1.5, 6);
  LogPain(plan, 0.5, 7);
  auto evaluation = Evaluate();
  EXPECT_EQ(evaluation.decision(), gpb::DECISION_REGRESS);
  ASSERT_TRUE(evaluation.plan_adjusted());
  EXPECT_NE(evaluation.plan().last_change_reason().find("flare"), std::string::npos);
  // A regression never raises any part of a dose: each exercise (kept, or replaced by
  // the easier one it was "regressed from") is at or below what it was.
  std::map<std::string, ppb::ExerciseDose> before;
  for (const auto& item : plan.items()) before[item.item_id()] = item.dose();
  int compared = 0;
  for (const auto& item : evaluation.plan().items()) {
    if (item.kind() != ppb::PLAN_ITEM_KIND_EXERCISE) continue;
    std::string was = item.item_id();
    if (item.reason().rfind("regressed from ", 0) == 0) was = item.reason().substr(sizeof("regressed from ") - 1);
    ASSERT_TRUE(before.contains(was)) << item.item_id();
    const auto& old_dose = before[was];
    EXPECT_LE(item.dose().sets(), old_dose.sets()) << item.item_id();
    EXPECT_LE(item.dose().reps(), old_dose.reps()) << item.item_id();
    EXPECT_LE(item.dose().hold_seconds(), old_dose.hold_seconds()) << item.item_id();
    EXPECT_LE(item.dose().duration_minutes(), old_dose.duration_minutes()) << item.item_id();
    EXPECT_LE(item.dose().sessions_per_week(), old_dose.sessions_per_week()) << item.item_id();
    ++compared;
  }
  EXPECT_GT(compared, 0);
}

TEST_F(Episodes, PlateauAtWeekFiveIsMarkedForReassessment) {
  auto plan = StartEpisode(35);
  for (int week = 5; week >= 1; --week) LogWeek(plan, week * 7, 100, 6);
  auto clinician = Clinician();
  gpb::RecordOutcomeRequest odi;
  odi.set_request_id(NewId("rq"));
  odi.set_patient_id(patient_id_);
  odi.set_instrument(cpb::INSTRUMENT_ODI);
  const int values[] = {2, 1, 3, 1, 2, 2, 1, 2, 1, 1};  // unchanged: 32%
  for (int i = 0; i < 10; ++i) *odi.add_answers() = Answer(cpb::INSTRUMENT_ODI, "odi." + std::to_string(i + 1), values[i]);
  gpb::RecordOutcomeResponse recorded;
  ASSERT_TRUE(clinician.Call(clinician.progress.get(), &gpb::ProgressService::Stub::RecordOutcome, odi, &recorded).ok());
  EXPECT_DOUBLE_EQ(recorded.measure().score().score(), 32);
  auto evaluation = Evaluate();
  EXPECT_EQ(evaluation.responder_status(), gpb::RESPONDER_STATUS_NON_RESPONDER);
  EXPECT_EQ(evaluation.decision(), gpb::DECISION_REASSESS);
  EXPECT_TRUE(evaluation.plan().needs_reassessment());
  ASSERT_EQ(evaluation.raised_alerts_size(), 1);
  EXPECT_EQ(evaluation.raised_alerts(0).kind(), gpb::ALERT_KIND_NON_RESPONSE);
  EXPECT_EQ(evaluation.raised_alerts(0).clinic_id(), "unassigned");  // no visit named a clinic
  auto summary = Summary();
  ASSERT_EQ(summary.outcome_changes_size(), 2);
  EXPECT_EQ(summary.outcome_changes(1).instrument(), cpb::INSTRUMENT_ODI);
  EXPECT_DOUBLE_EQ(summary.outcome_changes(1).change(), 0);
  EXPECT_EQ(summary.outcome_changes(1).rule(), "10 points, or 30% beyond the MDC of 10");
  EXPECT_EQ(summary.weeks_since_start(), 5);
}

TEST_F(Episodes, RedFlagAtWeekThreeRefers) {
  auto plan = StartEpisode(21);
  LogWeek(plan, 21, 100, 4);
  auto clinician = Clinician();
  gpb::RecordVisitRequest visit;
  visit.set_request_id(NewId("rq"));
  visit.set_patient_id(patient_id_);
  visit.set_kind(gpb::VISIT_KIND_TELEHEALTH);
  visit.mutable_visit_time()->set_seconds(now_ - 1 * kDay);
  visit.mutable_red_flag_screen()->set_saddle_numbness(true);
  visit.set_clinic_id("clinic-north");
  gpb::RecordVisitResponse visited;
  ASSERT_TRUE(clinician.Call(clinician.progress.get(), &gpb::ProgressService::Stub::RecordVisit, visit, &visited).ok());
  EXPECT_EQ(visited.visit().red_flags().action(), apb::RED_FLAG_ACTION_EMERGENCY_REFERRAL);
  // The alert is raised at the check-in itself.
  auto alerts = Alerts("clinic-north");
  ASSERT_EQ(alerts.alerts_size(), 1);
  EXPECT_EQ(alerts.alerts(0).kind(), gpb::ALERT_KIND_RED_FLAG);
  EXPECT_EQ(alerts.alerts(0).patient_id(), patient_id_);
  // The plan is taken out of use at once: no active plan for the patient app, no home logs.
  ppb::GetActivePlanRequest get;
  get.set_patient_id(patient_id_);
  ppb::GetActivePlanResponse got;
  auto refused = Patient().Call(Patient().planning.get(), &ppb::PlanningService::Stub::GetActivePlan, get, &got);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(refused.error_message().find("suspended"), std::string::npos);
  get.set_include_suspended(true);
  ASSERT_TRUE(clinician.Call(clinician.planning.get(), &ppb::PlanningService::Stub::GetActivePlan, get, &got).ok());
  EXPECT_EQ(got.plan().status(), ppb::PLAN_STATUS_SUSPENDED);
  gpb::LogHomeExerciseRequest log;
  log.set_request_id(NewId("rq"));
  log.set_patient_id(patient_id_);
  log.set_exercise_id(plan.items(0).item_id());
  log.set_sets_done(1);
  log.set_reps_done(1);
  gpb::LogHomeExerciseResponse logged;
  EXPECT_EQ(Patient().Call(Patient().progress.get(), &gpb::ProgressService::Stub::LogHomeExercise, log, &logged)
                .error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);

  auto evaluation = Evaluate();
  EXPECT_EQ(evaluation.decision(), gpb::DECISION_REFER);
  EXPECT_EQ(evaluation.plan().status(), ppb::PLAN_STATUS_SUSPENDED);
  EXPECT_FALSE(evaluation.plan_adjusted());
  EXPECT_NE(evaluation.reasons(0).find("suspended"), std::string::npos) << evaluation.reasons(0);
  EXPECT_NE(evaluation.reasons(0).find("cauda_equina: saddle numbness"), std::string::npos) << evaluation.reasons(0);
  // Every later evaluation refers too, whatever the logs say.
  EXPECT_EQ(Evaluate().decision(), gpb::DECISION_REFER);
  // The red-flag alert is already open, so it is not repeated (weeks 2-3 without
  // logs do raise a low-adherence alert, in the same clinic as the latest visit).
  int red_flag_alerts = 0;
  const auto listed = Alerts("clinic-north");
  for (const auto& alert : listed.alerts()) red_flag_alerts += alert.kind() == gpb::ALERT_KIND_RED_FLAG;
  EXPECT_EQ(red_flag_alerts, 1);
  for (const auto& alert : evaluation.raised_alerts()) {
    EXPECT_NE(alert.kind(), gpb::ALERT_KIND_RED_FLAG);
    EXPECT_EQ(alert.clinic_id(), "clinic-north");
  }
  EXPECT_EQ(Alerts("clinic-north", false, "other-tenant").alerts_size(), 0);

  // Only a clinician's judgement puts the plan back in use.
  auto resume = Adjustment(plan.plan_id(), ppb::ADJUSTMENT_RESUME, "seen in ED: cauda equina excluded on MRI");
  ppb::AdjustPlanResponse resumed;
  Caller integrator(*cluster_, MakeToken(*keys_, tenant_, "ehr-1", {"integrator"}));
  EXPECT_EQ(integrator.Call(integrator.planning.get(), &ppb::PlanningService::Stub::AdjustPlan, resume, &resumed)
                .error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  ASSERT_TRUE(clinician.Call(clinician.planning.get(), &ppb::PlanningService::Stub::AdjustPlan, resume, &resumed).ok());
  EXPECT_EQ(resumed.plan().status(), ppb::PLAN_STATUS_ACTIVE);
}

TEST_F(Episodes, PoorAdherenceContinuesAndAdherenceIsComputedByHand) {
  auto plan = StartEpisode(14);
  int weekly = 0;
  for (const auto& item : plan.items()) {
    if (item.kind() == ppb::PLAN_ITEM_KIND_EXERCISE && item.home_programme()) weekly += item.dose().sessions_per_week();
  }
  LogWeek(plan, 14, 20, 6);
  LogWeek(plan, 7, 20, 6);
  int logged_per_week = 0;
  for (const auto& item : plan.items()) {
    if (item.kind() == ppb::PLAN_ITEM_KIND_EXERCISE && item.home_programme()) {
      logged_per_week += (item.dose().sessions_per_week() * 20 + 99) / 100;
    }
  }
  auto summary = Summary();
  ASSERT_EQ(summary.adherence_size(), 2);
  EXPECT_EQ(summary.adherence(0).prescribed_sessions(), weekly);
  EXPECT_EQ(summary.adherence(0).logged_sessions(), logged_per_week);
  EXPECT_NEAR(summary.adherence(0).percent(), 100.0 * logged_per_week / weekly, 0.06);
  auto evaluation = Evaluate();
  EXPECT_EQ(evaluation.decision(), gpb::DECISION_CONTINUE);
  EXPECT_FALSE(evaluation.plan_adjusted());
  EXPECT_NE(evaluation.reasons(0).find("adherence"), std::string::npos);
  ASSERT_EQ(evaluation.raised_alerts_size(), 1);
  EXPECT_EQ(evaluation.raised_alerts(0).kind(), gpb::ALERT_KIND_LOW_ADHERENCE);
  EXPECT_EQ(Summary().open_alerts_size(), 1);
}

// A home log counts for its plan whenever it was performed (adherence, the pain trend), so one
// dated before the plan began (a device whose clock was reset) is refused naming the field, and
// counts nowhere; a few minutes of clock drift are tolerated. One carrying a safety signal is
// recorded at the time it arrived instead, whatever its clock says.
TEST_F(Episodes, AHomeLogFromBeforeThePlanBeganIsRefusedUnlessItCarriesASafetySignal) {
  auto plan = StartEpisode(7);
  const int64_t began = plan.activate_time().seconds();
  std::string exercise;
  for (const auto& item : plan.items()) {
    if (item.kind() == ppb::PLAN_ITEM_KIND_EXERCISE && item.home_programme()) exercise = item.item_id();
  }
  ASSERT_FALSE(exercise.empty());
  auto patient = Patient();
  auto log_at = [&](int64_t seconds) {
    gpb::LogHomeExerciseRequest log;
    log.set_request_id(NewId("rq"));
    log.set_patient_id(patient_id_);
    log.set_exercise_id(exercise);
    log.mutable_performed_time()->set_seconds(seconds);
    log.set_sets_done(1);
    log.set_reps_done(5);
    log.set_usual_pain(1);
    gpb::LogHomeExerciseResponse logged;
    return patient.Call(patient.progress.get(), &gpb::ProgressService::Stub::LogHomeExercise, log, &logged);
  };
  for (const int64_t seconds : {int64_t{978307200} /* 2001-01-01, a reset clock */, began - 3600}) {
    const auto status = log_at(seconds);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << seconds;
    EXPECT_EQ(status.error_message().rfind("performed_time: is before the patient's plan began", 0), 0)
        << status.error_message();
  }
  EXPECT_EQ(Summary().home_log_count(), 0);
  EXPECT_TRUE(log_at(began - 120).ok());  // within the drift tolerated
  EXPECT_TRUE(log_at(began + 3600).ok());
  EXPECT_EQ(Summary().home_log_count(), 2);

  // A safety signal is never refused for its time: recorded at the time it arrived, and acted on.
  // Symptoms spreading down the leg from a clock a month ahead, then a safety-net "yes" (which
  // suspends the plan) from one reset to 2001.
  for (const bool spread : {true, false}) {
    gpb::LogHomeExerciseRequest log;
    log.set_request_id(NewId("rq"));
    log.set_patient_id(patient_id_);
    log.set_exercise_id(exercise);
    log.mutable_performed_time()->set_seconds(spread ? std::time(nullptr) + 30 * kDay : 978307200);
    log.set_sets_done(1);
    log.set_reps_done(5);
    if (spread) {
      log.set_symptoms_spread_down_leg(true);
    } else {
      log.mutable_safety_net()->set_feverish_or_unwell(true);
    }
    gpb::LogHomeExerciseResponse logged;
    const int64_t sent = std::time(nullptr);
    const auto status = patient.Call(patient.progress.get(), &gpb::ProgressService::Stub::LogHomeExercise, log, &logged);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_GE(logged.log().performed_time().seconds(), sent - 1);
    EXPECT_LE(logged.log().performed_time().seconds(), std::time(nullptr) + 1);
  }
  const auto summary = Summary();
  EXPECT_EQ(summary.home_log_count(), 4);
  std::set<int> kinds;
  for (const auto& alert : summary.open_alerts()) kinds.insert(alert.kind());
  EXPECT_TRUE(kinds.contains(gpb::ALERT_KIND_SAFETY_NET));
  EXPECT_TRUE(kinds.contains(gpb::ALERT_KIND_PERIPHERALISATION));
}

TEST_F(Episodes, AlertsArePagedPerClinicAndAcknowledged) {
  const std::string clinic = "clinic-" + NewId("c").substr(2, 8);
  auto clinician = Clinician();
  for (int i = 0; i < 5; ++i) {
    gpb::RecordVisitRequest visit;
    visit.set_request_id(NewId("rq"));
    visit.set_patient_id("pt-alert-" + std::to_string(i));
    visit.set_kind(gpb::VISIT_KIND_CLINIC);
    visit.set_clinic_id(clinic);
    visit.mutable_red_flag_screen()->set_history_of_cancer(true);  // urgent
    gpb::RecordVisitResponse visited;
    ASSERT_TRUE(clinician.Call(clinician.progress.get(), &gpb::ProgressService::Stub::RecordVisit, visit, &visited).ok());
  }
  gpb::ListAlertsRequest request;
  request.set_clinic_id(clinic);
  request.set_page_size(2);
  std::set<std::string> seen;
  int pages = 0;
  do {
    gpb::ListAlertsResponse page;
    ASSERT_TRUE(clinician.Call(clinician.progress.get(), &gpb::ProgressService::Stub::ListAlerts, request, &page).ok());
    for (const auto& alert : page.alerts()) EXPECT_TRUE(seen.insert(alert.alert_id()).second);
    request.set_page_token(page.next_page_token());
    ++pages;
  } while (!request.page_token().empty() && pages < 10);
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(seen.size(), 5u);

  gpb::AcknowledgeAlertRequest acknowledge;
  acknowledge.set_request_id(NewId("rq"));
  acknowledge.set_alert_id(*seen.begin());
  gpb::AcknowledgeAlertResponse acknowledged;
  ASSERT_TRUE(clinician.Call(clinician.progress.get(), &gpb::ProgressService::Stub::AcknowledgeAlert, acknowledge,
                             &acknowledged).ok());
  EXPECT_EQ(acknowledged.alert().status(), gpb::ALERT_STATUS_ACKNOWLEDGED);
  EXPECT_EQ(Alerts(clinic).alerts_size(), 4);
  EXPECT_EQ(Alerts(clinic, true).alerts_size(), 5);
  Caller intruder(*cluster_, MakeToken(*keys_, "other-tenant", "clin-9", {"clinician"}));
  acknowledge.set_request_id(NewId("rq"));
  EXPECT_EQ(intruder.Call(intruder.progress.get(), &gpb::ProgressService::Stub::AcknowledgeAlert, acknowledge,
                          &acknowledged).error_code(),
            StatusCode::NOT_FOUND);
  request.set_page_token("not-hex");
  gpb::ListAlertsResponse page;
  EXPECT_EQ(clinician.Call(clinician.progress.get(), &gpb::ProgressService::Stub::ListAlerts, request, &page).error_code(),
            StatusCode::INVALID_ARGUMENT);
}

TEST_F(Episodes, RacingEvaluationsYieldOneAdjustmentAndRetriesAreIdempotent) {
  auto plan = StartEpisode(14);
  LogWeek(plan, 14, 100, 5);
  LogWeek(plan, 7, 100, 3);
  std::vector<gpb::Evaluation> results(4);
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) threads.emplace_back([&, i] { results[i] = Evaluate(); });
  for (auto& t : threads) t.join();
  int adjusted = 0;
  for (const auto& r : results) adjusted += r.plan_adjusted() ? 1 : 0;
  EXPECT_EQ(adjusted, 1);
  auto clinician = Clinician();
  ppb::ListPlanRevisionsRequest list;
  list.set_plan_id(plan.plan_id());
  list.set_page_size(100);
  ppb::ListPlanRevisionsResponse revisions;
  ASSERT_TRUE(clinician.Call(clinician.planning.get(), &ppb::PlanningService::Stub::ListPlanRevisions, list, &revisions).ok());
  int adjustments = 0;
  for (const auto& r : revisions.revisions()) adjustments += r.change() == "adjusted" ? 1 : 0;
  EXPECT_EQ(adjustments, 1);
  // A retry of one evaluation returns its first answer.
  auto first = Evaluate("same-evaluation");
  auto retry = Evaluate("same-evaluation");
  EXPECT_EQ(first.evaluation_id(), retry.evaluation_id());
}

TEST_F(Episodes, LiveVisitSessionsMergeUpdatesAndRecordTheVisitOnce) {
  auto plan = StartEpisode(7);
  auto clinician = Clinician();
  gpb::StartVisitSessionRequest start;
  start.set_request_id(NewId("rq"));
  start.set_patient_id(patient_id_);
  start.set_kind(gpb::VISIT_KIND_TELEHEALTH);
  start.set_clinic_id("clinic-west");
  gpb::StartVisitSessionResponse started;
  ASSERT_TRUE(clinician.Call(clinician.progress.get(), &gpb::ProgressService::Stub::StartVisitSession, start, &started).ok());
  const std::string session_id = started.session().session_id();
  EXPECT_GT(started.session().expire_time().seconds(), now_);

  // Two consoles update at once: both changes land.
  auto update = [&](std::function<void(gpb::UpdateVisitSessionRequest&)> fill) {
    gpb::UpdateVisitSessionRequest request;
    request.set_request_id(NewId("rq"));
    request.set_session_id(session_id);
    fill(request);
    gpb::UpdateVisitSessionResponse response;
    return clinician.Call(clinician.progress.get(), &gpb::ProgressService::Stub::UpdateVisitSession, request, &response);
  };
  std::thread a([&] { EXPECT_TRUE(update([](auto& r) { r.set_pain_before(5); r.add_add_delivered_item_ids("ex.strength.glute_bridge"); }).ok()); });
  std::thread b([&] { EXPECT_TRUE(update([](auto& r) { r.add_add_delivered_item_ids("manual.joint_mobilisation"); }).ok()); });
  a.join();
  b.join();
  EXPECT_EQ(update([](auto& r) { r.set_pain_after(11); }).error_code(), StatusCode::INVALID_ARGUMENT);
  ASSERT_TRUE(update([](auto& r) { r.set_pain_after(3); }).ok());

  gpb::GetVisitSessionRequest get;
  get.set_session_id(session_id);
  gpb::GetVisitSessionResponse got;
  ASSERT_TRUE(clinician.Call(clinician.progress.get(), &gpb::ProgressService::Stub::GetVisitSession, get, &got).ok());
  EXPECT_EQ(got.session().pain_before(), 5);
  EXPECT_EQ(got.session().pain_after(), 3);
  EXPECT_EQ(got.session().delivered_item_ids_size(), 2);

  // Two completions racing record one visit.
  std::vector<std::string> visit_ids(2);
  std::vector<std::thread> completers;
  for (int i = 0; i < 2; ++i) {
    completers.emplace_back([&, i] {
      gpb::CompleteVisitSessionRequest complete;
      complete.set_request_id(NewId("rq"));
      complete.set_session_id(session_id);
      gpb::CompleteVisitSessionResponse completed;
      auto status = clinician.Call(clinician.progress.get(), &gpb::ProgressService::Stub::CompleteVisitSession, complete, &completed);
      EXPECT_TRUE(status.ok()) << status.error_message();
      visit_ids[i] = completed.visit().visit_id();
    });
  }
  for (auto& t : completers) t.join();
  EXPECT_FALSE(visit_ids[0].empty());
  EXPECT_EQ(visit_ids[0], visit_ids[1]);
  EXPECT_EQ(Summary().visit_count(), 1);
  EXPECT_EQ(update([](auto& r) { r.set_pain_after(2); }).error_code(), StatusCode::FAILED_PRECONDITION);
  get.set_session_id("vsess_missing");
  EXPECT_EQ(clinician.Call(clinician.progress.get(), &gpb::ProgressService::Stub::GetVisitSession, get, &got).error_code(),
            StatusCode::NOT_FOUND);
  auto patient = Patient();
  start.set_request_id(NewId("rq"));
  gpb::StartVisitSessionResponse refused;
  EXPECT_EQ(patient.Call(patient.progress.get(), &gpb::ProgressService::Stub::StartVisitSession, start, &refused).error_code(),
            StatusCode::PERMISSION_DENIED);
}

TEST_F(Episodes, SessionsResumeOnAnotherReplica) {
  StartEpisode(3);
  // A second instance of every service on the same Redis and PostgreSQL.
  ServiceCluster replica(*keys_, redis_->port(), postgres_->port(), "physio");
  Caller on_first(*cluster_, MakeToken(*keys_, tenant_, "clin-1", {"clinician"}));
  Caller on_second(replica, MakeToken(*keys_, tenant_, "clin-1", {"clinician"}));

  // Intake: started on one replica, answered and completed on the other.
  apb::StartIntakeRequest start_intake;
  start_intake.set_request_id(NewId("rq"));
  start_intake.set_patient_id(patient_id_);
  apb::StartIntakeResponse intake;
  ASSERT_TRUE(on_first.Call(on_first.assessment.get(), &apb::AssessmentService::Stub::StartIntake, start_intake, &intake).ok());
  apb::SubmitIntakeAnswersRequest submit;
  submit.set_request_id(NewId("rq"));
  submit.set_session_id(intake.session().session_id());
  *submit.add_answers() = Answer(cpb::INSTRUMENT_NPRS, "nprs", 4);
  for (int i = 1; i <= 10; ++i) *submit.add_answers() = Answer(cpb::INSTRUMENT_ODI, "odi." + std::to_string(i), 1);
  apb::SubmitIntakeAnswersResponse submitted;
  ASSERT_TRUE(on_second.Call(on_second.assessment.get(), &apb::AssessmentService::Stub::SubmitIntakeAnswers, submit,
                             &submitted).ok());
  apb::CompleteIntakeRequest complete_intake;
  complete_intake.set_request_id(NewId("rq"));
  complete_intake.set_session_id(intake.session().session_id());
  apb::CompleteIntakeResponse completed_intake;
  ASSERT_TRUE(on_first.Call(on_first.assessment.get(), &apb::AssessmentService::Stub::CompleteIntake, complete_intake,
                            &completed_intake).ok());
  EXPECT_DOUBLE_EQ(completed_intake.assessment().scores(1).score(), 20);

  // Live visit: started on one replica, updated and completed on the other.
  gpb::StartVisitSessionRequest start_visit;
  start_visit.set_request_id(NewId("rq"));
  start_visit.set_patient_id(patient_id_);
  start_visit.set_kind(gpb::VISIT_KIND_TELEHEALTH);
  gpb::StartVisitSessionResponse visit;
  ASSERT_TRUE(on_first.Call(on_first.progress.get(), &gpb::ProgressService::Stub::StartVisitSession, start_visit, &visit).ok());
  gpb::UpdateVisitSessionRequest update;
  update.set_request_id(NewId("rq"));
  update.set_session_id(visit.session().session_id());
  update.set_pain_before(4);
  gpb::UpdateVisitSessionResponse updated;
  ASSERT_TRUE(on_second.Call(on_second.progress.get(), &gpb::ProgressService::Stub::UpdateVisitSession, update, &updated).ok());
  gpb::CompleteVisitSessionRequest complete_visit;
  complete_visit.set_request_id(NewId("rq"));
  complete_visit.set_session_id(visit.session().session_id());
  gpb::CompleteVisitSessionResponse completed_visit;
  ASSERT_TRUE(on_second.Call(on_second.progress.get(), &gpb::ProgressService::Stub::CompleteVisitSession, complete_visit,
                             &completed_visit).ok());
  EXPECT_EQ(completed_visit.visit().pain_before(), 4);
}

TEST_F(Episodes, PatientsLogOnlyForThemselvesAndTenantsStayApart) {
  auto plan = StartEpisode(3);
  Caller other(*cluster_, MakeToken(*keys_, tenant_, "pt-other", {"patient"}, "pt-other"));
  gpb::LogHomeExerciseRequest log;
  log.set_request_id(NewId("rq"));
  log.set_patient_id(patient_id_);
  log.set_exercise_id("ex.strength.glute_bridge");
  gpb::LogHomeExerciseResponse logged;
  EXPECT_EQ(other.Call(other.progress.get(), &gpb::ProgressService::Stub::LogHomeExercise, log, &logged).error_code(),
            StatusCode::PERMISSION_DENIED);
  gpb::EvaluateProgressRequest evaluate;
  evaluate.set_request_id(NewId("rq"));
  evaluate.set_patient_id(patient_id_);
  gpb::EvaluateProgressResponse evaluated;
  auto patient = Patient();
  EXPECT_EQ(patient.Call(patient.progress.get(), &gpb::ProgressService::Stub::EvaluateProgress, evaluate, &evaluated)
                .error_code(),
            StatusCode::PERMISSION_DENIED);
  Caller intruder(*cluster_, MakeToken(*keys_, "other-tenant", "clin-9", {"clinician"}));
  EXPECT_EQ(intruder.Call(intruder.progress.get(), &gpb::ProgressService::Stub::EvaluateProgress, evaluate, &evaluated)
                .error_code(),
            StatusCode::FAILED_PRECONDITION);  // no active plan for that id in the other tenant
}

TEST_F(Episodes, PeripheralisationStopsTheDirectionAtOnceAndAsksForReassessment) {
  auto plan = StartEpisode(7, /*extension_preference=*/true);
  std::vector<std::string> directional;
  for (const auto& item : plan.items()) {
    if (item.item_id().starts_with("ex.dir.")) directional.push_back(item.item_id());
  }
  ASSERT_FALSE(directional.empty()) << "an extension preference gives directional exercises";
  std::string other;  // a non-directional exercise, which stays as it is
  for (const auto& item : plan.items()) {
    if (item.kind() == ppb::PLAN_ITEM_KIND_EXERCISE && !item.item_id().starts_with("ex.dir.")) other = item.item_id();
  }
  ASSERT_FALSE(other.empty());

  gpb::LogHomeExerciseResponse logged;
  const std::string request_id = NewId("rq");
  auto spread = [](gpb::LogHomeExerciseRequest& log) { log.set_symptoms_spread_down_leg(true); };
  ASSERT_TRUE(LogOnce(directional[0], spread, &logged, request_id).ok());
  EXPECT_TRUE(logged.log().symptoms_spread_down_leg());
  EXPECT_EQ(std::vector<std::string>(logged.log().regressed_item_ids().begin(), logged.log().regressed_item_ids().end()),
            std::vector<std::string>{directional[0]});
  EXPECT_NE(logged.log().advice().find("have been stopped"), std::string::npos) << logged.log().advice();

  // The plan changed at once: the direction is stopped and recorded, every extension item
  // is out, the plan asks for re-assessment; nothing else moved.
  const ppb::Plan after = CurrentPlan();
  EXPECT_EQ(after.revision(), plan.revision() + 1);
  EXPECT_NE(after.last_change_reason().find("peripheralisation"), std::string::npos) << after.last_change_reason();
  EXPECT_EQ(std::vector<std::string>(after.stopped_directions().begin(), after.stopped_directions().end()),
            std::vector<std::string>{"extension"});
  EXPECT_NE(std::find(after.contraindications().begin(), after.contraindications().end(), "extension_intolerant"),
            after.contraindications().end());
  EXPECT_TRUE(after.needs_reassessment());
  for (const auto& item : after.items()) {
    EXPECT_FALSE(item.item_id().starts_with("ex.dir.")) << item.item_id() << " is still in the plan";
    if (item.item_id() == other) {
      const auto was = std::find_if(plan.items().begin(), plan.items().end(), [&](const auto& i) { return i.item_id() == other; });
      EXPECT_EQ(item.dose().DebugString(), was->dose().DebugString());
    }
  }
  EXPECT_TRUE(std::any_of(after.items().begin(), after.items().end(), [&](const auto& i) { return i.item_id() == other; }));
  // The clinic is told at once.
  auto alerts = Alerts("unassigned");
  ASSERT_EQ(alerts.alerts_size(), 1);
  EXPECT_EQ(alerts.alerts(0).kind(), gpb::ALERT_KIND_PERIPHERALISATION);
  // A retry replays the log and changes nothing twice.
  gpb::LogHomeExerciseResponse replayed;
  ASSERT_TRUE(LogOnce(directional[0], spread, &replayed, request_id).ok());
  EXPECT_EQ(replayed.log().log_id(), logged.log().log_id());
  EXPECT_EQ(CurrentPlan().revision(), after.revision());
  // The stopped exercise can no longer be logged, and an evaluation re-assesses instead of
  // stepping anything back up.
  EXPECT_EQ(LogOnce(directional[0], [](gpb::LogHomeExerciseRequest&) {}, &replayed, NewId("rq")).error_code(),
            StatusCode::INVALID_ARGUMENT);
  LogWeek(after, 7, 100, 2);
  auto evaluation = Evaluate();
  EXPECT_EQ(evaluation.decision(), gpb::DECISION_REASSESS);
  ASSERT_GT(evaluation.reasons_size(), 0);
  EXPECT_NE(evaluation.reasons(0).find("direction stopped"), std::string::npos) << evaluation.reasons(0);
  EXPECT_FALSE(evaluation.plan_adjusted());
  EXPECT_EQ(evaluation.plan().revision(), after.revision());
}

// Issue 33: a home log checks the plan in use against the copy planning keeps in Redis,
// without a call to planning, and still sees every change to the plan at once: planning
// bumps the patient's generation before a change commits, and a copy is read only under
// the current generation. Counted from the audit trails: planning records each call it
// answers, progress each home log.
TEST_F(Episodes, AHomeLogReadsThePlanPlanningCachedAndSeesEachChangeAtOnce) {
  auto plan = StartEpisode(7);
  std::string exercise;
  for (const auto& item : plan.items()) {
    if (item.kind() == ppb::PLAN_ITEM_KIND_EXERCISE) exercise = item.item_id();
  }
  ASSERT_FALSE(exercise.empty());
  auto count = [&](const std::string& schema, const std::string& action) {
    return std::stoi(postgres_->Execute("SELECT count(*) FROM " + schema + ".audit_events WHERE tenant_id = '" + tenant_ +
                                            "' AND patient_id = '" + patient_id_ + "' AND action = '" + action + "'",
                                        "physio"));
  };
  // Progress's own count of where its plan reads were answered (other tests share the service: deltas).
  auto reads = [&](const std::string& kind) {
    const auto value =
        ScrapeMetric(cluster_->progress_metrics_port(), "physio_plan_reads_total{kind=\"" + kind + "\"}");
    return value ? static_cast<int>(*value) : -1;
  };
  ASSERT_EQ(CurrentPlan().status(), ppb::PLAN_STATUS_ACTIVE);  // planning reads it and caches it
  const int asked = count("planning", "GetActivePlan");
  const int from_cache = reads("cache");
  gpb::LogHomeExerciseResponse logged;
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(LogOnce(exercise, [](gpb::LogHomeExerciseRequest&) {}, &logged).ok());
  EXPECT_EQ(count("planning", "GetActivePlan"), asked) << "planning was asked for a plan it had cached";
  EXPECT_EQ(count("progress", "LogHomeExercise"), 3) << "each log is audited by the service that answers it";
  EXPECT_EQ(reads("cache"), from_cache + 3) << "the metric shows where plan reads were answered";
  // What a log checks against the plan comes from the cached copy too: an item of the plan that
  // is not an exercise is refused, naming the field.
  std::string not_an_exercise;
  for (const auto& item : plan.items()) {
    if (item.kind() != ppb::PLAN_ITEM_KIND_EXERCISE) not_an_exercise = item.item_id();
  }
  ASSERT_FALSE(not_an_exercise.empty()) << "the plan has advice or education besides its exercises";
  const auto refused = LogOnce(not_an_exercise, [](gpb::LogHomeExerciseRequest&) {}, &logged);
  EXPECT_EQ(refused.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(refused.error_message().find("exercise_id"), std::string::npos) << refused.error_message();
  EXPECT_EQ(reads("cache"), from_cache + 4);

  // The clinician suspends the plan; nobody reads it through planning before the next log.
  auto clinician = Clinician();
  const auto suspend = Adjustment(plan.plan_id(), ppb::ADJUSTMENT_SUSPEND, "new night pain reported by phone");
  ppb::AdjustPlanResponse adjusted;
  ASSERT_TRUE(clinician.Call(clinician.planning.get(), &ppb::PlanningService::Stub::AdjustPlan, suspend, &adjusted).ok());
  EXPECT_EQ(LogOnce(exercise, [](gpb::LogHomeExerciseRequest&) {}, &logged).error_code(), StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(count("planning", "GetActivePlan"), asked + 1) << "a changed plan is asked for again";

  // Resumed: logs are taken again, from the next read on.
  const auto resume = Adjustment(plan.plan_id(), ppb::ADJUSTMENT_RESUME, "night pain explained; safe to continue");
  ASSERT_TRUE(clinician.Call(clinician.planning.get(), &ppb::PlanningService::Stub::AdjustPlan, resume, &adjusted).ok());
  EXPECT_TRUE(LogOnce(exercise, [](gpb::LogHomeExerciseRequest&) {}, &logged).ok());
  EXPECT_TRUE(LogOnce(exercise, [](gpb::LogHomeExerciseRequest&) {}, &logged).ok());
  EXPECT_EQ(count("planning", "GetActivePlan"), asked + 2) << "the resumed plan is asked for once, then read from the cache";

  // Another tenant's patient of the same id reads nothing of this one's plan.
  Caller other(*cluster_, MakeToken(*keys_, "t-other-" + tenant_.substr(2), patient_id_, {"patient"}, patient_id_));
  gpb::LogHomeExerciseRequest foreign;
  foreign.set_request_id(NewId("rq"));
  foreign.set_patient_id(patient_id_);
  foreign.set_exercise_id(exercise);
  foreign.set_sets_done(1);
  foreign.set_reps_done(5);
  EXPECT_EQ(other.Call(other.progress.get(), &gpb::ProgressService::Stub::LogHomeExercise, foreign, &logged).error_code(),
            StatusCode::FAILED_PRECONDITION);
}

TEST_F(Episodes, ASafetyNetYesAlertsAtOnceAndSuspendsThePlan) {
  auto plan = StartEpisode(7);
  std::string exercise;
  for (const auto& item : plan.items()) {
    if (item.kind() == ppb::PLAN_ITEM_KIND_EXERCISE) exercise = item.item_id();
  }
  // An ordinary log asks the questions and gets nothing back.
  gpb::LogHomeExerciseResponse quiet;
  ASSERT_TRUE(LogOnce(exercise, [](gpb::LogHomeExerciseRequest& log) { log.mutable_safety_net(); }, &quiet).ok());
  EXPECT_TRUE(quiet.log().advice().empty());
  EXPECT_EQ(quiet.log().red_flags().action(), apb::RED_FLAG_ACTION_NOT_SCREENED);
  EXPECT_EQ(Alerts("unassigned").alerts_size(), 0);

  gpb::LogHomeExerciseResponse logged;
  ASSERT_TRUE(LogOnce(exercise, [](gpb::LogHomeExerciseRequest& log) { log.mutable_safety_net()->set_saddle_numbness(true); },
                      &logged).ok());
  EXPECT_EQ(logged.log().red_flags().action(), apb::RED_FLAG_ACTION_EMERGENCY_REFERRAL);
  EXPECT_NE(logged.log().advice().find("emergency department"), std::string::npos) << logged.log().advice();
  auto alerts = Alerts("unassigned");
  ASSERT_EQ(alerts.alerts_size(), 1);
  EXPECT_EQ(alerts.alerts(0).kind(), gpb::ALERT_KIND_SAFETY_NET);
  bool names_cauda_equina = false;
  for (const auto& reason : alerts.alerts(0).reasons()) names_cauda_equina |= reason.find("cauda_equina") != std::string::npos;
  EXPECT_TRUE(names_cauda_equina);
  // The home programme stops: the plan is suspended and further logs are refused.
  const ppb::Plan suspended = CurrentPlan();
  EXPECT_EQ(suspended.status(), ppb::PLAN_STATUS_SUSPENDED);
  EXPECT_NE(suspended.last_change_reason().find("safety-net"), std::string::npos) << suspended.last_change_reason();
  // Every further log, not only the first: the first reads the suspended plan from planning (the
  // cache was invalidated), which caches it; the next ones read it from the cache, under the same
  // key whose earlier bytes (the active plan) progress still keeps parsed. Only the same bytes may
  // reuse that parse.
  for (int attempt = 0; attempt < 3; ++attempt) {
    gpb::LogHomeExerciseResponse refused;
    EXPECT_EQ(LogOnce(exercise, [](gpb::LogHomeExerciseRequest&) {}, &refused).error_code(), StatusCode::FAILED_PRECONDITION)
        << "log " << attempt + 1 << " after the suspension";
  }
  EXPECT_EQ(Evaluate().decision(), gpb::DECISION_REFER);
}

// Issue 26 item 4: a patient who has stopped exercising (here, whose plan is already
// suspended) can still report saddle numbness: judged at once, the emergency advice
// in the answer, an alert for the clinic; and with no plan at all (through the
// Connect/JSON port) the same.
TEST_F(Episodes, SymptomsAreReportedAtAnyTimeWhateverThePlansState) {
  auto plan = StartEpisode(7);
  auto patient = Patient();
  gpb::ReportSymptomsRequest weakness;
  weakness.set_request_id(NewId("rq"));
  weakness.set_patient_id(patient_id_);
  weakness.mutable_safety_net()->set_worsening_leg_weakness(true);
  gpb::ReportSymptomsResponse urgent;
  ASSERT_TRUE(patient.Call(patient.progress.get(), &gpb::ProgressService::Stub::ReportSymptoms, weakness, &urgent).ok());
  EXPECT_TRUE(urgent.plan_suspended());
  EXPECT_EQ(CurrentPlan().status(), ppb::PLAN_STATUS_SUSPENDED);
  // Item 10: the patient app is never told "on track" while the plan is suspended.
  EXPECT_EQ(Summary().expected_course().status(), gpb::COURSE_STATUS_NEEDS_REVIEW);
  EXPECT_NE(Summary().expected_course().where_now().find("paused"), std::string::npos);

  // The plan is suspended: no home log is taken, but symptoms still are. A report with all "no"
  // from a device whose clock is a month ahead is refused; a "yes" never is for its time: it is
  // recorded at the time it arrived.
  gpb::ReportSymptomsRequest saddle;
  saddle.set_request_id(NewId("rq"));
  saddle.set_patient_id(patient_id_);
  saddle.mutable_report_time()->set_seconds(std::time(nullptr) + 30 * kDay);
  saddle.mutable_safety_net();
  gpb::ReportSymptomsResponse reported;
  const auto refused = patient.Call(patient.progress.get(), &gpb::ProgressService::Stub::ReportSymptoms, saddle, &reported);
  EXPECT_EQ(refused.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(refused.error_message(), "report_time: is in the future");
  saddle.mutable_safety_net()->set_saddle_numbness(true);
  const int64_t sent = std::time(nullptr);
  ASSERT_TRUE(patient.Call(patient.progress.get(), &gpb::ProgressService::Stub::ReportSymptoms, saddle, &reported).ok());
  EXPECT_GE(reported.report().report_time().seconds(), sent - 1);
  EXPECT_LE(reported.report().report_time().seconds(), std::time(nullptr) + 1);
  EXPECT_EQ(reported.report().red_flags().action(), apb::RED_FLAG_ACTION_EMERGENCY_REFERRAL);
  EXPECT_NE(reported.report().advice().find("emergency department"), std::string::npos) << reported.report().advice();
  EXPECT_EQ(reported.report().plan_id(), plan.plan_id());
  EXPECT_TRUE(reported.plan_suspended());
  auto alerts = Alerts("unassigned");
  ASSERT_GE(alerts.alerts_size(), 1);
  EXPECT_EQ(alerts.alerts(0).kind(), gpb::ALERT_KIND_SAFETY_NET);

  // A patient with no plan at all, through the Connect/JSON port.
  const std::string newcomer = "pt-" + NewId("x").substr(2, 10);
  httplib::Client client("127.0.0.1", cluster_->progress_http_port());
  auto answered = client.Post(
      "/physio.progress.v1.ProgressService/ReportSymptoms",
      {{"Authorization", "Bearer " + MakeToken(*keys_, tenant_, newcomer, {"patient"}, newcomer)}},
      R"({"requestId":")" + NewId("rq") + R"(","patientId":")" + newcomer + R"(","safetyNet":{"bladderOrBowelChange":true}})",
      "application/json");
  ASSERT_TRUE(answered);
  ASSERT_EQ(answered->status, 200) << answered->body;
  EXPECT_NE(answered->body.find("RED_FLAG_ACTION_EMERGENCY_REFERRAL"), std::string::npos) << answered->body;
  EXPECT_NE(answered->body.find("emergency department"), std::string::npos) << answered->body;
}

TEST_F(Episodes, AWorseningWeaknessAnswerIsUrgentAndAPatientMayOnlyMakeTheirPlanSafer) {
  auto plan = StartEpisode(7);
  std::string exercise;
  for (const auto& item : plan.items()) {
    if (item.kind() == ppb::PLAN_ITEM_KIND_EXERCISE) exercise = item.item_id();
  }
  // The patient cannot progress or resume their own plan through planning.
  auto patient = Patient();
  ppb::AdjustPlanRequest adjust;
  adjust.set_request_id(NewId("rq"));
  adjust.set_plan_id(plan.plan_id());
  adjust.set_adjustment(ppb::ADJUSTMENT_PROGRESS);
  ppb::AdjustPlanResponse adjusted;
  EXPECT_EQ(patient.Call(patient.planning.get(), &ppb::PlanningService::Stub::AdjustPlan, adjust, &adjusted).error_code(),
            StatusCode::PERMISSION_DENIED);
  // Nor regress someone else's.
  Caller stranger(*cluster_, MakeToken(*keys_, tenant_, "pt-stranger", {"patient"}, "pt-stranger"));
  adjust.set_adjustment(ppb::ADJUSTMENT_REGRESS);
  adjust.set_reason("too hard");
  EXPECT_EQ(stranger.Call(stranger.planning.get(), &ppb::PlanningService::Stub::AdjustPlan, adjust, &adjusted).error_code(),
            StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(CurrentPlan().revision(), plan.revision());

  gpb::LogHomeExerciseResponse logged;
  ASSERT_TRUE(LogOnce(exercise, [](gpb::LogHomeExerciseRequest& log) {
                log.mutable_safety_net()->set_worsening_leg_weakness(true);
              }, &logged).ok());
  EXPECT_EQ(logged.log().red_flags().action(), apb::RED_FLAG_ACTION_URGENT_REFERRAL);
  EXPECT_NE(logged.log().advice().find("contact your clinic today"), std::string::npos) << logged.log().advice();
  EXPECT_EQ(CurrentPlan().status(), ppb::PLAN_STATUS_SUSPENDED);
}

TEST_F(Episodes, RecoveryAtTheRemeasureSuggestsCompletion) {
  auto plan = StartEpisode(21);
  Remeasure(cpb::INSTRUMENT_NPRS, {0}, "nprs");
  std::vector<int> rmdq(24, 0);
  rmdq[0] = rmdq[5] = 1;  // 2 of 24
  Remeasure(cpb::INSTRUMENT_RMDQ, rmdq, "rmdq");
  auto evaluation = Evaluate();
  EXPECT_TRUE(evaluation.recovered());
  EXPECT_EQ(evaluation.decision(), gpb::DECISION_SUGGEST_COMPLETION);
  EXPECT_NE(evaluation.reasons(0).find("Kamper 2010"), std::string::npos) << evaluation.reasons(0);
  // Completing is the clinician's act: the plan is unchanged.
  EXPECT_FALSE(evaluation.plan_adjusted());
  EXPECT_EQ(evaluation.plan().status(), ppb::PLAN_STATUS_ACTIVE);

  // Roland-Morris 3 is not recovered.
  rmdq[7] = 1;
  Remeasure(cpb::INSTRUMENT_RMDQ, rmdq, "rmdq");
  auto later = Evaluate();
  EXPECT_FALSE(later.recovered());
  EXPECT_NE(later.decision(), gpb::DECISION_SUGGEST_COMPLETION);
}

TEST_F(Episodes, NonResponseIsJudgedOnlyAfterAdherence) {
  auto plan = StartEpisode(35);
  for (int week = 5; week >= 1; --week) LogWeek(plan, week * 7, 30, 6);
  Remeasure(cpb::INSTRUMENT_ODI, {2, 1, 3, 1, 2, 2, 1, 2, 1, 1}, "odi");  // unchanged
  auto evaluation = Evaluate();
  EXPECT_EQ(evaluation.responder_status(), gpb::RESPONDER_STATUS_NON_RESPONDER);
  EXPECT_EQ(evaluation.decision(), gpb::DECISION_CONTINUE);
  EXPECT_NE(evaluation.reasons(0).find("address adherence"), std::string::npos) << evaluation.reasons(0);
  EXPECT_FALSE(evaluation.plan().needs_reassessment());
  for (const auto& alert : evaluation.raised_alerts()) EXPECT_NE(alert.kind(), gpb::ALERT_KIND_NON_RESPONSE);
}

TEST_F(Episodes, TheEarlyResponseCheckAtTwoWeeks) {
  auto plan = StartEpisode(15);
  LogWeek(plan, 14, 100, 6);
  LogWeek(plan, 7, 100, 6);
  Remeasure(cpb::INSTRUMENT_ODI, {2, 1, 3, 1, 2, 2, 1, 2, 1, 1}, "odi");  // 32%, unchanged
  auto slow = Evaluate();
  EXPECT_EQ(slow.early_response(), gpb::EARLY_RESPONSE_SLOW);
  EXPECT_EQ(Summary().expected_course().status(), gpb::COURSE_STATUS_SLOWER_THAN_EXPECTED);
  bool says_so = false;
  for (const auto& reason : slow.reasons()) says_so |= reason.find("slow early response") != std::string::npos;
  EXPECT_TRUE(says_so);
  // ODI down 8 points (half the MCID is 5): on track, though not yet a responder.
  Remeasure(cpb::INSTRUMENT_ODI, {1, 1, 2, 1, 1, 2, 1, 1, 1, 1}, "odi");  // 24%
  auto on_track = Evaluate();
  EXPECT_EQ(on_track.early_response(), gpb::EARLY_RESPONSE_ON_TRACK);
  EXPECT_EQ(on_track.responder_status(), gpb::RESPONDER_STATUS_TOO_EARLY);
  // The summary the patient app reads says the same in plain words.
  const auto course = Summary().expected_course();
  EXPECT_EQ(course.status(), gpb::COURSE_STATUS_ON_TRACK);
  EXPECT_NE(course.where_now().find("Oswestry score has gone from 32% to 24%"), std::string::npos) << course.where_now();
  ASSERT_EQ(course.milestones_size(), 2);  // the package's reviews at weeks 2 and 6
  EXPECT_EQ(course.milestones(1).week(), 6);
  EXPECT_FALSE(course.sources().empty());
}

TEST_F(Episodes, TheExpectedCourseFollowsThePublishedCourseOfPersistentPain) {
  // Pain for 120 days at assessment, plan started 43 days ago (week 6), baseline pain 6.
  auto plan = StartEpisode(43, false, 120);
  EXPECT_EQ(plan.episode_days_at_assessment(), 120);
  LogWeek(plan, 7, 100, 5);
  const auto course = Summary().expected_course();
  EXPECT_EQ(course.basis(), gpb::COURSE_BASIS_PERSISTENT);
  EXPECT_NE(course.summary().find("lasted 6 weeks or more"), std::string::npos) << course.summary();
  EXPECT_NE(course.summary().find("moving with control"), std::string::npos) << course.summary();  // the phase
  ASSERT_EQ(course.milestones_size(), 2);
  EXPECT_FALSE(course.milestones(0).has_typical_pain());  // week 2: no published point
  ASSERT_TRUE(course.milestones(1).has_typical_pain());
  EXPECT_DOUBLE_EQ(course.milestones(1).typical_pain(), 3.9);  // 6 x 33/51 (da Costa 2012)
  EXPECT_NE(course.where_now().find("typically at about 3.9 by now"), std::string::npos) << course.where_now();
  bool cites = false;
  for (const auto& source : course.sources()) cites |= source.find("da Costa") != std::string::npos;
  EXPECT_TRUE(cites);
}

}  // namespace
}  // namespace physio::testing
