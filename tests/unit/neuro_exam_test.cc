// The sciatica and nerve-root pathway (issue 32 item 1): the neurological examination by side,
// its red flags (a new foot drop, a progressing deficit, a new upper motor neurone sign, deficits
// on both sides), what changed between examinations, and the evaluation that follows them.
#include <gtest/gtest.h>

#include "assessment/domain/neuro_exam.h"
#include "assessment/domain/red_flags.h"
#include "domain/evaluation.h"

namespace physio::assessment {
namespace {

NeuroExam LeftL5(int grade, std::optional<int> onset_days) {
  NeuroExam exam;
  exam.motor = {{NerveRootLevel::kL4, Side::kLeft, 5}, {NerveRootLevel::kL5, Side::kLeft, grade}};
  NeuroExam::Leg leg;
  leg.side = Side::kLeft;
  leg.extent = LegExtent::kFoot;
  leg.onset_days = onset_days;
  leg.slr_deg = 40;
  leg.slr_positive = true;
  exam.legs = {leg};
  return exam;
}

bool Contains(const std::vector<std::string>& lines, const std::string& part) {
  for (const auto& line : lines) {
    if (line.find(part) != std::string::npos) return true;
  }
  return false;
}

TEST(NeuroExam, ARadicularPatternWithAMildDeficitIsNotUrgent) {
  const auto findings = AnalyseNeuro(LeftL5(4, 20));
  EXPECT_TRUE(findings.radicular);
  EXPECT_TRUE(findings.objective_deficit);
  EXPECT_FALSE(findings.bilateral_deficit);
  EXPECT_TRUE(findings.urgent.empty()) << findings.urgent[0];
  EXPECT_TRUE(Contains(findings.findings, "L5 left 4/5"));
  EXPECT_TRUE(Contains(findings.findings, "straight-leg raise left positive at 40 degrees"));
}

TEST(NeuroExam, APositiveNeuralTensionTestAloneIsRadicular) {
  NeuroExam exam;
  NeuroExam::Leg leg;
  leg.side = Side::kRight;
  leg.extent = LegExtent::kBelowKnee;
  leg.slump_positive = true;
  exam.legs = {leg};
  const auto findings = AnalyseNeuro(exam);
  EXPECT_TRUE(findings.radicular);
  EXPECT_FALSE(findings.objective_deficit);
  NeuroExam none;
  none.legs = {NeuroExam::Leg{Side::kRight, LegExtent::kThigh, {}, 80, false, false}};
  EXPECT_FALSE(AnalyseNeuro(none).radicular) << "referred thigh pain with negative neural tension";
}

TEST(NeuroExam, ANewFootDropIsUrgentAndAnOldStableOneIsNot) {
  const auto fresh = AnalyseNeuro(LeftL5(2, 10));
  ASSERT_EQ(fresh.urgent.size(), 1u);
  EXPECT_NE(fresh.urgent[0].find("L5 left 2/5 (foot drop)"), std::string::npos) << fresh.urgent[0];
  EXPECT_NE(fresh.urgent[0].find("urgent spinal surgical opinion"), std::string::npos);
  EXPECT_FALSE(AnalyseNeuro(LeftL5(3, 84)).urgent.empty()) << "exactly the window is still new";
  EXPECT_FALSE(AnalyseNeuro(LeftL5(3, std::nullopt)).urgent.empty()) << "an unknown onset is taken as new";
  EXPECT_TRUE(AnalyseNeuro(LeftL5(3, 85)).urgent.empty()) << "long-standing and not progressing";
  NeuroPolicy strict;
  strict.severe_motor_grade = 4;
  EXPECT_FALSE(AnalyseNeuro(LeftL5(4, 10), strict).urgent.empty()) << "the threshold is a setting";
}

TEST(NeuroExam, AProgressingDeficitIsUrgentWhateverItsGrade) {
  auto exam = LeftL5(4, 400);
  exam.motor_deficit_progressing = true;
  const auto findings = AnalyseNeuro(exam);
  ASSERT_EQ(findings.urgent.size(), 1u);
  EXPECT_NE(findings.urgent[0].find("progressing"), std::string::npos);
  EXPECT_NE(findings.urgent[0].find("L5 left 4/5"), std::string::npos);
}

TEST(NeuroExam, ABriskReflexIsAnUpperMotorNeuroneSign) {
  NeuroExam exam;
  exam.reflexes = {{ReflexSite::kKnee, Side::kLeft, ReflexLevel::kBrisk}};
  const auto findings = AnalyseNeuro(exam);
  EXPECT_TRUE(Contains(findings.urgent, "upper motor neurone"));
  EXPECT_FALSE(findings.radicular) << "not a nerve-root sign";
}

TEST(NeuroExam, DeficitsOnBothSidesAreSuspectedCaudaEquina) {
  NeuroExam exam = LeftL5(4, 20);
  exam.reflexes = {{ReflexSite::kAnkle, Side::kRight, ReflexLevel::kAbsent}};
  const auto findings = AnalyseNeuro(exam);
  EXPECT_TRUE(findings.bilateral_deficit);
  RedFlagAnswers answers;
  answers.neurological_signs = findings.objective_deficit;
  answers.bilateral_leg_neurological_symptoms = findings.bilateral_deficit;
  const auto screen = ScreenRedFlags(answers, 45, 20);
  EXPECT_EQ(screen.action, RedFlagAction::kEmergencyReferral);
  EXPECT_EQ(screen.concerns[0].condition, "cauda_equina");
  // Altered sensation on the other side is not a deficit.
  NeuroExam altered = LeftL5(4, 20);
  altered.sensory = {{NerveRootLevel::kS1, Side::kRight, SensationLevel::kAltered}};
  EXPECT_FALSE(AnalyseNeuro(altered).bilateral_deficit);
}

TEST(NeuroExam, UrgentFindingsAreAnUrgentNeurologicalRedFlag) {
  RedFlagAnswers answers;
  answers.urgent_neurological = AnalyseNeuro(LeftL5(2, 10)).urgent;
  const auto screen = ScreenRedFlags(answers, 45, 20);
  EXPECT_EQ(screen.action, RedFlagAction::kUrgentReferral);
  ASSERT_EQ(screen.concerns.size(), 1u);
  EXPECT_EQ(screen.concerns[0].condition, "neurological_deficit");
  EXPECT_TRUE(Contains(screen.concerns[0].reasons, "foot drop"));
  // Two urgent findings stay urgent (not the emergency of progressive and widespread signs).
  answers.urgent_neurological.push_back("motor deficit progressing (clinician's judgement): urgent");
  EXPECT_EQ(ScreenRedFlags(answers, 45, 20).action, RedFlagAction::kUrgentReferral);
  answers.progressive_weakness = answers.widespread_neurological_signs = true;
  EXPECT_EQ(ScreenRedFlags(answers, 45, 20).action, RedFlagAction::kEmergencyReferral);
}

TEST(NeuroExam, CompareNamesWhatGotWorseAndBetter) {
  NeuroExam before = LeftL5(4, 20);
  before.sensory = {{NerveRootLevel::kL5, Side::kLeft, SensationLevel::kAltered}};
  before.reflexes = {{ReflexSite::kAnkle, Side::kLeft, ReflexLevel::kReduced}};
  NeuroExam now = LeftL5(3, 34);
  now.legs[0].slr_deg = 25;
  now.sensory = {{NerveRootLevel::kL5, Side::kLeft, SensationLevel::kReduced}};
  now.reflexes = {{ReflexSite::kAnkle, Side::kLeft, ReflexLevel::kNormal}};
  NeuroExam::Leg right;
  right.side = Side::kRight;
  right.extent = LegExtent::kThigh;
  now.legs.push_back(right);
  const auto change = CompareNeuro(before, now);
  EXPECT_EQ(change.motor_worse, std::vector<std::string>{"L5 left 4/5 -> 3/5"});
  EXPECT_TRUE(Contains(change.other_worse, "L5 dermatome left altered -> reduced"));
  EXPECT_TRUE(Contains(change.other_worse, "straight-leg raise left 40 -> 25 degrees"));
  EXPECT_TRUE(Contains(change.other_worse, "leg symptoms now on the right too"));
  EXPECT_TRUE(Contains(change.better, "ankle reflex left reduced -> normal"));
  // Not tested before: not compared.
  EXPECT_TRUE(CompareNeuro(NeuroExam{}, now).motor_worse.empty());
  EXPECT_TRUE(CompareNeuro(NeuroExam{}, now).other_worse.empty());
}

TEST(NeuroExam, ARecheckRaisesOnlyWhatIsNewlyUrgent) {
  const NeuroExam baseline = LeftL5(4, 20);
  // The same at a visit: nothing.
  EXPECT_TRUE(UrgentAtRecheck(LeftL5(4, 30), {&baseline}).empty());
  // Worse than the assessment: urgent.
  const auto worse = UrgentAtRecheck(LeftL5(3, 30), {&baseline});
  ASSERT_EQ(worse.size(), 1u);
  EXPECT_NE(worse[0].find("motor deficit worse: L5 left 4/5 -> 3/5"), std::string::npos) << worse[0];
  // Recovered at one visit and weaker again at the next: worse than the last visit, though no
  // worse than the assessment.
  const NeuroExam recovered = LeftL5(5, 30);
  EXPECT_FALSE(UrgentAtRecheck(LeftL5(4, 40), {&baseline, &recovered}).empty());
  // A severe deficit of a root never tested before.
  NeuroExam s1 = LeftL5(4, 30);
  s1.motor.push_back({NerveRootLevel::kS1, Side::kLeft, 2});
  EXPECT_TRUE(Contains(UrgentAtRecheck(s1, {&baseline}), "new severe motor deficit: S1 left 2/5"));
  // The clinician's judgement that it is progressing.
  NeuroExam progressing = LeftL5(4, 30);
  progressing.motor_deficit_progressing = true;
  EXPECT_TRUE(Contains(UrgentAtRecheck(progressing, {&baseline}), "progressing"));
  // A severe deficit the assessment already recorded (and a clinician's judgement answered) is not re-raised.
  const NeuroExam known_drop = LeftL5(3, 200);
  EXPECT_TRUE(UrgentAtRecheck(LeftL5(3, 230), {&known_drop}).empty());
}

}  // namespace
}  // namespace physio::assessment

namespace physio::progress {
namespace {

constexpr int64_t kDay = 24 * 3600;

EvaluationInput Plateau(int days, double adherence_percent) {
  EvaluationInput input;
  input.plan_start_seconds = 1'700'000'000;
  input.now_seconds = input.plan_start_seconds + days * kDay;
  input.evidence_since_seconds = input.plan_start_seconds;
  input.changes = {JudgeChange(Outcome::kNprs, 7, 6), JudgeChange(Outcome::kOdi, 40, 38)};
  for (int week = 1; week <= days / 7; ++week) {
    input.adherence.push_back({week, 7, static_cast<int>(7 * adherence_percent / 100), adherence_percent, true});
  }
  return input;
}

TEST(SciaticaEvaluation, NotImprovingByTheResponderCheckOffersTheSpinalOpinionRoute) {
  auto input = Plateau(30, 100);
  input.sciatica = true;
  const auto result = Evaluate(input, {});
  EXPECT_EQ(result.decision, Decision::kRefer);
  EXPECT_TRUE(result.non_response_judged);
  EXPECT_NE(result.reasons[0].find("NICE NG59 1.3.1"), std::string::npos) << result.reasons[0];
  // Without sciatica the same plateau is a re-assessment.
  input.sciatica = false;
  EXPECT_EQ(Evaluate(input, {}).decision, Decision::kReassess);
  // Before the responder check: not yet.
  auto early = Plateau(14, 100);
  early.sciatica = true;
  EXPECT_NE(Evaluate(early, {}).decision, Decision::kRefer);
  // Low adherence is named, and does not hold the offer back.
  auto skipped = Plateau(30, 30);
  skipped.sciatica = true;
  const auto low = Evaluate(skipped, {});
  EXPECT_EQ(low.decision, Decision::kRefer);
  EXPECT_NE(low.reasons.back().find("adherence was 30%"), std::string::npos) << low.reasons.back();
}

TEST(SciaticaEvaluation, WorseNeurologyIsReassessedNeverProgressed) {
  EvaluationInput input;
  input.plan_start_seconds = 1'700'000'000;
  input.now_seconds = input.plan_start_seconds + 21 * kDay;
  input.changes = {JudgeChange(Outcome::kNprs, 7, 3), JudgeChange(Outcome::kOdi, 40, 20)};
  input.dose_completed = true;
  for (int week = 1; week <= 3; ++week) input.adherence.push_back({week, 7, 7, 100, true});
  ASSERT_EQ(Evaluate(input, {}).decision, Decision::kProgress);
  input.neurological_worse = {"worse since the assessment: L5 dermatome left altered -> reduced (visit v1)"};
  const auto result = Evaluate(input, {});
  EXPECT_EQ(result.decision, Decision::kReassess);
  EXPECT_EQ(result.reasons.back(), input.neurological_worse[0]);
  // A red flag still comes first.
  input.new_red_flag = true;
  EXPECT_EQ(Evaluate(input, {}).decision, Decision::kRefer);
}

}  // namespace
}  // namespace physio::progress
