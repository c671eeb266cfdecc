// Progress evaluation on scripted episodes: meaningful change (absolute and
// percent), adherence computed by hand, flare-up, plateau, red flag, progression.
#include <gtest/gtest.h>

#include "domain/evaluation.h"
#include "domain/expected_course.h"
#include "domain/home_log.h"

namespace physio::progress {
namespace {

constexpr int64_t kDay = 24 * 3600;
constexpr int64_t kStart = 1'700'000'000;

TEST(MeaningfulChange, AbsoluteAndPercentForms) {
  auto odi = JudgeChange(Outcome::kOdi, 40, 30);
  EXPECT_DOUBLE_EQ(odi.change, -10);
  EXPECT_DOUBLE_EQ(odi.percent_change, -25);
  EXPECT_TRUE(odi.improved);  // 10 points
  auto odi_percent = JudgeChange(Outcome::kOdi, 20, 13);  // 7 points, 35%: within the MDC of 10
  EXPECT_FALSE(odi_percent.improved);
  DetectableChange lenient;
  lenient.odi_points = 6;  // configurable: e.g. 6 points in physiotherapy settings
  EXPECT_TRUE(JudgeChange(Outcome::kOdi, 20, 13, lenient).improved);
  auto odi_small = JudgeChange(Outcome::kOdi, 40, 32);  // 8 points, 20%
  EXPECT_FALSE(odi_small.improved);
  EXPECT_TRUE(JudgeChange(Outcome::kOdi, 30, 40).deteriorated);
  EXPECT_TRUE(JudgeChange(Outcome::kRmdq, 12, 7).improved);
  // Davidson & Keating 2002: 30% counts only beyond the MDC (about 4 RMDQ points).
  EXPECT_FALSE(JudgeChange(Outcome::kRmdq, 3, 2).improved);  // 33%, 1 point
  EXPECT_FALSE(JudgeChange(Outcome::kRmdq, 6, 4).improved);  // 33%, 2 points
  EXPECT_TRUE(JudgeChange(Outcome::kRmdq, 13, 9).improved);  // 31%, 4 points
  EXPECT_FALSE(JudgeChange(Outcome::kNprs, 6, 5).improved);
  EXPECT_TRUE(JudgeChange(Outcome::kNprs, 6, 4).improved);
  EXPECT_TRUE(JudgeChange(Outcome::kPsfs, 3, 5).improved);  // higher is better
  EXPECT_TRUE(JudgeChange(Outcome::kPsfs, 5, 3).deteriorated);
}

TEST(Adherence, PerWeekByHand) {
  // 5 sessions a week prescribed; 4 logs in week 1, 1 in week 2, checked 10 days in.
  std::vector<int64_t> logs = {kStart + 1 * kDay, kStart + 2 * kDay, kStart + 3 * kDay, kStart + 5 * kDay,
                               kStart + 8 * kDay};
  auto weeks = AdherenceByWeek(kStart, kStart + 10 * kDay, 5, logs);
  ASSERT_EQ(weeks.size(), 2u);
  EXPECT_EQ(weeks[0].prescribed, 5);
  EXPECT_EQ(weeks[0].logged, 4);
  EXPECT_DOUBLE_EQ(weeks[0].percent, 80);
  EXPECT_TRUE(weeks[0].complete);
  EXPECT_EQ(weeks[1].prescribed, 2);  // 3 of 7 days so far: floor(5 x 3/7) = 2
  EXPECT_EQ(weeks[1].logged, 1);
  EXPECT_DOUBLE_EQ(weeks[1].percent, 50);
  EXPECT_FALSE(weeks[1].complete);
  // Minutes into a new week nothing is due yet: the week is left out.
  EXPECT_EQ(AdherenceByWeek(kStart, kStart + 7 * kDay + 60, 5, logs).size(), 1u);
  // More logs than prescribed still count as 100%.
  EXPECT_DOUBLE_EQ(AdherenceByWeek(kStart, kStart + 7 * kDay, 2, logs)[0].percent, 100);
}

EvaluationInput Episode(int days, std::vector<int> pains, double adherence_percent, bool dose_completed) {
  EvaluationInput input;
  input.plan_start_seconds = kStart;
  input.now_seconds = kStart + days * kDay;
  for (size_t i = 0; i < pains.size(); ++i) {
    input.pain.push_back({kStart + static_cast<int64_t>(i + 1) * kDay, pains[i], "home_log"});
  }
  input.adherence = {{1, 5, static_cast<int>(adherence_percent / 20), adherence_percent, true},
                     {2, 1, 0, 0, false}};  // a just-started week must not decide
  input.dose_completed = dose_completed;
  return input;
}

TEST(Evaluate, SteadyImprovementWithGoodAdherenceProgresses) {
  auto input = Episode(14, {6, 5, 5, 4}, 100, true);
  input.changes = {JudgeChange(Outcome::kNprs, 6, 4)};
  auto result = Evaluate(input, {});
  EXPECT_EQ(result.decision, Decision::kProgress);
  EXPECT_EQ(result.responder, ResponderStatus::kResponder);
}

TEST(Evaluate, NothingDueYetIsTooEarlyNotNonAdherent) {
  EvaluationInput input;
  input.plan_start_seconds = kStart;
  input.now_seconds = kStart + 3600;
  auto result = Evaluate(input, {});
  EXPECT_EQ(result.decision, Decision::kContinue);
  EXPECT_FALSE(result.low_adherence);
  EXPECT_EQ(result.reasons[0], "too early to judge: no home sessions are due yet");
}

TEST(Evaluate, TooHardBlocksProgression) {
  auto input = Episode(14, {6, 5, 4}, 100, true);
  input.changes = {JudgeChange(Outcome::kNprs, 6, 4)};
  input.rated_too_hard = true;
  auto result = Evaluate(input, {});
  EXPECT_EQ(result.decision, Decision::kContinue);
  EXPECT_NE(result.reasons[0].find("too hard"), std::string::npos);
}

TEST(Evaluate, ATreatmentThatMadeSymptomsWorseAtAVisitBlocksProgression) {
  auto input = Episode(14, {6, 5, 4}, 100, true);
  input.changes = {JudgeChange(Outcome::kNprs, 6, 4)};
  EXPECT_EQ(Evaluate(input, {}).decision, Decision::kProgress) << "the baseline of this test progresses";
  input.worse_with_treatment = {"ex.motor.bird_dog (visit v1)"};
  auto result = Evaluate(input, {});
  EXPECT_EQ(result.decision, Decision::kContinue);
  EXPECT_NE(result.reasons[0].find("ex.motor.bird_dog (visit v1)"), std::string::npos) << result.reasons[0];
}

TEST(Evaluate, FlareRegresses) {
  auto input = Episode(10, {4, 4, 3, 6, 6, 7}, 100, true);
  input.changes = {JudgeChange(Outcome::kNprs, 6, 7)};
  auto result = Evaluate(input, {});
  EXPECT_TRUE(result.flare);
  EXPECT_EQ(result.decision, Decision::kRegress);
  // A flare that began before the plan's last change was already acted on.
  input.evidence_since_seconds = kStart + 4 * kDay + 1;
  EXPECT_FALSE(Evaluate(input, {}).flare);
  // A one-day spike that settles is not a flare.
  auto spike = Episode(10, {4, 4, 7, 4}, 100, true);
  spike.changes = {JudgeChange(Outcome::kNprs, 6, 4)};
  EXPECT_FALSE(Evaluate(spike, {}).flare);
}

TEST(Evaluate, PlateauAtWeekFourIsReassessed) {
  auto early = Episode(14, {6, 6, 6}, 100, false);
  early.changes = {JudgeChange(Outcome::kNprs, 6, 6), JudgeChange(Outcome::kOdi, 36, 34)};
  EXPECT_EQ(Evaluate(early, {}).decision, Decision::kContinue);
  EXPECT_EQ(Evaluate(early, {}).responder, ResponderStatus::kTooEarly);
  auto plateau = Episode(30, {6, 6, 6}, 100, true);
  plateau.changes = early.changes;
  auto result = Evaluate(plateau, {});
  EXPECT_EQ(result.responder, ResponderStatus::kNonResponder);
  EXPECT_EQ(result.decision, Decision::kReassess);
}

TEST(Evaluate, DeteriorationIsReassessedAndRedFlagReferred) {
  auto worse = Episode(14, {5, 6}, 100, true);
  worse.changes = {JudgeChange(Outcome::kOdi, 30, 42)};
  auto result = Evaluate(worse, {});
  EXPECT_EQ(result.decision, Decision::kReassess);
  EXPECT_NE(result.reasons[0].find("Oswestry worse by 12"), std::string::npos);
  worse.new_red_flag = true;
  worse.red_flag_reasons = {"cauda_equina: saddle numbness"};
  auto refer = Evaluate(worse, {});
  EXPECT_EQ(refer.decision, Decision::kRefer);
  EXPECT_EQ(refer.reasons.back(), "cauda_equina: saddle numbness");
}

TEST(Evaluate, PoorAdherenceContinuesWithTheReason) {
  auto input = Episode(14, {6, 5}, 40, true);
  input.changes = {JudgeChange(Outcome::kNprs, 6, 5)};
  auto result = Evaluate(input, {});
  EXPECT_EQ(result.decision, Decision::kContinue);
  EXPECT_TRUE(result.low_adherence);
  EXPECT_NE(result.reasons[0].find("adherence 40%"), std::string::npos);
}

TEST(Evaluate, RecoveryFollowsKamperAndNeedsBothMeasures) {
  auto input = Episode(21, {3, 2, 1}, 100, true);
  input.changes = {JudgeChange(Outcome::kNprs, 6, 0), JudgeChange(Outcome::kRmdq, 12, 2)};
  input.latest_nprs = 0;
  input.latest_rmdq = 2;
  auto result = Evaluate(input, {});
  EXPECT_TRUE(result.recovered);
  EXPECT_EQ(result.decision, Decision::kSuggestCompletion);  // not "progress", though the dose was completed
  input.latest_rmdq = 3;
  EXPECT_FALSE(Evaluate(input, {}).recovered);
  input.latest_rmdq = 2;
  input.latest_nprs = 1;
  EXPECT_FALSE(Evaluate(input, {}).recovered);
  input.latest_rmdq.reset();  // pain 0 alone is not the definition
  input.latest_nprs = 0;
  EXPECT_FALSE(Evaluate(input, {}).recovered);
  // A red flag still comes first.
  input.latest_rmdq = 0;
  input.new_red_flag = true;
  EXPECT_EQ(Evaluate(input, {}).decision, Decision::kRefer);
}

TEST(Evaluate, NonResponseIsJudgedOnlyOnAProgrammeThatWasDone) {
  auto done = Episode(30, {6, 6, 6}, 100, true);
  done.changes = {JudgeChange(Outcome::kOdi, 36, 34)};
  auto judged = Evaluate(done, {});
  EXPECT_EQ(judged.decision, Decision::kReassess);
  EXPECT_TRUE(judged.non_response_judged);

  auto skipped = Episode(30, {6, 6, 6}, 20, false);
  skipped.changes = done.changes;
  auto result = Evaluate(skipped, {});
  EXPECT_EQ(result.responder, ResponderStatus::kNonResponder);
  EXPECT_EQ(result.decision, Decision::kContinue);
  EXPECT_FALSE(result.non_response_judged);
  EXPECT_TRUE(result.low_adherence);
  EXPECT_NE(result.reasons[0].find("adherence was 20%"), std::string::npos) << result.reasons[0];
}

TEST(Evaluate, EarlyResponseAtTwoWeeksUsesHalfTheMeaningfulChange) {
  auto week1 = Episode(10, {6, 6}, 100, false);
  week1.changes = {JudgeChange(Outcome::kOdi, 36, 36)};
  EXPECT_EQ(Evaluate(week1, {}).early_response, EarlyResponse::kTooEarly);
  auto slow = Episode(15, {6, 6}, 100, false);
  slow.changes = {JudgeChange(Outcome::kOdi, 36, 32)};  // 4 points: less than half of 10
  auto result = Evaluate(slow, {});
  EXPECT_EQ(result.early_response, EarlyResponse::kSlow);
  EXPECT_EQ(result.decision, Decision::kContinue);
  EXPECT_NE(result.reasons[0].find("slow early response"), std::string::npos) << result.reasons[0];
  slow.changes = {JudgeChange(Outcome::kOdi, 36, 31)};  // 5 points
  EXPECT_EQ(Evaluate(slow, {}).early_response, EarlyResponse::kOnTrack);
  EXPECT_TRUE(EarlyImprovement(JudgeChange(Outcome::kNprs, 6, 5)));
  EXPECT_FALSE(EarlyImprovement(JudgeChange(Outcome::kNprs, 6, 6)));
  EXPECT_TRUE(EarlyImprovement(JudgeChange(Outcome::kRmdq, 10, 7.5)));
  EXPECT_FALSE(EarlyImprovement(JudgeChange(Outcome::kRmdq, 10, 8)));
  EXPECT_TRUE(EarlyImprovement(JudgeChange(Outcome::kPsfs, 3, 4)));  // higher is better
  EXPECT_FALSE(EarlyImprovement(JudgeChange(Outcome::kPsfs, 4, 3)));
  // A setting: at the whole MCID a 1-point pain drop is not yet on track.
  EXPECT_FALSE(EarlyImprovement(JudgeChange(Outcome::kNprs, 6, 5), 1.0));
  EXPECT_TRUE(EarlyImprovement(JudgeChange(Outcome::kNprs, 6, 4), 1.0));
}

TEST(HomeLog, PeripheralisationStopsTheDirectionItHappenedWith) {
  const std::vector<std::string> plan = {"ex.dir.prone_on_elbows", "ex.strength.glute_bridge", "ex.dir.side_glide_wall"};
  EXPECT_EQ(DirectionalExercises(plan), (std::vector<std::string>{"ex.dir.prone_on_elbows", "ex.dir.side_glide_wall"}));
  EXPECT_TRUE(DirectionalExercises({"ex.flex.cat_camel"}).empty());
  // With a directional exercise: that one's direction only.
  EXPECT_EQ(ProvokingDirectionalExercises("ex.dir.side_glide_wall", plan),
            std::vector<std::string>{"ex.dir.side_glide_wall"});
  // With anything else: every direction of the plan (the safer reading).
  EXPECT_EQ(ProvokingDirectionalExercises("ex.strength.glute_bridge", plan), DirectionalExercises(plan));
  EXPECT_TRUE(ProvokingDirectionalExercises("ex.aerobic.walking", {"ex.aerobic.walking"}).empty());
  EXPECT_TRUE(HomeLogAdvice(SafetyNetUrgency::kNone, false, false).empty());
  EXPECT_NE(HomeLogAdvice(SafetyNetUrgency::kNone, true, true).find("have been stopped"), std::string::npos);
  EXPECT_EQ(HomeLogAdvice(SafetyNetUrgency::kNone, true, false).find("have been stopped"), std::string::npos);
  EXPECT_NE(HomeLogAdvice(SafetyNetUrgency::kNone, true, false).find("re-assess"), std::string::npos);
  // The safety net outranks peripheralisation.
  EXPECT_NE(HomeLogAdvice(SafetyNetUrgency::kEmergency, true, true).find("emergency department now"), std::string::npos);
  EXPECT_NE(HomeLogAdvice(SafetyNetUrgency::kUrgent, false, false).find("Stop your home exercises"), std::string::npos);
}

TEST(ExpectedCourse, QuotesItsSourcesAndSaysWhereThePatientIs) {
  CourseInput input;
  input.group = CourseGroup::kHighRisk;
  input.expected_weeks = 10;
  input.review_weeks = {2, 6, 10};
  auto early = BuildExpectedCourse(input);
  EXPECT_EQ(early.status, CourseStatus::kTooEarly);
  ASSERT_EQ(early.milestones.size(), 3u);
  EXPECT_NE(early.milestones[0].expectation.find("early sign"), std::string::npos);
  EXPECT_NE(early.milestones[2].expectation.find("end-of-plan"), std::string::npos);
  EXPECT_NE(early.summary.find("about 5 points"), std::string::npos);
  EXPECT_NE(early.summary.find("mood"), std::string::npos);  // the high-risk group's plan
  ASSERT_EQ(early.sources.size(), 3u);
  EXPECT_NE(early.sources[0].find("Hill"), std::string::npos);

  input.pain = FromTo{6, 4};
  input.early_response = EarlyResponse::kOnTrack;
  auto on_track = BuildExpectedCourse(input);
  EXPECT_EQ(on_track.status, CourseStatus::kOnTrack);
  EXPECT_NE(on_track.where_now.find("from 6 to 4 out of 10"), std::string::npos) << on_track.where_now;

  input.early_response = EarlyResponse::kSlow;
  EXPECT_EQ(BuildExpectedCourse(input).status, CourseStatus::kSlowerThanExpected);
  input.recovered = true;
  EXPECT_EQ(BuildExpectedCourse(input).status, CourseStatus::kRecovered);
}

// Issue 26 item 10: never "on track" while the plan is suspended, the patient is
// worse, or an alert is open, whatever the early response says.
TEST(ExpectedCourse, NeverOnTrackWhenSuspendedWorseOrAlerted) {
  CourseInput input;
  input.group = CourseGroup::kMediumRisk;
  input.pain = FromTo{6, 4};
  input.early_response = EarlyResponse::kOnTrack;
  input.responder = ResponderStatus::kResponder;
  ASSERT_EQ(BuildExpectedCourse(input).status, CourseStatus::kOnTrack);
  auto suspended = input;
  suspended.plan_suspended = true;
  const auto paused = BuildExpectedCourse(suspended);
  EXPECT_EQ(paused.status, CourseStatus::kNeedsReview);
  EXPECT_NE(paused.where_now.find("paused"), std::string::npos) << paused.where_now;
  EXPECT_EQ(paused.where_now.find("on track"), std::string::npos) << paused.where_now;
  auto worse = input;
  worse.deteriorated = true;
  EXPECT_EQ(BuildExpectedCourse(worse).status, CourseStatus::kNeedsReview);
  auto alerted = input;
  alerted.open_alerts = 1;
  EXPECT_EQ(BuildExpectedCourse(alerted).status, CourseStatus::kNeedsReview);
  alerted.recovered = true;  // not even "recovered" while the clinic has an alert to look at
  EXPECT_EQ(BuildExpectedCourse(alerted).status, CourseStatus::kNeedsReview);
}

TEST(ExpectedCourse, FollowsThePublishedCourseOfRecentOrPersistentPain) {
  // da Costa 2012: mean pain /100 acute 52 -> 23 (6 wk) -> 12 (26 wk) -> 6 (52 wk);
  // persistent 51 -> 33 -> 26 -> 23.
  EXPECT_EQ(CourseBasisOf(std::nullopt), CourseBasis::kUnknown);
  EXPECT_EQ(CourseBasisOf(41), CourseBasis::kRecentOnset);
  EXPECT_EQ(CourseBasisOf(42), CourseBasis::kPersistent);
  EXPECT_FALSE(TypicalPainFraction(CourseBasis::kRecentOnset, 5));
  EXPECT_FALSE(TypicalPainFraction(CourseBasis::kUnknown, 26));
  EXPECT_DOUBLE_EQ(*TypicalPainFraction(CourseBasis::kRecentOnset, 6), 23.0 / 52);
  EXPECT_DOUBLE_EQ(*TypicalPainFraction(CourseBasis::kRecentOnset, 26), 12.0 / 52);
  EXPECT_DOUBLE_EQ(*TypicalPainFraction(CourseBasis::kPersistent, 16), (33.0 + 26.0) / 2 / 51);  // halfway 6-26
  EXPECT_DOUBLE_EQ(*TypicalPainFraction(CourseBasis::kPersistent, 80), 23.0 / 51);

  CourseInput input;
  input.group = CourseGroup::kMediumRisk;
  input.phase = CoursePhase::kSymptomModulation;
  input.episode_days_at_assessment = 120;
  input.expected_weeks = 6;
  input.review_weeks = {2, 6};
  input.pain = FromTo{6, 5};
  input.weeks_since_start = 6;
  auto persistent = BuildExpectedCourse(input);
  EXPECT_EQ(persistent.basis, CourseBasis::kPersistent);
  EXPECT_NE(persistent.summary.find("lasted 6 weeks or more"), std::string::npos) << persistent.summary;
  EXPECT_NE(persistent.summary.find("calm the pain down"), std::string::npos);  // the phase
  ASSERT_EQ(persistent.sources.size(), 4u);
  EXPECT_NE(persistent.sources[3].find("da Costa"), std::string::npos);
  ASSERT_EQ(persistent.milestones.size(), 2u);
  EXPECT_FALSE(persistent.milestones[0].typical_pain);  // week 2: no published point
  ASSERT_TRUE(persistent.milestones[1].typical_pain);
  EXPECT_DOUBLE_EQ(*persistent.milestones[1].typical_pain, 3.9);  // 6 x 33/51 = 3.88
  EXPECT_NE(persistent.where_now.find("typically at about 3.9 by now"), std::string::npos) << persistent.where_now;

  input.episode_days_at_assessment = 10;
  auto recent = BuildExpectedCourse(input);
  EXPECT_EQ(recent.basis, CourseBasis::kRecentOnset);
  EXPECT_NE(recent.summary.find("started recently"), std::string::npos);
  EXPECT_DOUBLE_EQ(*recent.milestones[1].typical_pain, 2.7);  // 6 x 23/52 = 2.65
}

}  // namespace
}  // namespace physio::progress
