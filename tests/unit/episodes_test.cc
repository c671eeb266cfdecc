// Episodes of care (issue 32 part 4): which episode a plan taking effect belongs to.
#include <gtest/gtest.h>

#include "domain/episodes.h"

namespace physio::planning {
namespace {

constexpr std::int64_t kDay = 24 * 3600;
constexpr std::int64_t kNow = 1'800'000'000;

TEST(Episodes, TheFirstPlanStartsAnEpisodeNamedAfterIt) {
  const auto choice = EpisodeForPlan(std::nullopt, "plan-1", kNow, 90);
  EXPECT_EQ(choice.episode_id, "plan-1");
  EXPECT_FALSE(choice.relapse);
}

TEST(Episodes, APlanSupersedingOneInUseCarriesItsEpisodeOn) {
  const auto choice = EpisodeForPlan(LatestEpisode{"plan-1", true, 0}, "plan-2", kNow, 90);
  EXPECT_EQ(choice.episode_id, "plan-1");
  EXPECT_FALSE(choice.relapse) << "a re-assessment's plan is not a relapse";
}

TEST(Episodes, APlanWithinTheWindowAfterTheEndIsARelapseOfThatEpisode) {
  const auto choice = EpisodeForPlan(LatestEpisode{"plan-1", false, kNow - 90 * kDay}, "plan-2", kNow, 90);
  EXPECT_EQ(choice.episode_id, "plan-1");
  EXPECT_TRUE(choice.relapse) << "exactly the window still counts";
}

TEST(Episodes, APlanAfterTheWindowStartsANewEpisode) {
  const auto choice = EpisodeForPlan(LatestEpisode{"plan-1", false, kNow - 90 * kDay - 1}, "plan-2", kNow, 90);
  EXPECT_EQ(choice.episode_id, "plan-2");
  EXPECT_FALSE(choice.relapse);
}

TEST(Episodes, AWindowOfZeroTurnsRelapsesOff) {
  const auto choice = EpisodeForPlan(LatestEpisode{"plan-1", false, kNow - 1}, "plan-2", kNow, 0);
  EXPECT_EQ(choice.episode_id, "plan-2");
  EXPECT_FALSE(choice.relapse);
}

}  // namespace
}  // namespace physio::planning

// Work participation (issue 32 part 3): a graded return to work for someone off work or on
// modified duties, nothing for anyone else.
#include "domain/plan_rules.h"

namespace physio::planning {
namespace {

TEST(ReturnToWork, SomeoneOffWorkGetsAGradedReturnFromThePlannedDateAndAGoal) {
  PlanInput::Work work;
  work.status = WorkStatus::kOffWork;
  work.usual_hours = 40;
  work.days_off = 21;
  work.fit_note = true;
  work.planned_return_in_days = 14;
  work.obstacles = {"no_modified_duties", "heavy_lifting"};
  const auto plan = GradedReturnToWork(work);
  ASSERT_TRUE(plan);
  const std::string& text = plan->item.instructions;
  EXPECT_EQ(plan->item.id, "work.graded_return");
  EXPECT_NE(text.find("off work for 21 days"), std::string::npos) << text;
  EXPECT_NE(text.find("planned in 14 days"), std::string::npos) << text;
  EXPECT_NE(text.find("phased return or amended duties"), std::string::npos) << "the fit note: " << text;
  // Returning in two weeks: weeks 3-4 half (20 h), 5-6 three quarters (30 h), usual from week 7.
  EXPECT_NE(text.find("weeks 3-4 about half your usual hours (about 20 hours a week)"), std::string::npos) << text;
  EXPECT_NE(text.find("weeks 5-6 about three quarters (about 30 hours a week)"), std::string::npos) << text;
  EXPECT_NE(text.find("from week 7 your usual hours (about 40 hours a week)"), std::string::npos) << text;
  EXPECT_NE(text.find("no modified duties, heavy lifting"), std::string::npos) << text;
  EXPECT_NE(plan->item.source.find("NICE NG59"), std::string::npos);
  EXPECT_EQ(plan->goal.description, "Back at your usual work (40 hours a week) by week 7");
  EXPECT_EQ(plan->goal.measure, GoalMeasure::kWorkHours);
  EXPECT_EQ(plan->goal.target, 40);
}

TEST(ReturnToWork, ModifiedDutiesStepUpFromNow) {
  PlanInput::Work work;
  work.status = WorkStatus::kModifiedDuties;
  work.current_hours = 16;
  const auto plan = GradedReturnToWork(work);
  ASSERT_TRUE(plan);
  EXPECT_NE(plan->item.instructions.find("16 hours a week now"), std::string::npos) << plan->item.instructions;
  EXPECT_NE(plan->item.instructions.find("weeks 1-2 about half your usual hours on lighter duties"), std::string::npos)
      << "no usual hours given: no hour figures" << plan->item.instructions;
  EXPECT_EQ(plan->goal.description, "Back at your usual work by week 5");
  EXPECT_EQ(plan->goal.target, 0);
}

TEST(ReturnToWork, NobodyElseGetsOne) {
  for (auto status : {WorkStatus::kUnknown, WorkStatus::kWorking, WorkStatus::kNotEmployed, WorkStatus::kRetired}) {
    PlanInput::Work work;
    work.status = status;
    EXPECT_FALSE(GradedReturnToWork(work)) << static_cast<int>(status);
  }
}

}  // namespace
}  // namespace physio::planning
