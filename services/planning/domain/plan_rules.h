#pragma once
// Plan generation rules as plain C++: the same input and rules version always
// give the same plan. Sources are cited per item. The phase comes from the
// assessment's classification (its cut-offs are configured in the assessment service).
#include <optional>
#include <string>
#include <vector>

namespace physio::planning {

inline constexpr const char* kRulesVersion = "2026.11.1";

enum class Phase { kSymptomModulation, kMovementControl, kFunctionOptimisation };
enum class ItemKind { kExercise, kEducation, kPainManagement, kLifestyle };
enum class GoalMeasure { kNprs, kOdi };

struct PlanInput {
  Phase phase;                        // from the assessment's classification
  std::optional<double> nprs;         // baseline pain 0-10
  std::optional<double> odi_percent;  // baseline Oswestry 0-100
};

struct Dose {
  int sets = 0;
  int reps = 0;
  int hold_seconds = 0;
  int sessions_per_week = 0;
  int duration_minutes = 0;  // for time-based exercise (walking, cycling)
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

PlanDraft GeneratePlanDraft(const PlanInput& input);

}  // namespace physio::planning
