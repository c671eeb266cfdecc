#include "domain/instruments.h"

#include <gtest/gtest.h>

#include "physio/common/error.h"

namespace physio::assessment {
namespace {

std::vector<ItemAnswer> Odi(const std::vector<int>& values, const std::vector<int>& declined_sections = {}) {
  std::vector<ItemAnswer> answers;
  for (size_t i = 0; i < values.size(); ++i) {
    const int section = static_cast<int>(i) + 1;
    bool declined = std::find(declined_sections.begin(), declined_sections.end(), section) != declined_sections.end();
    answers.push_back({InstrumentKind::kOdi, "odi." + std::to_string(section), values[i], declined});
  }
  return answers;
}

ErrorCode CodeOf(const std::function<void()>& fn, std::string* message = nullptr) {
  try {
    fn();
  } catch (const Error& e) {
    if (message) *message = e.what();
    return e.code();
  }
  ADD_FAILURE() << "no error thrown";
  return ErrorCode::kInternal;
}

TEST(OdiScoring, WorkedExampleAllSectionsGives32Percent) {
  // Clinical reference: answers summing to 16 over all 10 sections give 32%.
  auto sixteen = Score(InstrumentKind::kOdi, Odi({2, 1, 3, 1, 2, 2, 1, 2, 1, 1}), {});
  EXPECT_EQ(sixteen.raw_sum, 16);
  EXPECT_DOUBLE_EQ(sixteen.score, 32.0);
  EXPECT_EQ(sixteen.band, "moderate");
  EXPECT_EQ(sixteen.answered_items, 10);
}

TEST(OdiScoring, WorkedExampleOneSkippedGives35Point6) {
  // The same 16 with one section skipped: 16 / 45 = 35.6%.
  auto result = Score(InstrumentKind::kOdi, Odi({2, 1, 3, 1, 2, 2, 1, 0, 2, 2}, {8}), {});
  EXPECT_EQ(result.raw_sum, 16);
  EXPECT_EQ(result.answered_items, 9);
  EXPECT_EQ(result.declined_items, 1);
  EXPECT_DOUBLE_EQ(result.score, 35.6);
}

TEST(OdiScoring, BandBoundariesBelongToTheLowerBand) {
  EXPECT_EQ(OdiBand(0), "minimal");
  EXPECT_EQ(OdiBand(20), "minimal");
  EXPECT_EQ(OdiBand(20.5), "moderate");
  EXPECT_EQ(OdiBand(40), "moderate");
  EXPECT_EQ(OdiBand(40.1), "severe");
  EXPECT_EQ(OdiBand(60), "severe");
  EXPECT_EQ(OdiBand(61), "crippled");
  EXPECT_EQ(OdiBand(80), "crippled");
  EXPECT_EQ(OdiBand(80.1), "bed-bound");
  EXPECT_EQ(OdiBand(100), "bed-bound");
}

TEST(OdiScoring, MaximumAndMinimum) {
  EXPECT_DOUBLE_EQ(Score(InstrumentKind::kOdi, Odi(std::vector<int>(10, 5)), {}).score, 100.0);
  EXPECT_DOUBLE_EQ(Score(InstrumentKind::kOdi, Odi(std::vector<int>(10, 0)), {}).score, 0.0);
}

TEST(OdiScoring, TooManySkippedSectionsIsInvalidUnderThePolicy) {
  ScoringPolicy policy;
  policy.odi_max_unanswered = 2;
  auto answers = Odi({1, 1, 1, 1, 1, 1, 1, 1, 1, 1});
  answers[7].declined = true;  // only odi.8 may be declined explicitly
  EXPECT_TRUE(CompletenessOf(InstrumentKind::kOdi, answers, policy).complete);
  policy.odi_max_unanswered = 0;
  EXPECT_FALSE(CompletenessOf(InstrumentKind::kOdi, answers, policy).complete);
  std::string message;
  EXPECT_EQ(CodeOf([&] { Score(InstrumentKind::kOdi, answers, policy); }, &message), ErrorCode::kFailedPrecondition);
  EXPECT_NE(message.find("declined"), std::string::npos);
}

TEST(OdiScoring, AnySectionMayBeSkippedUpToThePolicy) {
  // Fairbank & Pynsent 2000: any section, not only sex life; scored over the answered ones.
  auto answers = Odi({2, 1, 3, 1, 2, 2, 1, 0, 2, 2}, {3, 5});
  EXPECT_NO_THROW(ValidateAnswer("a", {InstrumentKind::kOdi, "odi.3", 0, true}));
  ScoringPolicy policy;
  policy.odi_max_unanswered = 2;
  auto result = Score(InstrumentKind::kOdi, answers, policy);
  EXPECT_EQ(result.answered_items, 8);
  EXPECT_EQ(result.raw_sum, 11);                 // 16 less sections 3 (3) and 5 (2)
  EXPECT_DOUBLE_EQ(result.score, 27.5);           // 11 / 40
  EXPECT_TRUE(CompletenessOf(InstrumentKind::kOdi, answers, policy).complete);
  // A section never answered counts as skipped too.
  answers.erase(answers.begin());                 // odi.1 gone: three skipped
  EXPECT_FALSE(CompletenessOf(InstrumentKind::kOdi, answers, policy).complete);
  std::string message;
  EXPECT_EQ(CodeOf([&] { Score(InstrumentKind::kOdi, answers, policy); }, &message), ErrorCode::kFailedPrecondition);
  EXPECT_EQ(message, "odi: 3 sections declined or not answered (odi.1, odi.3, odi.5); at most 2 may be skipped");
  // The policy takes effect: three may be skipped when configured so.
  policy.odi_max_unanswered = 3;
  EXPECT_NO_THROW(Score(InstrumentKind::kOdi, answers, policy));
}

TEST(OdiScoring, MissingSectionsAreNamed) {
  auto answers = Odi({1, 1, 1});
  EXPECT_FALSE(CompletenessOf(InstrumentKind::kOdi, answers, {}).complete);
  std::string message;
  EXPECT_EQ(CodeOf([&] { Score(InstrumentKind::kOdi, answers, {}); }, &message), ErrorCode::kFailedPrecondition);
  EXPECT_NE(message.find("odi.4"), std::string::npos);
  EXPECT_NE(message.find("odi.10"), std::string::npos);
}

TEST(OdiScoring, LaterAnswerToTheSameItemReplacesTheEarlier) {
  auto answers = Odi(std::vector<int>(10, 1));
  answers.push_back({InstrumentKind::kOdi, "odi.1", 5, false});
  EXPECT_EQ(Score(InstrumentKind::kOdi, answers, {}).raw_sum, 14);
}

TEST(NprsScoring, ValueIsTheScoreWithMcidTwo) {
  auto result = Score(InstrumentKind::kNprs, {{InstrumentKind::kNprs, "nprs", 7, false}}, {});
  EXPECT_DOUBLE_EQ(result.score, 7);
  EXPECT_DOUBLE_EQ(result.mcid, 2);
  EXPECT_EQ(CodeOf([&] { Score(InstrumentKind::kNprs, {}, {}); }), ErrorCode::kFailedPrecondition);
}

TEST(AnswerValidation, OutOfRangeNamesFieldInstrumentAndItem) {
  std::string message;
  EXPECT_EQ(CodeOf([&] { ValidateAnswer("answers[2]", {InstrumentKind::kOdi, "odi.3", 6, false}); }, &message),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(message, "answers[2].value: odi item odi.3 must be 0-5, got 6");
  EXPECT_EQ(CodeOf([&] { ValidateAnswer("answers[0]", {InstrumentKind::kNprs, "nprs", -1, false}); }, &message),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(message, "answers[0].value: nprs item nprs must be 0-10, got -1");
  EXPECT_NO_THROW(ValidateAnswer("a", {InstrumentKind::kNprs, "nprs", 10, false}));
  EXPECT_NO_THROW(ValidateAnswer("a", {InstrumentKind::kOdi, "odi.10", 0, false}));
}

TEST(AnswerValidation, UnknownItemAndForbiddenDecline) {
  std::string message;
  EXPECT_EQ(CodeOf([&] { ValidateAnswer("answers[0]", {InstrumentKind::kOdi, "odi.11", 1, false}); }, &message),
            ErrorCode::kInvalidArgument);
  EXPECT_NE(message.find("answers[0].item_id"), std::string::npos);
  EXPECT_EQ(CodeOf([&] { ValidateAnswer("answers[1]", {InstrumentKind::kNprs, "nprs", 0, true}); }, &message),
            ErrorCode::kInvalidArgument);
  EXPECT_NE(message.find("answers[1].declined"), std::string::npos);
  EXPECT_NO_THROW(ValidateAnswer("a", {InstrumentKind::kOdi, "odi.8", 0, true}));
}

}  // namespace
}  // namespace physio::assessment
