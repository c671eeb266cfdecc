#pragma once
// The expected course of an episode in plain words for a patient app, from the
// plan's intensity (the STarT Back group it was stratified by), the review weeks,
// and where the patient is now. Only published figures are quoted, each with its
// source (../shared/design/clinical-reference.md, "Expectation setting").
#include <optional>
#include <string>
#include <vector>

#include "evaluation.h"

namespace physio::progress {

enum class CourseGroup { kUnknown, kLowRisk, kMediumRisk, kHighRisk };
enum class CourseStatus { kTooEarly, kOnTrack, kSlowerThanExpected, kRecovered };

// An outcome's baseline and its latest (for pain: recent mean) value.
struct FromTo {
  double baseline;
  double now;
};

struct CourseInput {
  CourseGroup group = CourseGroup::kUnknown;
  int expected_weeks = 0;
  std::vector<int> review_weeks;
  std::optional<FromTo> pain;  // NPRS
  std::optional<FromTo> odi;
  std::optional<FromTo> rmdq;
  EarlyResponse early_response = EarlyResponse::kTooEarly;
  ResponderStatus responder = ResponderStatus::kTooEarly;
  bool recovered = false;
};

struct CourseMilestone {
  int week;
  std::string expectation;
};

struct ExpectedCourse {
  std::string summary;                  // what usually happens, in plain words
  std::vector<CourseMilestone> milestones;
  CourseStatus status = CourseStatus::kTooEarly;
  std::string where_now;                // where the patient is against it, in plain words
  std::vector<std::string> sources;
};

ExpectedCourse BuildExpectedCourse(const CourseInput& input);

}  // namespace physio::progress
