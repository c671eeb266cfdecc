// RMDQ, STarT Back, FABQ and PSFS scoring against hand-computed cases and the
// boundaries in the clinical reference.
#include <gtest/gtest.h>

#include "domain/instruments.h"
#include "physio/common/error.h"

namespace physio::assessment {
namespace {

std::vector<ItemAnswer> Items(InstrumentKind kind, const std::vector<int>& values, int first = 1) {
  std::vector<ItemAnswer> answers;
  const std::string code = SpecFor(kind).code;
  for (size_t i = 0; i < values.size(); ++i) {
    if (values[i] < 0) continue;  // -1 leaves the item unanswered
    answers.push_back({kind, code + "." + std::to_string(first + i), values[i], false, ""});
  }
  return answers;
}

double SubscoreOf(const InstrumentResult& result, const std::string& name) {
  for (const auto& s : result.subscores) {
    if (s.name == name) return s.value;
  }
  ADD_FAILURE() << "no subscore " << name;
  return -1;
}

ErrorCode Fails(const std::function<void()>& fn, std::string* message = nullptr) {
  try {
    fn();
  } catch (const Error& e) {
    if (message) *message = e.what();
    return e.code();
  }
  return ErrorCode::kInternal;
}

TEST(Rmdq, CountsYesAnswers) {
  std::vector<int> values(24, 0);
  for (int i : {0, 3, 7, 10, 15, 20, 23}) values[i] = 1;
  auto result = Score(InstrumentKind::kRmdq, Items(InstrumentKind::kRmdq, values), {});
  EXPECT_DOUBLE_EQ(result.score, 7);
  EXPECT_DOUBLE_EQ(result.mcid, 5);
  EXPECT_DOUBLE_EQ(Score(InstrumentKind::kRmdq, Items(InstrumentKind::kRmdq, std::vector<int>(24, 1)), {}).score, 24);
}

TEST(Rmdq, EveryStatementMustBeAnsweredAndOnlyYesOrNo) {
  std::vector<int> values(24, 0);
  values[12] = -1;
  std::string message;
  EXPECT_EQ(Fails([&] { Score(InstrumentKind::kRmdq, Items(InstrumentKind::kRmdq, values), {}); }, &message),
            ErrorCode::kFailedPrecondition);
  EXPECT_NE(message.find("rmdq.13"), std::string::npos);
  EXPECT_EQ(Fails([&] { ValidateAnswer("answers[0]", {InstrumentKind::kRmdq, "rmdq.1", 2, false, ""}); }, &message),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(message, "answers[0].value: rmdq item rmdq.1 must be 0-1, got 2");
}

TEST(StartBack, AllAgreeAndExtremelyIsHighRisk) {
  auto result = Score(InstrumentKind::kStartBack, Items(InstrumentKind::kStartBack, {1, 1, 1, 1, 1, 1, 1, 1, 4}), {});
  EXPECT_DOUBLE_EQ(result.score, 9);
  EXPECT_DOUBLE_EQ(SubscoreOf(result, "psychosocial"), 5);
  EXPECT_EQ(result.band, "high");
}

TEST(StartBack, ItemNineCountsOnlyForVeryMuchOrExtremely) {
  // Items 1-3 agree: total 3 whatever item 9 says below "very much".
  for (int bother : {0, 1, 2}) {
    auto low = Score(InstrumentKind::kStartBack, Items(InstrumentKind::kStartBack, {1, 1, 1, 0, 0, 0, 0, 0, bother}), {});
    EXPECT_DOUBLE_EQ(low.score, 3) << bother;
    EXPECT_EQ(low.band, "low");
  }
  auto very_much = Score(InstrumentKind::kStartBack, Items(InstrumentKind::kStartBack, {1, 1, 1, 0, 0, 0, 0, 0, 3}), {});
  EXPECT_DOUBLE_EQ(very_much.score, 4);
  EXPECT_DOUBLE_EQ(SubscoreOf(very_much, "psychosocial"), 1);
  EXPECT_EQ(very_much.band, "medium");
}

TEST(StartBack, RiskBoundaries) {
  EXPECT_EQ(StartBackRiskOf(3, 3), StartBackRisk::kLow);   // total <= 3 is low even with subscore 3
  EXPECT_EQ(StartBackRiskOf(4, 3), StartBackRisk::kMedium);
  EXPECT_EQ(StartBackRiskOf(4, 4), StartBackRisk::kHigh);  // psychosocial items 5-8 agree
  EXPECT_EQ(StartBackRiskOf(9, 3), StartBackRisk::kMedium);
  auto high = Score(InstrumentKind::kStartBack, Items(InstrumentKind::kStartBack, {0, 0, 0, 0, 1, 1, 1, 1, 0}), {});
  EXPECT_EQ(high.band, "high");
  std::string message;
  EXPECT_EQ(Fails([&] { ValidateAnswer("a", {InstrumentKind::kStartBack, "sbt.3", 4, false, ""}); }, &message),
            ErrorCode::kInvalidArgument);
  EXPECT_NO_THROW(ValidateAnswer("a", {InstrumentKind::kStartBack, "sbt.9", 4, false, ""}));
}

TEST(Fabq, SubscalesUseTheirItemsOnly) {
  std::vector<int> values(16, 0);
  for (int i : {2, 3, 4, 5}) values[i - 1] = 3;                  // PA = 12
  for (int i : {6, 7, 9, 10, 11, 12, 15}) values[i - 1] = 4;     // work = 28
  for (int i : {1, 8, 13, 14, 16}) values[i - 1] = 6;            // unscored
  auto result = Score(InstrumentKind::kFabq, Items(InstrumentKind::kFabq, values), {});
  EXPECT_DOUBLE_EQ(SubscoreOf(result, "physical_activity"), 12);
  EXPECT_DOUBLE_EQ(SubscoreOf(result, "work"), 28);
  EXPECT_DOUBLE_EQ(result.score, 28);
  EXPECT_TRUE(result.flags.empty());
}

TEST(Fabq, ElevatedFlagsAndConfigurableWorkCutoff) {
  std::vector<int> values(16, 6);
  auto max = Score(InstrumentKind::kFabq, Items(InstrumentKind::kFabq, values), {});
  EXPECT_DOUBLE_EQ(SubscoreOf(max, "physical_activity"), 24);
  EXPECT_DOUBLE_EQ(SubscoreOf(max, "work"), 42);
  EXPECT_EQ(max.flags, (std::vector<std::string>{"fabq_work_elevated", "fabq_physical_activity_elevated"}));
  // Work exactly 30 is above 29 but not above 34.
  std::vector<int> thirty(16, 0);
  for (int i : {6, 7, 9, 10, 11}) thirty[i - 1] = 6;  // 30
  ScoringPolicy strict;
  strict.fabq_work_elevated_above = 34;
  EXPECT_EQ(Score(InstrumentKind::kFabq, Items(InstrumentKind::kFabq, thirty), {}).flags,
            std::vector<std::string>{"fabq_work_elevated"});
  EXPECT_TRUE(Score(InstrumentKind::kFabq, Items(InstrumentKind::kFabq, thirty), strict).flags.empty());
  // PA 14 is not elevated, 15 is.
  std::vector<int> pa(16, 0);
  pa[1] = 6; pa[2] = 6; pa[3] = 2;
  EXPECT_TRUE(Score(InstrumentKind::kFabq, Items(InstrumentKind::kFabq, pa), {}).flags.empty());
  pa[4] = 1;
  EXPECT_EQ(Score(InstrumentKind::kFabq, Items(InstrumentKind::kFabq, pa), {}).flags,
            std::vector<std::string>{"fabq_physical_activity_elevated"});
}

TEST(Fabq, UnscoredItemsAreOptionalScoredOnesAreNot) {
  std::vector<int> values(16, 2);
  for (int i : {1, 8, 13, 14, 16}) values[i - 1] = -1;
  EXPECT_TRUE(CompletenessOf(InstrumentKind::kFabq, Items(InstrumentKind::kFabq, values), {}).complete);
  values[9] = -1;  // item 10 is in the work subscale
  EXPECT_FALSE(CompletenessOf(InstrumentKind::kFabq, Items(InstrumentKind::kFabq, values), {}).complete);
  std::string message;
  EXPECT_EQ(Fails([&] { Score(InstrumentKind::kFabq, Items(InstrumentKind::kFabq, values), {}); }, &message),
            ErrorCode::kFailedPrecondition);
  EXPECT_NE(message.find("fabq.10"), std::string::npos);
}

std::vector<ItemAnswer> Psfs(const std::vector<int>& ratings) {
  std::vector<ItemAnswer> answers;
  for (size_t i = 0; i < ratings.size(); ++i) {
    answers.push_back({InstrumentKind::kPsfs, "psfs." + std::to_string(i + 1), ratings[i], false,
                       "activity " + std::to_string(i + 1)});
  }
  return answers;
}

TEST(Psfs, MeanOfThreeToFiveActivities) {
  EXPECT_DOUBLE_EQ(Score(InstrumentKind::kPsfs, Psfs({4, 5, 6}), {}).score, 5.0);
  EXPECT_DOUBLE_EQ(Score(InstrumentKind::kPsfs, Psfs({3, 4, 4, 5}), {}).score, 4.0);
  EXPECT_DOUBLE_EQ(Score(InstrumentKind::kPsfs, Psfs({1, 2, 2, 3, 3}), {}).score, 2.2);
  EXPECT_DOUBLE_EQ(Score(InstrumentKind::kPsfs, Psfs({7, 8, 8}), {}).score, 7.67);
  EXPECT_DOUBLE_EQ(Score(InstrumentKind::kPsfs, Psfs({4, 5, 6}), {}).mcid, 2);
}

TEST(Psfs, FewerThanThreeActivitiesCannotBeScoredAndTextIsRequired) {
  EXPECT_FALSE(CompletenessOf(InstrumentKind::kPsfs, Psfs({4, 5}), {}).complete);
  EXPECT_TRUE(CompletenessOf(InstrumentKind::kPsfs, Psfs({4, 5, 6}), {}).complete);
  EXPECT_EQ(Fails([&] { Score(InstrumentKind::kPsfs, Psfs({4, 5}), {}); }), ErrorCode::kFailedPrecondition);
  std::string message;
  EXPECT_EQ(Fails([&] { ValidateAnswer("answers[0]", {InstrumentKind::kPsfs, "psfs.1", 5, false, ""}); }, &message),
            ErrorCode::kInvalidArgument);
  EXPECT_NE(message.find("answers[0].text"), std::string::npos);
  EXPECT_EQ(Fails([&] { ValidateAnswer("a", {InstrumentKind::kPsfs, "psfs.6", 5, false, "x"}); }),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(Fails([&] { ValidateAnswer("a", {InstrumentKind::kPsfs, "psfs.1", 5, false, std::string(101, 'a')}); }),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(Fails([&] { ValidateAnswer("a", {InstrumentKind::kNprs, "nprs", 5, false, "text"}); }),
            ErrorCode::kInvalidArgument);
}

TEST(Instruments, CodesRoundTrip) {
  for (InstrumentKind kind : AllInstruments()) EXPECT_EQ(KindOfCode(SpecFor(kind).code), kind);
  EXPECT_FALSE(KindOfCode("nope").has_value());
}

}  // namespace
}  // namespace physio::assessment
