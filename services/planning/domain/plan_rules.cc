#include "plan_rules.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "library.h"
#include "physio/common/error.h"

namespace physio::planning {

namespace {
std::string PhaseText(Phase phase) {
  switch (phase) {
    case Phase::kSymptomModulation: return "symptom-modulation phase";
    case Phase::kMovementControl: return "movement-control phase";
    case Phase::kFunctionOptimisation: return "function-optimisation phase";
  }
  return "";
}

double RoundTenth(double value) { return std::round(value * 10.0) / 10.0; }

// Builds the item list, skipping what the patient's contraindications exclude.
class Builder {
 public:
  Builder(const InterventionLibrary& library, const PlanInput& input)
      : library_(library), input_(input), contraindications_(PatientContraindications(input)) {}

  bool Allowed(const Intervention& entry) const {
    for (const auto& token : entry.contraindications) {
      if (contraindications_.contains(token)) return false;
    }
    return std::find(entry.phases.begin(), entry.phases.end(), input_.phase) != entry.phases.end();
  }

  // Adds a library entry by id when allowed and not already present; returns whether it is in the plan.
  bool Add(const std::string& id, const std::string& reason) {
    const Intervention* entry = library_.Find(id);
    if (entry == nullptr || !Allowed(*entry)) return false;
    AddEntry(*entry, reason);
    return true;
  }

  // Adds the first allowed exercise of a category (library order); returns whether one was added.
  bool AddFromCategory(const std::string& category, const std::string& reason) {
    for (const auto& entry : library_.entries()) {
      if (entry.kind == InterventionKind::kExercise && entry.category == category && !chosen_.contains(entry.id) &&
          Allowed(entry)) {
        AddEntry(entry, reason);
        return true;
      }
    }
    return false;
  }

  int exercise_count() const {
    return static_cast<int>(std::count_if(items_.begin(), items_.end(),
                                          [](const PlanItemDraft& i) { return i.kind == ItemKind::kExercise; }));
  }
  std::vector<PlanItemDraft>& items() { return items_; }

 private:
  void AddEntry(const Intervention& entry, const std::string& reason) {
    if (!chosen_.insert(entry.id).second) return;
    PlanItemDraft item;
    item.id = entry.id;
    item.kind = PlanItemKindOf(entry.kind);
    item.title = entry.title;
    item.instructions = entry.instructions;
    item.dose = entry.dose;
    item.reason = reason.empty() ? entry.reason : reason;
    item.source = entry.source;
    item.progression = entry.progression;
    item.regression = entry.regression;
    item.home_programme = entry.kind == InterventionKind::kExercise || entry.kind == InterventionKind::kPainManagement;
    items_.push_back(std::move(item));
  }

  const InterventionLibrary& library_;
  const PlanInput& input_;
  std::set<std::string> contraindications_;
  std::set<std::string> chosen_;
  std::vector<PlanItemDraft> items_;
};

std::string Joined(const std::vector<std::string>& parts, const std::string& separator = "; ") {
  std::string joined;
  for (const auto& part : parts) joined += (joined.empty() ? "" : separator) + part;
  return joined;
}

PlanDraft ReferralPlan(const PlanInput& input) {
  PlanDraft plan;
  plan.type = PlanType::kReferral;
  plan.phase = input.phase;
  const bool emergency = input.red_flags == RedFlagLevel::kEmergencyReferral;
  const std::string reasons = Joined(input.red_flag_reasons);
  PlanItemDraft referral;
  referral.id = emergency ? "referral.emergency" : "referral.urgent";
  referral.kind = ItemKind::kReferral;
  referral.title = emergency ? "Emergency referral: hospital assessment now; no physiotherapy treatment"
                             : "Urgent referral: medical assessment within 24 hours; do not start treatment";
  referral.reason = reasons.empty() ? "the red-flag screen calls for referral" : reasons;
  referral.source = "Finucane et al., JOSPT 2020 (international framework for red flags)";
  plan.items.push_back(referral);
  return plan;
}

// What every treatment plan tells the patient about cauda equina (GIRFT 2023).
PlanItemDraft CaudaEquinaSafetyNet() {
  PlanItemDraft item;
  item.id = "safety.cauda_equina";
  item.kind = ItemKind::kEducation;
  item.title = "Back pain safety net: when to seek emergency care";
  item.instructions =
      "Go to an emergency department at once (do not wait for your next appointment) if you notice any of: "
      "numbness or tingling around the back passage or genitals (saddle area); new difficulty passing urine, "
      "loss of bladder or bowel control, or not knowing when your bladder is full; new sexual dysfunction; "
      "numbness, tingling or weakness in both legs, or leg weakness that is getting worse.";
  item.reason = "safety-netting information for every patient with back pain";
  item.source = "GIRFT 2023, National Suspected Cauda Equina Syndrome Pathway; NICE NG59";
  return item;
}

// A monitored concern: what to watch for and when to seek help (Finucane 2020).
PlanItemDraft SafetyNetting(const PlanInput& input) {
  const std::string concerns = Joined(input.red_flag_reasons);
  PlanItemDraft item;
  item.id = "safety.netting";
  item.kind = ItemKind::kEducation;
  item.title = "Safety-netting: what to watch for and when to seek help";
  item.instructions =
      "Some features of your back pain are being watched. Contact the clinic the same day if your pain becomes "
      "constant or keeps you awake at night, if you feel feverish or unwell, lose weight without trying, or "
      "develop new numbness or weakness; seek emergency care for the cauda equina signs in your safety net. "
      "Your physiotherapist will re-check these at an earlier review.";
  item.reason = concerns.empty() ? "a red-flag concern is monitored" : "monitored: " + concerns;
  item.source = "Finucane et al., JOSPT 2020 (safety-netting for monitored red flags)";
  return item;
}

// A routine referral (e.g. rheumatology for suspected axial SpA) alongside treatment.
PlanItemDraft RoutineReferral(const PlanInput& input) {
  const std::string concerns = Joined(input.red_flag_reasons);
  PlanItemDraft item;
  item.id = "referral.routine";
  item.kind = ItemKind::kReferral;
  item.title = "Routine referral (e.g. rheumatology for suspected axial spondyloarthritis); treatment continues";
  item.instructions = "Refer routinely with the findings; continue the treatment plan meanwhile.";
  item.reason = concerns.empty() ? "the red-flag screen calls for a routine referral" : concerns;
  item.source = "NICE NG65 (spondyloarthritis: refer for a rheumatology assessment); Finucane et al., JOSPT 2020";
  return item;
}

// Exercise categories per phase, in priority order (design defaults, see docs/clinical-rules.md).
std::vector<std::string> CategoriesFor(Phase phase) {
  switch (phase) {
    case Phase::kSymptomModulation: return {"trunk_activation", "flexibility", "aerobic", "posture"};
    case Phase::kMovementControl: return {"trunk_activation", "trunk_strength", "flexibility", "aerobic", "posture"};
    case Phase::kFunctionOptimisation: return {"trunk_strength", "functional", "aerobic", "flexibility", "trunk_strength"};
  }
  return {};
}
}  // namespace

std::set<std::string> PatientContraindications(const PlanInput& input) {
  std::set<std::string> tokens;
  // Fracture or osteoporosis concern (Sinaki & Mikkelsen 1984; Royal Osteoporosis Society
  // 2022): no spinal manipulation and no loaded or end-range flexion; strengthening goes
  // on unless the concern is urgent or above (then no loading at all).
  if (input.fracture_concern) {
    tokens.insert("manipulation_contraindicated");
    tokens.insert("flexion_loading");
  }
  if (input.fracture_urgent) tokens.insert("loading_contraindicated");
  if (!input.manipulation_blocked.empty()) tokens.insert("manipulation_contraindicated");
  // A patient who centralises with extension is often worse with flexion, and vice versa.
  if (input.subgroup == Subgroup::kSpecificExercise && input.direction == "extension") tokens.insert("flexion_intolerant");
  if (input.subgroup == Subgroup::kSpecificExercise && input.direction == "flexion") tokens.insert("extension_intolerant");
  return tokens;
}

PlanDraft GeneratePlanDraft(const PlanInput& input, const InterventionLibrary& library) {
  // No treatment without a red-flag screen (Finucane 2020: screen at first contact):
  // the computed screen, or the clinician's recorded judgement, must exist.
  if (input.red_flags == RedFlagLevel::kNotScreened) {
    throw Error(ErrorCode::kFailedPrecondition,
                "assessment_id: red flags were not screened; record a red-flag screen (or a clinician's red-flag "
                "judgement) before generating a plan");
  }
  if (input.red_flags == RedFlagLevel::kUrgentReferral || input.red_flags == RedFlagLevel::kEmergencyReferral) {
    PlanDraft referral = ReferralPlan(input);
    referral.library_version = library.version();
    return referral;
  }
  PlanDraft plan;
  plan.phase = input.phase;
  plan.library_version = library.version();
  Builder items(library, input);
  const auto excluded = PatientContraindications(input);
  plan.contraindications.assign(excluded.begin(), excluded.end());
  const std::string phase = PhaseText(input.phase);

  // Stratified care (Hill 2011; NICE NG59 1.1.2-1.1.3): STarT Back sets the intensity.
  std::string stratum;
  switch (input.start_back) {
    case StartBackRisk::kLow:
      plan.intensity = Intensity::kAdviceAndSelfManagement;
      stratum = "STarT Back low risk: advice, reassurance and self-management";
      break;
    case StartBackRisk::kHigh:
      plan.intensity = Intensity::kPsychologicallyInformed;
      stratum = "STarT Back high risk: psychologically informed physiotherapy";
      break;
    case StartBackRisk::kMedium:
      plan.intensity = Intensity::kPhysiotherapyPackage;
      stratum = "STarT Back medium risk: physiotherapy package";
      break;
    case StartBackRisk::kUnknown:
      plan.intensity = Intensity::kPhysiotherapyPackage;
      stratum = "STarT Back not answered: physiotherapy package by default";
      break;
  }
  const bool package = plan.intensity != Intensity::kAdviceAndSelfManagement;

  items.Add("edu.self_management", "recommended for every patient with low back pain; " + stratum);

  // Subgroup-specific exercise first (Fritz 2007).
  const std::string evidence = input.subgroup_evidence.empty() ? "" : " (" + input.subgroup_evidence + ")";
  if (input.subgroup == Subgroup::kSpecificExercise) {
    const std::string category = input.direction == "extension"     ? "directional_extension"
                                 : input.direction == "lateral_shift" ? "lateral_shift"
                                                                     : "directional_flexion";
    items.AddFromCategory(category, "specific exercise subgroup, " + input.direction + evidence + "; " + phase);
  } else if (input.subgroup == Subgroup::kStabilisation) {
    items.AddFromCategory("trunk_activation", "stabilisation subgroup" + evidence + "; " + phase);
    items.AddFromCategory("trunk_strength", "stabilisation subgroup" + evidence + "; " + phase);
  } else if (input.subgroup == Subgroup::kManipulation) {
    items.AddFromCategory("flexibility", "manipulation subgroup" + evidence + ": range-of-motion exercise with manipulation");
  }

  // Phase-based programme.
  const int wanted_exercises = package ? 4 : 2;
  for (const auto& category : CategoriesFor(input.phase)) {
    if (items.exercise_count() >= wanted_exercises) break;
    items.AddFromCategory(category, phase + ": " + category);
  }
  items.Add("ex.aerobic.walking", "general aerobic activity; stay active (NICE NG59 1.2.1)");
  // Elevated fear-avoidance beliefs call for graded activity and pain neuroscience
  // education whatever the STarT group (Fritz 2001; George 2003; Wertli 2014).
  const std::string fear_avoidance = Joined(input.fear_avoidance, ", ");
  if (plan.intensity == Intensity::kPsychologicallyInformed) {
    items.Add("ex.func.graded_activity", "graded activity towards valued activities; " + stratum);
  } else if (!fear_avoidance.empty()) {
    items.Add("ex.func.graded_activity", "graded activity for elevated fear-avoidance beliefs (" + fear_avoidance + ")");
  }

  // Manual therapy only as part of a package that includes exercise (NICE NG59 1.2.7).
  if (package && items.exercise_count() > 0) {
    if (input.subgroup == Subgroup::kManipulation) {
      if (!items.Add("manual.thrust_manipulation", "manipulation subgroup" + evidence + "; with exercise")) {
        items.Add("manual.joint_mobilisation", "manipulation subgroup, but thrust manipulation is contraindicated or "
                                               "out of phase; mobilisation with exercise");
      }
    } else if (input.phase != Phase::kFunctionOptimisation) {
      items.Add("manual.joint_mobilisation", "part of a physiotherapy package with exercise; " + phase);
    }
  }

  // Psychologically informed care only with exercise (NICE NG59 1.2.8).
  if (plan.intensity == Intensity::kPsychologicallyInformed && items.exercise_count() > 0) {
    items.Add("psych.informed_physiotherapy", stratum);
    items.Add("life.activity_pacing", "");
  }
  if (plan.intensity == Intensity::kPsychologicallyInformed || input.chronic || !fear_avoidance.empty()) {
    items.Add("edu.pain_neuroscience", input.chronic                       ? "pain for more than 3 months"
                                       : !fear_avoidance.empty()            ? "elevated fear-avoidance beliefs (" +
                                                                           fear_avoidance + ")"
                                                                            : stratum);
  }
  if (input.occupation == Occupation::kHeavy) items.Add("edu.body_mechanics_lifting", "");
  if (input.occupation == Occupation::kSedentary) items.Add("edu.desk_ergonomics", "");
  if (input.occupation != Occupation::kUnknown && input.occupation != Occupation::kNotWorking) {
    items.Add("life.return_to_work", "");
  }
  if (input.smoker) items.Add("life.smoking", "");
  if (input.sleep_disturbed) items.Add("life.sleep", "");
  if (input.phase == Phase::kSymptomModulation || !package) items.Add("pain.heat", "");
  if (input.traction_candidate) {
    items.Add("notrec.traction", "");
  }
  plan.items = std::move(items.items());
  for (const auto& item : plan.items) {
    if (item.kind == ItemKind::kExercise) plan.home_sessions_per_week = std::max(plan.home_sessions_per_week, item.dose.sessions_per_week);
  }

  // Goals: the meaningful change on each outcome, and the patient's own activities.
  if (input.nprs && *input.nprs > 0) {
    plan.goals.push_back({"Reduce pain by at least the meaningful change of 2 points", GoalMeasure::kNprs,
                          std::max(0.0, *input.nprs - 2)});
  }
  if (input.odi_percent && *input.odi_percent > 0) {
    // ODI MCID: 10 points or 30% (Ostelo 2008); the smaller drop meets either form.
    plan.goals.push_back({"Reduce disability (Oswestry) by a meaningful change", GoalMeasure::kOdi,
                          RoundTenth(std::max(0.0, *input.odi_percent - std::min(10.0, 0.3 * *input.odi_percent)))});
  }
  if (input.rmdq && *input.rmdq > 0) {
    plan.goals.push_back({"Reduce disability (Roland-Morris) by a meaningful change", GoalMeasure::kRmdq,
                          RoundTenth(std::max(0.0, *input.rmdq - std::min(5.0, 0.3 * *input.rmdq)))});
  }
  for (const auto& activity : input.psfs) {
    plan.goals.push_back({"Improve '" + activity.activity + "' by at least 3 points", GoalMeasure::kPsfs,
                          std::min(10.0, activity.rating + 3)});
  }

  // Timeline (design defaults): re-measure at about 2 weeks and at 4-6 weeks.
  switch (plan.intensity) {
    case Intensity::kAdviceAndSelfManagement:
      plan.expected_weeks = 2;
      plan.reviews = {{2, "review; step up to a physiotherapy package if not improving"}};
      break;
    case Intensity::kPsychologicallyInformed:
      plan.expected_weeks = 10;
      plan.reviews = {{2, "re-measure pain and function; check home-programme adherence"},
                      {6, "responder check against the meaningful-change thresholds"},
                      {10, "discharge review"}};
      break;
    default:
      plan.expected_weeks = 6;
      plan.reviews = {{2, "re-measure pain and function; check home-programme adherence"},
                      {6, "responder check against the meaningful-change thresholds; progress, regress or re-assess"}};
      break;
  }

  // Safety (Finucane 2020; GIRFT 2023): every treatment plan carries the cauda equina
  // safety net; a monitored concern adds what to watch for and an earlier review; a
  // routine referral goes into the treatment plan.
  plan.items.push_back(CaudaEquinaSafetyNet());
  if (!input.manipulation_blocked.empty()) {
    const std::string why = Joined(input.manipulation_blocked);
    PlanItemDraft note;
    note.id = "safety.no_manipulation";
    note.kind = ItemKind::kNotRecommended;
    note.title = "Spinal manipulation is not offered to this patient";
    note.reason = why;
    note.source = "Finucane et al., JOSPT 2020; IFOMPT 2020 framework for the cervical/lumbar region; Flynn 2002 exclusions";
    plan.items.push_back(note);
  }
  if (!input.overridden_concerns.empty()) {
    const std::string concerns = Joined(input.overridden_concerns);
    PlanItemDraft note;
    note.id = "safety.overridden_concern";
    note.kind = ItemKind::kEducation;
    note.title = "Computed red-flag concern overridden by the clinician: keep watching for it";
    note.instructions = "The screen computed: " + concerns + ". Re-screen at every visit; seek emergency care at once "
                        "for any cauda equina sign.";
    note.reason = concerns;
    note.source = "Finucane et al., JOSPT 2020 (the clinician's judgement is stored beside the computed one)";
    plan.items.push_back(note);
  }
  if (input.red_flags == RedFlagLevel::kMonitor || input.red_flags == RedFlagLevel::kRoutineReferral) {
    plan.items.push_back(SafetyNetting(input));
    plan.reviews.insert(plan.reviews.begin(), {1, "safety-netting review: re-screen the monitored red flags"});
  }
  if (input.red_flags == RedFlagLevel::kRoutineReferral) plan.items.push_back(RoutineReferral(input));
  return plan;
}

}  // namespace physio::planning
