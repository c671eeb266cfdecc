// The session-documentation rules (issue 32 item 2): what repeated-movement responses and treatment
// responses at a visit do to the plan, and range of movement against the last visit.
#include <gtest/gtest.h>

#include "domain/session_record.h"

namespace physio::progress {
namespace {

using R = SymptomResponse;

TEST(JudgeSession, PeripheralisingWithARepeatedMovementStopsItsDirection) {
  const auto judged = JudgeSession({{"repeated extension in lying", "extension", R::kPeripheralising},
                                    {"repeated extension in standing", "extension", R::kPeripheralising}},
                                   {}, "extension", {});
  EXPECT_EQ(judged.stop_directions, std::vector<std::string>{"extension"});
  EXPECT_TRUE(judged.peripheralised());
  EXPECT_TRUE(judged.reassess.empty());
  ASSERT_EQ(judged.findings.size(), 2u);
  EXPECT_EQ(judged.findings[0], "stopped: extension (peripheralising with repeated extension in lying)");
}

TEST(JudgeSession, CentralisingWithThePlansDirectionConfirmsItAndChangesNothing) {
  const auto judged = JudgeSession({{"repeated extension in lying", "extension", R::kCentralising}},
                                   {{"ex.dir.prone_press_up", true, R::kBetter}}, "extension", {});
  EXPECT_FALSE(judged.peripheralised());
  EXPECT_TRUE(judged.reassess.empty());
  EXPECT_TRUE(judged.findings.empty());
}

TEST(JudgeSession, CentralisingWithAnotherDirectionOrAStoppedOneCallsForReassessment) {
  auto judged = JudgeSession({{"repeated flexion in lying", "flexion", R::kCentralising}}, {}, "extension", {});
  ASSERT_EQ(judged.reassess.size(), 1u);
  EXPECT_EQ(judged.reassess[0],
            "centralising with repeated flexion in lying; the plan follows extension: re-assess the directional preference");
  judged = JudgeSession({{"repeated flexion in lying", "flexion", R::kCentralising}}, {}, "", {});
  EXPECT_NE(judged.reassess.at(0).find("the plan follows no direction"), std::string::npos);
  judged = JudgeSession({{"repeated extension in lying", "extension", R::kCentralising}}, {}, "extension", {"extension"});
  EXPECT_NE(judged.reassess.at(0).find("extension was stopped"), std::string::npos);
}

TEST(JudgeSession, PeripheralisingWinsOverCentralisingInTheSameDirection) {
  const auto judged = JudgeSession({{"repeated flexion in standing", "flexion", R::kPeripheralising},
                                    {"repeated flexion in lying", "flexion", R::kCentralising}},
                                   {}, "extension", {});
  EXPECT_EQ(judged.stop_directions, std::vector<std::string>{"flexion"});
  EXPECT_TRUE(judged.reassess.empty());
}

TEST(JudgeSession, TreatmentResponses) {
  const auto judged = JudgeSession({},
                                   {{"ex.dir.prone_press_up", true, R::kPeripheralising},
                                    {"manual.lumbar_mobilisation", false, R::kPeripheralising},
                                    {"ex.motor.bird_dog", false, R::kWorse},
                                    {"ex.motor.abdominal_bracing", false, R::kNoEffect}},
                                   "extension", {});
  EXPECT_EQ(judged.stop_item_ids, std::vector<std::string>{"ex.dir.prone_press_up"});
  EXPECT_TRUE(judged.stop_directions.empty());
  ASSERT_EQ(judged.reassess.size(), 1u) << "a non-directional treatment cannot be stopped by direction";
  EXPECT_EQ(judged.reassess[0], "peripheralising with manual.lumbar_mobilisation: re-assess");
  EXPECT_EQ(judged.worse_item_ids, std::vector<std::string>{"ex.motor.bird_dog"});
  EXPECT_TRUE(judged.peripheralised());
}

TEST(CompareRange, BetterAndWorseAgainstTheLastMeasure) {
  const std::vector<RangeReading> before = {{"flexion", 2, true}, {"extension", 1, false}, {"rotation left", 0, false}};
  const std::vector<RangeReading> now = {{"flexion", 1, false}, {"extension", 1, true}, {"rotation left", 0, false},
                                         {"side flexion left", 3, false}};
  const auto lines = CompareRange(before, now);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0], "better since the last visit: flexion moderate loss (painful) -> minimal loss");
  EXPECT_EQ(lines[1], "worse since the last visit: extension minimal loss -> minimal loss (painful)");
}

}  // namespace
}  // namespace physio::progress
