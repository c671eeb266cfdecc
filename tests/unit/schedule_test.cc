// Outcome schedules (issue 29): when a plan's questionnaires are due (planning's rule) and
// which are due, overdue, upcoming or answered (progress's rule).
#include <gtest/gtest.h>

#include "domain/due_tasks.h"
#include "domain/outcome_schedule.h"

namespace physio {
namespace {

using planning::GoalMeasure;

TEST(OutcomeSchedule, WeeklyPainAndTheBaselinesMeasuresAtEachReviewAndTheEnd) {
  const auto schedule = planning::OutcomeSchedule(true, {2, 6, 20}, 8, {GoalMeasure::kOdi, GoalMeasure::kPsfs}, {7});
  std::vector<std::pair<int, GoalMeasure>> got;
  for (const auto& entry : schedule) got.emplace_back(entry.day, entry.measure);
  const std::vector<std::pair<int, GoalMeasure>> expected = {
      {7, GoalMeasure::kNprs},  {14, GoalMeasure::kNprs}, {14, GoalMeasure::kOdi},  {14, GoalMeasure::kPsfs},
      {21, GoalMeasure::kNprs}, {28, GoalMeasure::kNprs}, {35, GoalMeasure::kNprs}, {42, GoalMeasure::kNprs},
      {42, GoalMeasure::kOdi},  {42, GoalMeasure::kPsfs}, {49, GoalMeasure::kNprs}, {56, GoalMeasure::kNprs},
      {56, GoalMeasure::kOdi},  {56, GoalMeasure::kPsfs}};
  EXPECT_EQ(got, expected) << "a review past the episode's end (week 20) is left out; RMDQ was not assessed";
  EXPECT_EQ(schedule[2].purpose, "review point, week 2");
  EXPECT_EQ(schedule.back().purpose, "end of the expected episode");
}

TEST(OutcomeSchedule, AReferralSchedulesNothingAndPainCanBeReviewOnly) {
  EXPECT_TRUE(planning::OutcomeSchedule(false, {2}, 6, {GoalMeasure::kOdi}, {7}).empty());
  const auto reviews_only = planning::OutcomeSchedule(true, {3}, 6, {GoalMeasure::kRmdq}, {0});
  ASSERT_EQ(reviews_only.size(), 4u);  // NPRS and RMDQ at week 3 and week 6
  EXPECT_EQ(reviews_only[0].day, 21);
  EXPECT_EQ(reviews_only[3].day, 42);
}

constexpr std::int64_t kDay = 24 * 3600;

TEST(DueTasks, DueOverdueUpcomingAndAnsweredByTheFirstMeasureInTheWindow) {
  const std::int64_t start = 1'000'000'000;
  const std::vector<progress::ScheduledMeasure> schedule = {{"INSTRUMENT_NPRS", 7, "weekly pain"},
                                                            {"INSTRUMENT_NPRS", 14, "weekly pain"},
                                                            {"INSTRUMENT_NPRS", 21, "weekly pain"},
                                                            {"INSTRUMENT_ODI", 14, "review point, week 2"}};
  const progress::TaskPolicy policy{1, 3};
  // Day 15.5: NPRS day 7 was answered on day 6.5 (inside its window, which opens on day 6);
  // the baseline's day-0 measure answers nothing; ODI day 14 is due; NPRS day 14 is due; day 21 upcoming.
  auto tasks = progress::TasksOf(start, schedule,
                                 {{"INSTRUMENT_NPRS", start}, {"INSTRUMENT_NPRS", start + 6 * kDay + kDay / 2}},
                                 start + 15 * kDay + kDay / 2, policy);
  ASSERT_EQ(tasks.size(), 4u);
  EXPECT_EQ(tasks[0].key, "INSTRUMENT_NPRS/d7");
  EXPECT_EQ(tasks[0].state, progress::TaskState::kDone);
  EXPECT_EQ(tasks[0].answered, start + 6 * kDay + kDay / 2);
  EXPECT_EQ(tasks[1].key, "INSTRUMENT_NPRS/d14");
  EXPECT_EQ(tasks[1].state, progress::TaskState::kDue);
  EXPECT_EQ(tasks[2].key, "INSTRUMENT_ODI/d14");
  EXPECT_EQ(tasks[2].state, progress::TaskState::kDue);
  EXPECT_EQ(tasks[2].open, start + 13 * kDay);
  EXPECT_EQ(tasks[2].overdue, start + 17 * kDay);
  EXPECT_EQ(tasks[3].state, progress::TaskState::kUpcoming);

  // Day 18: the day-14 tasks are overdue. A late NPRS on day 19.5 falls in day 14's window (which
  // runs until day 21's opens, on day 20), so once it is recorded it answers day 14's.
  tasks = progress::TasksOf(start, schedule, {{"INSTRUMENT_NPRS", start + 19 * kDay + kDay / 2}}, start + 18 * kDay,
                            policy);
  EXPECT_EQ(tasks[0].state, progress::TaskState::kOverdue);  // NPRS day 7: nothing in [6, 13)
  EXPECT_EQ(tasks[1].state, progress::TaskState::kOverdue) << "a measure in the future answers nothing yet";
  EXPECT_EQ(tasks[2].state, progress::TaskState::kOverdue);
  tasks = progress::TasksOf(start, schedule, {{"INSTRUMENT_NPRS", start + 19 * kDay + kDay / 2}}, start + 20 * kDay,
                            policy);
  EXPECT_EQ(tasks[1].state, progress::TaskState::kDone) << "late, but before the next window opened";
  EXPECT_EQ(tasks[3].state, progress::TaskState::kDue);
}

}  // namespace
}  // namespace physio
