#include "progress_app.h"

#include "fhir_progress.h"

#include <google/protobuf/util/time_util.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "domain/expected_course.h"
#include "domain/home_log.h"
#include "domain/session_record.h"
#include "visit_documentation.h"
#include "assessment/intake_sections.h"
#include <nlohmann/json.hpp>

#include "physio/common/error.h"
#include "physio/common/fhir_search.h"
#include "physio/common/ids.h"
#include "physio/common/validation.h"
#include "physio/db/page_token.h"

namespace physio::progress {

namespace plan_pb = physio::planning::v1;
namespace apb = physio::assessment::v1;
namespace cpb = physio::common::v1;
using google::protobuf::Timestamp;
using google::protobuf::util::TimeUtil;

namespace {
constexpr auto kStoreBudget = std::chrono::seconds(5);
// Clocks of patient devices drift; a little future is tolerated, more is an error.
constexpr int64_t kFutureToleranceSeconds = 300;

// `future_is_now`: a time in the future is taken as now instead of refused (a home log or a symptom
// report carrying a safety signal, which a device's clock set wrong must not keep from the clinic).
Timestamp ValidatedTime(const std::string& field, const Timestamp& given, bool future_is_now = false) {
  const Timestamp now = TimeUtil::GetCurrentTime();
  if (given.seconds() == 0 && given.nanos() == 0) return now;
  // Valid range of google.protobuf.Timestamp: years 0001-9999, nanos in [0, 1e9).
  if (given.seconds() < TimeUtil::kTimestampMinSeconds || given.seconds() > TimeUtil::kTimestampMaxSeconds ||
      given.nanos() < 0 || given.nanos() > 999999999) {
    ThrowInvalidArgument(field, "is not a valid timestamp");
  }
  if (given.seconds() > now.seconds() + kFutureToleranceSeconds) {
    if (future_is_now) return now;
    ThrowInvalidArgument(field, "is in the future");
  }
  return given;
}

void ValidatePain(const std::string& field, int value) { ValidateRange(field, value, 0, 10); }



pb::Decision ToProto(Decision decision) {
  switch (decision) {
    case Decision::kContinue: return pb::DECISION_CONTINUE;
    case Decision::kProgress: return pb::DECISION_PROGRESS;
    case Decision::kRegress: return pb::DECISION_REGRESS;
    case Decision::kReassess: return pb::DECISION_REASSESS;
    case Decision::kRefer: return pb::DECISION_REFER;
    case Decision::kSuggestCompletion: return pb::DECISION_SUGGEST_COMPLETION;
  }
  return pb::DECISION_UNSPECIFIED;
}

constexpr const char* kUnassignedClinic = "unassigned";
// The most reasons an alert keeps (its first finding's and the latest later ones).
constexpr int kMaxAlertReasons = 50;

// Raises an alert; when one of the same kind is already open for the patient, a finding it
// does not hold yet is added to that one instead (never lost behind it: a minor fall's open
// alert must not swallow a later cauda equina emergency), and its events are appended again.
// nullopt when nothing was new.
std::optional<pb::Alert> RaiseAlert(ProgressWriter& writer, const CallContext& ctx, const std::string& clinic_id,
                                    const std::string& patient_id, pb::AlertKind kind,
                                    const std::vector<std::string>& reasons) {
  pb::Alert alert;
  alert.set_alert_id(NewId("alert"));
  alert.set_clinic_id(clinic_id);
  alert.set_patient_id(patient_id);
  alert.set_kind(kind);
  for (const auto& reason : reasons) alert.add_reasons(reason);
  alert.set_status(pb::ALERT_STATUS_OPEN);
  *alert.mutable_create_time() = TimeUtil::GetCurrentTime();
  alert.set_occurrences(1);
  if (!writer.InsertAlertUnlessOpen(ctx.tenant, alert)) {
    auto open = writer.FindOpenAlertForUpdate(ctx.tenant, patient_id, kind);
    if (!open) return std::nullopt;  // acknowledged in between: this one's own transaction retries
    std::vector<std::string> later;
    for (const auto& reason : reasons) {
      const auto& held = open->reasons();
      if (std::find(held.begin(), held.end(), reason) == held.end() &&
          std::find(held.begin(), held.end(), "later: " + reason) == held.end()) {
        later.push_back(reason);
      }
    }
    if (later.empty()) return std::nullopt;  // the same finding again
    for (const auto& reason : later) open->add_reasons("later: " + reason);
    // Bounded: the oldest later reasons give way to the newest; the first finding's stay.
    const auto& held = open->reasons();
    const int first_later =
        static_cast<int>(std::find_if(held.begin(), held.end(), [](const std::string& r) { return r.starts_with("later: "); }) -
                         held.begin());
    const int excess = open->reasons_size() - kMaxAlertReasons;
    if (excess > 0) open->mutable_reasons()->DeleteSubrange(first_later, std::min(excess, open->reasons_size() - first_later));
    open->set_occurrences(std::max(1, open->occurrences()) + 1);
    *open->mutable_last_raise_time() = alert.create_time();
    writer.UpdateOpenAlert(ctx.tenant, *open);
    alert = std::move(*open);
  }
  writer.AppendEvent(ctx.tenant, "EVENT_KIND_ALERT_RAISED", patient_id, alert.alert_id());
  if (kind == pb::ALERT_KIND_RED_FLAG || kind == pb::ALERT_KIND_SAFETY_NET) {
    writer.AppendEvent(ctx.tenant, "EVENT_KIND_RED_FLAG_RAISED", patient_id, alert.alert_id());
  }
  return alert;
}

// The clinic that last saw the patient (for alerts), or "unassigned".
std::string LatestClinic(ProgressWriter& writer, const CallContext& ctx, const std::string& patient_id) {
  return writer.LatestClinic(ctx.tenant, patient_id).value_or(kUnassignedClinic);
}

bool AnyYes(const pb::SafetyNetAnswers& net) {
  return net.saddle_numbness() || net.bladder_or_bowel_change() || net.sexual_dysfunction() ||
         net.both_legs_affected() || net.worsening_leg_weakness() || net.feverish_or_unwell();
}

// A safety-net alert's reasons: where the answer came from, the red-flag action and each concern.
std::vector<std::string> SafetyNetAlertReasons(const std::string& source, const apb::RedFlagResult& red_flags) {
  std::vector<std::string> reasons = {source + ": safety-net answer", apb::RedFlagAction_Name(red_flags.action())};
  for (const auto& line : physio::assessment::ConcernSummaries(red_flags)) reasons.push_back(line);
  return reasons;
}

// Concerns of a check-in re-screen below the level that suspends the plan (monitor, routine
// referral) whose condition the plan does not cover yet (all of them without a plan).
std::vector<plan_pb::FoundConcern> NewConcerns(const apb::RedFlagResult& red_flags, const plan_pb::Plan* plan) {
  std::vector<plan_pb::FoundConcern> found;
  if (physio::assessment::CallsForReferral(red_flags.action())) return found;
  for (const auto& concern : red_flags.concerns()) {
    if (concern.action() < apb::RED_FLAG_ACTION_MONITOR) continue;
    if (plan != nullptr && std::find(plan->monitored_conditions().begin(), plan->monitored_conditions().end(),
                                     concern.condition()) != plan->monitored_conditions().end()) {
      continue;
    }
    if (std::any_of(found.begin(), found.end(), [&](const auto& f) { return f.condition() == concern.condition(); })) {
      continue;
    }
    plan_pb::FoundConcern out;
    out.set_condition(concern.condition());
    out.set_summary(physio::assessment::ConcernSummary(concern).substr(0, 300));
    found.push_back(std::move(out));
  }
  return found;
}

bool AnyMonitoredConcern(const apb::RedFlagResult& red_flags) {
  return std::any_of(red_flags.concerns().begin(), red_flags.concerns().end(),
                     [](const auto& concern) { return concern.action() >= apb::RED_FLAG_ACTION_MONITOR; });
}

SafetyNetUrgency UrgencyOf(const std::optional<apb::RedFlagResult>& red_flags) {
  if (!red_flags) return SafetyNetUrgency::kNone;
  if (red_flags->action() == apb::RED_FLAG_ACTION_EMERGENCY_REFERRAL) return SafetyNetUrgency::kEmergency;
  if (physio::assessment::CallsForReferral(red_flags->action())) return SafetyNetUrgency::kUrgent;
  return SafetyNetUrgency::kContactClinic;
}

}  // namespace

pb::RecordVisitResponse ProgressApp::RecordVisit(const CallContext& ctx, const pb::RecordVisitRequest& request,
                                                 AuditTarget& audit) {
  ValidateRequestId("request_id", request.request_id());
  ValidateOpaqueId("patient_id", request.patient_id());
  audit.patient_id = request.patient_id();
  if (request.kind() == pb::VISIT_KIND_UNSPECIFIED || !pb::VisitKind_IsValid(request.kind())) {
    ThrowInvalidArgument("kind", "must be VISIT_KIND_CLINIC or VISIT_KIND_TELEHEALTH");
  }
  if (request.has_pain_before()) ValidatePain("pain_before", request.pain_before());
  if (request.has_pain_after()) ValidatePain("pain_after", request.pain_after());
  if (request.has_work()) {
    if (request.work().status() == apb::WORK_STATUS_UNSPECIFIED) ThrowInvalidArgument("work.status", "is required");
    physio::assessment::ValidateWork("work", request.work());
  }
  if (request.has_neurological()) physio::assessment::ValidateNeurological("neurological", request.neurological());
  if (request.has_session()) ValidateSessionRecord("session", request.session());
  const auto delivered = DistinctIds(
      "delivered_item_ids", {request.delivered_item_ids().begin(), request.delivered_item_ids().end()}, 50);
  if (!request.clinic_id().empty()) ValidateOpaqueId("clinic_id", request.clinic_id());
  const Timestamp visit_time = ValidatedTime("visit_time", request.visit_time());
  const auto deadline = ctx.DeadlineCappedAt(kStoreBudget);
  const PgIdempotencyKey key{kSchema, ctx.tenant, ctx.principal, "RecordVisit", request.request_id()};
  std::optional<pb::RecordVisitResponse> response = IdempotentReplay<pb::RecordVisitResponse>(records_, deadline, key, request);
  // Only a red-flag re-screen can suspend the plan: then the plan in use and what
  // intake knew about the patient (age, episode duration) are read, before the transaction.
  // So can a monitor-level concern the plan does not cover yet: it adds precautions.
  // A neurological re-examination is compared with the assessment's and the last visit's.
  SharedPlan plan;
  // The session's documentation is judged against the plan's direction and items.
  if (response ? physio::assessment::CallsForReferral(response->visit().red_flags().action()) ||
                     AnyMonitoredConcern(response->visit().red_flags()) || response->visit().has_session()
               : request.has_red_flag_screen() || request.has_neurological() || request.has_session()) {
    plan = planning_.ActivePlan(ctx, request.patient_id());
  }
  IntakeFacts intake;
  if (!response && plan) intake = FactsFromIntake(ctx, *plan, visit_time);
  // The earlier visits, read once: the neurological re-check and the range of movement compare with them.
  std::optional<PatientRecords> earlier;
  if (!response && (request.has_neurological() || !request.session().range_of_movement().empty())) {
    earlier = records_.ReadPatient(ctx.tenant, request.patient_id(), policy_, ctx.DeadlineCappedAt(kStoreBudget));
  }
  std::optional<NeuroRecheck> neuro;
  if (!response && request.has_neurological()) {
    neuro = RecheckNeuro(*earlier, plan.get(), intake, request.neurological());
  }
  std::vector<std::string> session_findings;
  bool peripheralised = false;
  if (!response && request.has_session()) {
    const SessionJudgement judged = JudgeSessionRecord(request.session(), plan.get());
    session_findings = judged.findings;
    peripheralised = judged.peripheralised();
    if (earlier) {
      // Each movement against the last visit that measured it.
      std::map<std::string, RangeReading> last;
      std::vector<const pb::Visit*> visits;
      for (const auto& visit : earlier->visits) visits.push_back(&visit);
      std::sort(visits.begin(), visits.end(), [](const pb::Visit* a, const pb::Visit* b) {
        return a->visit_time().seconds() < b->visit_time().seconds();
      });
      for (const pb::Visit* visit : visits) {
        for (const auto& reading : RangeOf(visit->session())) last[reading.movement] = reading;
      }
      std::vector<RangeReading> before;
      for (const auto& [movement, reading] : last) before.push_back(reading);
      for (auto& line : CompareRange(before, RangeOf(request.session()))) session_findings.push_back(std::move(line));
    }
  }
  // The examination alone can call for the re-screen: an urgent finding, or deficits on both sides.
  const bool rescreen = request.has_red_flag_screen() ||
                        (neuro && physio::assessment::NeuroCallsForScreen(neuro->findings));
  std::vector<pb::AlertKind> raised;  // by the transaction that committed
  if (!response) response = IdempotentWrite<pb::RecordVisitResponse>(
      records_, deadline, key, request,
      [&](ProgressWriter& writer) {
        raised.clear();
        pb::Visit visit;
        visit.set_visit_id(NewId("visit"));
        visit.set_patient_id(request.patient_id());
        visit.set_kind(request.kind());
        *visit.mutable_visit_time() = visit_time;
        if (request.has_pain_before()) visit.set_pain_before(request.pain_before());
        if (request.has_pain_after()) visit.set_pain_after(request.pain_after());
        for (const auto& item_id : delivered) visit.add_delivered_item_ids(item_id);
        if (request.has_work()) *visit.mutable_work() = request.work();
        visit.set_recorded_by(ctx.principal);
        if (neuro) {
          *visit.mutable_neurological() = request.neurological();
          for (const auto& line : neuro->changes) visit.add_neurological_changes(line);
          visit.set_neurological_worse(neuro->worse);
        }
        if (request.has_session()) {
          *visit.mutable_session() = request.session();
          for (const auto& line : session_findings) visit.add_session_findings(line);
        }
        if (rescreen) {
          // The same rules as at intake, with the age, episode duration and history intake
          // recorded (not re-asked at check-in), so the age- and history-dependent rules apply too.
          if (request.has_red_flag_screen()) *visit.mutable_red_flag_screen() = request.red_flag_screen();
          *visit.mutable_red_flags() = Rescreen(request.red_flag_screen(), intake, neuro ? &*neuro : nullptr);
        }
        writer.InsertVisit(ctx.tenant, visit,
                           request.clinic_id().empty() ? std::nullopt : std::optional<std::string>(request.clinic_id()));
        writer.AppendEvent(ctx.tenant, "EVENT_KIND_VISIT_RECORDED", visit.patient_id(), visit.visit_id());
        const auto action = visit.red_flags().action();
        if (physio::assessment::CallsForReferral(action)) {
          // A red flag at check-in is raised at once, in the same commit as the visit.
          auto reasons = physio::assessment::ConcernSummaries(visit.red_flags());
          reasons.insert(reasons.begin(), apb::RedFlagAction_Name(action));
          if (RaiseAlert(writer, ctx, request.clinic_id().empty() ? kUnassignedClinic : request.clinic_id(),
                         request.patient_id(), pb::ALERT_KIND_RED_FLAG, reasons)) {
            raised.push_back(pb::ALERT_KIND_RED_FLAG);
          }
        } else if (const auto found = NewConcerns(visit.red_flags(), plan.get()); !found.empty()) {
          // A new monitor-level concern: the clinic is told at once, in the same commit.
          std::vector<std::string> reasons = {apb::RedFlagAction_Name(action),
                                              "new at check-in (visit " + visit.visit_id() + ")"};
          for (const auto& concern : found) reasons.push_back(concern.summary());
          if (RaiseAlert(writer, ctx, request.clinic_id().empty() ? kUnassignedClinic : request.clinic_id(),
                         request.patient_id(), pb::ALERT_KIND_RED_FLAG, reasons)) {
            raised.push_back(pb::ALERT_KIND_RED_FLAG);
          }
        }
        if (peripheralised) {
          // Symptoms spread down the leg at the session: the clinic is told in the same commit.
          std::vector<std::string> reasons = {"visit " + visit.visit_id() + ": symptoms spread down the leg"};
          for (const auto& line : session_findings) {
            if (line.starts_with("stopped") || line.starts_with("re-assess: peripheralising")) reasons.push_back(line);
          }
          if (RaiseAlert(writer, ctx, request.clinic_id().empty() ? kUnassignedClinic : request.clinic_id(),
                         request.patient_id(), pb::ALERT_KIND_PERIPHERALISATION, reasons)) {
            raised.push_back(pb::ALERT_KIND_PERIPHERALISATION);
          }
        }
        pb::RecordVisitResponse recorded;
        *recorded.mutable_visit() = visit;
        return recorded;
      },
      [&](const pb::RecordVisitResponse& recorded) { audit.resource_id = recorded.visit().visit_id(); });
  NoteAlertsRaised(raised);
  audit.resource_id = response->visit().visit_id();
  // An urgent or emergency red flag takes the plan out of use at once. The visit and
  // its alert are already committed; if planning cannot be reached the call fails
  // UNAVAILABLE and its retry (same request_id) replays the visit and suspends again.
  const auto action = response->visit().red_flags().action();
  if (physio::assessment::CallsForReferral(action) && plan) {
    SuspendPlan(ctx, *plan, "suspend-" + response->visit().visit_id(),
                "red flag at check-in (visit " + response->visit().visit_id() + ")", response->visit().red_flags());
  }
  // A new monitor-level concern puts its precautions on the plan (once, by a request id
  // derived from the visit; a retry finds the plan covering it already, or finishes the job).
  if (plan && (plan->status() == plan_pb::PLAN_STATUS_ACTIVE || plan->status() == plan_pb::PLAN_STATUS_SUSPENDED)) {
    if (const auto found = NewConcerns(response->visit().red_flags(), &*plan); !found.empty()) {
      plan_pb::AdjustPlanRequest precautions;
      precautions.set_request_id("precautions-" + response->visit().visit_id());
      precautions.set_plan_id(plan->plan_id());
      precautions.set_adjustment(plan_pb::ADJUSTMENT_ADD_PRECAUTIONS);
      precautions.set_reason("new concern at check-in (visit " + response->visit().visit_id() + ")");
      for (const auto& concern : found) *precautions.add_concerns() = concern;
      planning_.Adjust(ctx, precautions);
      response->set_plan_precautions_added(true);
    }
  }
  ActOnSession(ctx, response->visit(), plan.get());
  return *response;
}

pb::LogHomeExerciseResponse ProgressApp::LogHomeExercise(const CallContext& ctx,
                                                         const pb::LogHomeExerciseRequest& request,
                                                         AuditTarget& audit) {
  ValidateRequestId("request_id", request.request_id());
  ValidateOpaqueId("patient_id", request.patient_id());
  RequirePatientAccess(ctx, request.patient_id());
  audit.patient_id = request.patient_id();
  ValidateOpaqueId("exercise_id", request.exercise_id());
  ValidateRange("sets_done", request.sets_done(), 0, 20);
  ValidateRange("reps_done", request.reps_done(), 0, 200);
  ValidatePain("pain_during", request.pain_during());
  ValidatePain("pain_after", request.pain_after());
  if (request.has_usual_pain()) ValidatePain("usual_pain", request.usual_pain());
  if (!pb::Difficulty_IsValid(request.difficulty())) ThrowInvalidArgument("difficulty", "is not a known value");
  const auto& net = request.safety_net();
  const bool any_yes = AnyYes(net);
  // A log carrying a safety signal is never refused for its time: a device whose clock was set
  // wrong must not keep a red flag from the clinic. Out of range, it is recorded at the time it
  // arrived (the response says so); any other log is refused naming the field.
  const bool safety_signal = any_yes || request.symptoms_spread_down_leg();
  Timestamp performed = ValidatedTime("performed_time", request.performed_time(), safety_signal);
  const auto deadline = ctx.DeadlineCappedAt(kStoreBudget);
  const PgIdempotencyKey key{kSchema, ctx.tenant, ctx.principal, "LogHomeExercise", request.request_id()};
  // A retry is answered from its record. The write's own transaction looks the record up
  // (with BEGIN), so a first attempt costs no lookup of its own. Only when planning refuses
  // the log (the plan since suspended, changed or ended) or cannot be reached is the record
  // looked up first: a log already stored is answered whatever planning (or, for the safety
  // net's facts, assessment) says, and a safety action the first attempt could not finish is
  // finished now.
  std::optional<apb::RedFlagResult> red_flags;
  SharedPlan plan;
  std::vector<std::string> exercises;
  try {
    plan = planning_.ActivePlan(ctx, request.patient_id());
    if (!plan) throw Error(ErrorCode::kFailedPrecondition, "patient_id: the patient has no active plan to log against");
    if (plan->status() == plan_pb::PLAN_STATUS_SUSPENDED) {
      throw Error(ErrorCode::kFailedPrecondition,
                  "patient_id: the plan is suspended after a red flag; stop the home programme and contact the clinic");
    }
    bool prescribed = false;
    for (const auto& item : plan->items()) {
      if (item.kind() != plan_pb::PLAN_ITEM_KIND_EXERCISE) continue;
      exercises.push_back(item.item_id());
      prescribed |= item.item_id() == request.exercise_id();
    }
    if (!prescribed) ThrowInvalidArgument("exercise_id", "is not an exercise of the patient's active plan");
    // A log counts for its plan whenever performed (the summary's adherence and pain trend), so a
    // time before the plan existed (a device whose clock was reset) would be judged as this plan's.
    // The same few minutes of drift are tolerated as for the future.
    if (const int64_t began = EpisodeStart(*plan); performed.seconds() < began - kFutureToleranceSeconds) {
      if (safety_signal) {
        performed = TimeUtil::GetCurrentTime();
      } else {
        ThrowInvalidArgument("performed_time", "is before the patient's plan began (" +
                                                 TimeUtil::ToString(TimeUtil::SecondsToTimestamp(began)) +
                                                 "); is the device's clock right?");
      }
    }
    // The safety-net answers go through the same red-flag rules as a check-in, with what
    // intake knew (age, episode duration).
    if (any_yes) red_flags = JudgeSafetyNet(net, FactsFromIntake(ctx, *plan, performed));
  } catch (const Error&) {
    if (auto replay = IdempotentReplay<pb::LogHomeExerciseResponse>(records_, deadline, key, request)) {
      audit.resource_id = replay->log().log_id();
      ActOnHomeLog(ctx, replay->log(), nullptr);
      return *replay;
    }
    throw;
  }
  const auto directional =
      request.symptoms_spread_down_leg() ? ProvokingDirectionalExercises(request.exercise_id(), exercises)
                                         : std::vector<std::string>{};
  const SafetyNetUrgency urgency = UrgencyOf(red_flags);

  std::vector<pb::AlertKind> raised;  // by the transaction that committed
  auto response = IdempotentWrite<pb::LogHomeExerciseResponse>(
      records_, deadline, key, request, [&](ProgressWriter& writer) {
        raised.clear();
        pb::HomeExerciseLog log;
        log.set_log_id(NewId("hel"));
        log.set_patient_id(request.patient_id());
        log.set_plan_id(plan->plan_id());
        log.set_exercise_id(request.exercise_id());
        *log.mutable_performed_time() = performed;
        log.set_sets_done(request.sets_done());
        log.set_reps_done(request.reps_done());
        log.set_pain_during(request.pain_during());
        log.set_pain_after(request.pain_after());
        if (request.has_usual_pain()) log.set_usual_pain(request.usual_pain());
        log.set_difficulty(request.difficulty());
        log.set_recorded_by(ctx.principal);
        log.set_symptoms_spread_down_leg(request.symptoms_spread_down_leg());
        if (request.has_safety_net()) *log.mutable_safety_net() = net;
        if (red_flags) {
          *log.mutable_red_flags() = *red_flags;
        } else {
          log.mutable_red_flags()->set_action(apb::RED_FLAG_ACTION_NOT_SCREENED);
        }
        for (const auto& id : directional) log.add_regressed_item_ids(id);
        log.set_advice(HomeLogAdvice(urgency, request.symptoms_spread_down_leg(), !directional.empty()));
        writer.InsertHomeLog(ctx.tenant, log);
        writer.AppendEvent(ctx.tenant, "EVENT_KIND_HOME_SESSION_LOGGED", log.patient_id(), log.log_id());
        // Raised at once, in the same commit as the log, for the clinic that last saw the patient.
        if (any_yes || request.symptoms_spread_down_leg()) {
          const std::string clinic = LatestClinic(writer, ctx, request.patient_id());
          if (any_yes) {
            if (RaiseAlert(writer, ctx, clinic, request.patient_id(), pb::ALERT_KIND_SAFETY_NET,
                           SafetyNetAlertReasons("home log " + log.log_id(), *red_flags))) {
              raised.push_back(pb::ALERT_KIND_SAFETY_NET);
            }
          }
          if (request.symptoms_spread_down_leg()) {
            std::string stopped;
            for (const auto& id : directional) stopped += (stopped.empty() ? "" : ", ") + id;
            if (RaiseAlert(writer, ctx, clinic, request.patient_id(), pb::ALERT_KIND_PERIPHERALISATION,
                           {"home log " + log.log_id() + ": symptoms spread down the leg with " + log.exercise_id(),
                            directional.empty() ? "no directional exercise in the plan; re-assess"
                                                : "direction stopped (of " + stopped + "); re-assess"})) {
              raised.push_back(pb::ALERT_KIND_PERIPHERALISATION);
            }
          }
        }
        pb::LogHomeExerciseResponse logged;
        *logged.mutable_log() = log;
        return logged;
      },
      [&](const pb::LogHomeExerciseResponse& response) { audit.resource_id = response.log().log_id(); });
  NoteAlertsRaised(raised);
  ActOnHomeLog(ctx, response.log(), std::move(plan));
  return response;
}

ProgressApp::IntakeFacts ProgressApp::FactsFromIntake(const CallContext& ctx, const plan_pb::Plan& plan,
                                                      const Timestamp& when) {
  IntakeFacts facts;
  if (plan.assessment_id().empty()) return facts;
  if (auto intake = assessment_.Get(ctx, plan.assessment_id())) {
    facts.history = intake->history();
    facts.screen = intake->red_flag_screen();
    facts.neuro = physio::assessment::NeuroExamOf(intake->examination().neurological());
    if (intake->has_clinician_red_flag_judgement()) facts.judged = intake->clinician_red_flag_judgement().action();
    const auto& history = intake->history();
    if (history.has_age_years()) facts.age_years = history.age_years();
    if (history.has_episode_duration_days()) {
      // The episode has gone on since the assessment.
      facts.episode_days = history.episode_duration_days() +
                           static_cast<int>((when.seconds() - intake->create_time().seconds()) / (24 * 3600));
    }
  }
  return facts;
}

apb::RedFlagResult ProgressApp::JudgeSafetyNet(const pb::SafetyNetAnswers& net, const IntakeFacts& intake) const {
  apb::RedFlagScreen screen;
  screen.set_saddle_numbness(net.saddle_numbness());
  screen.set_bladder_or_bowel_disturbance(net.bladder_or_bowel_change());
  screen.set_new_sexual_dysfunction(net.sexual_dysfunction());
  screen.set_bilateral_leg_neurological_symptoms(net.both_legs_affected());
  screen.set_progressive_weakness(net.worsening_leg_weakness());
  screen.set_fever(net.feverish_or_unwell());
  screen.set_systemically_unwell(net.feverish_or_unwell());
  return Rescreen(screen, intake);
}

pb::ReportSymptomsResponse ProgressApp::ReportSymptoms(const CallContext& ctx, const pb::ReportSymptomsRequest& request,
                                                       AuditTarget& audit) {
  ValidateRequestId("request_id", request.request_id());
  ValidateOpaqueId("patient_id", request.patient_id());
  RequirePatientAccess(ctx, request.patient_id());
  audit.patient_id = request.patient_id();
  if (!request.has_safety_net()) ThrowInvalidArgument("safety_net", "is required (all \"no\" is a valid report)");
  // A "yes" is never refused for its time (a device clock ahead must not keep a red flag from the
  // clinic): recorded at the time it arrived, as a home log's.
  const Timestamp reported = ValidatedTime("report_time", request.report_time(), AnyYes(request.safety_net()));
  const auto deadline = ctx.DeadlineCappedAt(kStoreBudget);
  const PgIdempotencyKey key{kSchema, ctx.tenant, ctx.principal, "ReportSymptoms", request.request_id()};
  SharedPlan plan;
  if (auto replay = IdempotentReplay<pb::ReportSymptomsResponse>(records_, deadline, key, request)) {
    // A suspension the first attempt could not finish is finished now.
    audit.resource_id = replay->report().report_id();
    return ActOnSymptomReport(ctx, *replay, nullptr);
  }
  // Whatever the plan's state: the plan (in use or suspended), when planning answers, only
  // lends the re-screen what intake knew. A report is never refused for want of a plan, nor
  // held up when planning cannot be reached: the CES rules need neither.
  IntakeFacts intake;
  try {
    plan = planning_.ActivePlan(ctx, request.patient_id());
    if (plan) intake = FactsFromIntake(ctx, *plan, reported);
  } catch (const Error& e) {
    if (e.code() != ErrorCode::kUnavailable && e.code() != ErrorCode::kDeadlineExceeded) throw;
    spdlog::warn("request_id={} ReportSymptoms without the plan's intake facts: {}", ctx.request_id, e.what());
  }
  const auto& net = request.safety_net();
  const bool any_yes = AnyYes(net);
  std::optional<apb::RedFlagResult> red_flags;
  if (any_yes) red_flags = JudgeSafetyNet(net, intake);
  const SafetyNetUrgency urgency = UrgencyOf(red_flags);
  std::vector<pb::AlertKind> raised;  // by the transaction that committed
  auto response = IdempotentWrite<pb::ReportSymptomsResponse>(
      records_, deadline, key, request, [&](ProgressWriter& writer) {
        raised.clear();
        pb::SymptomReport report;
        report.set_report_id(NewId("sym"));
        report.set_patient_id(request.patient_id());
        *report.mutable_report_time() = reported;
        *report.mutable_safety_net() = net;
        if (red_flags) {
          *report.mutable_red_flags() = *red_flags;
        } else {
          report.mutable_red_flags()->set_action(apb::RED_FLAG_ACTION_NOT_SCREENED);
        }
        const std::string advice = HomeLogAdvice(urgency, false, false);
        report.set_advice(!advice.empty() ? advice
                                          : "None of the warning signs: keep to your plan, and report again at once "
                                            "if any of them appears.");
        report.set_recorded_by(ctx.principal);
        if (plan) report.set_plan_id(plan->plan_id());
        writer.InsertSymptomReport(ctx.tenant, report);
        if (any_yes) {
          // Raised at once, in the same commit as the report, for the clinic that last saw the patient.
          if (RaiseAlert(writer, ctx, LatestClinic(writer, ctx, request.patient_id()), request.patient_id(),
                         pb::ALERT_KIND_SAFETY_NET, SafetyNetAlertReasons("symptom report " + report.report_id(), *red_flags))) {
            raised.push_back(pb::ALERT_KIND_SAFETY_NET);
          }
        }
        pb::ReportSymptomsResponse stored;
        *stored.mutable_report() = report;
        return stored;
      },
      [&](const pb::ReportSymptomsResponse& stored) { audit.resource_id = stored.report().report_id(); });
  NoteAlertsRaised(raised);
  return ActOnSymptomReport(ctx, std::move(response), std::move(plan));
}

pb::ReportSymptomsResponse ProgressApp::ActOnSymptomReport(const CallContext& ctx, pb::ReportSymptomsResponse response,
                                                           SharedPlan plan) {
  // After the commit: the report and its alert are stored and the advice goes back to the
  // patient whatever happens here. An urgent or emergency answer suspends the plan in use
  // (once, by a request id derived from the report); if planning cannot be reached the
  // answer still carries the advice (plan_suspended false), the clinic has the alert, and a
  // retry with the same request_id suspends then.
  const auto& report = response.report();
  if (!physio::assessment::CallsForReferral(report.red_flags().action())) return response;
  try {
    if (!plan) plan = planning_.ActivePlan(ctx, report.patient_id());
    if (!plan) return response;
    if (plan->status() == plan_pb::PLAN_STATUS_SUSPENDED) {
      response.set_plan_suspended(true);
      return response;
    }
    SuspendPlan(ctx, *plan, "suspend-" + report.report_id(), "symptom report " + report.report_id(),
                report.red_flags());
    response.set_plan_suspended(true);
  } catch (const Error& e) {
    if (e.code() != ErrorCode::kUnavailable && e.code() != ErrorCode::kDeadlineExceeded) throw;
    spdlog::error("request_id={} report_id={} plan not suspended yet (retry with the same request_id): {}",
                  ctx.request_id, report.report_id(), e.what());
  }
  return response;
}

ProgressApp::NeuroRecheck ProgressApp::RecheckNeuro(const PatientRecords& records, const plan_pb::Plan* plan,
                                                    const IntakeFacts& intake, const apb::NeurologicalExamination& exam) {
  namespace as = physio::assessment;
  NeuroRecheck recheck;
  const as::NeuroExam now = as::NeuroExamOf(exam);
  recheck.findings = as::AnalyseNeuro(now, red_flag_policy_.neuro);
  // The last visit's examination in this episode (since the plan was made, or any without a plan).
  const std::int64_t since = plan ? plan->create_time().seconds() : 0;
  const pb::Visit* last = nullptr;
  for (const auto& visit : records.visits) {
    if (!visit.has_neurological() || visit.visit_time().seconds() < since) continue;
    if (last == nullptr || visit.visit_time().seconds() >= last->visit_time().seconds()) last = &visit;
  }
  const as::NeuroExam previous = last ? as::NeuroExamOf(last->neurological()) : as::NeuroExam{};
  std::vector<std::pair<std::string, const as::NeuroExam*>> earlier;
  if (!intake.neuro.empty()) earlier.emplace_back("the assessment", &intake.neuro);
  if (last) earlier.emplace_back("the last visit", &previous);
  std::vector<const as::NeuroExam*> exams;
  for (const auto& [label, before] : earlier) {
    exams.push_back(before);
    const as::NeuroChange change = as::CompareNeuro(*before, now);
    for (const auto* lines : {&change.motor_worse, &change.other_worse}) {
      for (const auto& line : *lines) recheck.changes.push_back("worse since " + label + ": " + line);
      recheck.worse |= !lines->empty();
    }
    for (const auto& line : change.better) recheck.changes.push_back("better since " + label + ": " + line);
  }
  recheck.findings.urgent = as::UrgentAtRecheck(now, exams, red_flag_policy_.neuro);
  return recheck;
}

apb::RedFlagResult ProgressApp::Rescreen(const apb::RedFlagScreen& screen, const IntakeFacts& intake,
                                         const NeuroRecheck* neuro) const {
  namespace as = physio::assessment;
  // What intake recorded still holds: merged, a proto3 "yes" of either screen stays "yes".
  apb::RedFlagScreen merged = intake.screen;
  merged.MergeFrom(screen);
  as::RedFlagAnswers at_intake = as::RedFlagAnswersWithHistory(intake.screen, intake.history);
  as::RedFlagAnswers now = as::RedFlagAnswersWithHistory(merged, intake.history);
  // Intake's neurological examination counts as intake knew it; a visit's re-examination replaces
  // it with what is urgent since (UrgentAtRecheck), so a finding the plan answered is not re-raised.
  const as::NeuroFindings at_assessment = as::AnalyseNeuro(intake.neuro, red_flag_policy_.neuro);
  as::AddNeurologicalFindings(at_intake, at_assessment);
  as::AddNeurologicalFindings(now, neuro ? neuro->findings : at_assessment);
  const std::optional<as::RedFlagAction> judged = as::ActionOf(intake.judged);
  return as::ProtoOf(as::NewSince(as::ScreenRedFlags(now, intake.age_years, intake.episode_days, red_flag_policy_),
                                  as::ScreenRedFlags(at_intake, intake.age_years, intake.episode_days, red_flag_policy_),
                                  judged));
}

void ProgressApp::ActOnHomeLog(const CallContext& ctx, const pb::HomeExerciseLog& log, SharedPlan plan) {
  // After the commit: the log and its alerts are stored; if planning cannot be
  // reached the call fails UNAVAILABLE and its retry (same request_id) acts again.
  // Request ids derived from the log make each action happen once.
  const bool refer = physio::assessment::CallsForReferral(log.red_flags().action());
  if (!refer && log.regressed_item_ids().empty()) return;
  if (!plan) plan = planning_.ActivePlan(ctx, log.patient_id());
  if (!plan || plan->plan_id() != log.plan_id()) return;
  if (refer) {
    SuspendPlan(ctx, *plan, "suspend-" + log.log_id(), "safety-net answer in home log " + log.log_id(), log.red_flags());
    return;
  }
  if (plan->status() != plan_pb::PLAN_STATUS_ACTIVE) return;
  plan_pb::AdjustPlanRequest stop;
  stop.set_request_id("periph-" + log.log_id());
  stop.set_plan_id(plan->plan_id());
  stop.set_adjustment(plan_pb::ADJUSTMENT_STOP_DIRECTION);
  for (const auto& id : log.regressed_item_ids()) stop.add_item_ids(id);
  stop.set_reason("peripheralisation reported in home log " + log.log_id() + " (symptoms spread down the leg with " +
                  log.exercise_id() + "): direction stopped, re-assess");
  try {
    planning_.Adjust(ctx, stop);
  } catch (const Error& e) {
    // A clinician changed the plan in between (an item is gone): the alert stands for a review.
    if (e.code() != ErrorCode::kInvalidArgument) throw;
  }
}

void ProgressApp::ActOnSession(const CallContext& ctx, const pb::Visit& visit,
                               const plan_pb::Plan* plan) {
  if (!visit.has_session() || !plan) return;
  if (plan->status() != plan_pb::PLAN_STATUS_ACTIVE && plan->status() != plan_pb::PLAN_STATUS_SUSPENDED) return;
  const SessionJudgement judged = JudgeSessionRecord(visit.session(), plan);
  auto adjust = [&](plan_pb::AdjustPlanRequest& request, const std::vector<std::string>& lines) {
    std::string reason = "visit " + visit.visit_id();
    for (const auto& line : lines) reason += "; " + line;
    request.set_plan_id(plan->plan_id());
    request.set_reason(reason.substr(0, 500));
    try {
      planning_.Adjust(ctx, request);
    } catch (const Error& e) {
      // A clinician changed the plan in between (an item is gone), or a retry after the plan
      // changed: the visit's findings and alert stand for a review.
      if (e.code() != ErrorCode::kInvalidArgument && e.code() != ErrorCode::kFailedPrecondition) throw;
    }
  };
  if (!judged.stop_directions.empty() || !judged.stop_item_ids.empty()) {
    plan_pb::AdjustPlanRequest stop;
    stop.set_request_id("periph-" + visit.visit_id());
    stop.set_adjustment(plan_pb::ADJUSTMENT_STOP_DIRECTION);
    for (const auto& id : judged.stop_item_ids) stop.add_item_ids(id);
    for (const auto& direction : judged.stop_directions) stop.add_directions(direction);
    adjust(stop, {"peripheralisation at the session: direction stopped, re-assess"});
  }
  if (!judged.reassess.empty() && plan->status() == plan_pb::PLAN_STATUS_ACTIVE) {
    plan_pb::AdjustPlanRequest mark;
    mark.set_request_id("reassess-" + visit.visit_id());
    mark.set_adjustment(plan_pb::ADJUSTMENT_MARK_FOR_REASSESSMENT);
    adjust(mark, judged.reassess);
  }
}

void ProgressApp::SuspendPlan(const CallContext& ctx, const plan_pb::Plan& plan, const std::string& request_id,
                              const std::string& where, const apb::RedFlagResult& red_flags) {
  if (plan.status() != plan_pb::PLAN_STATUS_ACTIVE) return;
  std::string reason = where + ": " + apb::RedFlagAction_Name(red_flags.action());
  for (const auto& line : physio::assessment::ConcernSummaries(red_flags)) reason += "; " + line;
  plan_pb::AdjustPlanRequest suspend;
  suspend.set_request_id(request_id);
  suspend.set_plan_id(plan.plan_id());
  suspend.set_adjustment(plan_pb::ADJUSTMENT_SUSPEND);
  suspend.set_reason(reason.substr(0, 500));
  planning_.Adjust(ctx, suspend);
}

pb::RecordOutcomeResponse ProgressApp::RecordOutcome(const CallContext& ctx, const pb::RecordOutcomeRequest& request,
                                                     AuditTarget& audit) {
  ValidateRequestId("request_id", request.request_id());
  ValidateOpaqueId("patient_id", request.patient_id());
  RequirePatientAccess(ctx, request.patient_id());
  audit.patient_id = request.patient_id();
  if (!OutcomeOf(request.instrument())) {
    ThrowInvalidArgument("instrument", "must be INSTRUMENT_NPRS, INSTRUMENT_ODI, INSTRUMENT_RMDQ or INSTRUMENT_PSFS");
  }
  const Timestamp measured = ValidatedTime("measure_time", request.measure_time());
  const auto deadline = ctx.DeadlineCappedAt(kStoreBudget);
  const PgIdempotencyKey key{kSchema, ctx.tenant, ctx.principal, "RecordOutcome", request.request_id()};
  if (auto replay = IdempotentReplay<pb::RecordOutcomeResponse>(records_, deadline, key, request)) {
    audit.resource_id = replay->measure().measure_id();
    return *replay;
  }
  // Scored by the assessment service: one place for the scoring rules. Its
  // INVALID_ARGUMENT/FAILED_PRECONDITION come back with the field named.
  const cpb::InstrumentScore score = assessment_.Score(ctx, request.instrument(), request.answers());
  auto response = IdempotentWrite<pb::RecordOutcomeResponse>(
      records_, deadline, key, request, [&](ProgressWriter& writer) {
        pb::OutcomeMeasure measure;
        measure.set_measure_id(NewId("om"));
        measure.set_patient_id(request.patient_id());
        *measure.mutable_measure_time() = measured;
        *measure.mutable_score() = score;
        measure.set_recorded_by(ctx.principal);
        writer.InsertOutcome(ctx.tenant, measure);
        writer.AppendEvent(ctx.tenant, "EVENT_KIND_OUTCOME_RECORDED", measure.patient_id(), measure.measure_id());
        pb::RecordOutcomeResponse recorded;
        *recorded.mutable_measure() = measure;
        return recorded;
      },
      [&](const pb::RecordOutcomeResponse& response) { audit.resource_id = response.measure().measure_id(); });
  return response;
}




ProgressSnapshot ProgressApp::TakeSnapshot(const CallContext& ctx, const std::string& patient_id,
                                          const plan_pb::Plan* plan, Clock::time_point deadline) {
  return Summarize(patient_id, plan, records_.ReadPatient(ctx.tenant, patient_id, policy_, deadline),
                   TimeUtil::GetCurrentTime().seconds(), policy_);
}

pb::GetProgressSummaryResponse ProgressApp::GetProgressSummary(const CallContext& ctx,
                                                               const pb::GetProgressSummaryRequest& request,
                                                               AuditTarget& audit) {
  ValidateOpaqueId("patient_id", request.patient_id());
  RequirePatientAccess(ctx, request.patient_id());
  audit.patient_id = request.patient_id();
  auto plan = planning_.ActivePlan(ctx, request.patient_id());
  pb::GetProgressSummaryResponse response;
  *response.mutable_summary() =
      TakeSnapshot(ctx, request.patient_id(), plan.get(), ctx.DeadlineCappedAt(kStoreBudget)).summary;
  return response;
}

pb::EvaluateProgressResponse ProgressApp::EvaluateProgress(const CallContext& ctx,
                                                           const pb::EvaluateProgressRequest& request,
                                                           AuditTarget& audit) {
  ValidateRequestId("request_id", request.request_id());
  ValidateOpaqueId("patient_id", request.patient_id());
  if (!request.clinic_id().empty()) ValidateOpaqueId("clinic_id", request.clinic_id());
  audit.patient_id = request.patient_id();
  const auto deadline = ctx.DeadlineCappedAt(kStoreBudget);
  const PgIdempotencyKey key{kSchema, ctx.tenant, ctx.principal, "EvaluateProgress", request.request_id()};
  if (auto replay = IdempotentReplay<pb::EvaluateProgressResponse>(records_, deadline, key, request)) {
    audit.resource_id = replay->evaluation().evaluation_id();
    return *replay;
  }
  // Read, decide, adjust through planning, then one short transaction: no
  // PostgreSQL connection or lock is held while planning is called. Racing
  // evaluations of the same plan state derive the same adjustment request id,
  // so planning applies it once and the evidence is used once.
  auto plan = planning_.ActivePlan(ctx, request.patient_id());
  if (!plan) throw Error(ErrorCode::kFailedPrecondition, "patient_id: the patient has no active plan to evaluate");
  const ProgressSnapshot snapshot = TakeSnapshot(ctx, request.patient_id(), plan.get(), deadline);
  Evaluation evaluation = snapshot.judged;
  const bool suspended = plan->status() == plan_pb::PLAN_STATUS_SUSPENDED;
  if (suspended) {
    // Never progress a plan taken out of use for a red flag: refer, until a clinician
    // resumes it with their judgement or a new plan is approved.
    evaluation.decision = Decision::kRefer;
    evaluation.reasons = {"the plan is suspended after a red flag at a check-in (" + plan->last_change_reason() +
                          "): refer; it resumes only on a clinician's judgement or a new plan"};
  }

  if (!suspended && !plan->stopped_directions().empty() && plan->needs_reassessment() &&
      (evaluation.decision == Decision::kProgress || evaluation.decision == Decision::kContinue ||
       evaluation.decision == Decision::kSuggestCompletion)) {
    // Symptoms spread down the leg with a direction: nothing steps up, and the plan is not
    // called finished, until a clinician has re-assessed (McKenzie & May 2003).
    std::string stopped;
    for (const auto& direction : plan->stopped_directions()) stopped += (stopped.empty() ? "" : ", ") + direction;
    evaluation.decision = Decision::kReassess;
    evaluation.reasons.insert(evaluation.reasons.begin(),
                              "symptoms spread down the leg with " + stopped +
                                  " (direction stopped): re-assess before the programme progresses");
  }

  plan_pb::AdjustPlanRequest adjust;
  adjust.set_plan_id(plan->plan_id());
  adjust.set_etag(plan->etag());
  std::string reasons;
  for (const auto& reason : evaluation.reasons) reasons += (reasons.empty() ? "" : "; ") + reason;
  adjust.set_reason(("progress evaluation: " + DecisionName(evaluation.decision) + ": " + reasons).substr(0, 500));
  switch (evaluation.decision) {
    case Decision::kProgress: adjust.set_adjustment(plan_pb::ADJUSTMENT_PROGRESS); break;
    case Decision::kRegress: adjust.set_adjustment(plan_pb::ADJUSTMENT_REGRESS); break;
    case Decision::kReassess:
      if (!plan->needs_reassessment()) adjust.set_adjustment(plan_pb::ADJUSTMENT_MARK_FOR_REASSESSMENT);
      break;
    case Decision::kRefer:
      if (!plan->referral_recommended() && !suspended) adjust.set_adjustment(plan_pb::ADJUSTMENT_MARK_FOR_REFERRAL);
      break;
    case Decision::kContinue:
    case Decision::kSuggestCompletion: break;  // completing a plan is the clinician's act (CompletePlan)
  }
  pb::EvaluateProgressResponse evaluated;
  auto* out = evaluated.mutable_evaluation();
  out->set_evaluation_id(NewId("eval"));
  out->set_patient_id(request.patient_id());
  out->set_decision(ToProto(evaluation.decision));
  for (const auto& reason : evaluation.reasons) out->add_reasons(reason);
  out->set_responder_status(ToProto(evaluation.responder));
  out->set_early_response(ToProto(evaluation.early_response));
  out->set_recovered(evaluation.recovered);
  *out->mutable_evaluate_time() = TimeUtil::GetCurrentTime();
  std::string adjustment_key;
  if (adjust.adjustment() != plan_pb::ADJUSTMENT_UNSPECIFIED) {
    // Derived from the plan state and the decision, so evaluations racing on
    // the same state send the same adjustment, which planning applies once.
    adjustment_key = "eval-" + Sha256Hex(plan->plan_id() + "/" + plan->etag() + "/" +
                                         plan_pb::Adjustment_Name(adjust.adjustment()))
                                   .substr(0, 40);
    adjust.set_request_id(adjustment_key);
    try {
      *out->mutable_plan() = planning_.Adjust(ctx, adjust);
    } catch (const Error& e) {
      // A racing evaluation sent this same adjustment at the same moment and won
      // the plan's row lock; its committed result now replays under this request id.
      if (e.code() != ErrorCode::kAborted) throw;
      *out->mutable_plan() = planning_.Adjust(ctx, adjust);
    }
    out->set_plan_adjusted(true);
  } else {
    *out->mutable_plan() = *plan;
  }
  std::vector<std::pair<pb::AlertKind, std::vector<std::string>>> alerts;
  if (snapshot.evaluation.new_red_flag) alerts.push_back({pb::ALERT_KIND_RED_FLAG, snapshot.evaluation.red_flag_reasons});
  std::vector<std::string> worse;
  for (const auto& change : snapshot.evaluation.changes) {
    if (change.deteriorated) worse.push_back("worse by " + std::to_string(change.change) + " (" + change.rule + ")");
  }
  // Neurological findings worse at a visit: the clinic is told, as for a worse outcome.
  worse.insert(worse.end(), snapshot.evaluation.neurological_worse.begin(), snapshot.evaluation.neurological_worse.end());
  if (!worse.empty()) alerts.push_back({pb::ALERT_KIND_DETERIORATION, worse});
  if (evaluation.non_response_judged) {
    alerts.push_back({pb::ALERT_KIND_NON_RESPONSE, {"no outcome improved meaningfully by week 4"}});
  }
  if (evaluation.low_adherence) alerts.push_back({pb::ALERT_KIND_LOW_ADHERENCE, evaluation.reasons});

  std::vector<pb::AlertKind> raised;  // by the transaction that committed
  auto response = IdempotentWrite<pb::EvaluateProgressResponse>(
      records_, deadline, key, request,
      [&](ProgressWriter& writer) {
        raised.clear();
        pb::EvaluateProgressResponse stored = evaluated;
        auto* record = stored.mutable_evaluation();
        std::optional<std::string> key_of_record;
        if (!adjustment_key.empty()) {
          // Serialises only the recording of racing evaluations of one patient.
          if (auto first = writer.LockEvaluationsAndFindAdjustment(ctx.tenant, request.patient_id(), adjustment_key)) {
            // Another evaluation of the same evidence already acted on it: this one continues.
            record->set_decision(pb::DECISION_CONTINUE);
            record->set_plan_adjusted(false);
            record->clear_reasons();
            record->add_reasons("the same evidence was already acted on by evaluation " + *first);
          } else {
            key_of_record = adjustment_key;
          }
        }
        const std::string clinic =
            request.clinic_id().empty() ? LatestClinic(writer, ctx, request.patient_id()) : request.clinic_id();
        for (const auto& [kind, alert_reasons] : alerts) {
          if (auto alert = RaiseAlert(writer, ctx, clinic, request.patient_id(), kind, alert_reasons)) {
            *record->add_raised_alerts() = *alert;
            raised.push_back(kind);
          }
        }
        writer.InsertEvaluation(ctx.tenant, request.patient_id(), *record, key_of_record);
        return stored;
      },
      [&](const pb::EvaluateProgressResponse& response) { audit.resource_id = response.evaluation().evaluation_id(); });
  NoteAlertsRaised(raised);
  return response;
}

pb::ListAlertsResponse ProgressApp::ListAlerts(const CallContext& ctx, const pb::ListAlertsRequest& request,
                                               AuditTarget& audit) {
  ValidateOpaqueId("clinic_id", request.clinic_id());
  ValidateRange("page_size", request.page_size(), 0, 100);
  audit.resource_id = "clinic:" + request.clinic_id();
  const int page_size = request.page_size() == 0 ? 20 : request.page_size();
  const KeysetPosition after = DecodePageToken(request.page_token(), "clinic:" + request.clinic_id());
  auto page = records_.ListAlerts(ctx.tenant, request.clinic_id(), request.include_acknowledged(), after, page_size,
                                 ctx.DeadlineCappedAt(kStoreBudget));
  pb::ListAlertsResponse response;
  for (auto& alert : page.alerts) {
    // Clinic scoping: only alerts of patients the caller reaches (so also not one raised at this
    // clinic for a patient since transferred elsewhere).
    if (IsClinicScoped(ctx) && !SharesClinicWith(ctx, alert.patient_id())) continue;
    *response.add_alerts() = std::move(alert);
  }
  if (page.next) {
    response.set_next_page_token(
        EncodePageToken("clinic:" + request.clinic_id(), *page.next->created_at, *page.next->id));
  }
  return response;
}

pb::AcknowledgeAlertResponse ProgressApp::AcknowledgeAlert(const CallContext& ctx,
                                                           const pb::AcknowledgeAlertRequest& request,
                                                           AuditTarget& audit) {
  ValidateRequestId("request_id", request.request_id());
  ValidateOpaqueId("alert_id", request.alert_id());
  audit.resource_id = request.alert_id();
  auto response = IdempotentWrite<pb::AcknowledgeAlertResponse>(
      records_, ctx.DeadlineCappedAt(kStoreBudget),
      {kSchema, ctx.tenant, ctx.principal, "AcknowledgeAlert", request.request_id()}, request,
      [&](ProgressWriter& writer) {
        auto found = writer.FindAlertForUpdate(ctx.tenant, request.alert_id());
        if (!found || (IsClinicScoped(ctx) && !SharesClinicWith(ctx, found->patient_id()))) ThrowNotFound("alert");
        pb::AcknowledgeAlertResponse acknowledged;
        pb::Alert& alert = *acknowledged.mutable_alert();
        alert = std::move(*found);
        if (alert.status() == pb::ALERT_STATUS_OPEN) {
          alert.set_status(pb::ALERT_STATUS_ACKNOWLEDGED);
          alert.set_acknowledged_by(ctx.principal);
          writer.MarkAlertAcknowledged(ctx.tenant, alert);
          writer.AppendEvent(ctx.tenant, "EVENT_KIND_ALERT_ACKNOWLEDGED", alert.patient_id(), alert.alert_id());
        }
        return acknowledged;
      },
      [&](const pb::AcknowledgeAlertResponse& response) { audit.patient_id = response.alert().patient_id(); });
  return response;
}

pb::BreakGlassResponse ProgressApp::BreakGlass(const CallContext& ctx, const pb::BreakGlassRequest& request,
                                               AuditTarget& audit) {
  ValidateRequestId("request_id", request.request_id());
  ValidateOpaqueId("patient_id", request.patient_id());
  audit.patient_id = request.patient_id();
  if (request.reason().size() < 10 || request.reason().size() > 500) {
    ThrowInvalidArgument("reason", "must be 10-500 characters: why the records are needed now");
  }
  if (IsBlank(request.reason())) ThrowInvalidArgument("reason", "must not be blank: why the records are needed now");
  ValidateRange("minutes", request.minutes(), 0, 60);
  const int minutes = request.minutes() == 0 ? 15 : request.minutes();
  if (!IsClinicScoped(ctx) || SharesClinicWith(ctx, request.patient_id())) {
    // Nothing to break: the caller reaches the patient already (a grant would only add noise to the review).
    throw Error(ErrorCode::kFailedPrecondition, "patient_id: you already reach this patient; no emergency access is needed");
  }
  auto response = IdempotentWrite<pb::BreakGlassResponse>(
      records_, ctx.DeadlineCappedAt(kStoreBudget), {kSchema, ctx.tenant, ctx.principal, "BreakGlass", request.request_id()},
      request, [&](ProgressWriter& writer) {
        pb::BreakGlassResponse granted;
        granted.set_grant_id(NewId("egrant"));
        const auto expires = TimeUtil::GetCurrentTime().seconds() + minutes * 60L;
        granted.mutable_expire_time()->set_seconds(expires);
        writer.InsertEmergencyAccess(ctx.tenant, granted.grant_id(), ctx.principal, request.patient_id(),
                                     request.reason(), expires);
        // For the patient's clinic to review: who, how long, why.
        const std::vector<std::string> reasons = {"emergency access " + granted.grant_id() + " by " + ctx.principal +
                                                      " for " + std::to_string(minutes) + " min: " + request.reason()};
        if (auto alert = RaiseAlert(writer, ctx, LatestClinic(writer, ctx, request.patient_id()), request.patient_id(),
                                    pb::ALERT_KIND_EMERGENCY_ACCESS, reasons)) {
          granted.set_alert_id(alert->alert_id());
        }
        return granted;
      },
      [&](const pb::BreakGlassResponse& granted) { audit.resource_id = granted.grant_id(); });
  ForgetPatientReach(ctx, request.patient_id());
  return response;
}

pb::VisitSession ProgressApp::LoadVisitSession(const CallContext& ctx, const std::string& session_id) {
  pb::VisitSession session = visit_sessions_.Read(ctx, session_id, ctx.DeadlineCappedAt(kStoreBudget));
  visit_patients_.Remember(ctx.tenant, session_id, session.patient_id());
  // Clinic scoping: another clinic's patient's session is not found.
  if (IsStaff(ctx) && !SharesClinicWith(ctx, session.patient_id())) ThrowNotFound("visit session");
  return session;
}

void ProgressApp::CheckVisitSessionInScope(const CallContext& ctx, const std::string& session_id) {
  const auto known = visit_patients_.Find(ctx.tenant, session_id);
  if (!known) {
    LoadVisitSession(ctx, session_id);
    return;
  }
  // The store's own checks (expired, completed, never existed) come with the change itself.
  if (IsStaff(ctx) && !SharesClinicWith(ctx, *known)) ThrowNotFound("visit session");
}

pb::StartVisitSessionResponse ProgressApp::StartVisitSession(const CallContext& ctx,
                                                             const pb::StartVisitSessionRequest& request,
                                                             AuditTarget& audit) {
  ValidateRequestId("request_id", request.request_id());
  ValidateOpaqueId("patient_id", request.patient_id());
  audit.patient_id = request.patient_id();
  if (request.kind() == pb::VISIT_KIND_UNSPECIFIED || !pb::VisitKind_IsValid(request.kind())) {
    ThrowInvalidArgument("kind", "must be VISIT_KIND_CLINIC or VISIT_KIND_TELEHEALTH");
  }
  if (!request.clinic_id().empty()) ValidateOpaqueId("clinic_id", request.clinic_id());
  const auto deadline = ctx.DeadlineCappedAt(kStoreBudget);
  auto response = IdempotentSessionWrite<pb::StartVisitSessionResponse>(
      session_idempotency_, {"prog", ctx.tenant, ctx.principal, "StartVisitSession", request.request_id()}, request, deadline, [&] {
        const std::string session_id = NewId("vsess");
        visit_sessions_.Create(ctx, session_id, request.patient_id(), request.kind(), request.clinic_id(),
                               TimeUtil::GetCurrentTime().seconds(), deadline);
        pb::StartVisitSessionResponse started;
        *started.mutable_session() = LoadVisitSession(ctx, session_id);
        return started;
      });
  audit.resource_id = response.session().session_id();
  return response;
}

ProgressApp::PreparedVisitUpdate ProgressApp::PrepareVisitUpdate(const CallContext& ctx,
                                                                 const pb::UpdateVisitSessionRequest& request,
                                                                 AuditTarget& audit) {
  ValidateRequestId("request_id", request.request_id());
  ValidateOpaqueId("session_id", request.session_id());
  audit.resource_id = request.session_id();
  PreparedVisitUpdate prepared;
  VisitSessionChanges& changes = prepared.changes;
  if (request.has_pain_before()) {
    ValidatePain("pain_before", request.pain_before());
    changes.pain_before = request.pain_before();
  }
  if (request.has_pain_after()) {
    ValidatePain("pain_after", request.pain_after());
    changes.pain_after = request.pain_after();
  }
  if (request.add_delivered_item_ids_size() > 50) ThrowInvalidArgument("add_delivered_item_ids", "at most 50 items");
  for (int i = 0; i < request.add_delivered_item_ids_size(); ++i) {
    ValidateOpaqueId("add_delivered_item_ids[" + std::to_string(i) + "]", request.add_delivered_item_ids(i));
    changes.delivered_item_ids.push_back(request.add_delivered_item_ids(i));
  }
  if (request.has_red_flag_screen()) changes.red_flag_screen = &request.red_flag_screen();
  if (request.has_session()) {
    ValidateSessionRecord("session", request.session());
    changes.session = &request.session();
  }
  if (changes.empty()) ThrowInvalidArgument("pain_before", "nothing to update: set at least one field");
  if (IsClinicScoped(ctx)) CheckVisitSessionInScope(ctx, request.session_id());  // another clinic's: NOT_FOUND, unchanged
  // Once per request id: the store records the outcome with the change, in the same script.
  prepared.submission = {{"prog", ctx.tenant, ctx.principal, "UpdateVisitSession", request.request_id()},
                         RequestFingerprint(request)};
  return prepared;
}

pb::UpdateVisitSessionResponse ProgressApp::UpdateVisitSession(const CallContext& ctx,
                                                               const pb::UpdateVisitSessionRequest& request,
                                                               AuditTarget& audit) {
  const PreparedVisitUpdate prepared = PrepareVisitUpdate(ctx, request, audit);
  pb::UpdateVisitSessionResponse response;
  *response.mutable_session() = visit_sessions_.Update(ctx, request.session_id(), prepared.changes,
                                                       prepared.submission, ctx.DeadlineCappedAt(kStoreBudget));
  audit.patient_id = response.session().patient_id();
  return response;
}

bool ProgressApp::StartUpdateVisitSession(const CallContext& ctx, const pb::UpdateVisitSessionRequest& request,
                                          AuditTarget& audit,
                                          std::function<void(std::optional<pb::UpdateVisitSessionResponse>)> finish) {
  const PreparedVisitUpdate prepared = PrepareVisitUpdate(ctx, request, audit);
  return visit_sessions_.UpdateAsync(
      ctx, request.session_id(), prepared.changes, prepared.submission, ctx.DeadlineCappedAt(kStoreBudget),
      [&audit, finish = std::move(finish)](std::optional<pb::VisitSession> session) {
        std::optional<pb::UpdateVisitSessionResponse> response;
        if (session) {
          response.emplace();
          *response->mutable_session() = std::move(*session);
          audit.patient_id = response->session().patient_id();
        }
        finish(std::move(response));
      });
}

pb::GetVisitSessionResponse ProgressApp::GetVisitSession(const CallContext& ctx,
                                                         const pb::GetVisitSessionRequest& request,
                                                         AuditTarget& audit) {
  ValidateOpaqueId("session_id", request.session_id());
  audit.resource_id = request.session_id();
  pb::GetVisitSessionResponse response;
  *response.mutable_session() = LoadVisitSession(ctx, request.session_id());
  audit.patient_id = response.session().patient_id();
  return response;
}

pb::CompleteVisitSessionResponse ProgressApp::CompleteVisitSession(const CallContext& ctx,
                                                                   const pb::CompleteVisitSessionRequest& request,
                                                                   AuditTarget& audit) {
  ValidateRequestId("request_id", request.request_id());
  ValidateOpaqueId("session_id", request.session_id());
  audit.resource_id = request.session_id();
  const pb::VisitSession session = LoadVisitSession(ctx, request.session_id());
  // The visit is recorded under an id derived from the session, so a retried or
  // concurrent completion (or one after a crash) records it exactly once.
  pb::RecordVisitRequest record;
  record.set_request_id("visit-session-" + request.session_id());
  record.set_patient_id(session.patient_id());
  record.set_kind(session.kind());
  record.set_clinic_id(session.clinic_id());
  if (session.has_pain_before()) record.set_pain_before(session.pain_before());
  if (session.has_pain_after()) record.set_pain_after(session.pain_after());
  *record.mutable_delivered_item_ids() = session.delivered_item_ids();
  if (session.has_red_flag_screen()) *record.mutable_red_flag_screen() = session.red_flag_screen();
  if (session.has_session()) *record.mutable_session() = session.session();
  if (auto started = visit_sessions_.StartedAt(ctx, request.session_id(), ctx.DeadlineCappedAt(kStoreBudget))) {
    record.mutable_visit_time()->set_seconds(*started);
  }
  pb::CompleteVisitSessionResponse response;
  *response.mutable_visit() = RecordVisit(ctx, record, audit).visit();
  visit_sessions_.MarkCompleted(ctx, request.session_id(), response.visit().visit_id(),
                                ctx.DeadlineCappedAt(kStoreBudget));
  return response;
}

pb::ExportProgressFhirResponse ProgressApp::ExportProgressFhir(const CallContext& ctx,
                                                               const pb::ExportProgressFhirRequest& request,
                                                               AuditTarget& audit) {
  ValidateOpaqueId("patient_id", request.patient_id());
  RequirePatientAccess(ctx, request.patient_id());
  audit.patient_id = request.patient_id();
  const auto records = records_.ReadForExport(ctx.tenant, request.patient_id(), policy_,
                                              ctx.DeadlineCappedAt(kStoreBudget));
  pb::ExportProgressFhirResponse response;
  response.set_bundle_json(ProgressToFhirBundle(request.patient_id(), records.visits, records.measures, records.alerts,
                                                fhir_patient_identifier_system_));
  return response;
}

pb::SearchFhirResponse ProgressApp::SearchFhir(const CallContext& ctx, const pb::SearchFhirRequest& request,
                                               AuditTarget& audit) {
  using nlohmann::json;
  PreparedFhirSearch prepared = PrepareFhirSearch(request, {"Encounter", "Observation", "Flag"});
  RequireSmartScope(ctx, request.resource_type(), false);
  const auto deadline = ctx.DeadlineCappedAt(kStoreBudget);
  std::string patient;
  if (!prepared.record_id.empty()) {
    auto owner = records_.PatientOfRecord(ctx.tenant, prepared.record_id, deadline);
    if (!owner || !CanSeePatient(ctx, *owner)) ThrowNotFound(request.resource_type() + "/" + request.id());
    patient = *owner;
    audit.resource_id = prepared.record_id;
  } else {
    patient = SearchedPatient(ctx, request.patient_id(), "patient_id");
  }
  audit.patient_id = patient;
  // The export's records (visits and re-measures within history-window-days, the alerts), each
  // mapped on its own so its resources carry its own time.
  const auto records = records_.ReadForExport(ctx.tenant, patient, policy_, deadline);
  std::vector<json> candidates = ProgressRestResources(patient, records.visits, records.measures, records.alerts,
                                                      fhir_patient_identifier_system_);
  return AnswerFhirSearch<pb::SearchFhirResponse>(prepared, request, std::move(candidates),
                                                  ctx.tenant + "|" + patient);
}

void ProgressApp::NoteAlertsRaised(const std::vector<pb::AlertKind>& kinds) const {
  if (!alert_raised_) return;
  for (auto kind : kinds) alert_raised_(kind);
}

}  // namespace physio::progress
