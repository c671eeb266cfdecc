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

struct CourseInput {
  CourseGroup group = CourseGroup::kUnknown;
  int weeks_since_start = 0;
  int expected_weeks = 0;
  std::vector<int> review_weeks;
  std::optional<double> baseline_pain, recent_pain;  // NPRS
  std::optional<double> baseline_odi, latest_odi;
  std::optional<double> baseline_rmdq, latest_rmdq;
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
