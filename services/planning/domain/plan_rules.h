#pragma once
// Plan generation rules as plain C++: the same input and rules version always
// give the same plan. Sources are cited per item; cut-offs marked UNVERIFIED in
// the clinical reference are configurable (PhaseCutoffs) with documented defaults.
#include <optional>
#include <string>
#include <vector>

namespace physio::planning {

inline constexpr const char* kRulesVersion = "2026.11.1";

enum class Phase { kSymptomModulation, kMovementControl, kFunctionOptimisation };
enum class ItemKind { kExercise, kEducation, kPainManagement, kLifestyle };
enum class GoalMeasure { kNprs, kOdi };

struct PlanInput {
  std::optional<double> nprs;         // baseline pain 0-10
  std::optional<double> odi_percent;  // baseline Oswestry 0-100
};

// Status-based phase cut-offs (Alrwaily 2016 names the phases; the numbers are
// UNVERIFIED design defaults): symptom modulation when pain >= 7 or ODI > 40;
// function optimisation when pain <= 3 and ODI <= 20; movement control otherwise.
struct PhaseCutoffs {
  double modulation_min_nprs = 7;
  double modulation_above_odi = 40;
  double optimisation_max_nprs = 3;
  double optimisation_max_odi = 20;
};

struct Dose {
  int sets = 0;
  int reps = 0;
  int hold_seconds = 0;
  int sessions_per_week = 0;
};

struct PlanItemDraft {
  std::string id;
  ItemKind kind;
  std::string title;
  Dose dose;
  std::string reason;
  std::string source;
  bool home_programme = false;
};

struct GoalDraft {
  std::string description;
  GoalMeasure measure;
  double target = 0;
};

struct ReviewDraft {
  int week;
  std::string purpose;
};

struct PlanDraft {
  Phase phase;
  std::vector<PlanItemDraft> items;
  std::vector<GoalDraft> goals;
  std::vector<ReviewDraft> reviews;
  std::string rules_version = kRulesVersion;
};

Phase ChoosePhase(const PlanInput& input, const PhaseCutoffs& cutoffs);
PlanDraft GeneratePlanDraft(const PlanInput& input, const PhaseCutoffs& cutoffs);

}  // namespace physio::planning
