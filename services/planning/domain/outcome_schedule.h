#pragma once
// When a plan's outcome measures are due (issue 29): pain (NPRS) every few days, and the
// disability and function measures the patient was assessed with (ODI, RMDQ, PSFS) at each
// review point and at the episode's expected end, so that re-measures arrive evenly and the
// evaluation's review points have their measures (the design's clinical reference: re-measure
// at baseline, about 2 weeks, 4-6 weeks and discharge, pain at every contact;
// docs/clinical-rules.md "Outcome schedule").
// Plain C++, no I/O.
#include <string>
#include <vector>

#include "plan_rules.h"

namespace physio::planning {

struct OutcomeSchedulePolicy {
  int nprs_every_days = 7;  // 0: no weekly pain questionnaire
};

struct ScheduledMeasureDraft {
  GoalMeasure measure = GoalMeasure::kNprs;  // kNprs, kOdi, kRmdq or kPsfs
  int day = 0;                               // after the plan took effect
  std::string purpose;
};

// `review_weeks`: the plan's review points; `expected_weeks`: the episode's expected length;
// `assessed`: the measures of the baseline (which of ODI, RMDQ, PSFS to re-measure). Days in
// order; one entry per (measure, day); a referral plan schedules nothing (`treatment` false).
std::vector<ScheduledMeasureDraft> OutcomeSchedule(bool treatment, const std::vector<int>& review_weeks,
                                                   int expected_weeks, const std::vector<GoalMeasure>& assessed,
                                                   const OutcomeSchedulePolicy& policy);

}  // namespace physio::planning
