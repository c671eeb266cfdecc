#pragma once
#include <cstdint>
#include <optional>
// Changes to an existing plan, as pure functions over the plan and the library
// (no storage, no gRPC): clinician revisions, progression and regression along
// the library's links, and the invariants every plan keeps.
#include <string>
#include <vector>

#include "domain/library.h"
#include "domain/plan_rules.h"
#include "physio/planning/v1/planning.pb.h"

namespace physio::planning {

// Moves the listed exercise items (all exercises when empty) one step along their
// progression (or regression) link; without a link, raises (or lowers) the dose
// within safe bounds. Returns one line per change. Throws Error(kInvalidArgument)
// naming item_ids[i] when an id is not an exercise of the plan.
std::vector<std::string> StepExercises(v1::Plan& plan, const InterventionLibrary& library,
                                       const std::vector<std::string>& item_ids, bool progress);

// Applies a clinician's changes in order. Throws Error(kInvalidArgument) naming
// changes[i] on an unknown item, unknown intervention, duplicate, or bad dose.
void ApplyRevision(v1::Plan& plan, const InterventionLibrary& library,
                   const google::protobuf::RepeatedPtrField<v1::PlanChange>& changes);

// NICE NG59: manual therapy and psychologically informed care only as part of a
// package that includes exercise. Throws Error(kInvalidArgument) when broken.
void CheckPlanInvariants(const v1::Plan& plan);

// Items a revision may not remove (issue 26): the cauda equina safety net and
// safety-netting (safety.*), referrals (referral.*), the overridden-concern note
// (safety.overridden_concern) and the flare-up plan (selfcare.flare_up_plan).
bool IsSafetyItem(const std::string& item_id);
// Whether the plan includes spinal (thrust) manipulation, which needs the patient's
// recorded consent before the plan is in use.
bool IncludesManipulation(const v1::Plan& plan);

// ADJUSTMENT_ADD_PRECAUTIONS: the concerns whose condition the plan does not cover yet
// (Plan.monitored_conditions) are added to it; the contraindications they bring
// (ContraindicationsForConcern) are recorded and every item carrying one is taken out
// (safety items never are); a spinal-manipulation note and safety-netting are added or
// extended; a review within a week of `now` is added unless one is due by then. Returns one
// line per change (empty when every condition was covered already). Throws
// Error(kInvalidArgument) naming concerns[i] for an empty or malformed condition or summary.
std::vector<std::string> AddPrecautions(v1::Plan& plan, const InterventionLibrary& library,
                                        const google::protobuf::RepeatedPtrField<v1::FoundConcern>& concerns,
                                        std::int64_t now_seconds);

// ADJUSTMENT_STOP_DIRECTION (peripheralisation, McKenzie & May 2003): the direction of each
// listed directional exercise (library category directional_extension, directional_flexion or
// lateral_shift) is stopped: recorded in Plan.stopped_directions, its `<direction>_intolerant`
// token added to the plan's contraindications, every item carrying the token taken out (safety
// items never are) and the plan marked for re-assessment. Returns one line per change (empty
// when every direction was stopped already). `directions` names directions directly ("extension",
// "flexion", "lateral_shift": a repeated-movement test at a visit). Throws Error(kInvalidArgument)
// naming item_ids (neither given), item_ids[i] (not a directional exercise of the plan) or
// directions[i] (not a direction).
std::vector<std::string> StopDirections(v1::Plan& plan, const InterventionLibrary& library,
                                        const std::vector<std::string>& item_ids,
                                        const std::vector<std::string>& directions = {});

// A draft generated while a plan was in use (a re-assessment) keeps that plan's safety: the
// precautions of concerns found since its assessment (AddPrecautions) and its stopped directions,
// except the one the draft's own classification follows (the clinician examined it again: offered,
// and flagged DIRECTION_OFFERED_AGAIN). Returns what was carried over, as proposed changes.
std::vector<v1::ProposedChange> CarryOverSafety(v1::Plan& draft, const v1::Plan& in_use,
                                                const InterventionLibrary& library, std::int64_t now_seconds);

// What `draft` changes against `in_use`: phase, subgroup, direction and intensity; items added
// (with the draft's reason), removed and exercises at another dose.
std::vector<v1::ProposedChange> DiffPlans(const v1::Plan& in_use, const v1::Plan& draft);

// The direction a library exercise category loads ("extension", "flexion", "lateral_shift"),
// or empty for a category without one.
std::string DirectionOfCategory(const std::string& category);

// GeneratePlanRequest.template_id: the draft's treatment items are replaced by the template's
// (its doses, else the entries' starting doses); safety items, referrals and advice against stay.
// Items contraindicated for the patient, outside the plan's phase (WhyExcluded's rule) or retired
// are left out, one note each (returned). Throws Error(kFailedPrecondition) naming template_id for a
// referral plan, or when no exercise of the template suits the patient.
std::vector<std::string> ApplyTemplate(v1::Plan& plan, const InterventionLibrary& library, const PlanTemplate& chosen);

// The API's form of a generated item.
v1::PlanItem ItemFromDraft(const PlanItemDraft& item);

// The API's forms of the rules' item kind and dose (one place for both conversions).
v1::PlanItemKind ToProto(ItemKind kind);
v1::ExerciseDose ToProto(const Dose& dose);
physio::common::v1::Phase ToProto(Phase phase);
// nullopt for PHASE_UNSPECIFIED (or an unknown value).
std::optional<Phase> PhaseFromProto(physio::common::v1::Phase phase);

// A plan item for a library entry, with its starting dose.
v1::PlanItem ItemFromLibrary(const Intervention& entry, const std::string& reason);

}  // namespace physio::planning
