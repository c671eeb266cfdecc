#pragma once
// The expected course of an episode in plain words for a patient app, from the
// plan's intensity (the STarT Back group it was stratified by), its phase, how long
// the episode had lasted at assessment (the published course of acute or persistent
// pain, da Costa 2012), the review weeks, and where the patient is now. Only
// published figures are quoted, each with its source (docs/clinical-rules.md).
#include <optional>
#include <string>
#include <vector>

#include "evaluation.h"

namespace physio::progress {

enum class CourseGroup { kUnknown, kLowRisk, kMediumRisk, kHighRisk };
enum class CourseStatus { kTooEarly, kOnTrack, kSlowerThanExpected, kRecovered, kNeedsReview };
enum class CoursePhase { kUnknown, kSymptomModulation, kMovementControl, kFunctionOptimisation };
// da Costa et al., CMAJ 2012: cohorts under 6 weeks (recent onset) and 6 weeks or more (persistent).
enum class CourseBasis { kUnknown, kRecentOnset, kPersistent };

// An outcome's baseline and its latest (for pain: recent mean) value.
struct FromTo {
  double baseline;
  double now;
};

struct CourseInput {
  CourseGroup group = CourseGroup::kUnknown;
  CoursePhase phase = CoursePhase::kUnknown;
  std::optional<int> episode_days_at_assessment;
  int weeks_since_start = 0;
  int expected_weeks = 0;
  std::vector<int> review_weeks;
  std::optional<FromTo> pain;  // NPRS
  std::optional<FromTo> odi;
  std::optional<FromTo> rmdq;
  EarlyResponse early_response = EarlyResponse::kTooEarly;
  ResponderStatus responder = ResponderStatus::kTooEarly;
  bool recovered = false;
  // Any of these, and the patient is told the clinic will review the plan, never "on track".
  bool plan_suspended = false;
  bool deteriorated = false;  // an outcome meaningfully worse, or a flare
  int open_alerts = 0;
};

struct CourseMilestone {
  int week;
  std::string expectation;
  std::optional<double> typical_pain;  // baseline pain scaled by the published course, from week 6
};

struct ExpectedCourse {
  std::string summary;                  // what usually happens, in plain words
  std::vector<CourseMilestone> milestones;
  CourseStatus status = CourseStatus::kTooEarly;
  std::string where_now;                // where the patient is against it, in plain words
  std::vector<std::string> sources;
  CourseBasis basis = CourseBasis::kUnknown;
};

CourseBasis CourseBasisOf(std::optional<int> episode_days_at_assessment);

// The published mean pain at `week` as a fraction of the mean at the start (da Costa 2012:
// 6, 26 and 52 weeks, linear in between, flat after 52); nullopt before week 6 or with no basis.
std::optional<double> TypicalPainFraction(CourseBasis basis, int week);

ExpectedCourse BuildExpectedCourse(const CourseInput& input);

}  // namespace physio::progress
