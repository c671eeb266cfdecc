#include "planning_app.h"

#include <google/protobuf/util/time_util.h>

#include "physio/common/error.h"
#include "physio/common/ids.h"
#include "physio/common/validation.h"
#include "physio/server/idempotent.h"
#include "physio/server/proto_util.h"

namespace physio::planning {

namespace cpb = physio::common::v1;
using google::protobuf::util::TimeUtil;

namespace {
constexpr auto kStoreBudget = std::chrono::seconds(5);

cpb::Phase ToProto(Phase phase) {
  switch (phase) {
    case Phase::kSymptomModulation: return cpb::PHASE_SYMPTOM_MODULATION;
    case Phase::kMovementControl: return cpb::PHASE_MOVEMENT_CONTROL;
    case Phase::kFunctionOptimisation: return cpb::PHASE_FUNCTION_OPTIMISATION;
  }
  return cpb::PHASE_UNSPECIFIED;
}

pb::PlanItemKind ToProto(ItemKind kind) {
  switch (kind) {
    case ItemKind::kExercise: return pb::PLAN_ITEM_KIND_EXERCISE;
    case ItemKind::kEducation: return pb::PLAN_ITEM_KIND_EDUCATION;
    case ItemKind::kPainManagement: return pb::PLAN_ITEM_KIND_PAIN_MANAGEMENT;
    case ItemKind::kLifestyle: return pb::PLAN_ITEM_KIND_LIFESTYLE;
  }
  return pb::PLAN_ITEM_KIND_UNSPECIFIED;
}

std::string StatusName(pb::PlanStatus status) { return pb::PlanStatus_Name(status).substr(sizeof("PLAN_STATUS_") - 1); }

std::string Etag(long version) { return "v" + std::to_string(version); }

PlanInput InputFrom(const physio::assessment::v1::Assessment& assessment) {
  PlanInput input{};
  switch (assessment.classification().phase()) {
    case cpb::PHASE_SYMPTOM_MODULATION: input.phase = Phase::kSymptomModulation; break;
    case cpb::PHASE_MOVEMENT_CONTROL: input.phase = Phase::kMovementControl; break;
    case cpb::PHASE_FUNCTION_OPTIMISATION: input.phase = Phase::kFunctionOptimisation; break;
    default:
      throw Error(ErrorCode::kFailedPrecondition,
                  "assessment_id: the assessment has no phase (it needs a pain or Oswestry score)");
  }
  for (const auto& score : assessment.scores()) {
    if (score.instrument() == cpb::INSTRUMENT_NPRS) input.nprs = score.score();
    if (score.instrument() == cpb::INSTRUMENT_ODI) input.odi_percent = score.score();
  }
  return input;
}

pb::Plan ReadPlan(const PgResult& rows, int row) {
  pb::Plan plan;
  FromJson(rows.Get(row, 0), &plan);
  return plan;
}

void WritePlan(PgConnection& conn, const std::string& tenant, pb::Plan& plan, long version) {
  plan.set_etag(Etag(version));
  *plan.mutable_update_time() = TimeUtil::GetCurrentTime();
  conn.Exec("UPDATE planning.plans SET status = $3, version = $4, body = $5::jsonb, updated_at = now()"
            " WHERE tenant_id = $1 AND plan_id = $2",
            {tenant, plan.plan_id(), StatusName(plan.status()), std::to_string(version), ToJson(plan)});
}
}  // namespace

pb::Plan PlanFromDraft(const PlanDraft& draft) {
  pb::Plan plan;
  plan.set_phase(ToProto(draft.phase));
  plan.set_rules_version(draft.rules_version);
  for (const auto& item : draft.items) {
    auto* out = plan.add_items();
    out->set_item_id(item.id);
    out->set_kind(ToProto(item.kind));
    out->set_title(item.title);
    if (item.kind == ItemKind::kExercise) {
      out->mutable_dose()->set_sets(item.dose.sets);
      out->mutable_dose()->set_reps(item.dose.reps);
      out->mutable_dose()->set_hold_seconds(item.dose.hold_seconds);
      out->mutable_dose()->set_sessions_per_week(item.dose.sessions_per_week);
    }
    out->set_reason(item.reason);
    out->set_source(item.source);
    out->set_home_programme(item.home_programme);
  }
  for (const auto& goal : draft.goals) {
    auto* out = plan.add_goals();
    out->set_description(goal.description);
    out->set_instrument(goal.measure == GoalMeasure::kNprs ? cpb::INSTRUMENT_NPRS : cpb::INSTRUMENT_ODI);
    out->set_target_score(goal.target);
  }
  for (const auto& review : draft.reviews) {
    auto* out = plan.add_review_points();
    out->set_week(review.week);
    out->set_purpose(review.purpose);
  }
  return plan;
}

pb::GeneratePlanResponse PlanningApp::GeneratePlan(const CallContext& ctx, const pb::GeneratePlanRequest& request,
                                                   AuditTarget& audit) {
  RequireAnyRole(ctx, {Role::kClinician, Role::kIntegrator});
  ValidateRequestId("request_id", request.request_id());
  ValidateOpaqueId("assessment_id", request.assessment_id());
  // Read before the transaction: no database connection is held across a remote call.
  auto assessment = assessments_.Get(ctx, request.assessment_id());
  audit.patient_id = assessment.patient_id();
  // The clinician's own judgement, once recorded, overrides the computed screen.
  const auto red_flags = assessment.has_clinician_red_flag_judgement()
                             ? assessment.clinician_red_flag_judgement().action()
                             : assessment.red_flags().action();
  if (red_flags == physio::assessment::v1::RED_FLAG_ACTION_URGENT_REFERRAL ||
      red_flags == physio::assessment::v1::RED_FLAG_ACTION_EMERGENCY_REFERRAL) {
    throw Error(ErrorCode::kFailedPrecondition,
                "assessment_id: the red-flag screen calls for " +
                    physio::assessment::v1::RedFlagAction_Name(red_flags) + ", not a treatment plan");
  }
  auto response = IdempotentWrite<pb::GeneratePlanResponse>(
      pg_, ctx.DeadlineCappedAt(kStoreBudget), {kSchema, ctx.tenant, "GeneratePlan", request.request_id()}, request,
      [&](PgConnection& conn) {
        pb::Plan plan = PlanFromDraft(GeneratePlanDraft(InputFrom(assessment)));
        plan.set_plan_id(NewId("plan"));
        plan.set_patient_id(assessment.patient_id());
        plan.set_assessment_id(assessment.assessment_id());
        plan.set_status(pb::PLAN_STATUS_DRAFT);
        plan.set_revision(1);
        plan.set_etag(Etag(1));
        *plan.mutable_baseline_scores() = assessment.scores();
        *plan.mutable_create_time() = TimeUtil::GetCurrentTime();
        *plan.mutable_update_time() = plan.create_time();
        plan.set_created_by(ctx.principal);
        conn.Exec("INSERT INTO planning.plans (tenant_id, plan_id, patient_id, assessment_id, status, version, body)"
                  " VALUES ($1,$2,$3,$4,$5,1,$6::jsonb)",
                  {ctx.tenant, plan.plan_id(), plan.patient_id(), plan.assessment_id(), StatusName(plan.status()),
                   ToJson(plan)});
        pb::GeneratePlanResponse generated;
        *generated.mutable_plan() = plan;
        return generated;
      });
  audit.resource_id = response.plan().plan_id();
  return response;
}

pb::GetPlanResponse PlanningApp::GetPlan(const CallContext& ctx, const pb::GetPlanRequest& request,
                                         AuditTarget& audit) {
  RequireAnyRole(ctx, {Role::kPatient, Role::kClinician, Role::kIntegrator, Role::kService});
  ValidateOpaqueId("plan_id", request.plan_id());
  audit.resource_id = request.plan_id();
  pb::GetPlanResponse response;
  WithTransaction(pg_, ctx.DeadlineCappedAt(kStoreBudget), [&](PgConnection& conn) {
    auto rows = conn.Exec("SELECT body FROM planning.plans WHERE tenant_id = $1 AND plan_id = $2",
                          {ctx.tenant, request.plan_id()});
    if (rows.rows() == 0) ThrowNotFound("plan");
    *response.mutable_plan() = ReadPlan(rows, 0);
  });
  if (!CanSeePatient(ctx, response.plan().patient_id())) ThrowNotFound("plan");
  audit.patient_id = response.plan().patient_id();
  return response;
}

pb::ApprovePlanResponse PlanningApp::ApprovePlan(const CallContext& ctx, const pb::ApprovePlanRequest& request,
                                                 AuditTarget& audit) {
  RequireAnyRole(ctx, {Role::kClinician});
  ValidateRequestId("request_id", request.request_id());
  ValidateOpaqueId("plan_id", request.plan_id());
  if (request.etag().empty()) ThrowInvalidArgument("etag", "is required (the etag of the plan as last read)");
  audit.resource_id = request.plan_id();
  pb::ApprovePlanResponse response;
  try {
    response = IdempotentWrite<pb::ApprovePlanResponse>(
        pg_, ctx.DeadlineCappedAt(kStoreBudget), {kSchema, ctx.tenant, "ApprovePlan", request.request_id()}, request,
        [&](PgConnection& conn) {
          auto rows = conn.Exec("SELECT body, version FROM planning.plans WHERE tenant_id = $1 AND plan_id = $2"
                                " FOR UPDATE",
                                {ctx.tenant, request.plan_id()});
          if (rows.rows() == 0) ThrowNotFound("plan");
          pb::Plan plan = ReadPlan(rows, 0);
          const long version = rows.GetLong(0, 1);
          audit.patient_id = plan.patient_id();
          if (request.etag() != Etag(version)) {
            throw Error(ErrorCode::kAborted, "etag: the plan changed since it was read; read it again");
          }
          if (plan.status() != pb::PLAN_STATUS_DRAFT) {
            throw Error(ErrorCode::kFailedPrecondition, "plan_id: only a draft plan can be approved");
          }
          auto active = conn.Exec("SELECT body, version FROM planning.plans WHERE tenant_id = $1 AND patient_id = $2"
                                  " AND status = 'ACTIVE' FOR UPDATE",
                                  {ctx.tenant, plan.patient_id()});
          for (int i = 0; i < active.rows(); ++i) {
            pb::Plan previous = ReadPlan(active, i);
            previous.set_status(pb::PLAN_STATUS_SUPERSEDED);
            WritePlan(conn, ctx.tenant, previous, active.GetLong(i, 1) + 1);
          }
          plan.set_status(pb::PLAN_STATUS_ACTIVE);
          plan.set_approved_by(ctx.principal);
          WritePlan(conn, ctx.tenant, plan, version + 1);
          pb::ApprovePlanResponse approved;
          *approved.mutable_plan() = plan;
          return approved;
        });
  } catch (const PgUniqueViolation& violation) {
    if (violation.constraint() != "plans_one_active") throw;
    throw Error(ErrorCode::kAborted, "another plan of this patient was approved at the same time; read and retry");
  }
  audit.patient_id = response.plan().patient_id();
  return response;
}

pb::GetActivePlanResponse PlanningApp::GetActivePlan(const CallContext& ctx, const pb::GetActivePlanRequest& request,
                                                     AuditTarget& audit) {
  RequireAnyRole(ctx, {Role::kPatient, Role::kClinician, Role::kIntegrator, Role::kService});
  ValidateOpaqueId("patient_id", request.patient_id());
  audit.patient_id = request.patient_id();
  // Another patient's plan reads as absent rather than forbidden: no existence leak.
  if (!CanSeePatient(ctx, request.patient_id())) ThrowNotFound("active plan");
  pb::GetActivePlanResponse response;
  WithTransaction(pg_, ctx.DeadlineCappedAt(kStoreBudget), [&](PgConnection& conn) {
    auto rows = conn.Exec("SELECT body FROM planning.plans WHERE tenant_id = $1 AND patient_id = $2"
                          " AND status = 'ACTIVE'",
                          {ctx.tenant, request.patient_id()});
    if (rows.rows() == 0) ThrowNotFound("active plan");
    *response.mutable_plan() = ReadPlan(rows, 0);
  });
  audit.resource_id = response.plan().plan_id();
  return response;
}

}  // namespace physio::planning
