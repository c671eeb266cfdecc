#include "plan_changes.h"

#include <algorithm>
#include <regex>
#include <set>

#include "physio/common/error.h"
#include "physio/common/validation.h"

namespace physio::planning {

namespace {
int IndexOf(const v1::Plan& plan, const std::string& item_id) {
  for (int i = 0; i < plan.items_size(); ++i) {
    if (plan.items(i).item_id() == item_id) return i;
  }
  return -1;
}

void ValidateDose(const std::string& field, const v1::ExerciseDose& dose) {
  ValidateRange(field + ".sets", dose.sets(), 1, 10);
  ValidateRange(field + ".reps", dose.reps(), 1, 50);
  ValidateRange(field + ".hold_seconds", dose.hold_seconds(), 0, 300);
  ValidateRange(field + ".sessions_per_week", dose.sessions_per_week(), 1, 14);
  ValidateRange(field + ".duration_minutes", dose.duration_minutes(), 0, 120);
}

void RecomputeHomeFrequency(v1::Plan& plan) {
  int most = 0;
  for (const auto& item : plan.items()) {
    if (item.kind() == v1::PLAN_ITEM_KIND_EXERCISE && item.home_programme()) {
      most = std::max(most, item.dose().sessions_per_week());
    }
  }
  plan.set_home_sessions_per_week(most);
}

// Dose steps when an exercise has no link to follow (ACSM 2009: progress volume
// in small steps; design defaults).
// The contraindications the plan records for its patient that `entry` carries.
std::vector<std::string> ContraindicatedFor(const Intervention& entry, const v1::Plan& plan) {
  std::vector<std::string> tokens;
  for (const auto& token : entry.contraindications) {
    if (std::find(plan.contraindications().begin(), plan.contraindications().end(), token) !=
        plan.contraindications().end()) {
      tokens.push_back(token);
    }
  }
  return tokens;
}

// Why generation would not have given this patient `entry` (empty when it would):
// a contraindication the plan records, or a phase the plan is not in (a
// progression may reach one phase ahead, a regression one phase back).
std::string WhyExcluded(const Intervention& entry, const v1::Plan& plan, bool progress) {
  if (entry.retired) return "retired from the tenant's library";
  if (auto tokens = ContraindicatedFor(entry, plan); !tokens.empty()) return tokens.front();
  const auto plan_phase = PhaseFromProto(plan.phase());
  if (!plan_phase || entry.phases.empty()) return "";
  const int phase = static_cast<int>(*plan_phase);
  for (Phase allowed : entry.phases) {
    const int step = static_cast<int>(allowed) - phase;
    if (step == 0 || (progress && step == 1) || (!progress && step == -1)) return "";
  }
  return "not for the plan's phase";
}

// Whether `dose` has a component (hold, minutes, ...) that `current` has not: a
// regression onto it would raise that component from zero.
bool AddsToDose(const v1::ExerciseDose& dose, const v1::ExerciseDose& current) {
  return (dose.hold_seconds() > 0 && current.hold_seconds() == 0) ||
         (dose.duration_minutes() > 0 && current.duration_minutes() == 0) ||
         (dose.reps() > 0 && current.reps() == 0) || (dose.sets() > 0 && current.sets() == 0);
}

// No component above `ceiling` (used on regressions).
void CapDose(v1::ExerciseDose& dose, const v1::ExerciseDose& ceiling) {
  auto cap = [](int value, int limit) { return limit > 0 ? std::min(value, limit) : value; };
  dose.set_sets(cap(dose.sets(), ceiling.sets()));
  dose.set_reps(cap(dose.reps(), ceiling.reps()));
  dose.set_hold_seconds(cap(dose.hold_seconds(), ceiling.hold_seconds()));
  dose.set_duration_minutes(cap(dose.duration_minutes(), ceiling.duration_minutes()));
  dose.set_sessions_per_week(cap(dose.sessions_per_week(), ceiling.sessions_per_week()));
}

std::string StepDose(v1::PlanItem& item, bool progress) {
  auto* dose = item.mutable_dose();
  if (progress) {
    if (dose->duration_minutes() > 0) {
      dose->set_duration_minutes(std::min(60, dose->duration_minutes() + 5));
    } else if (dose->sets() < 3) {
      dose->set_sets(dose->sets() + 1);
    } else {
      dose->set_reps(std::min(15, dose->reps() + 2));
    }
  } else {
    // A regression never raises any component (sets, reps, hold, minutes, sessions a
    // week), and it lowers the load it can: time-based doses and holds shrink too.
    if (dose->duration_minutes() > 5) dose->set_duration_minutes(std::max(5, dose->duration_minutes() - 5));
    if (dose->hold_seconds() > 5) dose->set_hold_seconds(std::max(5, dose->hold_seconds() * 2 / 3));
    if (dose->sets() > 1) {
      dose->set_sets(dose->sets() - 1);
    } else {
      dose->set_reps(std::max(std::min(3, dose->reps()), dose->reps() - 2));
    }
  }
  return item.item_id() + ": " + std::to_string(dose->sets()) + "x" + std::to_string(dose->reps()) +
         (dose->hold_seconds() > 0 ? ", hold " + std::to_string(dose->hold_seconds()) + " s" : "") +
         (dose->duration_minutes() > 0 ? ", " + std::to_string(dose->duration_minutes()) + " min" : "");
}
}  // namespace

v1::PlanItemKind ToProto(ItemKind kind) {
  switch (kind) {
    case ItemKind::kExercise: return v1::PLAN_ITEM_KIND_EXERCISE;
    case ItemKind::kEducation: return v1::PLAN_ITEM_KIND_EDUCATION;
    case ItemKind::kPainManagement: return v1::PLAN_ITEM_KIND_PAIN_MANAGEMENT;
    case ItemKind::kLifestyle: return v1::PLAN_ITEM_KIND_LIFESTYLE;
    case ItemKind::kManualTherapy: return v1::PLAN_ITEM_KIND_MANUAL_THERAPY;
    case ItemKind::kPsychological: return v1::PLAN_ITEM_KIND_PSYCHOLOGICAL;
    case ItemKind::kNotRecommended: return v1::PLAN_ITEM_KIND_NOT_RECOMMENDED;
    case ItemKind::kReferral: return v1::PLAN_ITEM_KIND_REFERRAL;
  }
  return v1::PLAN_ITEM_KIND_UNSPECIFIED;
}

physio::common::v1::Phase ToProto(Phase phase) {
  switch (phase) {
    case Phase::kSymptomModulation: return physio::common::v1::PHASE_SYMPTOM_MODULATION;
    case Phase::kMovementControl: return physio::common::v1::PHASE_MOVEMENT_CONTROL;
    case Phase::kFunctionOptimisation: return physio::common::v1::PHASE_FUNCTION_OPTIMISATION;
  }
  return physio::common::v1::PHASE_UNSPECIFIED;
}

std::optional<Phase> PhaseFromProto(physio::common::v1::Phase phase) {
  switch (phase) {
    case physio::common::v1::PHASE_SYMPTOM_MODULATION: return Phase::kSymptomModulation;
    case physio::common::v1::PHASE_MOVEMENT_CONTROL: return Phase::kMovementControl;
    case physio::common::v1::PHASE_FUNCTION_OPTIMISATION: return Phase::kFunctionOptimisation;
    default: return std::nullopt;
  }
}

v1::ExerciseDose ToProto(const Dose& dose) {
  v1::ExerciseDose out;
  out.set_sets(dose.sets);
  out.set_reps(dose.reps);
  out.set_hold_seconds(dose.hold_seconds);
  out.set_sessions_per_week(dose.sessions_per_week);
  out.set_duration_minutes(dose.duration_minutes);
  return out;
}

v1::PlanItem ItemFromLibrary(const Intervention& entry, const std::string& reason) {
  v1::PlanItem item;
  item.set_item_id(entry.id);
  item.set_kind(ToProto(PlanItemKindOf(entry.kind)));
  item.set_title(entry.title);
  item.set_instructions(entry.instructions);
  if (entry.kind == InterventionKind::kExercise) *item.mutable_dose() = ToProto(entry.dose);
  item.set_reason(reason.empty() ? entry.reason : reason);
  item.set_source(entry.source);
  item.set_home_programme(entry.HomeProgramme());
  item.set_progression_id(entry.progression);
  item.set_regression_id(entry.regression);
  return item;
}

std::vector<std::string> StepExercises(v1::Plan& plan, const InterventionLibrary& library,
                                       const std::vector<std::string>& item_ids, bool progress) {
  std::vector<std::string> targets = item_ids;
  if (targets.empty()) {
    for (const auto& item : plan.items()) {
      if (item.kind() == v1::PLAN_ITEM_KIND_EXERCISE) targets.push_back(item.item_id());
    }
  }
  for (size_t i = 0; i < targets.size(); ++i) {
    const int index = IndexOf(plan, targets[i]);
    if (index < 0 || plan.items(index).kind() != v1::PLAN_ITEM_KIND_EXERCISE) {
      ThrowInvalidArgument("item_ids[" + std::to_string(i) + "]", "'" + targets[i] + "' is not an exercise of the plan");
    }
  }
  std::vector<std::string> changes;
  for (const auto& id : targets) {
    const int index = IndexOf(plan, id);
    v1::PlanItem& item = *plan.mutable_items(index);
    // Follow the link, skipping what generation would have excluded for this patient
    // (contraindicated, or out of the plan's phase), at most a few steps along.
    const Intervention* next = nullptr;
    std::string skipped;
    std::string link = progress ? item.progression_id() : item.regression_id();
    for (int hops = 0; hops < 4 && !link.empty(); ++hops) {
      const Intervention* candidate = library.Find(link);
      if (candidate == nullptr) break;
      if (!progress && AddsToDose(ToProto(candidate->dose), item.dose())) {
        // Its dose is of another kind (e.g. a hold where there was none): no step
        // along the link can then be shown not to raise the dose; lower this one's.
        skipped += (skipped.empty() ? "" : "; ") + candidate->id + " skipped (a dose of another kind)";
        break;
      }
      const std::string why = WhyExcluded(*candidate, plan, progress);
      if (why.empty() && IndexOf(plan, candidate->id) < 0) {
        next = candidate;
        break;
      }
      if (!why.empty()) skipped += (skipped.empty() ? "" : "; ") + candidate->id + " skipped (" + why + ")";
      link = progress ? candidate->progression : candidate->regression;
    }
    if (next != nullptr) {
      // The linked exercise replaces this one, starting at its own dose; a
      // regression never starts above the dose it replaces.
      const std::string verb = progress ? "progressed from " : "regressed from ";
      changes.push_back(id + " -> " + next->id + (skipped.empty() ? "" : " (" + skipped + ")"));
      const v1::ExerciseDose before = item.dose();
      item = ItemFromLibrary(*next, verb + id);
      if (!progress) CapDose(*item.mutable_dose(), before);
    } else {
      changes.push_back(StepDose(item, progress) + (skipped.empty() ? "" : " (" + skipped + ")"));
    }
  }
  RecomputeHomeFrequency(plan);
  return changes;
}

void ApplyRevision(v1::Plan& plan, const InterventionLibrary& library,
                   const google::protobuf::RepeatedPtrField<v1::PlanChange>& changes) {
  if (changes.empty()) ThrowInvalidArgument("changes", "at least one change is required");
  if (changes.size() > 50) ThrowInvalidArgument("changes", "at most 50 changes");
  for (int i = 0; i < changes.size(); ++i) {
    const std::string field = "changes[" + std::to_string(i) + "]";
    const auto& change = changes[i];
    switch (change.change_case()) {
      case v1::PlanChange::kRemoveItemId: {
        const int index = IndexOf(plan, change.remove_item_id());
        if (index < 0) ThrowInvalidArgument(field + ".remove_item_id", "'" + change.remove_item_id() + "' is not in the plan");
        if (IsSafetyItem(change.remove_item_id())) {
          throw Error(ErrorCode::kFailedPrecondition,
                      field + ".remove_item_id: '" + change.remove_item_id() +
                          "' keeps the patient safe (safety-netting, a referral, an overridden concern or the "
                          "flare-up plan) and cannot be revised away");
        }
        plan.mutable_items()->erase(plan.mutable_items()->begin() + index);
        break;
      }
      case v1::PlanChange::kSetDose: {
        const int index = IndexOf(plan, change.set_dose().item_id());
        if (index < 0 || plan.items(index).kind() != v1::PLAN_ITEM_KIND_EXERCISE) {
          ThrowInvalidArgument(field + ".set_dose.item_id", "'" + change.set_dose().item_id() + "' is not an exercise of the plan");
        }
        ValidateDose(field + ".set_dose.dose", change.set_dose().dose());
        *plan.mutable_items(index)->mutable_dose() = change.set_dose().dose();
        break;
      }
      case v1::PlanChange::kAddInterventionId: {
        const Intervention* entry = library.Find(change.add_intervention_id());
        if (entry == nullptr) {
          ThrowInvalidArgument(field + ".add_intervention_id", "'" + change.add_intervention_id() + "' is not in the library");
        }
        if (IndexOf(plan, entry->id) >= 0) ThrowInvalidArgument(field + ".add_intervention_id", "already in the plan");
        if (entry->retired) {
          ThrowInvalidArgument(field + ".add_intervention_id", "'" + entry->id + "' is retired from the tenant's library");
        }
        std::string contraindicated;
        for (const auto& token : ContraindicatedFor(*entry, plan)) {
          contraindicated += (contraindicated.empty() ? "" : ", ") + token;
        }
        const std::string& override_reason = change.contraindication_override();
        if (!contraindicated.empty() && IsBlank(override_reason)) {
          ThrowInvalidArgument(field + ".contraindication_override",
                               "'" + entry->id + "' is contraindicated for this patient (" + contraindicated +
                                   "); adding it needs the clinician's reason");
        }
        if (contraindicated.empty() && !override_reason.empty()) {
          ThrowInvalidArgument(field + ".contraindication_override",
                               "'" + entry->id + "' is not contraindicated for this patient");
        }
        if (override_reason.size() > 500) ThrowInvalidArgument(field + ".contraindication_override", "at most 500 characters");
        std::string reason = contraindicated.empty()
                                 ? "added by the clinician"
                                 : "added by the clinician despite " + contraindicated + ": " + override_reason;
        // A clinician-added option keeps its evidence statement beside who added it.
        if (entry->clinician_added_only) reason += "; " + entry->reason;
        *plan.add_items() = ItemFromLibrary(*entry, reason);
        break;
      }
      default:
        ThrowInvalidArgument(field, "must set one of remove_item_id, set_dose, add_intervention_id");
    }
    if (change.change_case() != v1::PlanChange::kAddInterventionId && !change.contraindication_override().empty()) {
      ThrowInvalidArgument(field + ".contraindication_override", "only goes with add_intervention_id");
    }
  }
  CheckPlanInvariants(plan);
  RecomputeHomeFrequency(plan);
}

bool IsSafetyItem(const std::string& item_id) {
  return item_id.rfind("safety.", 0) == 0 || item_id.rfind("referral.", 0) == 0 || item_id == "selfcare.flare_up_plan";
}

bool IncludesManipulation(const v1::Plan& plan) { return IndexOf(plan, "manual.thrust_manipulation") >= 0; }

void CheckPlanInvariants(const v1::Plan& plan) {
  bool exercise = false, manual = false, psychological = false;
  for (const auto& item : plan.items()) {
    exercise |= item.kind() == v1::PLAN_ITEM_KIND_EXERCISE;
    manual |= item.kind() == v1::PLAN_ITEM_KIND_MANUAL_THERAPY;
    psychological |= item.kind() == v1::PLAN_ITEM_KIND_PSYCHOLOGICAL;
  }
  if (manual && !exercise) {
    ThrowInvalidArgument("changes", "manual therapy only as part of a package that includes exercise (NICE NG59)");
  }
  if (psychological && !exercise) {
    ThrowInvalidArgument("changes", "psychologically informed care only together with exercise (NICE NG59)");
  }
}

v1::PlanItem ItemFromDraft(const PlanItemDraft& item) {
  v1::PlanItem out;
  out.set_item_id(item.id);
  out.set_kind(ToProto(item.kind));
  out.set_title(item.title);
  out.set_instructions(item.instructions);
  if (item.kind == ItemKind::kExercise) *out.mutable_dose() = ToProto(item.dose);
  out.set_reason(item.reason);
  out.set_source(item.source);
  out.set_home_programme(item.home_programme);
  out.set_progression_id(item.progression);
  out.set_regression_id(item.regression);
  return out;
}

namespace {
// Every item the plan's contraindications exclude is taken out (never a safety item),
// with a line for each in `changes`.
void RemoveExcludedItems(v1::Plan& plan, const InterventionLibrary& library, std::vector<std::string>& changes) {
  for (int i = plan.items_size() - 1; i >= 0; --i) {
    const auto& item = plan.items(i);
    if (IsSafetyItem(item.item_id())) continue;
    const Intervention* entry = library.Find(item.item_id());
    if (entry == nullptr) continue;
    const auto excluded_by = ContraindicatedFor(*entry, plan);
    if (excluded_by.empty()) continue;
    changes.push_back("removed " + item.item_id() + " (" + excluded_by.front() + ")");
    plan.mutable_items()->DeleteSubrange(i, 1);
  }
}
}  // namespace

std::vector<std::string> AddPrecautions(v1::Plan& plan, const InterventionLibrary& library,
                                        const google::protobuf::RepeatedPtrField<v1::FoundConcern>& concerns,
                                        std::int64_t now_seconds) {
  static const std::regex kCondition("[a-z_]{1,64}");
  if (concerns.empty()) ThrowInvalidArgument("concerns", "is required for ADJUSTMENT_ADD_PRECAUTIONS");
  if (concerns.size() > 20) ThrowInvalidArgument("concerns", "at most 20");
  for (int i = 0; i < concerns.size(); ++i) {
    const std::string field = "concerns[" + std::to_string(i) + "]";
    if (!std::regex_match(concerns[i].condition(), kCondition)) {
      ThrowInvalidArgument(field + ".condition", "must be 1-64 characters of [a-z_]");
    }
    if (concerns[i].summary().empty() || concerns[i].summary().size() > 300) {
      ThrowInvalidArgument(field + ".summary", "must be 1-300 characters");
    }
  }
  std::vector<std::string> changes;
  std::vector<std::string> summaries;
  std::set<std::string> tokens;
  for (const auto& concern : concerns) {
    const auto& covered = plan.monitored_conditions();
    if (std::find(covered.begin(), covered.end(), concern.condition()) != covered.end()) continue;
    plan.add_monitored_conditions(concern.condition());
    summaries.push_back(concern.summary());
    for (const auto& token : ContraindicationsForConcern(concern.condition())) tokens.insert(token);
  }
  if (summaries.empty()) return changes;
  std::string found;
  for (const auto& summary : summaries) found += (found.empty() ? "" : "; ") + summary;
  changes.push_back("new concern: " + found);

  std::vector<std::string> added;
  for (const auto& token : tokens) {
    if (std::find(plan.contraindications().begin(), plan.contraindications().end(), token) !=
        plan.contraindications().end()) {
      continue;
    }
    plan.add_contraindications(token);
    added.push_back(token);
  }
  for (const auto& token : added) changes.push_back("contraindication added: " + token);
  RemoveExcludedItems(plan, library, changes);
  const bool manipulation_now_contraindicated =
      std::find(added.begin(), added.end(), "manipulation_contraindicated") != added.end();
  if (manipulation_now_contraindicated && IndexOf(plan, "safety.no_manipulation") < 0) {
    *plan.add_items() = ItemFromDraft(NoManipulationNote("concern found since the plan was made: " + found));
    changes.push_back("added safety.no_manipulation");
  }
  // Safety-netting: added, or its reason extended with what is new.
  if (const int netting = IndexOf(plan, "safety.netting"); netting >= 0) {
    auto* item = plan.mutable_items(netting);
    item->set_reason((item->reason() + "; since the plan: " + found).substr(0, 1000));
    changes.push_back("safety-netting extended");
  } else {
    *plan.add_items() = ItemFromDraft(SafetyNettingItem(summaries));
    changes.push_back("added safety.netting");
  }
  // A review within a week, unless one is due by then.
  const std::int64_t start = plan.has_activate_time() ? plan.activate_time().seconds() : plan.create_time().seconds();
  const int week_now = static_cast<int>(std::max<std::int64_t>(0, now_seconds - start) / (7 * 24 * 3600));
  const bool due_soon = std::any_of(plan.review_points().begin(), plan.review_points().end(), [&](const auto& review) {
    return review.week() > week_now && review.week() <= week_now + 1;
  });
  if (!due_soon) {
    v1::ReviewPoint review;
    review.set_week(week_now + 1);
    review.set_purpose("safety-netting review: re-screen the concern found since the plan was made");
    auto* points = plan.mutable_review_points();
    const auto at = std::find_if(points->begin(), points->end(),
                                 [&](const auto& point) { return point.week() > review.week(); }) -
                    points->begin();
    *points->Add() = std::move(review);  // at the end, then into week order
    std::rotate(points->begin() + at, points->end() - 1, points->end());
    changes.push_back("review brought forward to week " + std::to_string(week_now + 1));
  }
  // Taking items out may leave manual therapy or psychological care without exercise:
  // the plan stays safer as it is, and asks for a clinician's re-assessment instead.
  bool exercise = false;
  for (const auto& item : plan.items()) exercise |= item.kind() == v1::PLAN_ITEM_KIND_EXERCISE;
  if (!exercise && plan.type() == v1::PLAN_TYPE_TREATMENT) {
    plan.set_needs_reassessment(true);
    changes.push_back("no exercise left: marked for re-assessment");
  }
  RecomputeHomeFrequency(plan);
  return changes;
}

std::string DirectionOfCategory(const std::string& category) {
  if (category == "directional_extension") return "extension";
  if (category == "directional_flexion") return "flexion";
  if (category == "lateral_shift") return "lateral_shift";
  return "";
}

std::vector<std::string> StopDirections(v1::Plan& plan, const InterventionLibrary& library,
                                        const std::vector<std::string>& item_ids,
                                        const std::vector<std::string>& movement_directions) {
  if (item_ids.empty() && movement_directions.empty()) {
    ThrowInvalidArgument("item_ids", "or directions is required for ADJUSTMENT_STOP_DIRECTION");
  }
  std::vector<std::string> directions;
  for (size_t i = 0; i < item_ids.size(); ++i) {
    const Intervention* entry = IndexOf(plan, item_ids[i]) >= 0 ? library.Find(item_ids[i]) : nullptr;
    const std::string direction = entry == nullptr ? "" : DirectionOfCategory(entry->category);
    if (direction.empty()) {
      ThrowInvalidArgument("item_ids[" + std::to_string(i) + "]",
                           "'" + item_ids[i] + "' is not a directional exercise of the plan");
    }
    if (std::find(directions.begin(), directions.end(), direction) == directions.end()) directions.push_back(direction);
  }
  for (size_t i = 0; i < movement_directions.size(); ++i) {
    const std::string& direction = movement_directions[i];
    if (direction != "extension" && direction != "flexion" && direction != "lateral_shift") {
      ThrowInvalidArgument("directions[" + std::to_string(i) + "]", "must be extension, flexion or lateral_shift");
    }
    if (std::find(directions.begin(), directions.end(), direction) == directions.end()) directions.push_back(direction);
  }
  std::vector<std::string> changes;
  for (const auto& direction : directions) {
    const auto& stopped = plan.stopped_directions();
    if (std::find(stopped.begin(), stopped.end(), direction) != stopped.end()) continue;
    plan.add_stopped_directions(direction);
    changes.push_back("stopped direction: " + direction);
    const std::string token = direction + "_intolerant";
    const auto& tokens = plan.contraindications();
    if (std::find(tokens.begin(), tokens.end(), token) == tokens.end()) {
      plan.add_contraindications(token);
      changes.push_back("contraindication added: " + token);
    }
  }
  if (changes.empty()) return changes;
  RemoveExcludedItems(plan, library, changes);
  plan.set_needs_reassessment(true);
  changes.push_back("marked for re-assessment");
  RecomputeHomeFrequency(plan);
  return changes;
}

}  // namespace physio::planning

namespace physio::planning {
namespace {
std::string DoseText(const v1::ExerciseDose& dose) {
  std::string text;
  if (dose.duration_minutes() > 0) {
    text = std::to_string(dose.duration_minutes()) + " min";
  } else {
    text = std::to_string(dose.sets()) + " x " + std::to_string(dose.reps());
    if (dose.hold_seconds() > 0) text += ", hold " + std::to_string(dose.hold_seconds()) + " s";
  }
  return text + ", " + std::to_string(dose.sessions_per_week()) + " a week";
}

v1::ProposedChange Proposed(v1::ProposedChangeKind kind, std::string item_id, std::string before, std::string after,
                            std::string reason) {
  v1::ProposedChange change;
  change.set_kind(kind);
  change.set_item_id(std::move(item_id));
  change.set_before(std::move(before));
  change.set_after(std::move(after));
  change.set_reason(std::move(reason));
  return change;
}
}  // namespace

std::vector<v1::ProposedChange> CarryOverSafety(v1::Plan& draft, const v1::Plan& in_use,
                                                const InterventionLibrary& library, std::int64_t now_seconds) {
  std::vector<v1::ProposedChange> carried;
  // Precautions for concerns found since the plan in use was made (ADD_PRECAUTIONS at check-ins):
  // the new assessment's screen may not know them.
  google::protobuf::RepeatedPtrField<v1::FoundConcern> concerns;
  for (const auto& condition : in_use.monitored_conditions()) {
    const auto& covered = draft.monitored_conditions();
    if (std::find(covered.begin(), covered.end(), condition) != covered.end()) continue;
    auto* concern = concerns.Add();
    concern->set_condition(condition);
    concern->set_summary(condition + " (a concern of plan " + in_use.plan_id() + ")");
  }
  if (!concerns.empty() && draft.type() == v1::PLAN_TYPE_TREATMENT) {
    for (const auto& line : AddPrecautions(draft, library, concerns, now_seconds)) {
      carried.push_back(Proposed(v1::PROPOSED_CHANGE_KIND_CARRIED_OVER, "", "", line,
                                 "a precaution of the plan in use, for a concern found since its assessment"));
    }
  }
  // Directions symptoms spread with stay stopped, unless the re-assessment's own finding is that
  // direction (the clinician examined it again): then it is offered again, and flagged.
  std::vector<std::string> keep_stopped;
  for (const auto& direction : in_use.stopped_directions()) {
    if (direction == draft.direction()) {
      carried.push_back(Proposed(v1::PROPOSED_CHANGE_KIND_DIRECTION_OFFERED_AGAIN, "", "stopped: " + direction,
                                 "offered: " + direction,
                                 "symptoms spread down the leg with " + direction +
                                     " on the plan in use; the re-assessment finds it the patient's directional "
                                     "preference: confirm before approving"));
    } else {
      keep_stopped.push_back(direction);
    }
  }
  if (!keep_stopped.empty() && draft.type() == v1::PLAN_TYPE_TREATMENT) {
    for (const auto& line : StopDirections(draft, library, {}, keep_stopped)) {
      if (line == "marked for re-assessment") continue;
      carried.push_back(Proposed(v1::PROPOSED_CHANGE_KIND_CARRIED_OVER, "", "", line,
                                 "symptoms spread down the leg with it on the plan in use"));
    }
    // The re-assessment is the one the stop asked for.
    draft.set_needs_reassessment(false);
  }
  return carried;
}

std::vector<v1::ProposedChange> DiffPlans(const v1::Plan& in_use, const v1::Plan& draft) {
  std::vector<v1::ProposedChange> changes;
  auto plan_level = [&](const std::string& what, const std::string& was, const std::string& now) {
    if (was == now) return;
    changes.push_back(Proposed(v1::PROPOSED_CHANGE_KIND_CLASSIFICATION, "", what + ": " + (was.empty() ? "none" : was),
                               what + ": " + (now.empty() ? "none" : now),
                               "from assessment " + draft.assessment_id()));
  };
  plan_level("phase", common::v1::Phase_Name(in_use.phase()), common::v1::Phase_Name(draft.phase()));
  plan_level("subgroup", in_use.subgroup(), draft.subgroup());
  plan_level("direction", in_use.direction(), draft.direction());
  plan_level("intensity", v1::Intensity_Name(in_use.intensity()), v1::Intensity_Name(draft.intensity()));
  for (const auto& item : draft.items()) {
    const int at = IndexOf(in_use, item.item_id());
    if (at < 0) {
      changes.push_back(Proposed(v1::PROPOSED_CHANGE_KIND_ADDED, item.item_id(), "", item.title(), item.reason()));
      continue;
    }
    const auto& was = in_use.items(at);
    if (item.kind() == v1::PLAN_ITEM_KIND_EXERCISE && DoseText(was.dose()) != DoseText(item.dose())) {
      changes.push_back(Proposed(v1::PROPOSED_CHANGE_KIND_DOSE_CHANGED, item.item_id(), DoseText(was.dose()),
                                 DoseText(item.dose()), item.reason()));
    }
  }
  for (const auto& item : in_use.items()) {
    if (IndexOf(draft, item.item_id()) >= 0) continue;
    changes.push_back(Proposed(v1::PROPOSED_CHANGE_KIND_REMOVED, item.item_id(), item.title(), "",
                               "not indicated by assessment " + draft.assessment_id() +
                                   (in_use.stopped_directions().empty() ? "" : " or a stopped direction")));
  }
  return changes;
}

}  // namespace physio::planning

namespace physio::planning {

std::vector<std::string> ApplyTemplate(v1::Plan& plan, const InterventionLibrary& library,
                                       const PlanTemplate& chosen) {
  if (plan.type() != v1::PLAN_TYPE_TREATMENT) {
    throw Error(ErrorCode::kFailedPrecondition,
                "template_id: the assessment calls for referral, not treatment: no template applies");
  }
  // The generated treatment items go; what keeps the patient safe and the advice against stay.
  auto* items = plan.mutable_items();
  for (int i = items->size() - 1; i >= 0; --i) {
    const auto& item = items->Get(i);
    if (IsSafetyItem(item.item_id()) || item.kind() == v1::PLAN_ITEM_KIND_NOT_RECOMMENDED ||
        item.kind() == v1::PLAN_ITEM_KIND_REFERRAL) {
      continue;
    }
    items->DeleteSubrange(i, 1);
  }
  std::vector<std::string> notes;
  for (const auto& wanted : chosen.items) {
    const Intervention* entry = library.Find(wanted.intervention_id);
    if (entry == nullptr) {
      notes.push_back("left out " + wanted.intervention_id + ": not in the library");
      continue;
    }
    if (IndexOf(plan, entry->id) >= 0) continue;
    const std::string why = WhyExcluded(*entry, plan, /*progress=*/false);
    if (why == "not for the plan's phase" || why.starts_with("retired")) {
      notes.push_back("left out " + entry->id + ": " + (why.starts_with("retired") ? why : "not for this plan's phase"));
      continue;
    }
    if (!why.empty()) {
      notes.push_back("left out " + entry->id + ": contraindicated for this patient (" + why + ")");
      continue;
    }
    v1::PlanItem item = ItemFromLibrary(*entry, "from template '" + chosen.name + "': " + entry->reason);
    if (wanted.dose) *item.mutable_dose() = ToProto(*wanted.dose);
    *plan.add_items() = std::move(item);
  }
  bool exercise = false;
  for (const auto& item : plan.items()) exercise |= item.kind() == v1::PLAN_ITEM_KIND_EXERCISE;
  if (!exercise) {
    std::string left_out;
    for (const auto& note : notes) left_out += "; " + note;
    throw Error(ErrorCode::kFailedPrecondition, "template_id: no exercise of template '" + chosen.id +
                                                    "' suits this patient (NICE NG59: exercise is the core of "
                                                    "treatment)" + left_out);
  }
  CheckPlanInvariants(plan);
  RecomputeHomeFrequency(plan);
  plan.set_template_id(chosen.id);
  return notes;
}

}  // namespace physio::planning
