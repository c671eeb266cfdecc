#include "plan_rules.h"

#include "physio/common/meaningful_change.h"

#include <algorithm>
#include <cctype>
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

// Down to a tenth (a goal is never short of the drop that counts; the epsilon absorbs binary fractions).
double FloorTenth(double value) { return std::floor(value * 10.0 + 1e-6) / 10.0; }

// Builds the item list, skipping what the patient's contraindications exclude.
class Builder {
 public:
  Builder(const InterventionLibrary& library, const PlanInput& input, const PlanPolicy& policy)
      : library_(library), input_(input), contraindications_(PatientContraindications(input, policy)) {}

  bool Allowed(const Intervention& entry) const {
    if (entry.clinician_added_only) return false;  // never chosen by generation
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
    item.home_programme = entry.HomeProgramme();
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

}  // namespace

std::optional<ReturnToWork> GradedReturnToWork(const PlanInput::Work& work) {
  if (work.status != WorkStatus::kOffWork && work.status != WorkStatus::kModifiedDuties) return std::nullopt;
  auto hours = [&](double share) -> std::string {
    if (!work.usual_hours) return "";
    return " (about " + std::to_string(static_cast<int>(std::lround(*work.usual_hours * share))) + " hours a week)";
  };
  // Off work: the graded return starts at the planned return (or as soon as it can be agreed);
  // on modified duties it is under way.
  const int start_week = work.status == WorkStatus::kOffWork && work.planned_return_in_days
                             ? (*work.planned_return_in_days + 6) / 7
                             : 0;
  ReturnToWork out;
  PlanItemDraft& item = out.item;
  item.id = "work.graded_return";
  item.kind = ItemKind::kLifestyle;
  item.title = "Your graded return to work";
  std::string text;
  if (work.status == WorkStatus::kOffWork) {
    text = "Going back to work, on lighter duties or fewer hours at first, is part of getting better: you do not need "
           "to be pain-free first, and staying off longer makes going back harder. ";
    if (work.days_off) text += "You have been off work for " + std::to_string(*work.days_off) + " days. ";
    text += work.planned_return_in_days
                ? "Your return is planned in " + std::to_string(*work.planned_return_in_days) + " days. "
                : std::string("Agree a return date with your employer (or occupational health) and your GP. ");
    if (work.fit_note) {
      text += "Your fit note can say you may be fit for work with a phased return or amended duties. ";
    }
  } else {
    text = "You are back at work on modified duties";
    if (work.current_hours) text += ", " + std::to_string(*work.current_hours) + " hours a week now";
    text += ": build back to your usual job step by step. ";
  }
  text += "A graded return: weeks " + std::to_string(start_week + 1) + "-" + std::to_string(start_week + 2) +
          " about half your usual hours" + hours(0.5) + " on lighter duties; weeks " + std::to_string(start_week + 3) +
          "-" + std::to_string(start_week + 4) + " about three quarters" + hours(0.75) + "; from week " +
          std::to_string(start_week + 5) + " your usual hours" + hours(1.0) +
          " and duties. Your home exercises build what the job needs; tell us at each visit how work is going.";
  if (!work.obstacles.empty()) {
    std::string obstacles;
    for (const auto& code : work.obstacles) {
      std::string words = code;
      std::replace(words.begin(), words.end(), '_', ' ');
      obstacles += (obstacles.empty() ? "" : ", ") + words;
    }
    text += " To sort out with your employer: " + obstacles + ".";
  }
  item.instructions = text;
  item.reason = work.status == WorkStatus::kOffWork ? "off work because of the back pain"
                                                    : "on modified duties because of the back pain";
  item.source = "NICE NG59 (promote and facilitate return to work); Faculty of Occupational Medicine 2000, "
                "occupational health guidelines for low back pain at work (early, graded return with temporary "
                "modified duties); the weekly steps are a design default";
  item.home_programme = false;
  out.goal.description = "Back at your usual work" +
                          (work.usual_hours ? " (" + std::to_string(*work.usual_hours) + " hours a week)" : std::string()) +
                          " by week " + std::to_string(start_week + 5);
  out.goal.measure = GoalMeasure::kWorkHours;
  out.goal.target = work.usual_hours ? *work.usual_hours : 0;
  return out;
}

namespace {

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

}  // namespace

// A monitored concern: what to watch for and when to seek help (Finucane 2020).
PlanItemDraft SafetyNettingItem(const std::vector<std::string>& monitored) {
  const std::string concerns = Joined(monitored);
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

PlanItemDraft NoManipulationNote(const std::string& why) {
  PlanItemDraft note;
  note.id = "safety.no_manipulation";
  note.kind = ItemKind::kNotRecommended;
  note.title = "Spinal manipulation is not offered to this patient";
  note.reason = why;
  note.source = "Finucane et al., JOSPT 2020; IFOMPT 2020 framework for the cervical/lumbar region; Flynn 2002 exclusions";
  return note;
}

std::set<std::string> ContraindicationsForConcern(const std::string& condition) {
  if (condition == "fracture") return {"manipulation_contraindicated", "flexion_loading"};
  if (condition == "malignancy" || condition == "infection" || condition == "cauda_equina" ||
      condition == "axial_spondyloarthritis") {
    return {"manipulation_contraindicated"};
  }
  return {};
}

namespace {

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

// The written flare-up plan every treatment plan carries: what to do, how to scale this
// plan's home programme down, and when to call (NICE NG59 1.2.1 self-management; the
// flare rule is the progress service's: pain up 2 or more points for more than 24 h).
PlanItemDraft FlareUpPlan(const std::vector<PlanItemDraft>& items) {
  std::string scaled;
  for (const auto& item : items) {
    if (item.kind != ItemKind::kExercise || !item.home_programme) continue;
    const Dose& d = item.dose;
    std::string half;
    if (d.duration_minutes > 0) {
      half = std::to_string(std::max(5, d.duration_minutes / 2)) + " min";
    } else {
      half = "1 set of " + std::to_string(std::max(1, d.reps / 2)) +
             (d.hold_seconds > 0 ? ", hold " + std::to_string(std::max(5, d.hold_seconds / 2)) + " s" : "");
    }
    scaled += (scaled.empty() ? "" : "; ") + item.title + ": " + half;
  }
  PlanItemDraft item;
  item.id = "selfcare.flare_up_plan";
  item.kind = ItemKind::kEducation;
  item.title = "Your flare-up plan";
  item.instructions =
      "A flare-up (pain clearly worse than usual) is common and usually settles within days; it does not mean new "
      "damage. What to do: keep moving gently and avoid bed rest; use heat if it helps; take pain relief as your "
      "pharmacist or doctor advised. Scale your home programme down for 2-3 days" +
      (scaled.empty() ? std::string(".") : " (" + scaled + ")") +
      " and build back to your usual dose over the following week. Log your pain as usual. When to call the clinic: "
      "if pain stays 2 or more points above your usual for more than 2 days, is not settling after a week, or "
      "spreads further down your leg. Go to an emergency department at once for any sign in your safety net.";
  item.reason = "every patient gets a written plan for flare-ups";
  item.source = "NICE NG59 1.2.1 (self-management advice); flare rule: progress evaluation (design default)";
  item.home_programme = false;
  return item;
}

// High irritability: start below the library dose (design default: one set fewer, a
// third fewer repetitions, holds and timed work shortened; never below 1 set, 3 reps,
// 5 s or 5 minutes).
void LowerStartingDose(PlanItemDraft& item) {
  Dose& d = item.dose;
  if (d.sets > 1) d.sets -= 1;
  if (d.reps > 3) d.reps = std::max(3, d.reps * 2 / 3);
  if (d.hold_seconds > 5) d.hold_seconds = std::max(5, d.hold_seconds * 2 / 3);
  if (d.duration_minutes > 5) d.duration_minutes = std::max(5, d.duration_minutes / 2);
  item.reason += "; starting dose lowered for high irritability";
}

// Examination observations (codes) that select a flexibility or posture item.
const std::vector<std::pair<std::string, std::string>>& ObservationItems() {
  static const std::vector<std::pair<std::string, std::string>> kItems = {
      {"reduced_hamstring_length", "ex.flex.hamstring_stretch"},
      {"reduced_hip_flexor_length", "ex.flex.hip_flexor_stretch"},
      {"reduced_thoracic_mobility", "ex.flex.thoracic_open_book"},
      {"piriformis_tightness", "ex.flex.piriformis_stretch"},
      {"sustained_flexed_sitting", "ex.posture.sitting_reset"},
      {"flexed_posture", "ex.posture.sitting_reset"},
      {"sway_posture", "ex.posture.sitting_reset"},
  };
  return kItems;
}

bool IsPostureObservation(const std::string& code) {
  static const std::set<std::string> kPosture = {"sustained_flexed_sitting", "flexed_posture", "sway_posture",
                                                 "increased_lordosis",       "reduced_lordosis", "posture_finding"};
  return kPosture.contains(code);
}

std::string Lower(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
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

// Earlier manual therapy (any of its forms) that made this episode worse.
bool ManualTherapyMadeWorse(const PlanInput& input) {
  if (!input.previous_treatment_made_worse) return false;
  for (const auto& code : input.previous_treatments) {
    if (code == "manual_therapy" || code == "manipulation" || code == "mobilisation" || code == "massage") return true;
  }
  return false;
}

// What NICE NG59's pharmacological recommendations say about the medicines in use, for
// the GP or pharmacist (empty when nothing calls for a review).
std::string MedicationReview(const PlanInput& input) {
  std::vector<std::string> why;
  const auto& in_use = input.analgesics;
  if (in_use.contains(Analgesic::kOpioid)) {
    why.push_back(input.chronic ? std::string("opioids for pain of more than 3 months: not recommended for chronic low "
                                              "back pain") +
                                      (input.sciatica ? ", nor for chronic sciatica" : "")
                                : "opioids: only a weak opioid, and only when an NSAID is unsuitable or has not worked");
  }
  if (in_use.contains(Analgesic::kParacetamol) && !in_use.contains(Analgesic::kNsaid) &&
      !in_use.contains(Analgesic::kOpioid)) {
    why.push_back("paracetamol on its own: not recommended for low back pain");
  }
  if (in_use.contains(Analgesic::kNeuropathic)) {
    why.push_back(input.sciatica
                      ? "anticonvulsants or antidepressants for pain: for sciatica, gabapentinoids (gabapentin, "
                        "pregabalin) and other antiepileptics are not to be offered (no overall evidence of benefit, "
                        "and a risk of harm), nor are oral corticosteroids or benzodiazepines; antidepressants are not "
                        "recommended for low back pain"
                      : "anticonvulsants or antidepressants for pain: not recommended for low back pain");
  }
  // The specific medicines (issue 26 item 11): what NICE NG59 (2020 update) says of each, for
  // sciatica and for low back pain without it; where it says nothing, that is said too.
  struct Advice {
    Analgesic medicine;
    const char* sciatica;
    const char* otherwise;
  };
  static constexpr Advice kSpecific[] = {
      {Analgesic::kGabapentinoid,
       "gabapentinoids (gabapentin, pregabalin) for sciatica: not to be offered (no overall evidence of benefit, and "
       "a risk of harm); do not stop them suddenly",
       "gabapentinoids (gabapentin, pregabalin): anticonvulsants are not recommended for low back pain; do not stop "
       "them suddenly"},
      {Analgesic::kAntidepressant,
       "antidepressants for pain: SSRIs, SNRIs and tricyclics are not recommended for low back pain; for sciatica "
       "NICE NG59 makes no recommendation on them (its neuropathic pain guideline, CG173, covers amitriptyline and "
       "duloxetine)",
       "antidepressants for pain: SSRIs, SNRIs and tricyclics are not recommended for low back pain"},
      {Analgesic::kOralCorticosteroid,
       "oral corticosteroids for sciatica: not to be offered (no overall evidence of benefit, and a risk of harm)",
       "oral corticosteroids: NICE NG59 makes no recommendation on them for low back pain without sciatica"},
      {Analgesic::kBenzodiazepine,
       "benzodiazepines for sciatica: not to be offered (no overall evidence of benefit, and a risk of harm, "
       "dependence among it)",
       "benzodiazepines: NICE NG59 makes no recommendation on them for low back pain without sciatica, and they "
       "carry a risk of dependence"},
  };
  for (const auto& advice : kSpecific) {
    if (in_use.contains(advice.medicine)) why.push_back(input.sciatica ? advice.sciatica : advice.otherwise);
  }
  if (in_use.contains(Analgesic::kNsaid)) {
    why.push_back(std::string("NSAIDs: the lowest effective dose for the shortest time, with a check of stomach, "
                              "kidney and heart risks") +
                  (input.cardiovascular_disease ? " (heart or circulation disease recorded)" : ""));
    // Both are recorded at intake; each makes an NSAID a question for the prescriber first.
    if (input.takes_anticoagulants) {
      why.push_back("an NSAID with an anticoagulant: a higher risk of bleeding; check with the prescriber before "
                    "taking them together");
    }
    if (input.pregnant) {
      why.push_back("an NSAID in pregnancy: not without a doctor's or midwife's advice, and not at all from 20 weeks "
                    "(harm to the baby's kidneys and circulation)");
    }
  }
  return Joined(why);
}

}  // namespace

std::set<std::string> PatientContraindications(const PlanInput& input, const PlanPolicy& policy) {
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
  // Pregnancy (issue 26 item 13): no lying face down and no manipulation at any stage, nor
  // curl-ups or knees-to-chest, which load and compress the abdomen (design defaults, the safer
  // choice); from pregnancy_supine_from_week, or when the week is not recorded, nothing lying
  // on the back (ACOG 2020 Committee Opinion 804; RCOG).
  if (input.pregnant) {
    tokens.insert("prone_position");
    tokens.insert("manipulation_contraindicated");
    tokens.insert("abdominal_loading");
    if (!input.pregnancy_weeks || *input.pregnancy_weeks >= policy.pregnancy_supine_from_week) {
      tokens.insert("supine_position");
    }
  }
  return tokens;
}

int ProgressionIntervalDays(Irritability irritability, const PlanPolicy& policy) {
  switch (irritability) {
    case Irritability::kHigh: return policy.progression_days_high_irritability;
    case Irritability::kLow: return policy.progression_days_low_irritability;
    default: return policy.progression_days;
  }
}

PlanDraft GeneratePlanDraft(const PlanInput& input, const InterventionLibrary& library, const PlanPolicy& policy) {
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
  Builder items(library, input, policy);
  const auto excluded = PatientContraindications(input, policy);
  plan.contraindications.assign(excluded.begin(), excluded.end());
  plan.monitored_conditions = input.monitored_conditions;
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

  items.Add("edu.self_management",
            "recommended for every patient with low back pain; " + stratum +
                (input.low_recovery_expectation
                     ? "; the patient expects little or no recovery: discuss the usually favourable course (low "
                       "expectations predict a slower recovery, Iles et al. 2009)"
                     : ""));

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

  // Sciatica (radicular leg pain or nerve-root signs): the sciatica advice with its safety net, and
  // neural mobilisation within comfort (NICE NG59 1.2; Basson 2017). A foot drop or a progressing
  // deficit never reaches here: it is an urgent red flag, and the plan a referral.
  if (input.sciatica) {
    items.Add("edu.sciatica", "sciatica: leg pain below the knee or nerve-root signs on examination");
    items.Add("ex.neural.sciatic_slider", "radicular leg pain: neural mobilisation (a slider) within comfort; " + phase);
  }

  // Phase-based programme.
  const int wanted_exercises = package ? 4 : 2;
  for (const auto& category : CategoriesFor(input.phase)) {
    if (items.exercise_count() >= wanted_exercises) break;
    items.AddFromCategory(category, phase + ": " + category);
  }
  // Examination findings select their flexibility or posture items (within phase and contraindications).
  bool posture_finding = false;
  for (const auto& code : input.observations) {
    posture_finding |= IsPostureObservation(code);
    for (const auto& [observation, id] : ObservationItems()) {
      if (observation == code) items.Add(id, "examination finding: " + code);
    }
  }
  // Walking from the patient's usual activity, towards 150 minutes a week (WHO 2020).
  const int walking_minutes = input.activity_level == ActivityLevel::kLow    ? 10
                              : input.activity_level == ActivityLevel::kHigh ? 30
                                                                             : 20;
  const std::string activity = input.activity_level == ActivityLevel::kLow        ? "low"
                               : input.activity_level == ActivityLevel::kModerate ? "moderate"
                               : input.activity_level == ActivityLevel::kHigh     ? "high"
                                                                                  : "not recorded";
  if (items.Add("ex.aerobic.walking", "general aerobic activity; stay active (NICE NG59 1.2.1); usual activity " +
                                          activity + ": start at " + std::to_string(walking_minutes) +
                                          " minutes and build towards 150 minutes of moderate activity a week")) {
    for (auto& item : items.items()) {
      if (item.id != "ex.aerobic.walking") continue;
      item.dose.duration_minutes = walking_minutes;
      if (input.cardiovascular_disease) {
        item.instructions += " With heart or circulation disease: keep to a pace at which you can still talk; stop "
                             "and seek advice on chest pain, unusual breathlessness or dizziness.";
        item.reason += "; cardiovascular disease: moderate intensity (ACSM)";
      }
    }
  }
  // Elevated fear-avoidance beliefs call for graded activity and pain neuroscience
  // education whatever the STarT group (Fritz 2001; George 2003; Wertli 2014).
  const std::string fear_avoidance = Joined(input.fear_avoidance, ", ");
  if (plan.intensity == Intensity::kPsychologicallyInformed) {
    items.Add("ex.func.graded_activity", "graded activity towards valued activities; " + stratum);
  } else if (!fear_avoidance.empty()) {
    items.Add("ex.func.graded_activity", "graded activity for elevated fear-avoidance beliefs (" + fear_avoidance + ")");
  }

  // The patient's preferences: supervised classes they asked for (phase permitting).
  if (input.prefers_group_exercise) items.Add("ex.supervised.group_exercise", "the patient prefers group exercise");
  if (input.prefers_pilates) items.Add("ex.supervised.pilates", "the patient prefers Pilates");

  // Manual therapy only as part of a package that includes exercise (NICE NG59 1.2.7),
  // and never when the patient declined it.
  if (package && items.exercise_count() > 0 && !input.declines_manual_therapy && !ManualTherapyMadeWorse(input)) {
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
  // Earlier treatment of this episode that did not help: a combined physical and
  // psychological approach, with exercise as always (NICE NG59; clinical reference).
  if ((input.previous_treatment_did_not_help || input.previous_treatment_made_worse) &&
      !input.previous_treatments.empty() && items.exercise_count() > 0) {
    items.Add("psych.informed_physiotherapy", "earlier treatment of this episode (" +
                                                  Joined(input.previous_treatments, ", ") +
                                                  ") did not help: combined physical and psychological approach");
  }
  if (plan.intensity == Intensity::kPsychologicallyInformed || input.chronic || !fear_avoidance.empty()) {
    items.Add("edu.pain_neuroscience", input.chronic                       ? "pain for more than 3 months"
                                       : !fear_avoidance.empty()            ? "elevated fear-avoidance beliefs (" +
                                                                           fear_avoidance + ")"
                                                                            : stratum);
  }
  if (input.occupation == Occupation::kHeavy) items.Add("edu.body_mechanics_lifting", "");
  if (input.occupation == Occupation::kSedentary) items.Add("edu.desk_ergonomics", "");
  // Someone at work: the library's return-to-work advice. Off work or on modified duties: the graded
  // return built below instead; not in paid work or retired: neither.
  const bool graded_return = input.work.status == WorkStatus::kOffWork || input.work.status == WorkStatus::kModifiedDuties;
  const bool out_of_work = input.work.status == WorkStatus::kNotEmployed || input.work.status == WorkStatus::kRetired;
  if (input.occupation != Occupation::kUnknown && input.occupation != Occupation::kNotWorking && !graded_return &&
      !out_of_work) {
    items.Add("life.return_to_work", "");
  }
  if (input.pregnant) {
    items.Add("edu.exercise_in_pregnancy",
              input.pregnancy_weeks ? std::to_string(*input.pregnancy_weeks) + " weeks pregnant" : "pregnant");
  }
  if (input.pelvic_girdle_pain) {
    items.Add("edu.pelvic_girdle_pain", "pelvic girdle pain");
    items.Add("ex.pgp.pelvic_floor_activation", "pelvic girdle pain: pelvic floor and deep abdominal activation");
  }
  if (input.smoker) items.Add("life.smoking", "");
  if (input.sleep_disturbed) items.Add("life.sleep", "");
  if (input.bmi && *input.bmi >= 30) {
    std::string bmi = std::to_string(*input.bmi);
    bmi = bmi.substr(0, bmi.find('.') + 2);
    items.Add("life.weight", "body-mass index " + bmi + " (obese range, WHO: 30 or more)");
  }
  if (input.previous_episodes > 0) {
    items.Add("edu.recurrence_prevention", std::to_string(input.previous_episodes) +
                                               " earlier episode(s): exercise with education lowers the risk of another");
  }
  bool posture_items = posture_finding || input.occupation == Occupation::kSedentary;
  for (const auto& item : items.items()) posture_items |= item.id.starts_with("ex.posture.");
  if (posture_items) items.Add("edu.posture_variety", posture_finding ? "posture findings on examination" : "");
  // Heat and cold as self-management options, with the evidence stated in their sources.
  // Heat's evidence is for acute and sub-acute pain (French 2006); with persistent pain it is a
  // comfort option only, and its reason says so.
  items.Add("pain.heat", input.chronic ? "a comfort option only: the evidence that heat helps is for acute and sub-acute "
                                         "pain (French 2006), and this pain has lasted more than 3 months"
                                       : "self-management of acute or sub-acute pain and flare-ups (the better-evidenced "
                                         "of heat and cold; French 2006)");
  items.Add("pain.cold", "");
  if (const std::string review = MedicationReview(input); !review.empty()) items.Add("pain.medication_review", review);
  if (input.traction_candidate) {
    items.Add("notrec.traction", "");
  }
  plan.items = std::move(items.items());
  // Irritability sets the starting dose and how long a dose is held before progressing.
  if (input.irritability == Irritability::kHigh) {
    for (auto& item : plan.items) {
      if (item.kind == ItemKind::kExercise) LowerStartingDose(item);
    }
  }
  plan.progression_interval_days = ProgressionIntervalDays(input.irritability, policy);
  for (const auto& item : plan.items) {
    if (item.kind == ItemKind::kExercise && item.home_programme) {
      plan.home_sessions_per_week = std::max(plan.home_sessions_per_week, item.dose.sessions_per_week);
    }
  }

  // Goals: the meaningful change on each outcome, and the patient's own activities.
  if (input.nprs && *input.nprs > 0) {
    plan.goals.push_back({"Reduce pain by at least the meaningful change of 2 points", GoalMeasure::kNprs,
                          std::max(0.0, *input.nprs - 2)});
  }
  if (input.odi_percent && *input.odi_percent > 0) {
    // The smallest drop the responder rule counts (10 points, or 30% beyond the MDC; Ostelo
    // 2008): reaching the goal is always a meaningful improvement (issue 26 item 12).
    const double drop = SmallestMeaningfulDrop(*input.odi_percent, {10, policy.odi_mdc_points});
    plan.goals.push_back({"Reduce disability (Oswestry) by a meaningful change", GoalMeasure::kOdi,
                          std::max(0.0, FloorTenth(*input.odi_percent - drop))});
  }
  if (input.rmdq && *input.rmdq > 0) {
    const double drop = SmallestMeaningfulDrop(*input.rmdq, {5, policy.rmdq_mdc_points});
    plan.goals.push_back({"Reduce disability (Roland-Morris) by a meaningful change", GoalMeasure::kRmdq,
                          std::max(0.0, FloorTenth(*input.rmdq - drop))});
  }
  // The patient's own goals, each linked to the PSFS: to the activity it names when the
  // PSFS rated one, else to be rated at the next re-measure.
  std::set<size_t> linked;
  for (const auto& goal : input.goals) {
    std::optional<size_t> match;
    for (size_t i = 0; i < input.psfs.size() && !match; ++i) {
      const std::string activity = Lower(input.psfs[i].activity), wanted = Lower(goal);
      if (!activity.empty() && (wanted.find(activity) != std::string::npos || activity.find(wanted) != std::string::npos)) {
        match = i;
      }
    }
    if (match) {
      linked.insert(*match);
      const auto& activity = input.psfs[*match];
      std::string rating = std::to_string(activity.rating);
      rating = rating.substr(0, rating.find('.'));
      plan.goals.push_back({"Your goal: '" + goal + "' (PSFS '" + activity.activity + "' rated " + rating +
                                "/10 now; aim for at least 3 points more)",
                            GoalMeasure::kPsfs, std::min(10.0, activity.rating + 3)});
    } else {
      plan.goals.push_back({"Your goal: '" + goal + "' (add it as a PSFS activity and rate it at the next re-measure)",
                            GoalMeasure::kPsfs, 0});
    }
  }
  for (size_t i = 0; i < input.psfs.size(); ++i) {
    if (linked.contains(i)) continue;
    const auto& activity = input.psfs[i];
    plan.goals.push_back({"Improve '" + activity.activity + "' by at least 3 points", GoalMeasure::kPsfs,
                          std::min(10.0, activity.rating + 3)});
  }
  // Physical activity (WHO 2020 guidelines: 150-300 minutes of moderate activity a week).
  plan.weekly_activity_target_minutes = 150;
  int walking_week = 0;
  for (const auto& item : plan.items) {
    if (item.id == "ex.aerobic.walking") walking_week = item.dose.duration_minutes * item.dose.sessions_per_week;
  }
  plan.goals.push_back({"Build up to 150 minutes of moderate physical activity a week (WHO 2020), from about " +
                            std::to_string(walking_week) + " minutes of walking a week now",
                        GoalMeasure::kActivity, 150});

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

  // Sciatica not improving by the responder review: the spinal-opinion route is offered (NICE NG59
  // 1.3.1); the progress evaluation refers for it (docs/clinical-rules.md).
  if (input.sciatica && !plan.reviews.empty()) {
    plan.reviews.back().purpose += "; sciatica: if pain and function have not improved, offer the spinal-opinion "
                                  "route (NICE NG59 1.3.1)";
  }

  // Safety (Finucane 2020; GIRFT 2023): every treatment plan carries the cauda equina
  // safety net; a monitored concern adds what to watch for and an earlier review; a
  // routine referral goes into the treatment plan.
  plan.items.push_back(CaudaEquinaSafetyNet());
  plan.items.push_back(FlareUpPlan(plan.items));
  if (auto work = GradedReturnToWork(input.work)) {
    plan.items.push_back(work->item);
    plan.goals.push_back(work->goal);
  }
  if (!input.manipulation_blocked.empty()) plan.items.push_back(NoManipulationNote(Joined(input.manipulation_blocked)));
  if (input.declines_manual_therapy) {
    PlanItemDraft note;
    note.id = "preference.no_manual_therapy";
    note.kind = ItemKind::kNotRecommended;
    note.title = "Manual therapy is not offered: the patient declined it";
    note.reason = "shared decision: the patient's preference";
    note.source = "NICE NG59 (take the person's preferences into account); manual therapy is optional, and only "
                  "ever part of a package with exercise (NICE NG59 1.2.7)";
    plan.items.push_back(note);
  }
  if (ManualTherapyMadeWorse(input) && !input.declines_manual_therapy) {
    PlanItemDraft note;
    note.id = "history.no_manual_therapy";
    note.kind = ItemKind::kNotRecommended;
    note.title = "Manual therapy is not offered: it made this episode worse before";
    note.reason = "earlier treatment of this episode (" + Joined(input.previous_treatments, ", ") +
                  ") made the symptoms worse; a clinician may still add it in a revision after discussing it";
    note.source = "design default (docs/clinical-rules.md): a treatment that made the episode worse is not repeated "
                  "without the clinician's decision; manual therapy is optional and only part of a package with "
                  "exercise (NICE NG59 1.2.7)";
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
    plan.items.push_back(SafetyNettingItem(input.red_flag_reasons));
    plan.reviews.insert(plan.reviews.begin(), {1, "safety-netting review: re-screen the monitored red flags"});
  }
  if (input.red_flags == RedFlagLevel::kRoutineReferral) plan.items.push_back(RoutineReferral(input));
  return plan;
}

}  // namespace physio::planning
