#include "classification.h"

#include <cmath>

namespace physio::assessment {

std::optional<Phase> ChoosePhase(std::optional<double> nprs, std::optional<double> odi_percent,
                                 const ClassificationPolicy& policy) {
  if (!nprs && !odi_percent) return std::nullopt;
  // A missing score is unknown, never "no pain" or "no disability" (issue 26 item 14): either
  // known score can call for symptom modulation, but the function phase (loaded lifting) needs
  // both scores measured and low; with one missing the patient stays in movement control.
  if ((nprs && *nprs >= policy.modulation_min_nprs) || (odi_percent && *odi_percent > policy.modulation_above_odi)) {
    return Phase::kSymptomModulation;
  }
  if (nprs && odi_percent && *nprs <= policy.optimisation_max_nprs && *odi_percent <= policy.optimisation_max_odi) {
    return Phase::kFunctionOptimisation;
  }
  return Phase::kMovementControl;
}

SubgroupResult ChooseSubgroup(const ClinicalFindings& f, const ClassificationPolicy& policy) {
  SubgroupResult result;
  const bool recent = f.episode_duration_days && *f.episode_duration_days < 16;
  const bool known_extent = f.symptom_extent != SymptomExtent::kUnknown;
  const bool not_below_knee = known_extent && f.symptom_extent != SymptomExtent::kBelowKnee;

  // Manipulation: Flynn 2002 (>= 4 of 5) or the two-factor rule (Fritz 2005).
  std::vector<std::string> manipulation;
  if (recent) manipulation.push_back("episode shorter than 16 days");
  if (not_below_knee) manipulation.push_back("no symptoms below the knee");
  if (f.fabq_work && *f.fabq_work < 19) manipulation.push_back("FABQ work subscale below 19");
  if (f.lumbar_hypomobility) manipulation.push_back("hypomobile lumbar segment");
  if (f.hip_internal_rotation_deg && *f.hip_internal_rotation_deg > 35) manipulation.push_back("hip internal rotation over 35 degrees");
  result.manipulation_criteria_met = static_cast<int>(manipulation.size());
  result.manipulation_two_factor = recent && not_below_knee;

  // Specific exercise by direction.
  std::vector<std::string> specific;
  std::string direction;
  if (f.visible_lateral_shift || f.directional_preference == DirectionalPreference::kLateralShift) {
    direction = "lateral_shift";
    specific.push_back("visible lateral shift");
  } else if (f.directional_preference == DirectionalPreference::kExtension) {
    direction = "extension";
    specific.push_back(f.centralisation ? "symptoms centralise with extension" : "directional preference for extension");
  } else if (f.directional_preference == DirectionalPreference::kFlexion) {
    // A direction only from a tested preference (repeated movements; McKenzie & May 2003):
    // stenosis signs or age support a flexion preference once tested, never replace the test.
    direction = "flexion";
    specific.push_back("directional preference for flexion");
    if (f.stenosis_suspected) specific.push_back("signs of lumbar stenosis");
    if (f.age_years && *f.age_years > 50) specific.push_back("age over 50");
  }
  if (f.stenosis_suspected && direction.empty()) {
    result.notes.push_back(
        "signs of lumbar stenosis: flexion-based exercise often eases them, but no direction is imposed before "
        "repeated-movement testing shows a preference");
  }

  // Stabilisation.
  std::vector<std::string> stabilisation;
  if (f.age_years && *f.age_years < 40) stabilisation.push_back("age under 40");
  if (f.straight_leg_raise_deg && *f.straight_leg_raise_deg > 91) stabilisation.push_back("straight-leg raise over 91 degrees");
  if (f.aberrant_movements) stabilisation.push_back("aberrant movements");
  if (f.prone_instability_positive) stabilisation.push_back("positive prone instability test");

  // The historical traction subgroup: leg symptoms with nerve-root signs and no
  // centralising direction.
  const bool traction_candidate = f.nerve_root_signs && f.symptom_extent == SymptomExtent::kBelowKnee && direction.empty();

  // Where the manipulation rule does not apply: Flynn 2002 excluded patients with
  // nerve-root compression signs; a centralising directional preference favours
  // specific exercise over manipulation (Fritz 2007).
  const bool manipulation_rule_applies = !f.nerve_root_signs;
  const bool centralising = f.centralisation && !direction.empty();
  if ((result.manipulation_criteria_met >= 4 || result.manipulation_two_factor) && !manipulation_rule_applies) {
    result.notes.push_back("the manipulation rule does not apply with nerve-root compression signs (Flynn 2002)");
  }
  if ((result.manipulation_criteria_met >= 4 || result.manipulation_two_factor) && manipulation_rule_applies &&
      centralising) {
    result.notes.push_back("centralisation with a directional preference: specific exercise before manipulation (Fritz 2007)");
  }
  if ((result.manipulation_criteria_met >= 4 || result.manipulation_two_factor) && manipulation_rule_applies &&
      !centralising) {
    result.subgroup = Subgroup::kManipulation;
    result.criteria_met = manipulation;
    if (result.manipulation_criteria_met < 4) result.notes.push_back("meets the two-factor rule (Fritz 2005)");
  } else if (!direction.empty()) {
    result.subgroup = Subgroup::kSpecificExercise;
    result.direction = direction;
    result.criteria_met = specific;
  } else if (traction_candidate) {
    // No direction without a tested preference: sciatica with nerve-root signs and no
    // preference is not sent to flexion (nor kept from extension); repeated-movement
    // testing decides, and the phase-based programme applies meanwhile.
    result.notes.push_back(
        "fits the historical traction subgroup (symptoms below the knee, nerve-root signs, no directional "
        "preference); traction is not supported (Thackeray 2016) and NICE NG59 advises against it; no exercise "
        "direction is imposed: test repeated movements for a preference");
  } else if (static_cast<int>(stabilisation.size()) >= policy.stabilisation_min_criteria) {
    result.subgroup = Subgroup::kStabilisation;
    result.criteria_met = stabilisation;
  }
  return result;
}

Irritability JudgeIrritability(Provocation provocation, std::optional<int> settle_minutes,
                               const IrritabilityPolicy& policy) {
  if (provocation == Provocation::kUnknown && !settle_minutes) return Irritability::kUnknown;
  const int settle = settle_minutes.value_or(-1);
  if (settle > policy.high_above_minutes ||
      (provocation == Provocation::kMinimal && settle > policy.high_after_minimal_above_minutes)) {
    return Irritability::kHigh;
  }
  if (provocation == Provocation::kSubstantial && settle >= 0 && settle <= policy.low_within_minutes) {
    return Irritability::kLow;
  }
  return Irritability::kModerate;
}

PatternResult JudgePainPattern(const ClinicalFindings& f) {
  PatternResult berlin;
  if (f.morning_stiffness_minutes && *f.morning_stiffness_minutes > 30) berlin.criteria.push_back("morning stiffness over 30 minutes");
  if (f.eased_by_movement && !f.eased_by_rest) berlin.criteria.push_back("better with exercise, not with rest");
  if (f.night_waking_second_half) berlin.criteria.push_back("waking in the second half of the night");
  if (f.alternating_buttock_pain) berlin.criteria.push_back("alternating buttock pain");
  if (berlin.criteria.size() >= 2) {
    berlin.pattern = PainPattern::kInflammatory;
    return berlin;
  }
  PatternResult mechanical;
  if (f.mechanical_factors) mechanical.criteria.push_back("aggravated by posture or load, or eased by a change of position");
  if (f.worse_end_of_day) mechanical.criteria.push_back("worse at the end of the day");
  if (!mechanical.criteria.empty()) mechanical.pattern = PainPattern::kMechanical;
  return mechanical;
}

std::optional<double> BodyMassIndex(std::optional<int> height_cm, std::optional<int> weight_kg) {
  if (!height_cm || !weight_kg || *height_cm <= 0) return std::nullopt;
  const double metres = *height_cm / 100.0;
  return std::round(*weight_kg / (metres * metres) * 10.0) / 10.0;
}

Classification Classify(const ClinicalFindings& findings, const std::vector<InstrumentResult>& scores,
                        const ClassificationPolicy& policy) {
  Classification result;
  std::optional<double> nprs, odi;
  ClinicalFindings with_scores = findings;
  for (const auto& score : scores) {
    switch (score.instrument) {
      case InstrumentKind::kNprs: nprs = score.score; break;
      case InstrumentKind::kOdi: odi = score.score; break;
      case InstrumentKind::kStartBack:
        for (const auto& sub : score.subscores) {
          if (sub.name == "psychosocial") result.start_back = StartBackRiskOf(static_cast<int>(score.score), static_cast<int>(sub.value));
        }
        break;
      case InstrumentKind::kFabq: with_scores.fabq_work = static_cast<int>(score.score); break;
      default: break;
    }
  }
  result.phase = ChoosePhase(nprs, odi, policy);
  if (result.phase) {
    result.phase_reason = "pain " + (nprs ? std::to_string(static_cast<int>(*nprs)) : std::string("not measured")) +
                          ", Oswestry " + (odi ? std::to_string(*odi).substr(0, std::to_string(*odi).find('.') + 2)
                                               : std::string("not measured"));
  }
  result.subgroup = ChooseSubgroup(with_scores, policy);
  result.irritability = JudgeIrritability(findings.provocation, findings.settle_minutes, policy.irritability);
  result.pain_pattern = JudgePainPattern(findings);
  result.bmi = BodyMassIndex(findings.height_cm, findings.weight_kg);
  return result;
}

}  // namespace physio::assessment
