#include "domain/plan_rules.h"

#include <gtest/gtest.h>

namespace physio::planning {
namespace {

const PlanItemDraft* Find(const PlanDraft& plan, const std::string& id) {
  for (const auto& item : plan.items) {
    if (item.id == id) return &item;
  }
  return nullptr;
}

TEST(PlanGeneration, EveryItemHasAReasonAndASourceAndSelfManagementIsAlwaysThere) {
  for (auto input : {PlanInput{Phase::kSymptomModulation, 8.0, 50.0}, PlanInput{Phase::kMovementControl, 5.0, 30.0},
                     PlanInput{Phase::kFunctionOptimisation, 2.0, 10.0}}) {
    auto plan = GeneratePlanDraft(input);
    ASSERT_NE(Find(plan, "edu.self_management"), nullptr);
    bool has_exercise = false;
    for (const auto& item : plan.items) {
      EXPECT_FALSE(item.reason.empty()) << item.id;
      EXPECT_FALSE(item.source.empty()) << item.id;
      if (item.kind == ItemKind::kExercise) {
        has_exercise = true;
        EXPECT_GT(item.dose.sets, 0) << item.id;
        EXPECT_GT(item.dose.sessions_per_week, 0) << item.id;
      }
    }
    EXPECT_TRUE(has_exercise);
    EXPECT_EQ(plan.reviews.size(), 2u);
    EXPECT_EQ(plan.reviews[0].week, 2);
  }
}

TEST(PlanGeneration, DosesMatchThePhase) {
  auto modulation = GeneratePlanDraft({Phase::kSymptomModulation, 8.0, 50.0});
  EXPECT_EQ(modulation.phase, Phase::kSymptomModulation);
  ASSERT_NE(Find(modulation, "pain.heat"), nullptr);
  auto optimisation = GeneratePlanDraft({Phase::kFunctionOptimisation, 2.0, 10.0});
  const auto* bridge = Find(optimisation, "ex.strength.glute_bridge");
  ASSERT_NE(bridge, nullptr);
  // ACSM 2009: 8-12 reps, 1-3 sets, 2-3 days a week.
  EXPECT_GE(bridge->dose.reps, 8);
  EXPECT_LE(bridge->dose.reps, 12);
  EXPECT_LE(bridge->dose.sets, 3);
  EXPECT_LE(bridge->dose.sessions_per_week, 3);
}

TEST(PlanGeneration, GoalsUseTheMeaningfulChange) {
  auto plan = GeneratePlanDraft({Phase::kMovementControl, 6.0, 35.6});
  ASSERT_EQ(plan.goals.size(), 2u);
  EXPECT_EQ(plan.goals[0].measure, GoalMeasure::kNprs);
  EXPECT_DOUBLE_EQ(plan.goals[0].target, 4.0);
  EXPECT_EQ(plan.goals[1].measure, GoalMeasure::kOdi);
  EXPECT_DOUBLE_EQ(plan.goals[1].target, 25.6);  // 10-point drop (30% would be 10.7)
  auto low = GeneratePlanDraft({Phase::kFunctionOptimisation, 1.0, 20.0});
  EXPECT_DOUBLE_EQ(low.goals[0].target, 0.0);
  EXPECT_DOUBLE_EQ(low.goals[1].target, 14.0);  // 30% of 20 = 6-point drop
}

TEST(PlanGeneration, IsDeterministic) {
  auto a = GeneratePlanDraft({Phase::kMovementControl, 5.0, 30.0});
  auto b = GeneratePlanDraft({Phase::kMovementControl, 5.0, 30.0});
  ASSERT_EQ(a.items.size(), b.items.size());
  for (size_t i = 0; i < a.items.size(); ++i) EXPECT_EQ(a.items[i].id, b.items[i].id);
}

}  // namespace
}  // namespace physio::planning
