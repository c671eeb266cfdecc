#pragma once
// Classification of a back-pain patient from the assessment, as plain C++:
//  - STarT Back risk group (Hill 2008), from the instrument score;
//  - status-based phase (Alrwaily 2016) from pain and Oswestry, with configurable
//    cut-offs (the numbers are UNVERIFIED design defaults);
//  - treatment-based subgroup (Fritz 2007; Hebert 2011) with the criteria met.
#include <optional>
#include <string>
#include <vector>

#include "instruments.h"

namespace physio::assessment {

enum class SymptomExtent { kUnknown, kBackOnly, kButtock, kThigh, kBelowKnee };
enum class Provocation { kUnknown, kMinimal, kModerate, kSubstantial };
enum class Irritability { kUnknown, kLow, kModerate, kHigh };
enum class PainPattern { kUnknown, kMechanical, kInflammatory };
enum class DirectionalPreference { kNone, kExtension, kFlexion, kLateralShift };

struct ClinicalFindings {
  std::optional<int> age_years;
  std::optional<int> episode_duration_days;
  SymptomExtent symptom_extent = SymptomExtent::kUnknown;
  DirectionalPreference directional_preference = DirectionalPreference::kNone;
  bool centralisation = false;
  bool lumbar_hypomobility = false;
  std::optional<int> hip_internal_rotation_deg;  // the greater side
  std::optional<int> straight_leg_raise_deg;     // the greater side
  bool aberrant_movements = false;
  bool prone_instability_positive = false;
  bool visible_lateral_shift = false;
  bool stenosis_suspected = false;
  bool nerve_root_signs = false;
  std::optional<int> fabq_work;  // from the FABQ score, when measured
  // The nature of the pain (history).
  Provocation provocation = Provocation::kUnknown;
  std::optional<int> settle_minutes;
  std::optional<int> morning_stiffness_minutes;
  bool worse_end_of_day = false;
  bool night_waking_second_half = false;
  bool alternating_buttock_pain = false;
  bool eased_by_movement = false;
  bool eased_by_rest = false;
  bool mechanical_factors = false;  // aggravated by posture or load, or eased by a position change
  std::optional<int> height_cm;
  std::optional<int> weight_kg;
};

// Irritability (Maitland; Barakatt et al. 2009). Design defaults (configurable): high when
// minimal activity provokes it and it takes more than 30 minutes to settle, or more than
// 120 minutes whatever provoked it; low when only substantial activity provokes it and it
// settles within 10 minutes; moderate otherwise; unknown without any answer.
struct IrritabilityPolicy {
  int high_after_minimal_above_minutes = 30;
  int high_above_minutes = 120;
  int low_within_minutes = 10;
};
Irritability JudgeIrritability(Provocation provocation, std::optional<int> settle_minutes,
                               const IrritabilityPolicy& policy = {});

struct PatternResult {
  PainPattern pattern = PainPattern::kUnknown;
  std::vector<std::string> criteria;  // the Berlin criteria met (inflammatory), or the mechanical features
};
// Inflammatory when at least 2 of the 4 Berlin criteria (Rudwaleit et al. 2006): morning
// stiffness over 30 minutes, better with exercise but not with rest, waking in the second
// half of the night, alternating buttock pain. Mechanical when posture or load
// aggravates it, it is worse at the end of the day, or a position change eases it.
PatternResult JudgePainPattern(const ClinicalFindings& findings);

// kg / m^2 to one decimal; nullopt unless both are known.
std::optional<double> BodyMassIndex(std::optional<int> height_cm, std::optional<int> weight_kg);

enum class Phase { kSymptomModulation, kMovementControl, kFunctionOptimisation };

// Defaults: symptom modulation when pain >= 7 or ODI > 40; function optimisation
// when pain <= 3 and ODI <= 20; movement control otherwise.
struct ClassificationPolicy {
  double modulation_min_nprs = 7;
  double modulation_above_odi = 40;
  double optimisation_max_nprs = 3;
  double optimisation_max_odi = 20;
  // Stabilisation: criteria of 4 (age < 40, SLR > 91 deg, aberrant movements,
  // positive prone instability test) needed; UNVERIFIED, default 3.
  int stabilisation_min_criteria = 3;
  IrritabilityPolicy irritability;
};

enum class Subgroup { kUnclassified, kManipulation, kSpecificExercise, kStabilisation };

struct SubgroupResult {
  Subgroup subgroup = Subgroup::kUnclassified;
  std::string direction;                    // specific exercise: "extension", "flexion", "lateral_shift"
  std::vector<std::string> criteria_met;    // of the chosen subgroup
  int manipulation_criteria_met = 0;        // of Flynn's 5
  bool manipulation_two_factor = false;     // Fritz 2005
  std::vector<std::string> notes;           // e.g. why a traction candidate went to specific exercise
};

struct Classification {
  std::optional<StartBackRisk> start_back;
  std::optional<Phase> phase;
  std::string phase_reason;
  SubgroupResult subgroup;
  Irritability irritability = Irritability::kUnknown;
  PatternResult pain_pattern;
  std::optional<double> bmi;
};

std::optional<Phase> ChoosePhase(std::optional<double> nprs, std::optional<double> odi_percent,
                                 const ClassificationPolicy& policy);
SubgroupResult ChooseSubgroup(const ClinicalFindings& findings, const ClassificationPolicy& policy);
Classification Classify(const ClinicalFindings& findings, const std::vector<InstrumentResult>& scores,
                        const ClassificationPolicy& policy);

}  // namespace physio::assessment
