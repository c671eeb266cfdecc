// Red-flag combinations leading to the right action, and classification of
// constructed patients (clinical reference: Finucane 2020, NICE NG65, Fritz 2007,
// Flynn 2002, Fritz 2005, Thackeray 2016, Hill 2008).
#include <gtest/gtest.h>

#include <algorithm>

#include "domain/classification.h"
#include "domain/red_flags.h"

namespace physio::assessment {
namespace {

TEST(RedFlags, NothingMeansTreat) {
  auto result = ScreenRedFlags({}, 45, 30);
  EXPECT_EQ(result.action, RedFlagAction::kNone);
  EXPECT_TRUE(result.concerns.empty());
}

TEST(RedFlags, AnyCaudaEquinaFeatureIsAnEmergency) {
  RedFlagAnswers a;
  a.saddle_numbness = true;
  auto result = ScreenRedFlags(a, 40, 5);
  EXPECT_EQ(result.action, RedFlagAction::kEmergencyReferral);
  ASSERT_EQ(result.concerns.size(), 1u);
  EXPECT_EQ(result.concerns[0].condition, "cauda_equina");
  EXPECT_EQ(result.concerns[0].reasons, std::vector<std::string>{"saddle numbness"});
}

TEST(RedFlags, LongStandingPainInBothLegsIsMonitoredAndWithAnyCaudaEquinaFeatureAnEmergency) {
  // Long-standing pain in both legs without neurological signs is safety-netted
  // (monitored); with any other CES feature it is the emergency it always was.
  RedFlagAnswers a;
  a.bilateral_leg_pain = true;
  auto alone = ScreenRedFlags(a, 40, 120);
  EXPECT_EQ(alone.action, RedFlagAction::kMonitor);
  ASSERT_EQ(alone.concerns.size(), 1u);
  EXPECT_EQ(alone.concerns[0].condition, "cauda_equina");
  EXPECT_EQ(alone.concerns[0].reasons.front(), "pain in both legs on the body chart");
  a.bladder_or_bowel_disturbance = true;
  auto with_feature = ScreenRedFlags(a, 40, 120);
  EXPECT_EQ(with_feature.action, RedFlagAction::kEmergencyReferral);
  EXPECT_EQ(with_feature.concerns[0].reasons, std::vector<std::string>{"bladder or bowel disturbance"});
}

// GIRFT 2023 (national suspected cauda equina pathway) lists bilateral radicular
// pain among the features needing immediate referral.
TEST(RedFlags, NewPainBelowTheKneeInBothLegsIsSuspectedCaudaEquina) {
  RedFlagAnswers a;
  a.bilateral_leg_pain = true;
  a.bilateral_pain_below_knee = true;
  auto week = ScreenRedFlags(a, 35, 7);
  EXPECT_EQ(week.action, RedFlagAction::kEmergencyReferral);
  ASSERT_EQ(week.concerns.size(), 1u);
  EXPECT_EQ(week.concerns[0].condition, "cauda_equina");
  EXPECT_EQ(week.concerns[0].reasons.front(), "new pain below the knee in both legs");
  EXPECT_EQ(ScreenRedFlags(a, 35, std::nullopt).action, RedFlagAction::kEmergencyReferral)
      << "an episode of unknown length is taken as new";
  EXPECT_EQ(ScreenRedFlags(a, 35, 42).action, RedFlagAction::kEmergencyReferral);
  EXPECT_EQ(ScreenRedFlags(a, 35, 43).action, RedFlagAction::kMonitor) << "long-standing and stable: monitored";
  EXPECT_EQ(ScreenRedFlags(a, 35, 60, RedFlagPolicy{90}).action, RedFlagAction::kEmergencyReferral)
      << "the setting moves what counts as new";
  // Pain in both thighs only (not below the knee), new: monitored unless there are neurological signs.
  RedFlagAnswers thighs;
  thighs.bilateral_leg_pain = true;
  EXPECT_EQ(ScreenRedFlags(thighs, 35, 7).action, RedFlagAction::kMonitor);
  thighs.neurological_signs = true;
  auto with_signs = ScreenRedFlags(thighs, 35, 400);
  EXPECT_EQ(with_signs.action, RedFlagAction::kEmergencyReferral) << "bilateral leg pain with any neurological sign";
  bool cauda_equina = false;
  for (const auto& concern : with_signs.concerns) cauda_equina |= concern.condition == "cauda_equina";
  EXPECT_TRUE(cauda_equina);
}

TEST(RedFlags, CancerHistoryIsUrgentAndWithNeurologicalSignsAnEmergency) {
  RedFlagAnswers a;
  a.history_of_cancer = true;
  EXPECT_EQ(ScreenRedFlags(a, 60, 20).action, RedFlagAction::kUrgentReferral);
  a.neurological_signs = true;
  EXPECT_EQ(ScreenRedFlags(a, 60, 20).action, RedFlagAction::kEmergencyReferral);
}

TEST(RedFlags, SingleWeakFeaturesAreMonitoredCombinationsEscalate) {
  RedFlagAnswers night;
  night.night_pain = true;
  EXPECT_EQ(ScreenRedFlags(night, 35, 20).action, RedFlagAction::kNone);  // night pain alone, young: no concern
  EXPECT_EQ(ScreenRedFlags(night, 55, 20).action, RedFlagAction::kMonitor);  // + age over 50
  night.unexplained_weight_loss = true;
  auto combined = ScreenRedFlags(night, 55, 20);  // age, weight loss, night pain
  EXPECT_EQ(combined.action, RedFlagAction::kUrgentReferral);
  EXPECT_EQ(combined.concerns[0].condition, "malignancy");
  EXPECT_EQ(combined.concerns[0].reasons.size(), 3u);
}

TEST(RedFlags, InfectionFollowsTheFrameworkWithoutNeedingARiskFactor) {
  // Finucane 2020: systemically unwell -> emergency; suspected infection -> urgent.
  RedFlagAnswers unwell;
  unwell.systemically_unwell = true;
  EXPECT_EQ(ScreenRedFlags(unwell, 40, 10).action, RedFlagAction::kEmergencyReferral);
  RedFlagAnswers fever;
  fever.fever = true;
  EXPECT_EQ(ScreenRedFlags(fever, 40, 10).action, RedFlagAction::kUrgentReferral);
  fever.neurological_signs = true;  // a neurological deficit with infection features
  auto emergency = ScreenRedFlags(fever, 40, 10);
  EXPECT_EQ(emergency.action, RedFlagAction::kEmergencyReferral);
  EXPECT_NE(std::find(emergency.concerns[0].reasons.begin(), emergency.concerns[0].reasons.end(),
                      "neurological signs"),
            emergency.concerns[0].reasons.end());
  // A single risk factor alone is monitored; with another feature infection is suspected.
  RedFlagAnswers diabetic;
  diabetic.diabetes = true;
  auto monitored = ScreenRedFlags(diabetic, 40, 10);
  EXPECT_EQ(monitored.action, RedFlagAction::kMonitor);
  EXPECT_EQ(monitored.concerns[0].reasons, std::vector<std::string>{"diabetes"});
  diabetic.unremitting_pain = true;
  EXPECT_EQ(ScreenRedFlags(diabetic, 40, 10).action, RedFlagAction::kUrgentReferral);
  RedFlagAnswers two_risks;
  two_risks.diabetes = true;
  two_risks.recent_infection_or_procedure = true;
  EXPECT_EQ(ScreenRedFlags(two_risks, 40, 10).action, RedFlagAction::kUrgentReferral);
  two_risks.neurological_signs = true;
  EXPECT_EQ(ScreenRedFlags(two_risks, 40, 10).action, RedFlagAction::kEmergencyReferral);
}

TEST(RedFlags, SuspectedMetastaticCordCompressionIsAnEmergency) {
  for (int feature = 0; feature < 4; ++feature) {
    RedFlagAnswers a;
    a.history_of_cancer = true;
    if (feature == 0) a.progressive_weakness = true;
    if (feature == 1) a.widespread_neurological_signs = true;
    if (feature == 2) a.neurological_signs = true;
    if (feature == 3) a.bladder_or_bowel_disturbance = true;
    auto result = ScreenRedFlags(a, 45, 20);
    EXPECT_EQ(result.action, RedFlagAction::kEmergencyReferral) << "feature " << feature;
    bool malignancy_emergency = false;
    for (const auto& concern : result.concerns) {
      malignancy_emergency |= concern.condition == "malignancy" && concern.action == RedFlagAction::kEmergencyReferral;
    }
    EXPECT_TRUE(malignancy_emergency) << "feature " << feature;
  }
}

TEST(RedFlags, FractureRulesAndManipulationContraindication) {
  RedFlagAnswers major;
  major.major_trauma = true;
  auto emergency = ScreenRedFlags(major, 30, 2);
  EXPECT_EQ(emergency.action, RedFlagAction::kEmergencyReferral);
  EXPECT_TRUE(emergency.manipulation_contraindicated);
  RedFlagAnswers osteo;
  osteo.osteoporosis = true;
  EXPECT_EQ(ScreenRedFlags(osteo, 65, 10).action, RedFlagAction::kMonitor);
  // Any fracture concern rules out spinal manipulation, a monitored one too.
  EXPECT_TRUE(ScreenRedFlags(osteo, 65, 10).manipulation_contraindicated);
  auto older = ScreenRedFlags(osteo, 75, 10);  // osteoporosis + age over 70 in a new episode
  EXPECT_EQ(older.action, RedFlagAction::kUrgentReferral);
  EXPECT_TRUE(older.manipulation_contraindicated);
}

// Issue 26 item 6: onset, height loss and an earlier fragility fracture are asked; risk
// factors alone in long-standing, stable pain are monitored (strengthening stays: Royal
// Osteoporosis Society 2022); a feature of a new fracture with any risk factor is urgent.
TEST(RedFlags, AFractureIsSuspectedFromANewFeatureOrANewEpisodeNotFromRiskAlone) {
  RedFlagAnswers osteo;
  osteo.osteoporosis = true;
  // Years of stable pain at 75 with osteoporosis and no trauma: monitored, with the reason.
  auto stable = ScreenRedFlags(osteo, 75, 3 * 365);
  EXPECT_EQ(stable.action, RedFlagAction::kMonitor);
  ASSERT_EQ(stable.concerns.size(), 1u);
  EXPECT_NE(stable.concerns[0].reasons.back().find("keep strengthening"), std::string::npos);
  EXPECT_TRUE(stable.manipulation_contraindicated);
  // The same in a new episode (or one of unknown length): urgent.
  EXPECT_EQ(ScreenRedFlags(osteo, 75, 42).action, RedFlagAction::kUrgentReferral);
  EXPECT_EQ(ScreenRedFlags(osteo, 75, 43).action, RedFlagAction::kMonitor);
  EXPECT_EQ(ScreenRedFlags(osteo, 75, std::nullopt).action, RedFlagAction::kUrgentReferral);
  // A sudden severe onset, or a minor fall, with one risk factor: urgent whatever the episode.
  RedFlagAnswers sudden = osteo;
  sudden.sudden_onset_severe_pain = true;
  auto suspected = ScreenRedFlags(sudden, 60, 3 * 365);
  EXPECT_EQ(suspected.action, RedFlagAction::kUrgentReferral);
  EXPECT_EQ(suspected.concerns[0].reasons, (std::vector<std::string>{"sudden onset of severe pain", "osteoporosis"}));
  RedFlagAnswers fall;
  fall.minor_trauma = true;
  fall.previous_fragility_fracture = true;
  EXPECT_EQ(ScreenRedFlags(fall, 55, 400).action, RedFlagAction::kUrgentReferral);
  // A feature alone, or a risk factor alone: monitored.
  RedFlagAnswers only_fall;
  only_fall.minor_trauma = true;
  EXPECT_EQ(ScreenRedFlags(only_fall, 58, 3).action, RedFlagAction::kMonitor);
  RedFlagAnswers height;
  height.height_loss = true;
  EXPECT_EQ(ScreenRedFlags(height, 60, 3).action, RedFlagAction::kMonitor);
  // Height loss and an earlier fragility fracture are risk factors like the others.
  height.previous_fragility_fracture = true;
  EXPECT_EQ(ScreenRedFlags(height, 60, 3).action, RedFlagAction::kUrgentReferral);
  EXPECT_EQ(ScreenRedFlags(height, 60, 300).action, RedFlagAction::kMonitor);
}

TEST(RedFlags, TheFractureSettingsMove) {
  RedFlagAnswers osteo;
  osteo.osteoporosis = true;
  RedFlagPolicy policy;
  policy.fracture_risk_age = 65;
  EXPECT_EQ(ScreenRedFlags(osteo, 68, 10, policy).action, RedFlagAction::kUrgentReferral);
  EXPECT_EQ(ScreenRedFlags(osteo, 68, 10).action, RedFlagAction::kMonitor);
  policy.new_fracture_episode_days = 90;
  EXPECT_EQ(ScreenRedFlags(osteo, 68, 80, policy).action, RedFlagAction::kUrgentReferral);
  EXPECT_EQ(ScreenRedFlags(osteo, 68, 91, policy).action, RedFlagAction::kMonitor);
}

// A check-in re-screen re-raises nothing the plan (and a clinician's judgement) answered.
TEST(RedFlags, ARescreenRaisesOnlyWhatTheCheckInChanged) {
  RedFlagAnswers intake;
  intake.osteoporosis = true;
  const auto known = ScreenRedFlags(intake, 75, 10);  // urgent, judged monitor by the clinician
  ASSERT_EQ(known.action, RedFlagAction::kUrgentReferral);
  // Nothing new at the check-in: nothing raised, whatever intake computed.
  // (The check-in's answers count with intake's: the service merges the two screens.)
  const RedFlagAnswers same = intake;
  auto unchanged = NewSince(ScreenRedFlags(same, 75, 20), ScreenRedFlags(intake, 75, 20), RedFlagAction::kMonitor);
  EXPECT_EQ(unchanged.action, RedFlagAction::kNone);
  EXPECT_TRUE(unchanged.concerns.empty());
  // A new fall: the fracture concern changed and is above the judged level: raised.
  RedFlagAnswers fell = intake;
  fell.minor_trauma = true;
  EXPECT_TRUE(fell.osteoporosis);
  auto fracture = NewSince(ScreenRedFlags(fell, 75, 20), ScreenRedFlags(intake, 75, 20), RedFlagAction::kMonitor);
  EXPECT_EQ(fracture.action, RedFlagAction::kUrgentReferral);
  ASSERT_EQ(fracture.concerns.size(), 1u);
  EXPECT_TRUE(fracture.manipulation_contraindicated);
  // Without a judgement, a change at the level intake already had is not new (the plan was
  // made for it); a higher one is.
  EXPECT_TRUE(NewSince(ScreenRedFlags(fell, 75, 20), ScreenRedFlags(intake, 75, 20)).concerns.empty());
  // Another condition is new whatever the fracture concern does.
  RedFlagAnswers feverish = intake;
  feverish.fever = true;
  auto infection = NewSince(ScreenRedFlags(feverish, 75, 20), ScreenRedFlags(intake, 75, 20), RedFlagAction::kMonitor);
  ASSERT_EQ(infection.concerns.size(), 1u);
  EXPECT_EQ(infection.concerns[0].condition, "infection");
  EXPECT_FALSE(infection.manipulation_contraindicated);
}

TEST(RedFlags, ProgressiveNeurologicalDeficit) {
  RedFlagAnswers a;
  a.progressive_weakness = true;
  EXPECT_EQ(ScreenRedFlags(a, 40, 10).action, RedFlagAction::kUrgentReferral);
  a.widespread_neurological_signs = true;
  EXPECT_EQ(ScreenRedFlags(a, 40, 10).action, RedFlagAction::kEmergencyReferral);
}

TEST(RedFlags, AxialSpondyloarthritisCriteriaCountOnlyForEarlyOnsetChronicPain) {
  RedFlagAnswers a;
  a.waking_second_half_of_night = true;
  a.buttock_pain = true;
  a.better_with_movement = true;
  // 30 years old, 6 months: onset before 35 is a fourth criterion -> rheumatology referral.
  auto four = ScreenRedFlags(a, 30, 180);
  EXPECT_EQ(four.action, RedFlagAction::kRoutineReferral);
  EXPECT_EQ(four.concerns[0].condition, "axial_spondyloarthritis");
  // 40 years old: three criteria -> monitor and consider HLA-B27.
  auto three = ScreenRedFlags(a, 40, 180);
  EXPECT_EQ(three.action, RedFlagAction::kMonitor);
  EXPECT_NE(three.concerns[0].reasons.back().find("HLA-B27"), std::string::npos);
  // Pain for less than 3 months, or onset at 45 or later: not assessed.
  EXPECT_EQ(ScreenRedFlags(a, 30, 60).action, RedFlagAction::kNone);
  EXPECT_EQ(ScreenRedFlags(a, 50, 180).action, RedFlagAction::kNone);
}

TEST(RedFlags, TheMostUrgentConditionDecides) {
  RedFlagAnswers a;
  a.osteoporosis = true;      // monitor
  a.bladder_or_bowel_disturbance = true;  // emergency
  auto result = ScreenRedFlags(a, 50, 10);
  EXPECT_EQ(result.action, RedFlagAction::kEmergencyReferral);
  EXPECT_EQ(result.concerns.size(), 2u);
}

ClinicalFindings Manipulable() {
  ClinicalFindings f;
  f.age_years = 35;
  f.episode_duration_days = 10;
  f.symptom_extent = SymptomExtent::kButtock;
  f.fabq_work = 12;
  f.lumbar_hypomobility = true;
  f.hip_internal_rotation_deg = 40;
  return f;
}

TEST(Subgroups, ManipulationByFlynnsFiveCriteria) {
  auto result = ChooseSubgroup(Manipulable(), {});
  EXPECT_EQ(result.subgroup, Subgroup::kManipulation);
  EXPECT_EQ(result.manipulation_criteria_met, 5);
  EXPECT_TRUE(result.manipulation_two_factor);
  // Four of five without the two-factor rule (long episode).
  auto chronic = Manipulable();
  chronic.episode_duration_days = 60;
  auto four = ChooseSubgroup(chronic, {});
  EXPECT_EQ(four.subgroup, Subgroup::kManipulation);
  EXPECT_EQ(four.manipulation_criteria_met, 4);
  EXPECT_FALSE(four.manipulation_two_factor);
}

TEST(Subgroups, ManipulationByTheTwoFactorRuleAlone) {
  ClinicalFindings f;
  f.episode_duration_days = 7;
  f.symptom_extent = SymptomExtent::kBackOnly;
  auto result = ChooseSubgroup(f, {});
  EXPECT_EQ(result.subgroup, Subgroup::kManipulation);
  EXPECT_EQ(result.manipulation_criteria_met, 2);
  ASSERT_FALSE(result.notes.empty());
  // Unknown symptom extent does not count as "not below the knee".
  f.symptom_extent = SymptomExtent::kUnknown;
  EXPECT_EQ(ChooseSubgroup(f, {}).subgroup, Subgroup::kUnclassified);
}

TEST(Subgroups, SpecificExerciseByDirection) {
  ClinicalFindings f;
  f.episode_duration_days = 40;
  f.symptom_extent = SymptomExtent::kThigh;
  f.directional_preference = DirectionalPreference::kExtension;
  f.centralisation = true;
  auto extension = ChooseSubgroup(f, {});
  EXPECT_EQ(extension.subgroup, Subgroup::kSpecificExercise);
  EXPECT_EQ(extension.direction, "extension");
  EXPECT_EQ(extension.criteria_met, std::vector<std::string>{"symptoms centralise with extension"});
  // No direction without a tested preference (issue 26): stenosis signs alone add a note.
  ClinicalFindings older;
  older.age_years = 68;
  older.stenosis_suspected = true;
  const auto untested = ChooseSubgroup(older, {});
  EXPECT_EQ(untested.direction, "");
  EXPECT_NE(untested.subgroup, Subgroup::kSpecificExercise);
  ASSERT_FALSE(untested.notes.empty());
  EXPECT_NE(untested.notes.back().find("no direction is imposed"), std::string::npos);
  older.directional_preference = DirectionalPreference::kFlexion;
  const auto tested = ChooseSubgroup(older, {});
  EXPECT_EQ(tested.direction, "flexion");
  EXPECT_EQ(tested.criteria_met,
            (std::vector<std::string>{"directional preference for flexion", "signs of lumbar stenosis", "age over 50"}));
  ClinicalFindings shift;
  shift.visible_lateral_shift = true;
  EXPECT_EQ(ChooseSubgroup(shift, {}).direction, "lateral_shift");
}

// Sciatica with nerve-root signs and no directional preference (the historical traction
// subgroup) is not sent to flexion exercise: no direction without a tested preference.
TEST(Subgroups, TheTractionSubgroupGetsNoDirection) {
  ClinicalFindings f;
  f.episode_duration_days = 30;
  f.nerve_root_signs = true;
  f.symptom_extent = SymptomExtent::kBelowKnee;
  const auto result = ChooseSubgroup(f, {});
  EXPECT_EQ(result.subgroup, Subgroup::kUnclassified);
  EXPECT_EQ(result.direction, "");
  ASSERT_FALSE(result.notes.empty());
  EXPECT_NE(result.notes.back().find("traction"), std::string::npos);
  EXPECT_NE(result.notes.back().find("no exercise direction is imposed"), std::string::npos);
  EXPECT_NE(result.notes.back().find("Thackeray 2016"), std::string::npos);
}

TEST(Subgroups, StabilisationThresholdIsConfigurable) {
  ClinicalFindings f;
  f.age_years = 28;
  f.episode_duration_days = 100;
  f.aberrant_movements = true;
  f.prone_instability_positive = true;
  auto result = ChooseSubgroup(f, {});
  EXPECT_EQ(result.subgroup, Subgroup::kStabilisation);
  EXPECT_EQ(result.criteria_met.size(), 3u);
  ClassificationPolicy strict;
  strict.stabilisation_min_criteria = 4;
  EXPECT_EQ(ChooseSubgroup(f, strict).subgroup, Subgroup::kUnclassified);
}

TEST(Classify, CombinesStartBackPhaseAndSubgroup) {
  std::vector<InstrumentResult> scores(4);
  scores[0].instrument = InstrumentKind::kNprs;
  scores[0].score = 6;
  scores[1].instrument = InstrumentKind::kOdi;
  scores[1].score = 35.6;
  scores[2].instrument = InstrumentKind::kStartBack;
  scores[2].score = 6;
  scores[2].subscores = {{"psychosocial", 4}};
  scores[3].instrument = InstrumentKind::kFabq;
  scores[3].score = 12;  // work subscale
  auto findings = Manipulable();
  findings.fabq_work.reset();  // taken from the FABQ score
  auto result = Classify(findings, scores, {});
  ASSERT_TRUE(result.start_back.has_value());
  EXPECT_EQ(*result.start_back, StartBackRisk::kHigh);
  ASSERT_TRUE(result.phase.has_value());
  EXPECT_EQ(*result.phase, Phase::kMovementControl);
  EXPECT_EQ(result.phase_reason, "pain 6, Oswestry 35.6");
  EXPECT_EQ(result.subgroup.manipulation_criteria_met, 5);
}

TEST(Classify, PhaseCutoffs) {
  ClassificationPolicy policy;
  EXPECT_EQ(ChoosePhase(7.0, 10.0, policy), Phase::kSymptomModulation);
  EXPECT_EQ(ChoosePhase(2.0, 40.5, policy), Phase::kSymptomModulation);
  EXPECT_EQ(ChoosePhase(6.0, 40.0, policy), Phase::kMovementControl);
  EXPECT_EQ(ChoosePhase(3.0, 20.0, policy), Phase::kFunctionOptimisation);
  EXPECT_EQ(ChoosePhase(3.0, 20.5, policy), Phase::kMovementControl);
  EXPECT_FALSE(ChoosePhase(std::nullopt, std::nullopt, policy).has_value());
  // A missing score is unknown: pain 3 without an Oswestry is not the function phase (nor is
  // an Oswestry of 10 without pain), while either known score alone can call for modulation.
  EXPECT_EQ(ChoosePhase(3.0, std::nullopt, policy), Phase::kMovementControl);
  EXPECT_EQ(ChoosePhase(std::nullopt, 10.0, policy), Phase::kMovementControl);
  EXPECT_EQ(ChoosePhase(8.0, std::nullopt, policy), Phase::kSymptomModulation);
  EXPECT_EQ(ChoosePhase(std::nullopt, 50.0, policy), Phase::kSymptomModulation);
  policy.modulation_min_nprs = 9;
  EXPECT_EQ(ChoosePhase(8.0, 30.0, policy), Phase::kMovementControl);
}

}  // namespace
}  // namespace physio::assessment

namespace physio::assessment {
namespace {

ClinicalFindings FlynnPositive() {
  ClinicalFindings f;
  f.episode_duration_days = 10;
  f.symptom_extent = SymptomExtent::kButtock;
  f.fabq_work = 10;
  f.lumbar_hypomobility = true;
  f.hip_internal_rotation_deg = 40;
  return f;
}

TEST(ManipulationApplicability, NotWithNerveRootSignsNorBeforeACentralisingDirection) {
  EXPECT_EQ(ChooseSubgroup(FlynnPositive(), {}).subgroup, Subgroup::kManipulation);
  auto radicular = FlynnPositive();
  radicular.nerve_root_signs = true;
  auto with_signs = ChooseSubgroup(radicular, {});
  EXPECT_NE(with_signs.subgroup, Subgroup::kManipulation);
  EXPECT_FALSE(with_signs.notes.empty());
  auto centralising = FlynnPositive();
  centralising.directional_preference = DirectionalPreference::kExtension;
  centralising.centralisation = true;
  auto specific = ChooseSubgroup(centralising, {});
  EXPECT_EQ(specific.subgroup, Subgroup::kSpecificExercise);
  EXPECT_EQ(specific.direction, "extension");
}

TEST(PainNature, IrritabilityFromProvocationAndSettlingTime) {
  EXPECT_EQ(JudgeIrritability(Provocation::kUnknown, std::nullopt), Irritability::kUnknown);
  EXPECT_EQ(JudgeIrritability(Provocation::kMinimal, 45), Irritability::kHigh);
  EXPECT_EQ(JudgeIrritability(Provocation::kMinimal, 30), Irritability::kModerate);  // boundary: not above 30
  EXPECT_EQ(JudgeIrritability(Provocation::kSubstantial, 180), Irritability::kHigh);  // over 2 hours whatever provoked it
  EXPECT_EQ(JudgeIrritability(Provocation::kSubstantial, 10), Irritability::kLow);
  EXPECT_EQ(JudgeIrritability(Provocation::kSubstantial, 11), Irritability::kModerate);
  EXPECT_EQ(JudgeIrritability(Provocation::kSubstantial, std::nullopt), Irritability::kModerate);
  EXPECT_EQ(JudgeIrritability(Provocation::kModerate, 5), Irritability::kModerate);
  // The thresholds are settings (design defaults): a stricter clinic calls 20 minutes high.
  IrritabilityPolicy strict;
  strict.high_after_minimal_above_minutes = 15;
  strict.low_within_minutes = 5;
  EXPECT_EQ(JudgeIrritability(Provocation::kMinimal, 20, strict), Irritability::kHigh);
  EXPECT_EQ(JudgeIrritability(Provocation::kSubstantial, 10, strict), Irritability::kModerate);
}

TEST(PainNature, BerlinCriteriaMakeAnInflammatoryPattern) {
  ClinicalFindings f;
  EXPECT_EQ(JudgePainPattern(f).pattern, PainPattern::kUnknown);
  f.morning_stiffness_minutes = 45;
  EXPECT_NE(JudgePainPattern(f).pattern, PainPattern::kInflammatory);  // one criterion
  f.eased_by_movement = true;
  f.eased_by_rest = true;  // better with rest too: not the Berlin criterion
  EXPECT_NE(JudgePainPattern(f).pattern, PainPattern::kInflammatory);
  f.eased_by_rest = false;
  auto inflammatory = JudgePainPattern(f);
  EXPECT_EQ(inflammatory.pattern, PainPattern::kInflammatory);
  EXPECT_EQ(inflammatory.criteria.size(), 2u);
  ClinicalFindings mechanical;
  mechanical.mechanical_factors = true;
  mechanical.morning_stiffness_minutes = 10;
  EXPECT_EQ(JudgePainPattern(mechanical).pattern, PainPattern::kMechanical);
}

TEST(PainNature, BodyMassIndex) {
  EXPECT_DOUBLE_EQ(*BodyMassIndex(175, 92), 30.0);
  EXPECT_DOUBLE_EQ(*BodyMassIndex(160, 50), 19.5);
  EXPECT_FALSE(BodyMassIndex(175, std::nullopt));
  EXPECT_FALSE(BodyMassIndex(std::nullopt, 80));
}

TEST(RedFlags, AnInflammatoryPatternKeepsAnAxialSpaConcernMonitored) {
  RedFlagAnswers answers;
  answers.inflammatory_pattern = {"morning stiffness over 30 minutes", "alternating buttock pain"};
  // Age 40 with 2 years of pain: onset 38, within NG65's gate; no NG65 criterion ticked.
  auto result = ScreenRedFlags(answers, 40, 730);
  ASSERT_EQ(result.concerns.size(), 1u);
  EXPECT_EQ(result.concerns[0].condition, "axial_spondyloarthritis");
  EXPECT_EQ(result.action, RedFlagAction::kMonitor);
  // Outside the gate (onset after 45) the pattern alone raises nothing.
  EXPECT_TRUE(ScreenRedFlags(answers, 60, 730).concerns.empty());
  // With four NG65 criteria it is a routine referral, the pattern among the reasons.
  answers.waking_second_half_of_night = answers.buttock_pain = answers.better_with_movement = answers.psoriasis = true;
  auto refer = ScreenRedFlags(answers, 40, 730);
  EXPECT_EQ(refer.action, RedFlagAction::kRoutineReferral);
  EXPECT_NE(std::find_if(refer.concerns[0].reasons.begin(), refer.concerns[0].reasons.end(),
                         [](const std::string& r) { return r.find("Berlin") != std::string::npos; }),
            refer.concerns[0].reasons.end());
}

}  // namespace
}  // namespace physio::assessment
