#include "domain/pain_trend.h"

#include <gtest/gtest.h>

namespace physio::progress {
namespace {

TEST(PainTrend, OrdersByTimeAndJudgesTheTwoPointChange) {
  auto trend = BuildPainTrend(PainReading{100, 6, "assessment"},
                              {{300, 3, "home_log_usual"}, {200, 5, "visit"}, {250, 4, "home_log_usual"}});
  ASSERT_EQ(trend.readings.size(), 4u);
  EXPECT_EQ(trend.readings[1].pain, 5);
  EXPECT_EQ(trend.readings[3].pain, 3);
  EXPECT_EQ(*trend.baseline, 6);
  EXPECT_EQ(*trend.latest, 3);
  EXPECT_DOUBLE_EQ(*trend.recent_mean, 4.0);  // the week's mean, not the last reading
  EXPECT_EQ(*trend.change, -2);
  EXPECT_TRUE(trend.meaningful_improvement);
}

TEST(PainTrend, OnePointIsNotMeaningfulAndWorseningIsNotImprovement) {
  auto small = BuildPainTrend(PainReading{0, 6, "assessment"}, {{10, 5, "visit"}});
  EXPECT_EQ(*small.change, -1);
  EXPECT_FALSE(small.meaningful_improvement);
  auto exactly_two = BuildPainTrend(PainReading{0, 6, "assessment"}, {{10, 4, "visit"}});
  EXPECT_TRUE(exactly_two.meaningful_improvement);
  auto worse = BuildPainTrend(PainReading{0, 4, "assessment"}, {{10, 7, "remeasure"}});
  EXPECT_EQ(*worse.change, 3);
  EXPECT_FALSE(worse.meaningful_improvement);
}

TEST(PainTrend, ASingleHomeLogAnswerCarriesNoJudgement) {
  auto one_log = BuildPainTrend(PainReading{0, 6, "assessment"}, {{10, 2, "home_log_usual"}});
  EXPECT_FALSE(one_log.judgeable);
  EXPECT_FALSE(one_log.meaningful_improvement);
  auto two_logs = BuildPainTrend(PainReading{0, 6, "assessment"}, {{10, 3, "home_log_usual"}, {20, 4, "home_log_usual"}});
  EXPECT_TRUE(two_logs.judgeable);
  EXPECT_DOUBLE_EQ(*two_logs.recent_mean, 3.5);
  EXPECT_TRUE(two_logs.meaningful_improvement);
}

// Issue 26 item 8: the 2-point threshold is for usual pain; post-exercise soreness is shown
// on the trend but never judged, whichever way it goes.
TEST(PainTrend, PainAfterExerciseIsShownButNeverJudged) {
  const int64_t day = 24 * 3600;
  // Usual pain unchanged at 6; low readings right after exercise do not make a responder.
  auto flattering = BuildPainTrend(PainReading{0, 6, "assessment"}, {{1 * day, 6, "home_log_usual"},
                                                                     {1 * day + 60, 1, "home_log"},
                                                                     {2 * day, 2, "home_log"},
                                                                     {3 * day, 6, "home_log_usual"},
                                                                     {3 * day + 60, 1, "home_log"}});
  EXPECT_EQ(flattering.readings.size(), 6u);  // all shown
  EXPECT_EQ(flattering.recent_count, 2);
  EXPECT_DOUBLE_EQ(*flattering.recent_mean, 6.0);
  EXPECT_EQ(*flattering.latest, 6);
  EXPECT_EQ(*flattering.change, 0);
  EXPECT_FALSE(flattering.meaningful_improvement);
  // Usual pain down 3; soreness after exercise at 7 does not hide it.
  auto sore = BuildPainTrend(PainReading{0, 6, "assessment"},
                             {{1 * day, 7, "home_log"}, {2 * day, 3, "visit"}, {2 * day + 60, 7, "home_log"}});
  EXPECT_DOUBLE_EQ(*sore.recent_mean, 3.0);
  EXPECT_TRUE(sore.meaningful_improvement);
  // Only post-exercise readings: no usual pain, no judgement.
  auto only_after = BuildPainTrend(PainReading{0, 6, "assessment"}, {{10, 1, "home_log"}, {20, 1, "home_log"}});
  EXPECT_FALSE(only_after.recent_mean.has_value());
  EXPECT_FALSE(only_after.latest.has_value());
  EXPECT_FALSE(only_after.change.has_value());
  EXPECT_FALSE(only_after.judgeable);
  EXPECT_FALSE(only_after.meaningful_improvement);
}

TEST(PainTrend, OnlyTheLastWeekCounts) {
  const int64_t day = 24 * 3600;
  // An early good reading three weeks back does not flatter a bad last week.
  auto trend = BuildPainTrend(PainReading{0, 6, "assessment"},
                              {{1 * day, 1, "visit"}, {20 * day, 6, "visit"}, {22 * day, 5, "remeasure"}});
  EXPECT_EQ(trend.recent_count, 2);
  EXPECT_DOUBLE_EQ(*trend.recent_mean, 5.5);
  EXPECT_FALSE(trend.meaningful_improvement);
}

TEST(PainTrend, WithoutBaselineThereIsNoChange) {
  auto trend = BuildPainTrend(std::nullopt, {{10, 5, "visit"}});
  EXPECT_FALSE(trend.baseline.has_value());
  EXPECT_EQ(*trend.latest, 5);
  EXPECT_FALSE(trend.change.has_value());
  auto empty = BuildPainTrend(PainReading{0, 5, "assessment"}, {});
  EXPECT_FALSE(empty.latest.has_value());
  EXPECT_EQ(empty.readings.size(), 1u);
}

}  // namespace
}  // namespace physio::progress
