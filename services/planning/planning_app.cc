#include "planning_app.h"

#include "domain/outcome_schedule.h"

#include <algorithm>
#include <optional>

#include <google/protobuf/util/time_util.h>

#include <nlohmann/json.hpp>

#include "physio/common/error.h"
#include "physio/common/fhir_search.h"
#include "physio/common/ids.h"
#include "physio/common/no_blocking.h"
#include "physio/common/validation.h"
#include "fhir_careplan.h"
#include "assessment/intake_sections.h"
#include "plan_changes.h"

#include <spdlog/spdlog.h>

namespace physio::planning {

namespace cpb = physio::common::v1;
using google::protobuf::util::TimeUtil;

namespace {
namespace apb = physio::assessment::v1;
constexpr auto kStoreBudget = std::chrono::seconds(5);

cpb::Instrument ToProto(GoalMeasure measure) {
  switch (measure) {
    case GoalMeasure::kNprs: return cpb::INSTRUMENT_NPRS;
    case GoalMeasure::kOdi: return cpb::INSTRUMENT_ODI;
    case GoalMeasure::kRmdq: return cpb::INSTRUMENT_RMDQ;
    case GoalMeasure::kPsfs: return cpb::INSTRUMENT_PSFS;
    case GoalMeasure::kActivity: return cpb::INSTRUMENT_UNSPECIFIED;
    case GoalMeasure::kWorkHours: return cpb::INSTRUMENT_UNSPECIFIED;
  }
  return cpb::INSTRUMENT_UNSPECIFIED;
}

std::string Etag(long version) { return "v" + std::to_string(version); }

void ValidateReason(const std::string& reason) { ValidateRequiredText("reason", reason, 500); }
}  // namespace

namespace {
// The plan's outcome schedule from its review timeline (domain/outcome_schedule.h), again at every change.
void SetOutcomeSchedule(pb::Plan& plan, const PlanPolicy& policy) {
  std::vector<int> review_weeks;
  for (const auto& review : plan.review_points()) review_weeks.push_back(review.week());
  std::vector<GoalMeasure> assessed;
  for (const auto& score : plan.baseline_scores()) {
    switch (score.instrument()) {
      case cpb::INSTRUMENT_ODI: assessed.push_back(GoalMeasure::kOdi); break;
      case cpb::INSTRUMENT_RMDQ: assessed.push_back(GoalMeasure::kRmdq); break;
      case cpb::INSTRUMENT_PSFS: assessed.push_back(GoalMeasure::kPsfs); break;
      default: break;
    }
  }
  plan.clear_outcome_schedule();
  for (const auto& entry : OutcomeSchedule(plan.type() == pb::PLAN_TYPE_TREATMENT, review_weeks,
                                           plan.expected_duration_weeks(), assessed,
                                           {policy.outcome_nprs_every_days})) {
    auto* out = plan.add_outcome_schedule();
    out->set_instrument(ToProto(entry.measure));
    out->set_day(entry.day);
    out->set_purpose(entry.purpose);
  }
}
}  // namespace

void PlanningApp::SaveChange(PlanWriter& writer, const CallContext& ctx, pb::Plan& plan, long version,
                             const std::string& change, const std::string& reason) {
  SetOutcomeSchedule(plan, policy_);
  const auto now = TimeUtil::GetCurrentTime();
  // A plan taking effect joins an episode of care: the open one, an ended one it is a relapse
  // of, or a new one (domain/episodes.h); an ending plan records when.
  if ((plan.status() == pb::PLAN_STATUS_ACTIVE || plan.status() == pb::PLAN_STATUS_SUSPENDED) &&
      plan.episode_id().empty()) {
    const EpisodeChoice episode = EpisodeForPlan(writer.LatestEpisodeForUpdate(ctx.tenant, plan.patient_id()),
                                                 plan.plan_id(), now.seconds(), policy_.relapse_window_days);
    plan.set_episode_id(episode.episode_id);
    plan.set_relapse(episode.relapse);
  }
  if ((plan.status() == pb::PLAN_STATUS_COMPLETED || plan.status() == pb::PLAN_STATUS_DISCHARGED) &&
      !plan.has_end_time()) {
    *plan.mutable_end_time() = now;
  }
  plan.set_revision(plan.revision() + 1);
  plan.set_last_change_reason(reason);
  plan.set_etag(Etag(version + 1));
  *plan.mutable_update_time() = TimeUtil::GetCurrentTime();
  writer.Update(ctx.tenant, plan, version + 1);
  writer.AddRevision(ctx.tenant, plan, change, reason, ctx.principal);
  // The feed's view of the change, in the same transaction.
  const char* kind = change == "approved"    ? "EVENT_KIND_PLAN_APPROVED"
                     : change == "suspended" ? "EVENT_KIND_PLAN_SUSPENDED"
                     : change == "adjusted" || change == "resumed" || change == "precautions added"
                         ? "EVENT_KIND_PLAN_ADJUSTED"
                     : change == "completed" || change == "discharged" ? "EVENT_KIND_PLAN_COMPLETED"
                                                                       : nullptr;
  if (kind != nullptr) writer.AppendEvent(ctx.tenant, kind, plan.patient_id(), plan.plan_id());
}

PlanInput PlanInputFrom(const apb::Assessment& assessment) {
  PlanInput input;
  // Red flags: the clinician's own judgement, once recorded, overrides the computed screen.
  const auto action = assessment.has_clinician_red_flag_judgement() ? assessment.clinician_red_flag_judgement().action()
                                                                    : assessment.red_flags().action();
  switch (action) {
    case apb::RED_FLAG_ACTION_NONE: input.red_flags = RedFlagLevel::kNone; break;
    case apb::RED_FLAG_ACTION_MONITOR: input.red_flags = RedFlagLevel::kMonitor; break;
    case apb::RED_FLAG_ACTION_ROUTINE_REFERRAL: input.red_flags = RedFlagLevel::kRoutineReferral; break;
    case apb::RED_FLAG_ACTION_URGENT_REFERRAL: input.red_flags = RedFlagLevel::kUrgentReferral; break;
    case apb::RED_FLAG_ACTION_EMERGENCY_REFERRAL: input.red_flags = RedFlagLevel::kEmergencyReferral; break;
    default: input.red_flags = RedFlagLevel::kNotScreened; break;
  }
  input.red_flag_reasons = physio::assessment::ConcernSummaries(assessment.red_flags());
  for (const auto& concern : assessment.red_flags().concerns()) {
    // Every concern the screen lists is at monitor level or above.
    if (std::find(input.monitored_conditions.begin(), input.monitored_conditions.end(), concern.condition()) ==
        input.monitored_conditions.end()) {
      input.monitored_conditions.push_back(concern.condition());
    }
    input.fracture_concern |= concern.condition() == "fracture";
    // Loading waits for clearance only while the fracture concern stands at urgent or above:
    // a clinician's recorded judgement below that (e.g. stable osteoporosis, imaging clear)
    // keeps strengthening in the plan (Royal Osteoporosis Society 2022); manipulation and
    // loaded flexion stay out through fracture_concern.
    input.fracture_urgent |= concern.condition() == "fracture" && concern.action() >= apb::RED_FLAG_ACTION_URGENT_REFERRAL &&
                             (!assessment.has_clinician_red_flag_judgement() ||
                              assessment.clinician_red_flag_judgement().action() >= apb::RED_FLAG_ACTION_URGENT_REFERRAL);
    // Spinal manipulation and mobilisation (both carry manipulation_contraindicated in the
    // library) are not for a cancer, infection or cauda equina concern at any level, nor
    // suspected axial SpA: the conditions ContraindicationsForConcern names, the rule a
    // check-in's new concern is judged by too. A fracture concern blocks them through fracture_concern.
    if (concern.condition() != "fracture" &&
        ContraindicationsForConcern(concern.condition()).contains("manipulation_contraindicated")) {
      input.manipulation_blocked.push_back(
          concern.condition() == "axial_spondyloarthritis"
              ? std::string("suspected axial spondyloarthritis")
              : concern.condition() + " concern (" + apb::RedFlagAction_Name(concern.action()) + ")");
    }
  }
  if (assessment.history().takes_anticoagulants()) input.manipulation_blocked.push_back("takes anticoagulants");
  input.takes_anticoagulants = assessment.history().takes_anticoagulants();
  input.sciatica = assessment.history().symptom_extent() == apb::SYMPTOM_EXTENT_BELOW_KNEE ||
                   assessment.examination().nerve_root_signs() ||
                   (assessment.examination().has_neurological() &&
                    physio::assessment::AnalyseNeuro(
                        physio::assessment::NeuroExamOf(assessment.examination().neurological()))
                        .radicular);
  // A clinician's judgement that lowers a computed urgent or emergency action keeps the
  // computed concern visible in the plan.
  if (assessment.has_clinician_red_flag_judgement() &&
      assessment.clinician_red_flag_judgement().action() < assessment.red_flags().action() &&
      assessment.red_flags().action() >= apb::RED_FLAG_ACTION_URGENT_REFERRAL) {
    for (const auto& concern : assessment.red_flags().concerns()) {
      if (concern.action() < apb::RED_FLAG_ACTION_URGENT_REFERRAL) continue;
      input.overridden_concerns.push_back(physio::assessment::ConcernSummary(concern) + " (computed " +
                                          apb::RedFlagAction_Name(concern.action()) + "); clinician: " +
                                          assessment.clinician_red_flag_judgement().rationale());
    }
  }
  input.fracture_concern |= assessment.red_flags().manipulation_contraindicated();
  if (assessment.has_clinician_red_flag_judgement()) {
    input.red_flag_reasons.push_back("clinician's judgement: " + assessment.clinician_red_flag_judgement().rationale());
  }

  const auto& c = assessment.classification();
  if (auto phase = PhaseFromProto(c.phase())) {
    input.phase = *phase;
  } else if (input.red_flags != RedFlagLevel::kUrgentReferral && input.red_flags != RedFlagLevel::kEmergencyReferral) {
    throw Error(ErrorCode::kFailedPrecondition,
                "assessment_id: the assessment has no phase (it needs a pain or Oswestry score)");
  }
  switch (c.start_back_risk()) {
    case apb::START_BACK_RISK_LOW: input.start_back = StartBackRisk::kLow; break;
    case apb::START_BACK_RISK_MEDIUM: input.start_back = StartBackRisk::kMedium; break;
    case apb::START_BACK_RISK_HIGH: input.start_back = StartBackRisk::kHigh; break;
    default: input.start_back = StartBackRisk::kUnknown; break;
  }
  switch (c.subgroup()) {
    case apb::SUBGROUP_MANIPULATION: input.subgroup = Subgroup::kManipulation; break;
    case apb::SUBGROUP_SPECIFIC_EXERCISE: input.subgroup = Subgroup::kSpecificExercise; break;
    case apb::SUBGROUP_STABILISATION: input.subgroup = Subgroup::kStabilisation; break;
    default: input.subgroup = Subgroup::kUnclassified; break;
  }
  input.direction = c.direction();
  for (const auto& criterion : c.criteria_met()) {
    input.subgroup_evidence += (input.subgroup_evidence.empty() ? "" : ", ") + criterion;
  }
  for (const auto& note : c.notes()) input.traction_candidate |= note.find("traction") != std::string::npos;

  for (const auto& score : assessment.scores()) {
    if (score.instrument() == cpb::INSTRUMENT_NPRS) input.nprs = score.score();
    if (score.instrument() == cpb::INSTRUMENT_ODI) input.odi_percent = score.score();
    if (score.instrument() == cpb::INSTRUMENT_RMDQ) input.rmdq = score.score();
    if (score.instrument() == cpb::INSTRUMENT_FABQ) {
      for (const auto& flag : score.flags()) {
        if (flag == "fabq_work_elevated") input.fear_avoidance.push_back("FABQ work subscale elevated");
        if (flag == "fabq_physical_activity_elevated") {
          input.fear_avoidance.push_back("FABQ physical-activity subscale above 14");
        }
      }
    }
  }
  for (const auto& answer : assessment.answers()) {
    if (answer.instrument() == cpb::INSTRUMENT_PSFS && !answer.declined()) {
      input.psfs.push_back({answer.text(), static_cast<double>(answer.value())});
    }
  }
  const auto& h = assessment.history();
  input.chronic = h.has_episode_duration_days() && h.episode_duration_days() > 90;
  input.smoker = h.smoker();
  input.sleep_disturbed = h.sleep_disturbed();
  switch (h.occupation_demand()) {
    case apb::OCCUPATION_DEMAND_SEDENTARY: input.occupation = Occupation::kSedentary; break;
    case apb::OCCUPATION_DEMAND_LIGHT: input.occupation = Occupation::kLight; break;
    case apb::OCCUPATION_DEMAND_HEAVY: input.occupation = Occupation::kHeavy; break;
    case apb::OCCUPATION_DEMAND_NOT_WORKING: input.occupation = Occupation::kNotWorking; break;
    default: input.occupation = Occupation::kUnknown; break;
  }
  switch (c.irritability()) {
    case apb::IRRITABILITY_LOW: input.irritability = Irritability::kLow; break;
    case apb::IRRITABILITY_MODERATE: input.irritability = Irritability::kModerate; break;
    case apb::IRRITABILITY_HIGH: input.irritability = Irritability::kHigh; break;
    default: input.irritability = Irritability::kUnknown; break;
  }
  if (c.has_bmi()) input.bmi = c.bmi();
  switch (h.activity_level()) {
    case apb::ACTIVITY_LEVEL_LOW: input.activity_level = ActivityLevel::kLow; break;
    case apb::ACTIVITY_LEVEL_MODERATE: input.activity_level = ActivityLevel::kModerate; break;
    case apb::ACTIVITY_LEVEL_HIGH: input.activity_level = ActivityLevel::kHigh; break;
    default: input.activity_level = ActivityLevel::kUnknown; break;
  }
  input.previous_episodes = h.previous_episodes();
  const auto& w = h.work();
  switch (w.status()) {
    case apb::WORK_STATUS_WORKING: input.work.status = WorkStatus::kWorking; break;
    case apb::WORK_STATUS_MODIFIED_DUTIES: input.work.status = WorkStatus::kModifiedDuties; break;
    case apb::WORK_STATUS_OFF_WORK: input.work.status = WorkStatus::kOffWork; break;
    case apb::WORK_STATUS_NOT_EMPLOYED: input.work.status = WorkStatus::kNotEmployed; break;
    case apb::WORK_STATUS_RETIRED: input.work.status = WorkStatus::kRetired; break;
    default: break;
  }
  if (w.has_usual_hours_per_week()) input.work.usual_hours = w.usual_hours_per_week();
  if (w.has_current_hours_per_week()) input.work.current_hours = w.current_hours_per_week();
  if (w.has_days_off_work()) input.work.days_off = w.days_off_work();
  input.work.fit_note = w.fit_note();
  if (w.has_planned_return_in_days()) input.work.planned_return_in_days = w.planned_return_in_days();
  input.work.obstacles.assign(w.obstacles().begin(), w.obstacles().end());
  input.goals.assign(h.goals().begin(), h.goals().end());
  input.observations.assign(assessment.examination().observations().begin(),
                            assessment.examination().observations().end());
  input.cardiovascular_disease = h.cardiovascular_disease();
  input.pregnant = h.pregnant();
  if (h.pregnant() && h.has_pregnancy_weeks()) input.pregnancy_weeks = h.pregnancy_weeks();
  input.pelvic_girdle_pain = h.pelvic_girdle_pain();
  if (h.pregnant()) input.manipulation_blocked.push_back("pregnancy");
  input.low_recovery_expectation = h.recovery_expectation() == apb::RECOVERY_EXPECTATION_LITTLE_OR_NONE;
  input.declines_manual_therapy = h.preferences().declines_manual_therapy();
  for (int analgesic : h.analgesics()) {
    switch (analgesic) {
      case apb::ANALGESIC_PARACETAMOL: input.analgesics.insert(Analgesic::kParacetamol); break;
      case apb::ANALGESIC_NSAID: input.analgesics.insert(Analgesic::kNsaid); break;
      case apb::ANALGESIC_OPIOID: input.analgesics.insert(Analgesic::kOpioid); break;
      case apb::ANALGESIC_NEUROPATHIC: input.analgesics.insert(Analgesic::kNeuropathic); break;
      case apb::ANALGESIC_GABAPENTINOID: input.analgesics.insert(Analgesic::kGabapentinoid); break;
      case apb::ANALGESIC_ANTIDEPRESSANT: input.analgesics.insert(Analgesic::kAntidepressant); break;
      case apb::ANALGESIC_ORAL_CORTICOSTEROID: input.analgesics.insert(Analgesic::kOralCorticosteroid); break;
      case apb::ANALGESIC_BENZODIAZEPINE: input.analgesics.insert(Analgesic::kBenzodiazepine); break;
      default: break;
    }
  }
  input.previous_treatments.assign(h.previous_treatments().begin(), h.previous_treatments().end());
  input.previous_treatment_did_not_help = h.previous_treatment_effect() == apb::TREATMENT_EFFECT_NO_CHANGE;
  input.previous_treatment_made_worse = h.previous_treatment_effect() == apb::TREATMENT_EFFECT_WORSE;
  input.prefers_group_exercise = h.preferences().prefers_group_exercise();
  input.prefers_pilates = h.preferences().prefers_pilates();
  return input;
}

pb::Plan PlanFromDraft(const PlanDraft& draft) {
  pb::Plan plan;
  plan.set_type(draft.type == PlanType::kReferral ? pb::PLAN_TYPE_REFERRAL : pb::PLAN_TYPE_TREATMENT);
  if (draft.type == PlanType::kTreatment) plan.set_phase(ToProto(draft.phase));
  switch (draft.intensity) {
    case Intensity::kAdviceAndSelfManagement: plan.set_intensity(pb::INTENSITY_ADVICE_AND_SELF_MANAGEMENT); break;
    case Intensity::kPhysiotherapyPackage: plan.set_intensity(pb::INTENSITY_PHYSIOTHERAPY_PACKAGE); break;
    case Intensity::kPsychologicallyInformed: plan.set_intensity(pb::INTENSITY_PSYCHOLOGICALLY_INFORMED); break;
    case Intensity::kNone: break;
  }
  plan.set_rules_version(draft.rules_version);
  plan.set_library_version(draft.library_version);
  plan.set_expected_duration_weeks(draft.expected_weeks);
  plan.set_home_sessions_per_week(draft.home_sessions_per_week);
  if (draft.type == PlanType::kTreatment) {
    plan.set_progression_interval_days(draft.progression_interval_days);
    plan.set_weekly_activity_target_minutes(draft.weekly_activity_target_minutes);
  }
  for (const auto& token : draft.contraindications) plan.add_contraindications(token);
  for (const auto& condition : draft.monitored_conditions) plan.add_monitored_conditions(condition);
  for (const auto& item : draft.items) *plan.add_items() = ItemFromDraft(item);
  for (const auto& goal : draft.goals) {
    auto* out = plan.add_goals();
    out->set_description(goal.description);
    out->set_instrument(ToProto(goal.measure));
    out->set_target_score(goal.target);
    if (goal.measure == GoalMeasure::kActivity) out->set_measure("activity_minutes_per_week");
    if (goal.measure == GoalMeasure::kWorkHours) out->set_measure("work_hours_per_week");
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
  ValidateRequestId("request_id", request.request_id());
  ValidateOpaqueId("assessment_id", request.assessment_id());
  const auto deadline = ctx.DeadlineCappedAt(kStoreBudget);
  const PgIdempotencyKey key{kSchema, ctx.tenant, ctx.principal, "GeneratePlan", request.request_id()};
  if (auto replay = IdempotentReplay<pb::GeneratePlanResponse>(records_, deadline, key, request)) {
    audit.patient_id = replay->plan().patient_id();
    audit.resource_id = replay->plan().plan_id();
    return *replay;
  }
  // Read before the transaction: no database connection is held across a remote call.
  auto assessment = assessments_.Get(ctx, request.assessment_id());
  audit.patient_id = assessment.patient_id();
  // An urgent or emergency red flag gives a referral plan instead of treatment.
  const PlanInput input = PlanInputFrom(assessment);
  // A plan in use (a re-assessment): the draft keeps its safety and says what it changes.
  const std::optional<pb::Plan> in_use = records_.FindInUse(ctx.tenant, assessment.patient_id(), deadline);
  if (!request.template_id().empty()) ValidateOpaqueId("template_id", request.template_id());
  const auto tenant_library = TenantLibraryOf(ctx, deadline);
  const InterventionLibrary& library = LibraryWith(tenant_library);
  const PlanTemplate* chosen = nullptr;
  if (!request.template_id().empty()) {
    chosen = tenant_library ? tenant_library->FindTemplate(request.template_id()) : nullptr;
    if (chosen == nullptr) ThrowNotFound("template " + request.template_id());
  }
  auto response = IdempotentWrite<pb::GeneratePlanResponse>(
      records_, deadline, key, request, [&](PlanWriter& writer) {
        pb::Plan plan = PlanFromDraft(GeneratePlanDraft(input, library_, policy_));
        plan.set_plan_id(NewId("plan"));
        plan.set_patient_id(assessment.patient_id());
        plan.set_assessment_id(assessment.assessment_id());
        plan.set_start_back_risk(apb::StartBackRisk_Name(assessment.classification().start_back_risk()));
        plan.set_subgroup(apb::Subgroup_Name(assessment.classification().subgroup()));
        plan.set_sciatica(input.sciatica);
        if (assessment.history().work().status() != apb::WORK_STATUS_UNSPECIFIED) {
          plan.set_work_status_at_assessment(apb::WorkStatus_Name(assessment.history().work().status()));
        }
        if (assessment.history().work().has_usual_hours_per_week()) {
          plan.set_usual_work_hours(assessment.history().work().usual_hours_per_week());
        }
        if (assessment.history().has_episode_duration_days()) {
          plan.set_episode_days_at_assessment(assessment.history().episode_duration_days());
        }
        plan.set_status(pb::PLAN_STATUS_DRAFT);
        plan.set_revision(1);
        plan.set_etag(Etag(1));
        *plan.mutable_baseline_scores() = assessment.scores();
        *plan.mutable_create_time() = TimeUtil::GetCurrentTime();
        *plan.mutable_update_time() = plan.create_time();
        plan.set_created_by(ctx.principal);
        plan.set_direction(input.direction);
        plan.set_last_change_reason("generated from assessment " + assessment.assessment_id());
        plan.set_tenant_library_version(tenant_library ? tenant_library->version : 0);
        if (chosen != nullptr) {
          for (const auto& note : ApplyTemplate(plan, library, *chosen)) plan.add_template_notes(note);
        }
        if (in_use) {
          plan.set_replaces_plan_id(in_use->plan_id());
          const auto carried = CarryOverSafety(plan, *in_use, library, TimeUtil::GetCurrentTime().seconds());
          for (const auto& change : DiffPlans(*in_use, plan)) *plan.add_proposed_changes() = change;
          for (const auto& change : carried) *plan.add_proposed_changes() = change;
        }
        SetOutcomeSchedule(plan, policy_);
        writer.AddRevision(ctx.tenant, plan, "generated", plan.last_change_reason(), ctx.principal);
        writer.Insert(ctx.tenant, plan);
        writer.AppendEvent(ctx.tenant, "EVENT_KIND_PLAN_DRAFTED", plan.patient_id(), plan.plan_id());
        pb::GeneratePlanResponse generated;
        *generated.mutable_plan() = plan;
        return generated;
      },
      [&](const pb::GeneratePlanResponse& response) { audit.resource_id = response.plan().plan_id(); });
  return response;
}

namespace {
pb::MediaReference MediaProto(const MediaReference& media) {
  pb::MediaReference out;
  out.set_uri(media.uri);
  out.set_kind(media.kind == "video"       ? pb::MEDIA_KIND_VIDEO
               : media.kind == "animation" ? pb::MEDIA_KIND_ANIMATION
                                           : pb::MEDIA_KIND_IMAGE);
  out.set_duration_seconds(media.duration_seconds);
  out.set_licence(media.licence);
  out.set_attribution(media.attribution);
  out.set_locale(media.locale);
  return out;
}
}  // namespace

void PlanningApp::LocalisePlan(const CallContext& ctx, pb::Plan& plan, const std::string& locale) {
  LocalisePlanWith(TenantLibraryForLocalising(ctx, plan.tenant_library_version() > 0), plan, locale);
}

std::shared_ptr<const TenantLibrary> PlanningApp::TenantLibraryForLocalising(const CallContext& ctx,
                                                                             bool plan_has_tenant_entries) {
  if (!plan_has_tenant_entries) return nullptr;
  try {
    return TenantLibraryForReads(ctx, ctx.DeadlineCappedAt(kStoreBudget));
  } catch (const Error& e) {
    // A read: the tenant's items are then served as stored, their language not claimed.
    spdlog::warn("request_id={} tenant library unavailable for localising a plan: {}", ctx.request_id, e.what());
    return nullptr;
  }
}

void PlanningApp::LocalisePlanWith(const std::shared_ptr<const TenantLibrary>& tenant, pb::Plan& plan,
                                   const std::string& locale) const {
  const InterventionLibrary& library = LibraryWith(tenant);
  for (auto& item : *plan.mutable_items()) {
    // Text not from the library (the safety net, a referral) is English; a clinician's wording
    // (or an older library's) is served as written, in a language not known here (empty), and is
    // never swapped for a translation of something else.
    const Intervention* entry = library.Find(item.item_id());
    // A tenant's item its library could not be read for: written in a language not known here.
    std::string served = entry == nullptr && item.item_id().starts_with("tenant.") ? "" : "en";
    if (entry != nullptr) {
      // An English read (the hot path) keeps the stored text: only media are added.
      if (!locale.empty()) {
        if (item.title() == entry->title && item.instructions() == entry->instructions) {
          const LocalisedText text = Localised(*entry, locale, &served);
          item.set_title(text.title);
          item.set_instructions(text.instructions);
        } else {
          served.clear();
        }
      }
      for (const auto& media : MediaFor(*entry, served.empty() ? "en" : served)) *item.add_media() = MediaProto(media);
    }
    // Said only to a caller that asked for a language: an English read stays as it was.
    if (!locale.empty()) item.set_locale(served);
  }
}

pb::GetPlanResponse PlanningApp::GetPlan(const CallContext& ctx, const pb::GetPlanRequest& request,
                                         AuditTarget& audit) {
  ValidateOpaqueId("plan_id", request.plan_id());
  ValidateLocale("locale", request.locale());
  audit.resource_id = request.plan_id();
  pb::GetPlanResponse response;
  auto found = records_.Find(ctx.tenant, request.plan_id(), ctx.DeadlineCappedAt(kStoreBudget));
  if (!found) ThrowNotFound("plan");
  *response.mutable_plan() = std::move(*found);
  if (!CanSeePatient(ctx, response.plan().patient_id())) ThrowNotFound("plan");
  audit.patient_id = response.plan().patient_id();
  LocalisePlan(ctx, *response.mutable_plan(), request.locale());
  return response;
}

void PlanningApp::RequireClinicOfPlan(const CallContext& ctx, const std::string& plan_id) {
  if (!IsClinicScoped(ctx)) return;
  // Another clinic's patient's plan: not found, and unchanged (checked before the write's transaction).
  auto plan = records_.Find(ctx.tenant, plan_id, ctx.DeadlineCappedAt(kStoreBudget));
  if (plan && !SharesClinicWith(ctx, plan->patient_id())) ThrowNotFound("plan");
}

pb::ApprovePlanResponse PlanningApp::ApprovePlan(const CallContext& ctx, const pb::ApprovePlanRequest& request,
                                                 AuditTarget& audit) {
  ValidateRequestId("request_id", request.request_id());
  ValidateOpaqueId("plan_id", request.plan_id());
  if (request.etag().empty()) ThrowInvalidArgument("etag", "is required (the etag of the plan as last read)");
  const auto now = TimeUtil::GetCurrentTime();
  google::protobuf::Timestamp effective = now;
  if (request.has_effective_time()) {
    effective = request.effective_time();
    if (effective.seconds() > now.seconds() + 300) ThrowInvalidArgument("effective_time", "is in the future");
    if (effective.seconds() < now.seconds() - 366 * 24 * 3600) ThrowInvalidArgument("effective_time", "is more than a year back");
  }
  audit.resource_id = request.plan_id();
  RequireClinicOfPlan(ctx, request.plan_id());
  auto response = IdempotentWrite<pb::ApprovePlanResponse>(
      records_, ctx.DeadlineCappedAt(kStoreBudget),
      {kSchema, ctx.tenant, ctx.principal, "ApprovePlan", request.request_id()}, request, [&](PlanWriter& writer) {
        auto found = writer.FindForUpdate(ctx.tenant, request.plan_id());
        if (!found) ThrowNotFound("plan");
        pb::Plan& plan = found->plan;
        const long version = found->version;
        audit.patient_id = plan.patient_id();
        if (request.etag() != Etag(version)) {
          throw Error(ErrorCode::kAborted, "etag: the plan changed since it was read; read it again");
        }
        if (plan.status() != pb::PLAN_STATUS_DRAFT) {
          throw Error(ErrorCode::kFailedPrecondition, "plan_id: only a draft plan can be approved");
        }
        for (auto& [previous, previous_version] : writer.InUseForUpdate(ctx.tenant, plan.patient_id())) {
          previous.set_status(pb::PLAN_STATUS_SUPERSEDED);
          SaveChange(writer, ctx, previous, previous_version, "superseded", "replaced by plan " + plan.plan_id());
        }
        // Informed consent to spinal manipulation is recorded before a plan with it is approved.
        const bool manipulation = IncludesManipulation(plan);
        if (manipulation && !request.manipulation_consent()) {
          throw Error(ErrorCode::kFailedPrecondition,
                      "manipulation_consent: the plan includes spinal manipulation; record the patient's informed "
                      "consent (manipulation_consent: true) or revise the plan to remove it");
        }
        if (manipulation) plan.set_manipulation_consent_recorded_by(ctx.principal);
        plan.set_status(pb::PLAN_STATUS_ACTIVE);
        plan.set_approved_by(ctx.principal);
        *plan.mutable_activate_time() = effective;
        SaveChange(writer, ctx, plan, version, "approved", "approved by " + ctx.principal);
        active_plans_.BumpGenerationBeforeCommit(ctx, plan.patient_id(), ctx.DeadlineCappedAt(kStoreBudget));
        pb::ApprovePlanResponse approved;
        *approved.mutable_plan() = plan;
        return approved;
      },
      [&](const pb::ApprovePlanResponse& approved) { audit.patient_id = approved.plan().patient_id(); });
  active_plans_.InvalidateAfterCommit(ctx, response.plan().patient_id(), ctx.DeadlineCappedAt(kStoreBudget));
  RecordConsentConfirmed(ctx, request.manipulation_consent(), response.plan(), request.request_id());
  return response;
}

template <typename Response>
Response PlanningApp::ChangePlan(const CallContext& ctx, const char* method, const google::protobuf::Message& request,
                                 const std::string& request_id, const std::string& plan_id, const std::string& etag,
                                 std::initializer_list<pb::PlanStatus> allowed, const std::string& change,
                                 const std::string& reason, AuditTarget& audit,
                                 const std::function<void(pb::Plan&)>& mutate, const std::string* detail) {
  ValidateRequestId("request_id", request_id);
  ValidateOpaqueId("plan_id", plan_id);
  ValidateReason(reason);
  audit.resource_id = plan_id;
  RequireClinicOfPlan(ctx, plan_id);
  auto response = IdempotentWrite<Response>(
      records_, ctx.DeadlineCappedAt(kStoreBudget), {kSchema, ctx.tenant, ctx.principal, method, request_id}, request,
      [&](PlanWriter& writer) {
        auto found = writer.FindForUpdate(ctx.tenant, plan_id);
        if (!found) ThrowNotFound("plan");
        pb::Plan& plan = found->plan;
        audit.patient_id = plan.patient_id();
        const long version = found->version;
        if (!etag.empty() && etag != Etag(version)) {
          throw Error(ErrorCode::kAborted, "etag: the plan changed since it was read; read it again");
        }
        if (std::find(allowed.begin(), allowed.end(), plan.status()) == allowed.end()) {
          throw Error(ErrorCode::kFailedPrecondition,
                      "plan_id: not possible for a plan that is " + pb::PlanStatus_Name(plan.status()));
        }
        mutate(plan);
        // What the change did, when the mutation says (e.g. the items precautions took out).
        SaveChange(writer, ctx, plan, version, change,
                   detail != nullptr && !detail->empty() ? (reason + " — " + *detail).substr(0, 2000) : reason);
        active_plans_.BumpGenerationBeforeCommit(ctx, plan.patient_id(), ctx.DeadlineCappedAt(kStoreBudget));
        Response changed;
        *changed.mutable_plan() = plan;
        return changed;
      },
      [&](const Response& response) { audit.patient_id = response.plan().patient_id(); });
  // Also on a replayed retry: that is how a failed invalidation gets another chance.
  active_plans_.InvalidateAfterCommit(ctx, response.plan().patient_id(), ctx.DeadlineCappedAt(kStoreBudget));
  return response;
}

void PlanningApp::RecordConsentConfirmed(const CallContext& ctx, bool confirmed, const pb::Plan& plan,
                                         const std::string& request_id) {
  // After the plan's commit, and again on a replayed retry: a consent record that could not be
  // written fails the call (UNAVAILABLE), and the retry with the same request id writes it once.
  if (!confirmed || plan.manipulation_consent_recorded_by().empty() || !IncludesManipulation(plan)) return;
  assessments_.RecordManipulationConsent(ctx, plan.patient_id(), "plan-consent." + Sha256Hex(request_id).substr(0, 40));
}

pb::RevisePlanResponse PlanningApp::RevisePlan(const CallContext& ctx, const pb::RevisePlanRequest& request,
                                               AuditTarget& audit) {
  if (request.etag().empty()) ThrowInvalidArgument("etag", "is required (the etag of the plan as last read)");
  // A revision that overrides a contraindication says so in the plan's history.
  const bool overrides = std::any_of(request.changes().begin(), request.changes().end(),
                                     [](const auto& change) { return !change.contraindication_override().empty(); });
  const auto tenant_library = TenantLibraryOf(ctx, ctx.DeadlineCappedAt(kStoreBudget));
  auto response = ChangePlan<pb::RevisePlanResponse>(
      ctx, "RevisePlan", request, request.request_id(), request.plan_id(), request.etag(),
      {pb::PLAN_STATUS_DRAFT, pb::PLAN_STATUS_ACTIVE}, overrides ? "revised, contraindication overridden" : "revised",
      request.reason(), audit, [&](pb::Plan& plan) {
        if (plan.type() == pb::PLAN_TYPE_REFERRAL) {
          throw Error(ErrorCode::kFailedPrecondition, "plan_id: a referral plan has no treatment to revise");
        }
        ApplyRevision(plan, LibraryWith(tenant_library), request.changes());
        if (tenant_library) plan.set_tenant_library_version(tenant_library->version);
        // Manipulation added to a plan in use needs the patient's recorded consent too.
        const bool manipulation = IncludesManipulation(plan);
        if (plan.status() == pb::PLAN_STATUS_ACTIVE && manipulation && plan.manipulation_consent_recorded_by().empty()) {
          if (!request.manipulation_consent()) {
            throw Error(ErrorCode::kFailedPrecondition,
                        "manipulation_consent: the revision adds spinal manipulation to a plan in use; record the "
                        "patient's informed consent (manipulation_consent: true)");
          }
          plan.set_manipulation_consent_recorded_by(ctx.principal);
        }
      });
  RecordConsentConfirmed(ctx, request.manipulation_consent(), response.plan(), request.request_id());
  return response;
}

pb::AdjustPlanResponse PlanningApp::AdjustPlan(const CallContext& ctx, const pb::AdjustPlanRequest& request,
                                               AuditTarget& audit) {
  // A patient may only make their own plan safer: suspend it (a safety-net answer) or
  // regress exercises (peripheralisation, a flare-up). That is what the progress service
  // does on a patient's home log, with the patient's own credentials.
  const bool patient_only = !ctx.HasRole(Role::kService) && !ctx.HasRole(Role::kClinician) &&
                            !ctx.HasRole(Role::kIntegrator);
  // Adding precautions only ever makes a plan safer too (a patient's own symptom answers).
  // So does stopping a direction symptoms spread with.
  if (patient_only && request.adjustment() != pb::ADJUSTMENT_SUSPEND && request.adjustment() != pb::ADJUSTMENT_REGRESS &&
      request.adjustment() != pb::ADJUSTMENT_ADD_PRECAUTIONS && request.adjustment() != pb::ADJUSTMENT_STOP_DIRECTION) {
    throw Error(ErrorCode::kPermissionDenied, "adjustment: a patient may only suspend their plan, regress its "
                                              "exercises, add precautions or stop a direction");
  }
  if (!pb::Adjustment_IsValid(request.adjustment()) || request.adjustment() == pb::ADJUSTMENT_UNSPECIFIED) {
    ThrowInvalidArgument("adjustment",
                         "must be PROGRESS, REGRESS, CHANGE_PHASE, MARK_FOR_REASSESSMENT, MARK_FOR_REFERRAL, SUSPEND, "
                         "RESUME, ADD_PRECAUTIONS or STOP_DIRECTION");
  }
  const bool precautions = request.adjustment() == pb::ADJUSTMENT_ADD_PRECAUTIONS;
  const bool stop_direction = request.adjustment() == pb::ADJUSTMENT_STOP_DIRECTION;
  if (!stop_direction && !request.directions().empty()) {
    ThrowInvalidArgument("directions", "only for ADJUSTMENT_STOP_DIRECTION");
  }
  if (request.directions_size() > 3) ThrowInvalidArgument("directions", "at most 3");
  if (!precautions && !request.concerns().empty()) {
    ThrowInvalidArgument("concerns", "only for ADJUSTMENT_ADD_PRECAUTIONS");
  }
  const bool suspend = request.adjustment() == pb::ADJUSTMENT_SUSPEND;
  const bool resume = request.adjustment() == pb::ADJUSTMENT_RESUME;
  // Resuming a plan suspended for a red flag is a clinician's judgement, never automatic.
  if (resume) RequireAnyRole(ctx, {Role::kClinician});
  if ((suspend || resume) && IsBlank(request.reason())) {
    ThrowInvalidArgument("reason", suspend ? "is required to suspend a plan (the red flag)"
                                           : "is required to resume a plan (the clinician's judgement)");
  }
  if (request.adjustment() == pb::ADJUSTMENT_CHANGE_PHASE &&
      (request.phase() == cpb::PHASE_UNSPECIFIED || !cpb::Phase_IsValid(request.phase()))) {
    ThrowInvalidArgument("phase", "is required for ADJUSTMENT_CHANGE_PHASE");
  }
  const std::vector<std::string> item_ids = DistinctIds("item_ids", {request.item_ids().begin(), request.item_ids().end()}, 50);
  static constexpr std::initializer_list<pb::PlanStatus> kInUse = {pb::PLAN_STATUS_ACTIVE};
  static constexpr std::initializer_list<pb::PlanStatus> kSuspendable = {pb::PLAN_STATUS_ACTIVE,
                                                                          pb::PLAN_STATUS_SUSPENDED};
  static constexpr std::initializer_list<pb::PlanStatus> kSuspended = {pb::PLAN_STATUS_SUSPENDED};
  // Precautions go onto a plan in use or a suspended one (it may be resumed later); a draft
  // is not changed this way: it is generated again from a new assessment instead.
  std::string detail;  // what adding precautions changed, for the revision's reason
  // Tenant items are stepped, stopped and excluded by their own library entries. A safety action
  // (stopping a direction, adding precautions) is never held up by the tenant's library: if its
  // version cannot be used, it goes ahead with the shipped library (tenant items are then left for
  // the clinician's review, which both actions ask for) and the failure is logged.
  std::shared_ptr<const TenantLibrary> tenant_library;
  const bool uses_library = request.adjustment() == pb::ADJUSTMENT_PROGRESS ||
                            request.adjustment() == pb::ADJUSTMENT_REGRESS || stop_direction || precautions;
  if (uses_library) {
    try {
      tenant_library = TenantLibraryOf(ctx, ctx.DeadlineCappedAt(kStoreBudget));
    } catch (const Error& e) {
      if (e.code() != ErrorCode::kFailedPrecondition || !(stop_direction || precautions)) throw;
      spdlog::error("request_id={} plan_id={} safety adjustment with the shipped library only: {}", ctx.request_id,
                    request.plan_id(), e.what());
    }
  }
  const InterventionLibrary& library = LibraryWith(tenant_library);
  return ChangePlan<pb::AdjustPlanResponse>(
      ctx, "AdjustPlan", request, request.request_id(), request.plan_id(), request.etag(),
      suspend || precautions || stop_direction ? kSuspendable : resume ? kSuspended : kInUse,
      suspend           ? "suspended"
      : resume          ? "resumed"
      : precautions     ? "precautions added"
      : stop_direction  ? "direction stopped"
                        : "adjusted",
      request.reason(), audit,
      [&](pb::Plan& plan) {
        if (patient_only) RequirePatientAccess(ctx, plan.patient_id());
        *plan.mutable_adjust_time() = TimeUtil::GetCurrentTime();
        switch (request.adjustment()) {
          case pb::ADJUSTMENT_SUSPEND: plan.set_status(pb::PLAN_STATUS_SUSPENDED); break;
          case pb::ADJUSTMENT_RESUME: plan.set_status(pb::PLAN_STATUS_ACTIVE); break;
          case pb::ADJUSTMENT_PROGRESS:
          case pb::ADJUSTMENT_REGRESS:
            StepExercises(plan, library, item_ids, request.adjustment() == pb::ADJUSTMENT_PROGRESS);
            break;
          case pb::ADJUSTMENT_CHANGE_PHASE: plan.set_phase(request.phase()); break;
          case pb::ADJUSTMENT_MARK_FOR_REASSESSMENT: plan.set_needs_reassessment(true); break;
          case pb::ADJUSTMENT_MARK_FOR_REFERRAL: plan.set_referral_recommended(true); break;
          case pb::ADJUSTMENT_STOP_DIRECTION: {
            for (const auto& line : StopDirections(plan, library, item_ids,
                                                   {request.directions().begin(), request.directions().end()})) {
              detail += (detail.empty() ? "" : "; ") + line;
            }
            if (detail.empty()) detail = "nothing new: these directions were stopped already";
            break;
          }
          case pb::ADJUSTMENT_ADD_PRECAUTIONS: {
            for (const auto& line : AddPrecautions(plan, library, request.concerns(), TimeUtil::GetCurrentTime().seconds())) {
              detail += (detail.empty() ? "" : "; ") + line;
            }
            if (detail.empty()) detail = "nothing new: the plan covers these conditions already";
            break;
          }
          default: break;
        }
      },
      &detail);
}

pb::CompletePlanResponse PlanningApp::CompletePlan(const CallContext& ctx, const pb::CompletePlanRequest& request,
                                                   AuditTarget& audit) {
  if (request.etag().empty()) ThrowInvalidArgument("etag", "is required (the etag of the plan as last read)");
  if (request.outcome() != pb::PLAN_STATUS_COMPLETED && request.outcome() != pb::PLAN_STATUS_DISCHARGED) {
    ThrowInvalidArgument("outcome", "must be PLAN_STATUS_COMPLETED or PLAN_STATUS_DISCHARGED");
  }
  const auto reason = request.discharge_reason();
  if (!pb::DischargeReason_IsValid(reason)) ThrowInvalidArgument("discharge_reason", "is not a known value");
  const bool completed_reason = reason == pb::DISCHARGE_REASON_GOALS_MET || reason == pb::DISCHARGE_REASON_SELF_MANAGING;
  if (reason != pb::DISCHARGE_REASON_UNSPECIFIED && completed_reason != (request.outcome() == pb::PLAN_STATUS_COMPLETED)) {
    ThrowInvalidArgument("discharge_reason", request.outcome() == pb::PLAN_STATUS_COMPLETED
                                                 ? "a completed plan's reason is GOALS_MET or SELF_MANAGING"
                                                 : "a discharged plan's reason is REFERRED, DID_NOT_ATTEND or PATIENT_CHOICE");
  }
  const std::string change = request.outcome() == pb::PLAN_STATUS_COMPLETED ? "completed" : "discharged";
  return ChangePlan<pb::CompletePlanResponse>(
      ctx, "CompletePlan", request, request.request_id(), request.plan_id(), request.etag(), {pb::PLAN_STATUS_ACTIVE},
      change, request.reason(), audit, [&](pb::Plan& plan) {
        plan.set_status(request.outcome());
        plan.set_discharge_reason(reason);
      });
}

pb::ListPlanRevisionsResponse PlanningApp::ListPlanRevisions(const CallContext& ctx,
                                                             const pb::ListPlanRevisionsRequest& request,
                                                             AuditTarget& audit) {
  ValidateOpaqueId("plan_id", request.plan_id());
  ValidateRange("page_size", request.page_size(), 0, 100);
  audit.resource_id = request.plan_id();
  const int page_size = request.page_size() == 0 ? 20 : request.page_size();
  int after = 0;
  if (!request.page_token().empty()) {
    try {
      const std::string token = HexDecode(request.page_token());
      if (token.rfind(request.plan_id() + "@", 0) != 0) throw std::invalid_argument("plan");
      after = std::stoi(token.substr(request.plan_id().size() + 1));
    } catch (const std::exception&) {
      ThrowInvalidArgument("page_token", "is not a token this service issued for this plan");
    }
  }
  auto page = records_.ListRevisions(ctx.tenant, request.plan_id(), after, page_size, ctx.DeadlineCappedAt(kStoreBudget));
  if (!page.patient_id || !CanSeePatient(ctx, *page.patient_id)) ThrowNotFound("plan");
  audit.patient_id = *page.patient_id;
  pb::ListPlanRevisionsResponse response;
  for (auto& revision : page.revisions) *response.add_revisions() = std::move(revision);
  if (page.more) {
    response.set_next_page_token(
        HexEncode(request.plan_id() + "@" + std::to_string(response.revisions().rbegin()->revision())));
  }
  return response;
}

pb::ExportPlanFhirResponse PlanningApp::ExportPlanFhir(const CallContext& ctx, const pb::ExportPlanFhirRequest& request,
                                                       AuditTarget& audit) {
  pb::GetPlanRequest get;
  get.set_plan_id(request.plan_id());
  // Same roles, tenant scoping and patient rule as reading the plan.
  pb::ExportPlanFhirResponse response;
  response.set_bundle_json(PlanToFhirBundle(GetPlan(ctx, get, audit).plan()));
  return response;
}

pb::SearchFhirResponse PlanningApp::SearchFhir(const CallContext& ctx, const pb::SearchFhirRequest& request,
                                               AuditTarget& audit) {
  // A search reads at most this many of the patient's plans, newest first (docs/fhir.md).
  constexpr int kMaxPlansSearched = 200;
  PreparedFhirSearch prepared = PrepareFhirSearch(request, {"CarePlan", "Goal"});
  RequireSmartScope(ctx, request.resource_type(), false);
  const auto deadline = ctx.DeadlineCappedAt(kStoreBudget);
  std::vector<pb::Plan> plans;
  std::string patient;
  if (!prepared.record_id.empty()) {
    auto plan = prepared.record_id.rfind("plan_", 0) == 0 ? records_.Find(ctx.tenant, prepared.record_id, deadline)
                                                          : std::nullopt;
    if (!plan || !CanSeePatient(ctx, plan->patient_id())) ThrowNotFound(request.resource_type() + "/" + request.id());
    patient = plan->patient_id();
    audit.resource_id = plan->plan_id();
    plans.push_back(std::move(*plan));
  } else {
    patient = SearchedPatient(ctx, request.patient_id(), "patient_id");
    plans = records_.ListForPatient(ctx.tenant, patient, kMaxPlansSearched, deadline);
  }
  audit.patient_id = patient;
  std::vector<nlohmann::json> candidates;
  for (const auto& plan : plans) {
    for (auto& resource : PlanRestResources(plan)) candidates.push_back(std::move(resource));
  }
  return AnswerFhirSearch<pb::SearchFhirResponse>(prepared, request, std::move(candidates),
                                                  ctx.tenant + "|" + patient);
}

pb::ListInterventionsResponse PlanningApp::ListInterventions(const CallContext& ctx,
                                                             const pb::ListInterventionsRequest& request,
                                                             AuditTarget& /*audit: no patient data*/) {
  ValidateRange("page_size", request.page_size(), 0, 200);
  if (!pb::PlanItemKind_IsValid(request.kind())) ThrowInvalidArgument("kind", "is not a known value");
  ValidateLocale("locale", request.locale());
  const size_t page_size = request.page_size() == 0 ? 50 : static_cast<size_t>(request.page_size());
  // The shipped entries, then the tenant's own (not retired).
  const auto tenant_library = TenantLibraryOf(ctx, ctx.DeadlineCappedAt(kStoreBudget));
  const InterventionLibrary& library = LibraryWith(tenant_library);
  const std::string version =
      library_.version() + (tenant_library ? "+tenant." + std::to_string(tenant_library->version) : "");
  // The token is the library position to continue from, bound to the library version.
  size_t offset = 0;
  if (!request.page_token().empty()) {
    const std::string prefix = version + "@";
    std::string token;
    try {
      token = HexDecode(request.page_token());
      if (token.rfind(prefix, 0) != 0) throw std::invalid_argument("version");
      offset = std::stoul(token.substr(prefix.size()));
    } catch (const std::exception&) {
      ThrowInvalidArgument("page_token", "is not a token for this library version");
    }
  }
  pb::ListInterventionsResponse response;
  response.set_library_version(version);
  const auto& entries = library.entries();
  size_t i = offset;
  for (; i < entries.size() && static_cast<size_t>(response.interventions_size()) < page_size; ++i) {
    const auto& entry = entries[i];
    const pb::PlanItemKind kind = ToProto(PlanItemKindOf(entry.kind));
    if (request.kind() != pb::PLAN_ITEM_KIND_UNSPECIFIED && kind != request.kind()) continue;
    if (entry.retired) continue;
    auto* out = response.add_interventions();
    out->set_intervention_id(entry.id);
    out->set_kind(kind);
    out->set_category(entry.category);
    std::string served;
    const LocalisedText text = Localised(entry, request.locale(), &served);
    out->set_title(text.title);
    out->set_instructions(text.instructions);
    if (!request.locale().empty()) out->set_locale(served);
    for (const auto& media : MediaFor(entry, served)) *out->add_media() = MediaProto(media);
    out->set_reason(entry.reason);
    out->set_source(entry.source);
    if (entry.kind == InterventionKind::kExercise) *out->mutable_dose() = ToProto(entry.dose);
    out->set_progression_id(entry.progression);
    out->set_regression_id(entry.regression);
    for (const auto& token : entry.contraindications) out->add_contraindications(token);
    for (Phase phase : entry.phases) out->add_phases(ToProto(phase));
  }
  if (i < entries.size()) response.set_next_page_token(HexEncode(version + "@" + std::to_string(i)));
  return response;
}

pb::GetActivePlanResponse PlanningApp::GetActivePlan(const CallContext& ctx, const pb::GetActivePlanRequest& request,
                                                     AuditTarget& audit) {
  pb::GetActivePlanResponse response;
  GetActivePlan(ctx, request, audit, response);
  return response;
}

void PlanningApp::GetActivePlan(const CallContext& ctx, const pb::GetActivePlanRequest& request, AuditTarget& audit,
                                pb::GetActivePlanResponse& response) {
  ValidateOpaqueId("patient_id", request.patient_id());
  ValidateLocale("locale", request.locale());
  audit.patient_id = request.patient_id();
  // Another patient's plan reads as absent rather than forbidden: no existence leak.
  if (!CanSeePatient(ctx, request.patient_id())) ThrowNotFound("active plan");
  const auto deadline = ctx.DeadlineCappedAt(kStoreBudget);
  response.Clear();
  // A plan suspended after a red flag is not an active treatment plan: a caller that
  // does not ask for it gets an error it cannot mistake for a programme to follow.
  // Checks and localises `found` in place (a copy of a plan cost a GetActivePlan ~8% of its CPU).
  auto in_use = [&](pb::GetActivePlanResponse& found) {
    if (found.plan().status() == pb::PLAN_STATUS_SUSPENDED && !request.include_suspended()) {
      throw Error(ErrorCode::kFailedPrecondition,
                  "patient_id: the plan " + found.plan().plan_id() +
                      " is suspended after a red flag at a check-in; stop the home programme and contact the clinic");
    }
    LocalisePlan(ctx, *found.mutable_plan(), request.locale());
  };
  std::optional<std::string> generation;
  try {
    if (auto cached = active_plans_.Read(ctx, request.patient_id(), deadline, response.mutable_plan())) {
      generation = cached->generation;
      if (cached->hit) {
        audit.resource_id = response.plan().plan_id();
        in_use(response);
        return;
      }
    }
  } catch (const Error& e) {
    // The cache is an optimisation: without Redis the record is read from PostgreSQL.
    spdlog::warn("active-plan cache unavailable request_id={}: {}", ctx.request_id, e.what());
  }
  auto in_use_plan = records_.FindInUse(ctx.tenant, request.patient_id(), deadline);
  if (!in_use_plan) ThrowNotFound("active plan");
  *response.mutable_plan() = std::move(*in_use_plan);
  audit.resource_id = response.plan().plan_id();
  if (generation) {
    try {
      active_plans_.Fill(ctx, request.patient_id(), *generation, response.plan(), deadline);
    } catch (const Error& e) {
      spdlog::warn("active-plan cache fill failed request_id={}: {}", ctx.request_id, e.what());
    }
  }
  in_use(response);
}

bool PlanningApp::StartGetActivePlan(const CallContext& ctx, const pb::GetActivePlanRequest& request,
                                     AuditTarget& audit, std::function<void(ServedBytes)> finish) {
  ValidateOpaqueId("patient_id", request.patient_id());
  ValidateLocale("locale", request.locale());
  audit.patient_id = request.patient_id();
  if (!CanSeePatient(ctx, request.patient_id())) return false;  // GetActivePlan says NOT_FOUND
  return active_plans_.ReadAsync(
      ctx, request.patient_id(), ctx.DeadlineCappedAt(kStoreBudget),
      [this, &ctx, &request, &audit, finish = std::move(finish)](std::optional<std::optional<std::string_view>> plan) {
        ServedBytes answer;
        if (plan && *plan) {
          try {
            NoBlockingScope no_blocking;  // a tenant library not in memory yet is loaded by GetActivePlan
            answer = ServedActivePlan(ctx, request, **plan, audit);
          } catch (const std::exception&) {
            answer = nullptr;
          }
        }
        finish(std::move(answer));
      });
}

PlanningApp::ServedBytes PlanningApp::ServedActivePlan(const CallContext& ctx, const pb::GetActivePlanRequest& request,
                                                       std::string_view plan_bytes, AuditTarget& audit) {
  const std::string key = ServedPlanMemo::Key(ctx.tenant, request.patient_id(), request.locale());
  std::optional<ServedPlanMemo::Served> served = served_plans_.Find(key, plan_bytes);
  // Reused only if localising now would use the same tenant library as then.
  if (served && served->uses_tenant_library &&
      !ServedPlanMemo::SameLibrary(served->library, TenantLibraryForLocalising(ctx, true))) {
    served.reset();
  }
  if (!served) {
    google::protobuf::Arena arena;
    auto* response = google::protobuf::Arena::CreateMessage<pb::GetActivePlanResponse>(&arena);
    pb::Plan& plan = *response->mutable_plan();
    if (!plan.ParseFromArray(plan_bytes.data(), static_cast<int>(plan_bytes.size()))) return nullptr;
    ServedPlanMemo::Served made;
    made.plan_id = plan.plan_id();
    made.suspended = plan.status() == pb::PLAN_STATUS_SUSPENDED;
    made.uses_tenant_library = plan.tenant_library_version() > 0;
    auto tenant = TenantLibraryForLocalising(ctx, made.uses_tenant_library);
    LocalisePlanWith(tenant, plan, request.locale());
    made.library = tenant;
    made.response = std::make_shared<const std::string>(response->SerializeAsString());
    served_plans_.Remember(key, plan_bytes, made);
    served = std::move(made);
  }
  // Only a plan the caller may follow; a suspended plan's refusal is GetActivePlan's.
  if (served->suspended && !request.include_suspended()) return nullptr;
  audit.resource_id = served->plan_id;
  return served->response;
}

std::shared_ptr<const TenantLibrary> PlanningApp::TenantLibraryOf(const CallContext& ctx, Clock::time_point deadline) {
  const int version = records_.TenantLibraryVersion(ctx.tenant, deadline);
  {
    std::lock_guard lock(tenant_mu_);
    if (current_versions_.size() >= 4096) current_versions_.clear();
    current_versions_[ctx.tenant] = {version, Clock::now()};
  }
  return TenantLibraryAt(ctx, version, deadline);
}

std::shared_ptr<const TenantLibrary> PlanningApp::TenantLibraryForReads(const CallContext& ctx,
                                                                        Clock::time_point deadline) {
  std::optional<int> version;
  {
    std::lock_guard lock(tenant_mu_);
    if (auto known = current_versions_.find(ctx.tenant);
        known != current_versions_.end() && Clock::now() - known->second.second < kTenantVersionForReads) {
      version = known->second.first;
    }
  }
  return version ? TenantLibraryAt(ctx, *version, deadline) : TenantLibraryOf(ctx, deadline);
}

std::shared_ptr<const TenantLibrary> PlanningApp::TenantLibraryAt(const CallContext& ctx, int version,
                                                                  Clock::time_point deadline) {
  if (version == 0) return nullptr;
  {
    std::lock_guard lock(tenant_mu_);
    if (auto found = tenant_libraries_.find({ctx.tenant, version}); found != tenant_libraries_.end()) return found->second;
  }
  auto stored = records_.FindTenantLibrary(ctx.tenant, version, deadline);
  if (!stored) return nullptr;
  std::shared_ptr<const TenantLibrary> parsed;
  try {
    parsed = std::make_shared<const TenantLibrary>(ParseTenantLibrary(library_, stored->document, version));
  } catch (const LibraryError& e) {
    // Validated when published; a shipped library since changed under it (an entry it links to is
    // gone) is not guessed around: plan changes wait for a new version.
    throw Error(ErrorCode::kFailedPrecondition, "the tenant's library version " + std::to_string(version) +
                                                    " no longer validates against the shipped library " +
                                                    library_.version() + "; publish a new version: " + e.what());
  }
  std::lock_guard lock(tenant_mu_);
  if (tenant_libraries_.size() >= 256) tenant_libraries_.clear();  // versions are immutable: a refill is a re-parse
  tenant_libraries_[{ctx.tenant, version}] = parsed;
  return parsed;
}

namespace {
pb::TenantLibrary TenantLibraryProto(const StoredTenantLibrary& stored, const TenantLibrary& parsed) {
  pb::TenantLibrary out;
  out.set_version(stored.version);
  out.set_document(stored.document);
  out.set_published_by(stored.published_by);
  out.mutable_publish_time()->set_seconds(stored.publish_seconds);
  out.set_reason(stored.reason);
  out.set_entry_count(parsed.entry_count);
  out.set_template_count(static_cast<int>(parsed.templates.size()));
  return out;
}
}  // namespace

pb::PublishTenantLibraryResponse PlanningApp::PublishTenantLibrary(const CallContext& ctx,
                                                                   const pb::PublishTenantLibraryRequest& request,
                                                                   AuditTarget& audit) {
  ValidateRequestId("request_id", request.request_id());
  if (request.document().empty() || request.document().size() > 1024 * 1024) {
    ThrowInvalidArgument("document", "must be 1 byte to 1 MB of JSON");
  }
  ValidateRequiredText("reason", request.reason(), 500);
  ValidateRange("expected_version", request.expected_version(), 0, 1000000);
  const int version = request.expected_version() + 1;
  TenantLibrary parsed;
  try {
    parsed = ParseTenantLibrary(library_, request.document(), version);
  } catch (const LibraryError& e) {
    // The parser names the document's own problems "document: ..."; the field is named once.
    std::string_view why = e.what();
    if (why.starts_with("document: ")) why.remove_prefix(std::string_view("document: ").size());
    ThrowInvalidArgument("document", why);
  }
  audit.resource_id = "tenant-library/" + std::to_string(version);
  const auto deadline = ctx.DeadlineCappedAt(kStoreBudget);
  auto response = IdempotentWrite<pb::PublishTenantLibraryResponse>(
      records_, deadline, {kSchema, ctx.tenant, ctx.principal, "PublishTenantLibrary", request.request_id()}, request,
      [&](PlanWriter& writer) {
        const auto latest = writer.LatestTenantLibrary(ctx.tenant);
        const int current = latest ? latest->version : 0;
        if (current != request.expected_version()) {
          throw Error(ErrorCode::kAborted, "expected_version: the tenant's library is at version " +
                                               std::to_string(current) + "; read it again");
        }
        // Entries are never withdrawn: plans that hold one must still resolve it. Retire instead.
        // (Read from the stored document as it is: a version the shipped library no longer
        // validates is exactly what a new publish repairs.)
        if (latest) {
          for (const auto& id : TenantEntryIds(latest->document)) {
            if (parsed.merged.Find(id) == nullptr) {
              ThrowInvalidArgument("document", "entry '" + id + "' of version " + std::to_string(current) +
                                                   " is missing: keep it, with \"retired\": true");
            }
          }
        }
        StoredTenantLibrary stored;
        stored.version = version;
        stored.document = request.document();
        stored.published_by = ctx.principal;
        stored.publish_seconds = TimeUtil::GetCurrentTime().seconds();
        stored.reason = request.reason();
        writer.InsertTenantLibrary(ctx.tenant, stored);
        pb::PublishTenantLibraryResponse published;
        *published.mutable_library() = TenantLibraryProto(stored, parsed);
        return published;
      });
  // Committed: this replica's readers use the new version from the next read on.
  std::lock_guard lock(tenant_mu_);
  current_versions_.erase(ctx.tenant);
  return response;
}

pb::GetTenantLibraryResponse PlanningApp::GetTenantLibrary(const CallContext& ctx,
                                                           const pb::GetTenantLibraryRequest& request,
                                                           AuditTarget& audit) {
  ValidateRange("version", request.version(), 0, 1000000);
  auto stored = records_.FindTenantLibrary(ctx.tenant, request.version(), ctx.DeadlineCappedAt(kStoreBudget));
  if (!stored) ThrowNotFound(request.version() == 0 ? "tenant library" : "tenant library version");
  audit.resource_id = "tenant-library/" + std::to_string(stored->version);
  TenantLibrary parsed;
  try {
    parsed = ParseTenantLibrary(library_, stored->document, stored->version);
  } catch (const LibraryError&) {
    // Shown as stored; the counts are what cannot be read any more.
  }
  pb::GetTenantLibraryResponse response;
  *response.mutable_library() = TenantLibraryProto(*stored, parsed);
  return response;
}

pb::ListPlanTemplatesResponse PlanningApp::ListPlanTemplates(const CallContext& ctx,
                                                             const pb::ListPlanTemplatesRequest& /*request*/,
                                                             AuditTarget& /*audit: no patient data*/) {
  const auto tenant_library = TenantLibraryOf(ctx, ctx.DeadlineCappedAt(kStoreBudget));
  pb::ListPlanTemplatesResponse response;
  if (!tenant_library) return response;
  response.set_version(tenant_library->version);
  for (const auto& chosen : tenant_library->templates) {
    auto* out = response.add_templates();
    out->set_template_id(chosen.id);
    out->set_name(chosen.name);
    out->set_description(chosen.description);
    for (const auto& item : chosen.items) {
      auto* added = out->add_items();
      added->set_intervention_id(item.intervention_id);
      if (item.dose) *added->mutable_dose() = ToProto(*item.dose);
    }
  }
  return response;
}

}  // namespace physio::planning
