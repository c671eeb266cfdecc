#include "summary.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "assessment/intake_sections.h"
#include "domain/expected_course.h"
#include "domain/pain_trend.h"

namespace physio::progress {

namespace pb = physio::progress::v1;
namespace plan_pb = physio::planning::v1;
namespace cpb = physio::common::v1;
namespace apb = physio::assessment::v1;

namespace {
constexpr int64_t kWeekSeconds = 7 * 24 * 3600;

int64_t PlanStart(const plan_pb::Plan& plan) {
  return plan.has_activate_time() ? plan.activate_time().seconds() : plan.create_time().seconds();
}

// The expected course against the plan, for the summary.
pb::ExpectedCourse CourseOf(const plan_pb::Plan& plan, const EvaluationInput& input,
                                         const Evaluation& judged, int weeks_since_start, int open_alerts) {
  CourseInput course;
  switch (plan.intensity()) {
    case plan_pb::INTENSITY_ADVICE_AND_SELF_MANAGEMENT: course.group = CourseGroup::kLowRisk; break;
    case plan_pb::INTENSITY_PHYSIOTHERAPY_PACKAGE: course.group = CourseGroup::kMediumRisk; break;
    case plan_pb::INTENSITY_PSYCHOLOGICALLY_INFORMED: course.group = CourseGroup::kHighRisk; break;
    default: break;
  }
  switch (plan.phase()) {
    case cpb::PHASE_SYMPTOM_MODULATION: course.phase = CoursePhase::kSymptomModulation; break;
    case cpb::PHASE_MOVEMENT_CONTROL: course.phase = CoursePhase::kMovementControl; break;
    case cpb::PHASE_FUNCTION_OPTIMISATION: course.phase = CoursePhase::kFunctionOptimisation; break;
    default: break;
  }
  if (plan.has_episode_days_at_assessment()) course.episode_days_at_assessment = plan.episode_days_at_assessment();
  course.weeks_since_start = weeks_since_start;
  course.expected_weeks = plan.expected_duration_weeks();
  for (const auto& review : plan.review_points()) course.review_weeks.push_back(review.week());
  for (const auto& change : input.changes) {
    switch (change.outcome) {
      case Outcome::kNprs: course.pain = {change.baseline, change.latest}; break;
      case Outcome::kOdi: course.odi = {change.baseline, change.latest}; break;
      case Outcome::kRmdq: course.rmdq = {change.baseline, change.latest}; break;
      case Outcome::kPsfs: break;
    }
  }
  course.early_response = judged.early_response;
  course.responder = judged.responder;
  course.recovered = judged.recovered;
  course.plan_suspended = plan.status() == plan_pb::PLAN_STATUS_SUSPENDED;
  course.deteriorated = judged.flare;
  for (const auto& change : input.changes) course.deteriorated |= change.deteriorated;
  course.open_alerts = open_alerts;
  const ExpectedCourse built = BuildExpectedCourse(course);
  pb::ExpectedCourse out;
  out.set_summary(built.summary);
  for (const auto& milestone : built.milestones) {
    auto* m = out.add_milestones();
    m->set_week(milestone.week);
    m->set_expectation(milestone.expectation);
    if (milestone.typical_pain) m->set_typical_pain(*milestone.typical_pain);
  }
  switch (built.status) {
    case CourseStatus::kTooEarly: out.set_status(pb::COURSE_STATUS_TOO_EARLY); break;
    case CourseStatus::kOnTrack: out.set_status(pb::COURSE_STATUS_ON_TRACK); break;
    case CourseStatus::kSlowerThanExpected: out.set_status(pb::COURSE_STATUS_SLOWER_THAN_EXPECTED); break;
    case CourseStatus::kRecovered: out.set_status(pb::COURSE_STATUS_RECOVERED); break;
    case CourseStatus::kNeedsReview: out.set_status(pb::COURSE_STATUS_NEEDS_REVIEW); break;
  }
  out.set_where_now(built.where_now);
  switch (built.basis) {
    case CourseBasis::kRecentOnset: out.set_basis(pb::COURSE_BASIS_RECENT_ONSET); break;
    case CourseBasis::kPersistent: out.set_basis(pb::COURSE_BASIS_PERSISTENT); break;
    case CourseBasis::kUnknown: break;
  }
  for (const auto& source : built.sources) out.add_sources(source);
  return out;
}

// Work over the episode: the assessment's status (the plan's record of it) and the latest visit's.
std::optional<pb::WorkProgress> WorkOf(const plan_pb::Plan* plan, const PatientRecords& records,
                                       std::int64_t episode_start) {
  pb::WorkProgress work;
  apb::WorkStatus at_assessment = apb::WORK_STATUS_UNSPECIFIED;
  if (plan && !plan->work_status_at_assessment().empty()) {
    apb::WorkStatus_Parse(plan->work_status_at_assessment(), &at_assessment);
  }
  work.set_at_assessment(at_assessment);
  work.set_latest(at_assessment);
  if (plan && plan->has_usual_work_hours()) work.set_usual_hours_per_week(plan->usual_work_hours());
  if (plan) *work.mutable_latest_time() = plan->create_time();
  bool recorded = at_assessment != apb::WORK_STATUS_UNSPECIFIED;
  for (const auto& visit : records.visits) {  // oldest first
    if (visit.visit_time().seconds() < episode_start || visit.work().status() == apb::WORK_STATUS_UNSPECIFIED) continue;
    recorded = true;
    work.set_latest(visit.work().status());
    *work.mutable_latest_time() = visit.visit_time();
    if (visit.work().has_current_hours_per_week()) {
      work.set_latest_hours_per_week(visit.work().current_hours_per_week());
    } else {
      work.clear_latest_hours_per_week();
    }
    if (visit.work().has_usual_hours_per_week()) work.set_usual_hours_per_week(visit.work().usual_hours_per_week());
  }
  if (!recorded) return std::nullopt;
  const bool was_away = at_assessment == apb::WORK_STATUS_OFF_WORK || at_assessment == apb::WORK_STATUS_MODIFIED_DUTIES;
  const bool usual_now =
      work.latest() == apb::WORK_STATUS_WORKING ||
      (work.latest() == apb::WORK_STATUS_MODIFIED_DUTIES && work.has_latest_hours_per_week() &&
       work.has_usual_hours_per_week() && work.latest_hours_per_week() >= work.usual_hours_per_week());
  work.set_returned_to_usual_work(was_away && usual_now);
  return work;
}
}  // namespace

std::optional<Outcome> OutcomeOf(cpb::Instrument instrument) {
  switch (instrument) {
    case cpb::INSTRUMENT_NPRS: return Outcome::kNprs;
    case cpb::INSTRUMENT_ODI: return Outcome::kOdi;
    case cpb::INSTRUMENT_RMDQ: return Outcome::kRmdq;
    case cpb::INSTRUMENT_PSFS: return Outcome::kPsfs;
    default: return std::nullopt;
  }
}

pb::EarlyResponse ToProto(EarlyResponse early) {
  switch (early) {
    case EarlyResponse::kTooEarly: return pb::EARLY_RESPONSE_TOO_EARLY;
    case EarlyResponse::kOnTrack: return pb::EARLY_RESPONSE_ON_TRACK;
    case EarlyResponse::kSlow: return pb::EARLY_RESPONSE_SLOW;
  }
  return pb::EARLY_RESPONSE_UNSPECIFIED;
}

pb::ResponderStatus ToProto(ResponderStatus status) {
  switch (status) {
    case ResponderStatus::kTooEarly: return pb::RESPONDER_STATUS_TOO_EARLY;
    case ResponderStatus::kResponder: return pb::RESPONDER_STATUS_RESPONDER;
    case ResponderStatus::kNonResponder: return pb::RESPONDER_STATUS_NON_RESPONDER;
  }
  return pb::RESPONDER_STATUS_UNSPECIFIED;
}

std::int64_t EpisodeStart(const plan_pb::Plan& plan) { return std::min(plan.create_time().seconds(), PlanStart(plan)); }

void KeepRecordsWithin(PatientRecords& records, std::int64_t from_seconds, std::int64_t to_seconds) {
  auto outside = [&](const google::protobuf::Timestamp& time) {
    return time.seconds() < from_seconds || time.seconds() > to_seconds;
  };
  std::erase_if(records.visits, [&](const auto& visit) { return outside(visit.visit_time()); });
  std::erase_if(records.home_logs, [&](const auto& log) { return outside(log.performed_time()); });
  std::erase_if(records.measures, [&](const auto& measure) { return outside(measure.measure_time()); });
}

ProgressSnapshot Summarize(const std::string& patient_id, const plan_pb::Plan* plan,
                           const PatientRecords& records, std::int64_t now_seconds, const EvaluationPolicy& policy) {
  ProgressSnapshot snapshot;
  pb::ProgressSummary& summary = snapshot.summary;
  EvaluationInput& input = snapshot.evaluation;
  summary.set_patient_id(patient_id);
  input.now_seconds = now_seconds;
  std::optional<PainReading> baseline;
  std::map<cpb::Instrument, double> baseline_scores;
  // With a plan, readings and re-measures count from the current episode only: its plan's
  // creation (the assessment's baseline) or, for an import effective earlier, its start. A
  // score from an earlier plan is never compared with this plan's baseline (issue 26 item 7).
  std::int64_t episode_start = 0;
  if (plan) {
    episode_start = EpisodeStart(*plan);
    *summary.mutable_active_plan() = *plan;
    input.plan_start_seconds = PlanStart(*plan);
    input.sciatica = plan->sciatica();
    input.evidence_since_seconds = std::max(PlanStart(*plan), plan->adjust_time().seconds());
    for (const auto& score : plan->baseline_scores()) {
      baseline_scores[score.instrument()] = score.score();
      if (score.instrument() == cpb::INSTRUMENT_NPRS) {
        baseline = PainReading{plan->create_time().seconds(), static_cast<int>(score.score()), "assessment"};
      }
    }
  }

  std::vector<PainReading> readings;
  summary.set_visit_count(static_cast<int>(records.visits.size()));
  for (const pb::Visit& visit : records.visits) {
    // The pain the patient arrived with reflects the days since the last contact.
    if (visit.has_pain_before() && visit.visit_time().seconds() >= episode_start) readings.push_back({visit.visit_time().seconds(), visit.pain_before(), "visit"});
    const auto action = visit.red_flags().action();
    if (plan && visit.visit_time().seconds() >= input.evidence_since_seconds &&
        physio::assessment::CallsForReferral(action)) {
      input.new_red_flag = true;
      for (auto& line : physio::assessment::ConcernSummaries(visit.red_flags())) {
        input.red_flag_reasons.push_back(std::move(line));
      }
    }
    if (plan && visit.visit_time().seconds() >= input.evidence_since_seconds) {
      for (const auto& given : visit.session().interventions()) {
        if (given.response() == pb::SYMPTOM_RESPONSE_WORSE) {
          input.worse_with_treatment.push_back(given.item_id() + " (visit " + visit.visit_id() + ")");
        }
      }
    }
    if (plan && visit.visit_time().seconds() >= input.evidence_since_seconds && visit.neurological_worse()) {
      for (const auto& line : visit.neurological_changes()) {
        if (line.starts_with("worse")) input.neurological_worse.push_back(line + " (visit " + visit.visit_id() + ")");
      }
    }
  }

  summary.set_home_log_count(static_cast<int>(records.home_logs.size()));
  std::vector<int64_t> plan_log_times;
  std::map<std::string, std::vector<pb::HomeExerciseLog>> recent_logs;  // per exercise, after the plan's last change
  for (const pb::HomeExerciseLog& log : records.home_logs) {
    // A log names its plan: this plan's count whenever performed; others' only from this episode on.
    if ((plan && log.plan_id() == plan->plan_id()) || log.performed_time().seconds() >= episode_start) {
      readings.push_back({log.performed_time().seconds(), log.pain_after(), kAfterExercise});
      if (log.has_usual_pain()) readings.push_back({log.performed_time().seconds(), log.usual_pain(), kUsualOnHomeLog});
    }
    if (plan && log.plan_id() == plan->plan_id()) {
      plan_log_times.push_back(log.performed_time().seconds());
      if (log.performed_time().seconds() >= input.evidence_since_seconds) {
        recent_logs[log.exercise_id()].push_back(log);
        input.rated_too_hard |= log.difficulty() == pb::DIFFICULTY_TOO_HARD;
      }
    }
  }

  // NPRS re-measures are pain readings too.
  std::map<cpb::Instrument, double> latest_measure;
  for (const pb::OutcomeMeasure& measure : records.measures) {
    if (plan && measure.measure_time().seconds() >= input.plan_start_seconds) {
      if (measure.score().instrument() == cpb::INSTRUMENT_NPRS) input.latest_nprs = measure.score().score();
      if (measure.score().instrument() == cpb::INSTRUMENT_RMDQ) input.latest_rmdq = measure.score().score();
    }
    if (measure.measure_time().seconds() < episode_start) continue;
    if (measure.score().instrument() == cpb::INSTRUMENT_NPRS) {
      readings.push_back({measure.measure_time().seconds(), static_cast<int>(measure.score().score()), "remeasure"});
    } else {
      latest_measure[measure.score().instrument()] = measure.score().score();
    }
  }

  PainTrend trend = BuildPainTrend(baseline, std::move(readings), int64_t{policy.pain_window_days} * 24 * 3600);
  for (const auto& reading : trend.readings) {
    auto* point = summary.add_pain_trend();
    point->mutable_time()->set_seconds(reading.time_seconds);
    point->set_pain(reading.pain);
    point->set_source(reading.source);
  }
  if (trend.baseline) summary.set_baseline_pain(*trend.baseline);
  if (trend.latest) summary.set_latest_pain(*trend.latest);
  if (trend.change) summary.set_pain_change(*trend.change);
  if (trend.recent_mean) summary.set_recent_pain_mean(*trend.recent_mean);
  summary.set_pain_change_meaningful(trend.meaningful_improvement);
  // The readings after the baseline, already in time order.
  input.pain.assign(trend.readings.begin() + (trend.baseline ? 1 : 0), trend.readings.end());

  // Outcome changes against the plan's baseline: pain from the trend, the others from re-measures.
  // Pain is judged on the last week's mean, and only when those readings can carry a
  // judgement (a single post-exercise home log neither makes a responder nor a deterioration).
  if (trend.baseline && trend.recent_mean && trend.judgeable) {
    input.changes.push_back(JudgeChange(Outcome::kNprs, *trend.baseline, *trend.recent_mean, policy.detectable));
  }
  for (const auto& [instrument, latest] : latest_measure) {
    auto base = baseline_scores.find(instrument);
    if (base != baseline_scores.end()) input.changes.push_back(JudgeChange(*OutcomeOf(instrument), base->second, latest, policy.detectable));
  }
  for (const auto& change : input.changes) {
    auto* out = summary.add_outcome_changes();
    static const std::map<Outcome, cpb::Instrument> kInstrument = {{Outcome::kNprs, cpb::INSTRUMENT_NPRS},
                                                                   {Outcome::kOdi, cpb::INSTRUMENT_ODI},
                                                                   {Outcome::kRmdq, cpb::INSTRUMENT_RMDQ},
                                                                   {Outcome::kPsfs, cpb::INSTRUMENT_PSFS}};
    out->set_instrument(kInstrument.at(change.outcome));
    out->set_baseline(change.baseline);
    out->set_latest(change.latest);
    out->set_change(change.change);
    out->set_percent_change(change.percent_change);
    out->set_improved_meaningfully(change.improved);
    out->set_deteriorated_meaningfully(change.deteriorated);
    out->set_rule(change.rule);
  }

  if (plan) {
    int prescribed_per_week = 0;
    // Dose completed: every prescribed home exercise logged at its prescribed dose,
    // held for at least `dose_completion_days` (from the first full-dose log since the
    // plan's last change) and still at it in the latest log.
    bool dose_completed = true;
    // The plan's own interval (set from the patient's irritability); older plans use the setting.
    const int64_t hold_days =
        plan->progression_interval_days() > 0 ? plan->progression_interval_days() : policy.dose_completion_days;
    for (const auto& item : plan->items()) {
      if (item.kind() != plan_pb::PLAN_ITEM_KIND_EXERCISE || !item.home_programme()) continue;
      prescribed_per_week += item.dose().sessions_per_week();
      auto full = [&](const pb::HomeExerciseLog& log) {
        return log.sets_done() >= item.dose().sets() && log.reps_done() >= item.dose().reps();
      };
      auto logs = recent_logs.find(item.item_id());
      if (logs == recent_logs.end() || !full(logs->second.back())) {
        dose_completed = false;
        continue;
      }
      const auto first_full = std::find_if(logs->second.begin(), logs->second.end(), full);
      if (input.now_seconds - first_full->performed_time().seconds() < hold_days * 24 * 3600) {
        dose_completed = false;
      }
    }
    input.dose_completed = dose_completed;
    input.adherence = AdherenceByWeek(input.plan_start_seconds, input.now_seconds, prescribed_per_week, plan_log_times);
    int prescribed = 0, logged = 0;
    for (const auto& week : input.adherence) {
      auto* out = summary.add_adherence();
      out->set_week(week.week);
      out->set_prescribed_sessions(week.prescribed);
      out->set_logged_sessions(week.logged);
      out->set_percent(week.percent);
      prescribed += week.prescribed;
      logged += std::min(week.logged, week.prescribed);
    }
    if (prescribed > 0) summary.set_adherence_percent(std::round(1000.0 * logged / prescribed) / 10.0);
    summary.set_weeks_since_start(static_cast<int>((input.now_seconds - input.plan_start_seconds) / kWeekSeconds));
    snapshot.judged = Evaluate(input, policy);
    summary.set_responder_status(ToProto(snapshot.judged.responder));
    *summary.mutable_expected_course() = CourseOf(*plan, input, snapshot.judged, summary.weeks_since_start(),
                                                  static_cast<int>(records.open_alerts.size()));
  }
  for (const auto& alert : records.open_alerts) *summary.add_open_alerts() = alert;
  if (auto work = WorkOf(plan, records, episode_start)) *summary.mutable_work() = *work;
  return snapshot;
}

}  // namespace physio::progress
