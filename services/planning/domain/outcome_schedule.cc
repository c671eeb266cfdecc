#include "outcome_schedule.h"

#include <algorithm>
#include <map>
#include <set>

namespace physio::planning {

std::vector<ScheduledMeasureDraft> OutcomeSchedule(bool treatment, const std::vector<int>& review_weeks,
                                                   int expected_weeks, const std::vector<GoalMeasure>& assessed,
                                                   const OutcomeSchedulePolicy& policy) {
  std::vector<ScheduledMeasureDraft> schedule;
  if (!treatment) return schedule;
  const int last_day = std::max(1, expected_weeks) * 7;
  // Review points and the end, each once, within the episode (a review brought forward counts).
  std::set<int> review_days;
  for (const int week : review_weeks) {
    if (week > 0 && week * 7 <= last_day) review_days.insert(week * 7);
  }
  review_days.insert(last_day);
  std::map<std::pair<int, int>, ScheduledMeasureDraft> by_day;  // (day, measure) -> entry
  if (policy.nprs_every_days > 0) {
    for (int day = policy.nprs_every_days; day <= last_day; day += policy.nprs_every_days) {
      by_day[{day, static_cast<int>(GoalMeasure::kNprs)}] = {GoalMeasure::kNprs, day, "weekly pain"};
    }
  }
  for (const int day : review_days) {
    const std::string purpose = day == last_day ? "end of the expected episode" : "review point, week " + std::to_string(day / 7);
    // Pain at every review too, whatever the weekly rhythm.
    by_day[{day, static_cast<int>(GoalMeasure::kNprs)}] = {GoalMeasure::kNprs, day, purpose};
    for (const GoalMeasure measure : {GoalMeasure::kOdi, GoalMeasure::kRmdq, GoalMeasure::kPsfs}) {
      if (std::find(assessed.begin(), assessed.end(), measure) == assessed.end()) continue;
      by_day[{day, static_cast<int>(measure)}] = {measure, day, purpose};
    }
  }
  for (auto& [key, entry] : by_day) schedule.push_back(std::move(entry));
  return schedule;
}

}  // namespace physio::planning
