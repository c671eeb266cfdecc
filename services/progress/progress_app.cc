#include "progress_app.h"

#include <google/protobuf/util/time_util.h>

#include "physio/common/error.h"
#include "physio/common/ids.h"
#include "physio/common/validation.h"
#include "physio/server/idempotent.h"
#include "physio/server/proto_util.h"

namespace physio::progress {

namespace plan_pb = physio::planning::v1;
using google::protobuf::Timestamp;
using google::protobuf::util::TimeUtil;

namespace {
constexpr auto kStoreBudget = std::chrono::seconds(5);
// Clocks of patient devices drift; a little future is tolerated, more is an error.
constexpr int64_t kFutureToleranceSeconds = 300;

Timestamp ValidatedTime(const std::string& field, const Timestamp& given) {
  const Timestamp now = TimeUtil::GetCurrentTime();
  if (given.seconds() == 0 && given.nanos() == 0) return now;
  // Valid range of google.protobuf.Timestamp: years 0001-9999, nanos in [0, 1e9).
  if (given.seconds() < TimeUtil::kTimestampMinSeconds || given.seconds() > TimeUtil::kTimestampMaxSeconds ||
      given.nanos() < 0 || given.nanos() > 999999999) {
    ThrowInvalidArgument(field, "is not a valid timestamp");
  }
  if (given.seconds() > now.seconds() + kFutureToleranceSeconds) ThrowInvalidArgument(field, "is in the future");
  return given;
}

void ValidatePain(const std::string& field, int value) { ValidateRange(field, value, 0, 10); }

std::optional<PainReading> BaselinePain(const plan_pb::Plan& plan) {
  for (const auto& score : plan.baseline_scores()) {
    if (score.instrument() == physio::common::v1::INSTRUMENT_NPRS) {
      return PainReading{plan.create_time().seconds(), static_cast<int>(score.score()), "assessment"};
    }
  }
  return std::nullopt;
}
}  // namespace

pb::RecordVisitResponse ProgressApp::RecordVisit(const CallContext& ctx, const pb::RecordVisitRequest& request,
                                                 AuditTarget& audit) {
  RequireAnyRole(ctx, {Role::kClinician, Role::kIntegrator});
  ValidateRequestId("request_id", request.request_id());
  ValidateOpaqueId("patient_id", request.patient_id());
  audit.patient_id = request.patient_id();
  if (request.kind() == pb::VISIT_KIND_UNSPECIFIED || !pb::VisitKind_IsValid(request.kind())) {
    ThrowInvalidArgument("kind", "must be VISIT_KIND_CLINIC or VISIT_KIND_TELEHEALTH");
  }
  if (request.has_pain_before()) ValidatePain("pain_before", request.pain_before());
  if (request.has_pain_after()) ValidatePain("pain_after", request.pain_after());
  if (request.delivered_item_ids_size() > 50) ThrowInvalidArgument("delivered_item_ids", "at most 50 items");
  for (int i = 0; i < request.delivered_item_ids_size(); ++i) {
    ValidateOpaqueId("delivered_item_ids[" + std::to_string(i) + "]", request.delivered_item_ids(i));
  }
  const Timestamp visit_time = ValidatedTime("visit_time", request.visit_time());
  auto response = IdempotentWrite<pb::RecordVisitResponse>(
      pg_, ctx.DeadlineCappedAt(kStoreBudget), {kSchema, ctx.tenant, "RecordVisit", request.request_id()}, request,
      [&](PgConnection& conn) {
        pb::Visit visit;
        visit.set_visit_id(NewId("visit"));
        visit.set_patient_id(request.patient_id());
        visit.set_kind(request.kind());
        *visit.mutable_visit_time() = visit_time;
        if (request.has_pain_before()) visit.set_pain_before(request.pain_before());
        if (request.has_pain_after()) visit.set_pain_after(request.pain_after());
        *visit.mutable_delivered_item_ids() = request.delivered_item_ids();
        visit.set_recorded_by(ctx.principal);
        conn.Exec("INSERT INTO progress.visits (tenant_id, visit_id, patient_id, visit_time, body)"
                  " VALUES ($1,$2,$3,$4::timestamptz,$5::jsonb)",
                  {ctx.tenant, visit.visit_id(), visit.patient_id(), TimeUtil::ToString(visit_time), ToJson(visit)});
        pb::RecordVisitResponse recorded;
        *recorded.mutable_visit() = visit;
        return recorded;
      });
  audit.resource_id = response.visit().visit_id();
  return response;
}

pb::LogHomeExerciseResponse ProgressApp::LogHomeExercise(const CallContext& ctx,
                                                         const pb::LogHomeExerciseRequest& request,
                                                         AuditTarget& audit) {
  RequireAnyRole(ctx, {Role::kPatient, Role::kClinician, Role::kIntegrator});
  ValidateRequestId("request_id", request.request_id());
  ValidateOpaqueId("patient_id", request.patient_id());
  RequirePatientAccess(ctx, request.patient_id());
  audit.patient_id = request.patient_id();
  ValidateOpaqueId("exercise_id", request.exercise_id());
  ValidateRange("sets_done", request.sets_done(), 0, 20);
  ValidateRange("reps_done", request.reps_done(), 0, 200);
  ValidatePain("pain_during", request.pain_during());
  ValidatePain("pain_after", request.pain_after());
  const Timestamp performed = ValidatedTime("performed_time", request.performed_time());

  auto plan = plans_.ActivePlan(ctx, request.patient_id());
  if (!plan) throw Error(ErrorCode::kFailedPrecondition, "patient_id: the patient has no active plan to log against");
  bool prescribed = false;
  for (const auto& item : plan->items()) {
    prescribed |= item.item_id() == request.exercise_id() && item.kind() == plan_pb::PLAN_ITEM_KIND_EXERCISE;
  }
  if (!prescribed) ThrowInvalidArgument("exercise_id", "is not an exercise of the patient's active plan");

  auto response = IdempotentWrite<pb::LogHomeExerciseResponse>(
      pg_, ctx.DeadlineCappedAt(kStoreBudget), {kSchema, ctx.tenant, "LogHomeExercise", request.request_id()},
      request, [&](PgConnection& conn) {
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
        log.set_recorded_by(ctx.principal);
        conn.Exec("INSERT INTO progress.home_exercise_logs (tenant_id, log_id, patient_id, plan_id, exercise_id,"
                  " performed_time, body) VALUES ($1,$2,$3,$4,$5,$6::timestamptz,$7::jsonb)",
                  {ctx.tenant, log.log_id(), log.patient_id(), log.plan_id(), log.exercise_id(),
                   TimeUtil::ToString(performed), ToJson(log)});
        pb::LogHomeExerciseResponse logged;
        *logged.mutable_log() = log;
        return logged;
      });
  audit.resource_id = response.log().log_id();
  return response;
}

pb::GetProgressSummaryResponse ProgressApp::GetProgressSummary(const CallContext& ctx,
                                                               const pb::GetProgressSummaryRequest& request,
                                                               AuditTarget& audit) {
  RequireAnyRole(ctx, {Role::kPatient, Role::kClinician, Role::kIntegrator});
  ValidateOpaqueId("patient_id", request.patient_id());
  RequirePatientAccess(ctx, request.patient_id());
  audit.patient_id = request.patient_id();

  pb::GetProgressSummaryResponse response;
  auto* summary = response.mutable_summary();
  summary->set_patient_id(request.patient_id());
  auto plan = plans_.ActivePlan(ctx, request.patient_id());
  std::optional<PainReading> baseline;
  if (plan) {
    *summary->mutable_active_plan() = *plan;
    baseline = BaselinePain(*plan);
  }
  std::vector<PainReading> readings;
  WithTransaction(pg_, ctx.DeadlineCappedAt(kStoreBudget), [&](PgConnection& conn) {
    auto visits = conn.Exec("SELECT body FROM progress.visits WHERE tenant_id = $1 AND patient_id = $2"
                            " ORDER BY visit_time",
                            {ctx.tenant, request.patient_id()});
    summary->set_visit_count(visits.rows());
    for (int i = 0; i < visits.rows(); ++i) {
      pb::Visit visit;
      FromJson(visits.Get(i, 0), &visit);
      // The pain the patient arrived with reflects the days since the last contact.
      if (visit.has_pain_before()) readings.push_back({visit.visit_time().seconds(), visit.pain_before(), "visit"});
    }
    auto logs = conn.Exec("SELECT body FROM progress.home_exercise_logs WHERE tenant_id = $1 AND patient_id = $2"
                          " ORDER BY performed_time",
                          {ctx.tenant, request.patient_id()});
    summary->set_home_log_count(logs.rows());
    for (int i = 0; i < logs.rows(); ++i) {
      pb::HomeExerciseLog log;
      FromJson(logs.Get(i, 0), &log);
      readings.push_back({log.performed_time().seconds(), log.pain_after(), "home_log"});
    }
  });
  PainTrend trend = BuildPainTrend(baseline, std::move(readings));
  for (const auto& reading : trend.readings) {
    auto* point = summary->add_pain_trend();
    point->mutable_time()->set_seconds(reading.time_seconds);
    point->set_pain(reading.pain);
    point->set_source(reading.source);
  }
  if (trend.baseline) summary->set_baseline_pain(*trend.baseline);
  if (trend.latest) summary->set_latest_pain(*trend.latest);
  if (trend.change) summary->set_pain_change(*trend.change);
  summary->set_pain_change_meaningful(trend.meaningful_improvement);
  return response;
}

}  // namespace physio::progress
