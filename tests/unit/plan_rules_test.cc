// Plans for constructed patients judged against the clinical reference: stratified
// intensity (Hill 2011), subgroup-specific components (Fritz 2007), contraindications,
// manual therapy and psychologically informed care only with exercise (NICE NG59),
// no advised-against modality offered, referral on red flags, goals, determinism.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <optional>

#include "domain/library.h"
#include "domain/plan_rules.h"
#include "domain/evaluation.h"
#include "physio/common/error.h"
#include "use_case_support.h"
#include "physio/common/meaningful_change.h"

namespace physio::planning {
namespace {

using physio::testing::SourceLibrary;  // the shipped library, read once

PlanInput Patient(Phase phase, StartBackRisk risk) {
  PlanInput input;
  input.phase = phase;
  input.start_back = risk;
  input.red_flags = RedFlagLevel::kNone;
  input.nprs = 6;
  input.odi_percent = 32;
  return input;
}

int Count(const PlanDraft& plan, ItemKind kind) {
  return static_cast<int>(std::count_if(plan.items.begin(), plan.items.end(), [&](const auto& i) { return i.kind == kind; }));
}

bool Has(const PlanDraft& plan, const std::string& id) {
  return std::any_of(plan.items.begin(), plan.items.end(), [&](const auto& i) { return i.id == id; });
}

bool HasCategory(const PlanDraft& plan, const std::string& category) {
  for (const auto& item : plan.items) {
    const auto* entry = SourceLibrary().Find(item.id);
    if (entry && entry->category == category) return true;
  }
  return false;
}

// Invariants every generated plan must keep.
void ExpectSafe(const PlanDraft& plan) {
  for (const auto& item : plan.items) {
    EXPECT_FALSE(item.reason.empty()) << item.id;
    EXPECT_FALSE(item.source.empty()) << item.id;
  }
  if (Count(plan, ItemKind::kManualTherapy) > 0) {
    EXPECT_GT(Count(plan, ItemKind::kExercise), 0) << "manual therapy alone";
  }
  if (Count(plan, ItemKind::kPsychological) > 0) {
    EXPECT_GT(Count(plan, ItemKind::kExercise), 0) << "CBT alone";
  }
  for (const auto& item : plan.items) {
    // An advised-against modality only ever appears as "not recommended".
    if (item.id.rfind("notrec.", 0) == 0) {
      EXPECT_EQ(item.kind, ItemKind::kNotRecommended);
    }
  }
}

TEST(Stratification, LowRiskGetsAdviceAndSelfManagement) {
  auto plan = GeneratePlanDraft(Patient(Phase::kMovementControl, StartBackRisk::kLow), SourceLibrary());
  ExpectSafe(plan);
  EXPECT_EQ(plan.intensity, Intensity::kAdviceAndSelfManagement);
  EXPECT_TRUE(Has(plan, "edu.self_management"));
  EXPECT_EQ(Count(plan, ItemKind::kManualTherapy), 0);
  EXPECT_EQ(Count(plan, ItemKind::kPsychological), 0);
  EXPECT_LE(Count(plan, ItemKind::kExercise), 3);
  EXPECT_TRUE(Has(plan, "pain.heat"));
  EXPECT_EQ(plan.reviews.size(), 1u);
}

TEST(Stratification, MediumRiskGetsAPhysiotherapyPackage) {
  auto plan = GeneratePlanDraft(Patient(Phase::kMovementControl, StartBackRisk::kMedium), SourceLibrary());
  ExpectSafe(plan);
  EXPECT_EQ(plan.intensity, Intensity::kPhysiotherapyPackage);
  EXPECT_GE(Count(plan, ItemKind::kExercise), 4);
  EXPECT_TRUE(Has(plan, "manual.joint_mobilisation"));
  EXPECT_EQ(Count(plan, ItemKind::kPsychological), 0);
  EXPECT_EQ(plan.reviews[0].week, 2);
  EXPECT_EQ(plan.reviews[1].week, 6);
}

TEST(Stratification, HighRiskGetsPsychologicallyInformedPhysiotherapy) {
  auto plan = GeneratePlanDraft(Patient(Phase::kMovementControl, StartBackRisk::kHigh), SourceLibrary());
  ExpectSafe(plan);
  EXPECT_EQ(plan.intensity, Intensity::kPsychologicallyInformed);
  EXPECT_TRUE(Has(plan, "psych.informed_physiotherapy"));
  EXPECT_TRUE(Has(plan, "edu.pain_neuroscience"));
  EXPECT_TRUE(Has(plan, "life.activity_pacing"));
  EXPECT_TRUE(Has(plan, "ex.func.graded_activity"));
}

TEST(Subgroups, ManipulationSubgroupGetsManipulationWithExercise) {
  auto input = Patient(Phase::kMovementControl, StartBackRisk::kMedium);
  input.subgroup = Subgroup::kManipulation;
  input.subgroup_evidence = "episode shorter than 16 days, no symptoms below the knee";
  auto plan = GeneratePlanDraft(input, SourceLibrary());
  ExpectSafe(plan);
  EXPECT_TRUE(Has(plan, "manual.thrust_manipulation"));
  EXPECT_FALSE(Has(plan, "manual.joint_mobilisation"));
  // With a (monitored) fracture concern: no manipulation or mobilisation, no loaded or
  // end-range flexion, but strengthening goes on (Royal Osteoporosis Society 2022).
  input.fracture_concern = true;
  auto careful = GeneratePlanDraft(input, SourceLibrary());
  ExpectSafe(careful);
  EXPECT_EQ(Count(careful, ItemKind::kManualTherapy), 0);
  bool strengthening = false;
  for (const auto& item : careful.items) {
    const auto* entry = SourceLibrary().Find(item.id);
    if (!entry) continue;
    strengthening |= entry->category == "trunk_strength";
    for (const auto& token : entry->contraindications) {
      EXPECT_NE(token, "flexion_loading") << item.id;
      EXPECT_NE(token, "manipulation_contraindicated") << item.id;
    }
  }
  EXPECT_TRUE(strengthening);
  // An urgent one (treated only on a clinician's judgement): no loading at all.
  input.fracture_urgent = true;
  for (const auto& item : GeneratePlanDraft(input, SourceLibrary()).items) {
    const auto* entry = SourceLibrary().Find(item.id);
    if (!entry) continue;
    for (const auto& token : entry->contraindications) EXPECT_NE(token, "loading_contraindicated") << item.id;
  }
}

TEST(Subgroups, SpecificExerciseFollowsTheDirection) {
  auto input = Patient(Phase::kSymptomModulation, StartBackRisk::kMedium);
  input.subgroup = Subgroup::kSpecificExercise;
  input.direction = "extension";
  auto extension = GeneratePlanDraft(input, SourceLibrary());
  ExpectSafe(extension);
  EXPECT_TRUE(HasCategory(extension, "directional_extension"));
  EXPECT_FALSE(HasCategory(extension, "directional_flexion"));
  EXPECT_FALSE(Has(extension, "ex.flex.knee_to_chest"));  // flexion is avoided for an extension responder
  input.direction = "flexion";
  auto flexion = GeneratePlanDraft(input, SourceLibrary());
  EXPECT_TRUE(HasCategory(flexion, "directional_flexion"));
  EXPECT_FALSE(HasCategory(flexion, "directional_extension"));
  input.direction = "lateral_shift";
  EXPECT_TRUE(Has(GeneratePlanDraft(input, SourceLibrary()), "ex.dir.side_glide_wall"));
}

TEST(Subgroups, StabilisationGetsActivationAndStrength) {
  auto input = Patient(Phase::kMovementControl, StartBackRisk::kMedium);
  input.subgroup = Subgroup::kStabilisation;
  auto plan = GeneratePlanDraft(input, SourceLibrary());
  ExpectSafe(plan);
  EXPECT_TRUE(HasCategory(plan, "trunk_activation"));
  EXPECT_TRUE(HasCategory(plan, "trunk_strength"));
}

TEST(Subgroups, TractionCandidatesAreToldTractionIsNotRecommendedAndGetNoDirection) {
  auto input = Patient(Phase::kMovementControl, StartBackRisk::kMedium);
  input.traction_candidate = true;  // classified without a subgroup or direction (issue 26)
  auto plan = GeneratePlanDraft(input, SourceLibrary());
  ExpectSafe(plan);
  ASSERT_TRUE(Has(plan, "notrec.traction"));
  EXPECT_EQ(Count(plan, ItemKind::kNotRecommended), 1);
  EXPECT_FALSE(HasCategory(plan, "directional_flexion"));
  EXPECT_EQ(std::find(plan.contraindications.begin(), plan.contraindications.end(), "extension_intolerant"),
            plan.contraindications.end());
}

TEST(Phases, ExercisesSuitThePhase) {
  for (Phase phase : {Phase::kSymptomModulation, Phase::kMovementControl, Phase::kFunctionOptimisation}) {
    auto plan = GeneratePlanDraft(Patient(phase, StartBackRisk::kMedium), SourceLibrary());
    ExpectSafe(plan);
    for (const auto& item : plan.items) {
      // Safety items and the flare-up plan come from the rules, for every phase.
      if (item.id.rfind("safety.", 0) == 0 || item.id.rfind("selfcare.", 0) == 0) continue;
      const auto* entry = SourceLibrary().Find(item.id);
      ASSERT_NE(entry, nullptr) << item.id;
      EXPECT_NE(std::find(entry->phases.begin(), entry->phases.end(), phase), entry->phases.end()) << item.id;
    }
  }
  auto optimisation = GeneratePlanDraft(Patient(Phase::kFunctionOptimisation, StartBackRisk::kMedium), SourceLibrary());
  EXPECT_FALSE(Has(optimisation, "manual.joint_mobilisation"));  // no passive care once function is the aim
  EXPECT_TRUE(HasCategory(optimisation, "functional"));
}

TEST(RedFlags, UrgentOrEmergencyGivesAReferralInsteadOfTreatment) {
  for (RedFlagLevel level : {RedFlagLevel::kUrgentReferral, RedFlagLevel::kEmergencyReferral}) {
    auto input = Patient(Phase::kMovementControl, StartBackRisk::kMedium);
    input.red_flags = level;
    input.red_flag_reasons = {"malignancy: history of cancer"};
    auto plan = GeneratePlanDraft(input, SourceLibrary());
    EXPECT_EQ(plan.type, PlanType::kReferral);
    ASSERT_EQ(plan.items.size(), 1u);
    EXPECT_EQ(plan.items[0].kind, ItemKind::kReferral);
    EXPECT_EQ(plan.items[0].reason, "malignancy: history of cancer");
    EXPECT_TRUE(plan.goals.empty());
  }
  auto monitor = Patient(Phase::kMovementControl, StartBackRisk::kMedium);
  monitor.red_flags = RedFlagLevel::kMonitor;
  EXPECT_EQ(GeneratePlanDraft(monitor, SourceLibrary()).type, PlanType::kTreatment);
}

TEST(Goals, MeaningfulChangeAndThePatientsOwnActivities) {
  auto input = Patient(Phase::kMovementControl, StartBackRisk::kMedium);
  input.odi_percent = 35.6;
  input.rmdq = 10;
  input.psfs = {{"Lifting my toddler", 3}, {"Gardening", 8.5}};
  auto plan = GeneratePlanDraft(input, SourceLibrary());
  ASSERT_EQ(plan.goals.size(), 6u);
  EXPECT_DOUBLE_EQ(plan.goals[0].target, 4.0);   // pain 6 - 2
  EXPECT_DOUBLE_EQ(plan.goals[1].target, 25.6);  // ODI: 10-point drop (30% would be 10.7)
  EXPECT_DOUBLE_EQ(plan.goals[2].target, 6.0);   // RMDQ: 30% of 10 = 3 < the MDC of 4, so 4 points
  EXPECT_EQ(plan.goals[3].description, "Improve 'Lifting my toddler' by at least 3 points");
  EXPECT_DOUBLE_EQ(plan.goals[3].target, 6.0);
  EXPECT_DOUBLE_EQ(plan.goals[4].target, 10.0);  // capped at the scale
  EXPECT_EQ(plan.goals[5].measure, GoalMeasure::kActivity);  // WHO 2020: 150 minutes a week
  EXPECT_DOUBLE_EQ(plan.goals[5].target, 150);
}

TEST(Lifestyle, HistoryAddsEducationAndLifestyle) {
  auto input = Patient(Phase::kMovementControl, StartBackRisk::kMedium);
  input.smoker = true;
  input.sleep_disturbed = true;
  input.occupation = Occupation::kHeavy;
  input.chronic = true;
  auto plan = GeneratePlanDraft(input, SourceLibrary());
  for (const char* id : {"life.smoking", "life.sleep", "edu.body_mechanics_lifting", "life.return_to_work",
                         "edu.pain_neuroscience"}) {
    EXPECT_TRUE(Has(plan, id)) << id;
  }
}

TEST(Determinism, SameInputAndLibraryGiveTheSamePlan) {
  auto input = Patient(Phase::kMovementControl, StartBackRisk::kHigh);
  auto a = GeneratePlanDraft(input, SourceLibrary());
  auto b = GeneratePlanDraft(input, SourceLibrary());
  ASSERT_EQ(a.items.size(), b.items.size());
  for (size_t i = 0; i < a.items.size(); ++i) {
    EXPECT_EQ(a.items[i].id, b.items[i].id);
    EXPECT_EQ(a.items[i].reason, b.items[i].reason);
  }
  EXPECT_EQ(a.library_version, SourceLibrary().version());
  EXPECT_GT(a.home_sessions_per_week, 0);
}

}  // namespace
}  // namespace physio::planning

namespace physio::planning {
namespace {

TEST(Safety, NoTreatmentPlanWithoutARedFlagScreen) {
  const auto& library = SourceLibrary();
  PlanInput input;
  input.phase = Phase::kMovementControl;
  input.start_back = StartBackRisk::kMedium;
  input.red_flags = RedFlagLevel::kNotScreened;
  input.nprs = 6;
  input.odi_percent = 32;
  try {
    GeneratePlanDraft(input, library);
    ADD_FAILURE() << "a plan was generated without a red-flag screen";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kFailedPrecondition);
    EXPECT_NE(std::string(e.what()).find("red flags were not screened"), std::string::npos);
  }
  input.red_flags = RedFlagLevel::kNone;
  EXPECT_FALSE(GeneratePlanDraft(input, library).items.empty());
}

}  // namespace
}  // namespace physio::planning

namespace physio::planning {
namespace {

TEST(Safety, ElevatedFearAvoidanceAddsEducationAndGradedActivityAtMediumRisk) {
  const auto& library = SourceLibrary();
  PlanInput input;
  input.phase = Phase::kMovementControl;
  input.start_back = StartBackRisk::kMedium;
  input.red_flags = RedFlagLevel::kNone;
  input.nprs = 5;
  auto has = [](const PlanDraft& plan, const std::string& id) {
    return std::any_of(plan.items.begin(), plan.items.end(), [&](const auto& i) { return i.id == id; });
  };
  auto plain = GeneratePlanDraft(input, library);
  EXPECT_FALSE(has(plain, "edu.pain_neuroscience"));
  EXPECT_FALSE(has(plain, "ex.func.graded_activity"));
  input.fear_avoidance = {"FABQ physical-activity subscale above 14"};
  auto fearful = GeneratePlanDraft(input, library);
  EXPECT_TRUE(has(fearful, "edu.pain_neuroscience"));
  EXPECT_TRUE(has(fearful, "ex.func.graded_activity"));
  for (const auto& item : fearful.items) {
    if (item.id == "edu.pain_neuroscience") {
      EXPECT_NE(item.reason.find("fear-avoidance"), std::string::npos);
    }
  }
}

}  // namespace
}  // namespace physio::planning

namespace physio::planning {
namespace {

bool HasItem(const PlanDraft& plan, const std::string& id) {
  return std::any_of(plan.items.begin(), plan.items.end(), [&](const auto& i) { return i.id == id; });
}

TEST(Safety, EveryPlanCarriesTheCaudaEquinaSafetyNetAndConcernsAddTheirItems) {
  PlanInput input;
  input.phase = Phase::kMovementControl;
  input.start_back = StartBackRisk::kLow;
  input.red_flags = RedFlagLevel::kNone;
  input.nprs = 4;
  auto plain = GeneratePlanDraft(input, SourceLibrary());
  EXPECT_TRUE(HasItem(plain, "safety.cauda_equina"));
  EXPECT_FALSE(HasItem(plain, "safety.netting"));
  EXPECT_EQ(plain.reviews.front().week, 2);

  input.red_flags = RedFlagLevel::kMonitor;
  input.red_flag_reasons = {"malignancy: age over 50, night pain"};
  auto monitored = GeneratePlanDraft(input, SourceLibrary());
  EXPECT_TRUE(HasItem(monitored, "safety.netting"));
  EXPECT_EQ(monitored.reviews.front().week, 1);  // an earlier review
  EXPECT_FALSE(HasItem(monitored, "referral.routine"));
  for (const auto& item : monitored.items) {
    if (item.id == "safety.netting") {
      EXPECT_NE(item.reason.find("night pain"), std::string::npos);
    }
  }

  input.red_flags = RedFlagLevel::kRoutineReferral;
  input.red_flag_reasons = {"axial_spondyloarthritis: buttock pain, better with movement, ..."};
  auto routine = GeneratePlanDraft(input, SourceLibrary());
  EXPECT_EQ(routine.type, PlanType::kTreatment);  // treatment goes on
  EXPECT_TRUE(HasItem(routine, "referral.routine"));
  EXPECT_TRUE(HasItem(routine, "safety.cauda_equina"));
}

// Issue 15: the whole assessment used.
const PlanItemDraft* Item(const PlanDraft& plan, const std::string& id) {
  for (const auto& item : plan.items) {
    if (item.id == id) return &item;
  }
  return nullptr;
}

TEST(Depth, IrritabilitySetsTheStartingDoseAndTheProgressionRate) {
  auto moderate = Patient(Phase::kMovementControl, StartBackRisk::kMedium);
  moderate.irritability = Irritability::kModerate;
  auto high = moderate;
  high.irritability = Irritability::kHigh;
  auto low = moderate;
  low.irritability = Irritability::kLow;
  const auto standard = GeneratePlanDraft(moderate, SourceLibrary());
  const auto gentle = GeneratePlanDraft(high, SourceLibrary());
  EXPECT_EQ(standard.progression_interval_days, 7);
  EXPECT_EQ(gentle.progression_interval_days, 14);
  EXPECT_EQ(GeneratePlanDraft(low, SourceLibrary()).progression_interval_days, 5);
  // The intervals are settings (design defaults).
  PlanPolicy slower;
  slower.progression_days_high_irritability = 21;
  slower.progression_days_low_irritability = 7;
  EXPECT_EQ(GeneratePlanDraft(low, SourceLibrary(), slower).progression_interval_days, 7);
  EXPECT_EQ(ProgressionIntervalDays(Irritability::kHigh, slower), 21);
  int lowered = 0;
  for (const auto& item : gentle.items) {
    if (item.kind != ItemKind::kExercise) continue;
    const auto* was = Item(standard, item.id);
    ASSERT_NE(was, nullptr) << item.id;
    // Never more of anything; less of something where there was room.
    EXPECT_LE(item.dose.sets, was->dose.sets) << item.id;
    EXPECT_LE(item.dose.reps, was->dose.reps) << item.id;
    EXPECT_LE(item.dose.hold_seconds, was->dose.hold_seconds) << item.id;
    EXPECT_LE(item.dose.duration_minutes, was->dose.duration_minutes) << item.id;
    lowered += item.dose.sets < was->dose.sets || item.dose.reps < was->dose.reps ||
               item.dose.duration_minutes < was->dose.duration_minutes;
    EXPECT_NE(item.reason.find("high irritability"), std::string::npos) << item.id;
  }
  EXPECT_GT(lowered, 0);
}

TEST(Depth, ActivityLevelSetsTheWalkingDoseAndTheWeeklyTarget) {
  for (auto [level, minutes] : std::vector<std::pair<ActivityLevel, int>>{
           {ActivityLevel::kLow, 10}, {ActivityLevel::kModerate, 20}, {ActivityLevel::kHigh, 30}}) {
    auto input = Patient(Phase::kMovementControl, StartBackRisk::kMedium);
    input.activity_level = level;
    auto plan = GeneratePlanDraft(input, SourceLibrary());
    const auto* walking = Item(plan, "ex.aerobic.walking");
    ASSERT_NE(walking, nullptr);
    EXPECT_EQ(walking->dose.duration_minutes, minutes);
    EXPECT_EQ(plan.weekly_activity_target_minutes, 150);
    EXPECT_NE(plan.goals.back().description.find("from about " + std::to_string(minutes * 5) + " minutes"),
              std::string::npos)
        << plan.goals.back().description;
  }
  auto heart = Patient(Phase::kMovementControl, StartBackRisk::kMedium);
  heart.cardiovascular_disease = true;
  EXPECT_NE(Item(GeneratePlanDraft(heart, SourceLibrary()), "ex.aerobic.walking")->instructions.find("chest pain"),
            std::string::npos);
}

TEST(Depth, BmiPreviousEpisodesObservationsAndPostureSelectTheirItems) {
  auto input = Patient(Phase::kMovementControl, StartBackRisk::kMedium);
  auto plain = GeneratePlanDraft(input, SourceLibrary());
  EXPECT_EQ(Item(plain, "life.weight"), nullptr);  // no input selected it before BMI
  EXPECT_EQ(Item(plain, "edu.recurrence_prevention"), nullptr);
  EXPECT_EQ(Item(plain, "ex.flex.hamstring_stretch"), nullptr);
  input.bmi = 31.2;
  input.previous_episodes = 2;
  input.observations = {"reduced_hamstring_length", "flexed_posture"};
  auto plan = GeneratePlanDraft(input, SourceLibrary());
  ASSERT_NE(Item(plan, "life.weight"), nullptr);
  EXPECT_NE(Item(plan, "life.weight")->reason.find("31.2"), std::string::npos);
  ASSERT_NE(Item(plan, "edu.recurrence_prevention"), nullptr);
  EXPECT_NE(Item(plan, "edu.recurrence_prevention")->source.find("Steffens"), std::string::npos);
  ASSERT_NE(Item(plan, "ex.flex.hamstring_stretch"), nullptr);
  EXPECT_EQ(Item(plan, "ex.flex.hamstring_stretch")->reason, "examination finding: reduced_hamstring_length");
  EXPECT_NE(Item(plan, "ex.posture.sitting_reset"), nullptr);
  ASSERT_NE(Item(plan, "edu.posture_variety"), nullptr);
  EXPECT_NE(Item(plan, "edu.posture_variety")->title.find("no single correct"), std::string::npos);
  input.bmi = 29.9;
  EXPECT_EQ(Item(GeneratePlanDraft(input, SourceLibrary()), "life.weight"), nullptr);
}

TEST(Depth, ThePatientsGoalsBecomePsfsLinkedGoals) {
  auto input = Patient(Phase::kMovementControl, StartBackRisk::kMedium);
  input.psfs = {{"Lifting my toddler", 3}, {"Gardening", 8}};
  input.goals = {"lifting my toddler without pain", "run a 5k"};
  auto plan = GeneratePlanDraft(input, SourceLibrary());
  std::vector<GoalDraft> psfs;
  for (const auto& goal : plan.goals) {
    if (goal.measure == GoalMeasure::kPsfs) psfs.push_back(goal);
  }
  ASSERT_EQ(psfs.size(), 3u);  // two stated goals, and the unlinked PSFS activity
  EXPECT_NE(psfs[0].description.find("'lifting my toddler without pain'"), std::string::npos) << psfs[0].description;
  EXPECT_DOUBLE_EQ(psfs[0].target, 6);  // rated 3, +3
  EXPECT_NE(psfs[1].description.find("rate it at the next re-measure"), std::string::npos) << psfs[1].description;
  EXPECT_EQ(psfs[2].description, "Improve 'Gardening' by at least 3 points");
}

TEST(Depth, EveryTreatmentPlanHasAFlareUpPlanAndHeatAndCold) {
  for (auto risk : {StartBackRisk::kLow, StartBackRisk::kMedium, StartBackRisk::kHigh}) {
    auto plan = GeneratePlanDraft(Patient(Phase::kMovementControl, risk), SourceLibrary());
    const auto* flare = Item(plan, "selfcare.flare_up_plan");
    ASSERT_NE(flare, nullptr);
    EXPECT_NE(flare->instructions.find("Scale your home programme down"), std::string::npos);
    EXPECT_NE(flare->instructions.find("When to call"), std::string::npos);
    // Names each home exercise with its scaled dose.
    for (const auto& item : plan.items) {
      if (item.kind == ItemKind::kExercise && item.home_programme) {
        EXPECT_NE(flare->instructions.find(item.title + ":"), std::string::npos) << item.title;
      }
    }
    ASSERT_NE(Item(plan, "pain.heat"), nullptr);
    ASSERT_NE(Item(plan, "pain.cold"), nullptr);
    EXPECT_NE(Item(plan, "pain.heat")->source.find("French"), std::string::npos);
    EXPECT_NE(Item(plan, "pain.cold")->source.find("too little evidence"), std::string::npos);
    EXPECT_NE(Item(plan, "pain.heat")->reason.find("acute or sub-acute"), std::string::npos);
  }
  // With pain for more than 3 months heat is a comfort option only, and says so.
  auto chronic = Patient(Phase::kMovementControl, StartBackRisk::kMedium);
  chronic.chronic = true;
  const auto plan = GeneratePlanDraft(chronic, SourceLibrary());
  ASSERT_NE(Item(plan, "pain.heat"), nullptr);
  EXPECT_NE(Item(plan, "pain.heat")->reason.find("comfort option only"), std::string::npos);
}

// Issue 26 item 15: weakly evidenced options are never chosen by generation, whatever the patient.
TEST(Depth, ClinicianAddedOptionsAreNeverGenerated) {
  std::vector<std::string> clinician_only;
  for (const auto& entry : SourceLibrary().entries()) {
    if (entry.clinician_added_only) clinician_only.push_back(entry.id);
  }
  ASSERT_GE(clinician_only.size(), 2u);
  int plans = 0;
  for (auto phase : {Phase::kSymptomModulation, Phase::kMovementControl, Phase::kFunctionOptimisation}) {
    for (auto risk : {StartBackRisk::kLow, StartBackRisk::kMedium, StartBackRisk::kHigh}) {
      for (auto subgroup : {Subgroup::kManipulation, Subgroup::kStabilisation, Subgroup::kSpecificExercise,
                            Subgroup::kUnclassified}) {
        for (bool chronic : {false, true}) {
          auto input = Patient(phase, risk);
          input.subgroup = subgroup;
          input.direction = subgroup == Subgroup::kSpecificExercise ? "extension" : "";
          input.chronic = chronic;
          input.observations = {"sustained_flexed_sitting"};
          input.occupation = Occupation::kHeavy;
          const auto plan = GeneratePlanDraft(input, SourceLibrary());
          ++plans;
          for (const auto& id : clinician_only) EXPECT_FALSE(Has(plan, id)) << id;
        }
      }
    }
  }
  EXPECT_EQ(plans, 72);
}

TEST(Depth, PregnancyRulesOutProneLyingAndManipulation) {
  auto input = Patient(Phase::kSymptomModulation, StartBackRisk::kMedium);
  input.subgroup = Subgroup::kSpecificExercise;
  input.direction = "extension";
  // The control: without pregnancy the extension programme starts lying face down.
  EXPECT_NE(Item(GeneratePlanDraft(input, SourceLibrary()), "ex.dir.prone_lying"), nullptr);
  input.pregnant = true;
  auto plan = GeneratePlanDraft(input, SourceLibrary());
  for (const auto& item : plan.items) {
    const auto* entry = SourceLibrary().Find(item.id);
    if (entry == nullptr) continue;
    EXPECT_EQ(std::count(entry->contraindications.begin(), entry->contraindications.end(), "prone_position"), 0)
        << item.id;
  }
  EXPECT_EQ(Item(plan, "manual.thrust_manipulation"), nullptr);
  EXPECT_NE(std::find(plan.contraindications.begin(), plan.contraindications.end(), "prone_position"),
            plan.contraindications.end());
}

// Issue 26 item 13: the stage of pregnancy is recorded and followed (ACOG 2020; RCOG).
TEST(Depth, PregnancyFollowsTheStage) {
  auto carries = [](const PlanDraft& plan, const std::string& token) {
    for (const auto& item : plan.items) {
      const auto* entry = SourceLibrary().Find(item.id);
      if (entry != nullptr &&
          std::find(entry->contraindications.begin(), entry->contraindications.end(), token) !=
              entry->contraindications.end()) {
        return item.id;
      }
    }
    return std::string();
  };
  auto excluded = [](const PlanDraft& plan, const std::string& token) {
    return std::find(plan.contraindications.begin(), plan.contraindications.end(), token) != plan.contraindications.end();
  };
  auto input = Patient(Phase::kSymptomModulation, StartBackRisk::kMedium);
  input.subgroup = Subgroup::kStabilisation;
  // The control: out of pregnancy, symptom-modulation activation starts lying on the back.
  EXPECT_FALSE(carries(GeneratePlanDraft(input, SourceLibrary()), "supine_position").empty());
  input.pregnant = true;
  // First trimester: work on the back is still offered; curl-ups, knees-to-chest, prone are not.
  input.pregnancy_weeks = 10;
  auto early = GeneratePlanDraft(input, SourceLibrary());
  EXPECT_FALSE(excluded(early, "supine_position"));
  EXPECT_TRUE(excluded(early, "abdominal_loading"));
  EXPECT_TRUE(excluded(early, "prone_position"));
  EXPECT_EQ(carries(early, "abdominal_loading"), "");
  EXPECT_NE(Item(early, "edu.exercise_in_pregnancy"), nullptr);
  EXPECT_NE(Item(early, "edu.exercise_in_pregnancy")->instructions.find("vaginal bleeding"), std::string::npos);
  // From week 16 (and when the week is not recorded): nothing lying on the back either, and
  // the plan still has exercise for each phase.
  for (std::optional<int> weeks : {std::optional<int>(16), std::optional<int>(30), std::optional<int>()}) {
    input.pregnancy_weeks = weeks;
    for (auto phase : {Phase::kSymptomModulation, Phase::kMovementControl, Phase::kFunctionOptimisation}) {
      input.phase = phase;
      auto plan = GeneratePlanDraft(input, SourceLibrary());
      EXPECT_TRUE(excluded(plan, "supine_position"));
      EXPECT_EQ(carries(plan, "supine_position"), "") << (weeks ? *weeks : 0);
      EXPECT_EQ(carries(plan, "prone_position"), "");
      EXPECT_EQ(carries(plan, "abdominal_loading"), "");
      EXPECT_EQ(Item(plan, "manual.thrust_manipulation"), nullptr);
      EXPECT_GE(Count(plan, ItemKind::kExercise), 2) << "phase " << static_cast<int>(phase);
    }
  }
  // The week is a setting.
  PlanPolicy later;
  later.pregnancy_supine_from_week = 20;
  input.pregnancy_weeks = 18;
  input.phase = Phase::kSymptomModulation;
  EXPECT_FALSE(excluded(GeneratePlanDraft(input, SourceLibrary(), later), "supine_position"));
  EXPECT_TRUE(excluded(GeneratePlanDraft(input, SourceLibrary()), "supine_position"));
  // Pelvic girdle pain gets its own advice and exercise, not lying on the back.
  EXPECT_EQ(Item(GeneratePlanDraft(input, SourceLibrary()), "edu.pelvic_girdle_pain"), nullptr);
  input.pelvic_girdle_pain = true;
  auto pgp = GeneratePlanDraft(input, SourceLibrary());
  ASSERT_NE(Item(pgp, "edu.pelvic_girdle_pain"), nullptr);
  ASSERT_NE(Item(pgp, "ex.pgp.pelvic_floor_activation"), nullptr);
  EXPECT_NE(Item(pgp, "ex.pgp.pelvic_floor_activation")->instructions.find("not on your back"), std::string::npos);
  EXPECT_TRUE(Item(pgp, "ex.pgp.pelvic_floor_activation")->home_programme);
}

// Every exercise lying on the back says so in its contraindications, so pregnancy rules it out.
TEST(Depth, EveryExerciseLyingOnTheBackCarriesTheSupineToken) {
  int supine = 0;
  for (const auto& entry : SourceLibrary().entries()) {
    if (entry.kind != InterventionKind::kExercise) continue;
    std::string text = entry.instructions;
    std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::tolower(c); });
    const bool on_back = text.find("on your back") != std::string::npos || text.find("lying with knees bent") != std::string::npos ||
                         text.find("lying with one knee") != std::string::npos || text.find("as a bridge") != std::string::npos ||
                         text.find("slide one heel") != std::string::npos;
    const bool negated = text.find("not on your back") != std::string::npos;
    if (!on_back || negated) continue;
    ++supine;
    EXPECT_NE(std::find(entry.contraindications.begin(), entry.contraindications.end(), "supine_position"),
              entry.contraindications.end())
        << entry.id;
  }
  EXPECT_GE(supine, 12);
}

TEST(Depth, PreferencesAreRespected) {
  auto input = Patient(Phase::kMovementControl, StartBackRisk::kMedium);
  input.subgroup = Subgroup::kManipulation;
  auto with = GeneratePlanDraft(input, SourceLibrary());
  EXPECT_NE(Item(with, "manual.thrust_manipulation"), nullptr);
  input.declines_manual_therapy = true;
  input.prefers_pilates = true;
  auto plan = GeneratePlanDraft(input, SourceLibrary());
  EXPECT_EQ(Count(plan, ItemKind::kManualTherapy), 0);
  ASSERT_NE(Item(plan, "preference.no_manual_therapy"), nullptr);
  ASSERT_NE(Item(plan, "ex.supervised.pilates"), nullptr);
  EXPECT_FALSE(Item(plan, "ex.supervised.pilates")->home_programme);
  EXPECT_NE(Item(plan, "ex.supervised.pilates")->source.find("Owen"), std::string::npos);
  // Not in the symptom-modulation phase: the class waits for movement control.
  input.phase = Phase::kSymptomModulation;
  EXPECT_EQ(Item(GeneratePlanDraft(input, SourceLibrary()), "ex.supervised.pilates"), nullptr);
}

TEST(Depth, EarlierTreatmentShapesThePlan) {
  auto input = Patient(Phase::kMovementControl, StartBackRisk::kMedium);
  input.subgroup = Subgroup::kManipulation;
  input.previous_treatments = {"manipulation", "exercise"};
  // It helped: nothing changes.
  auto helped = GeneratePlanDraft(input, SourceLibrary());
  EXPECT_NE(Item(helped, "manual.thrust_manipulation"), nullptr);
  EXPECT_EQ(Item(helped, "psych.informed_physiotherapy"), nullptr);
  // It did not help: NICE NG59's combined physical and psychological approach, with exercise.
  input.previous_treatment_did_not_help = true;
  auto no_change = GeneratePlanDraft(input, SourceLibrary());
  ASSERT_NE(Item(no_change, "psych.informed_physiotherapy"), nullptr);
  EXPECT_NE(Item(no_change, "psych.informed_physiotherapy")->reason.find("manipulation, exercise) did not help"),
            std::string::npos);
  EXPECT_NE(Item(no_change, "manual.thrust_manipulation"), nullptr);  // not worse: still offered
  ExpectSafe(no_change);
  // Manual therapy made it worse: none is offered, and the plan says why.
  input.previous_treatment_did_not_help = false;
  input.previous_treatment_made_worse = true;
  auto worse = GeneratePlanDraft(input, SourceLibrary());
  EXPECT_EQ(Count(worse, ItemKind::kManualTherapy), 0);
  ASSERT_NE(Item(worse, "history.no_manual_therapy"), nullptr);
  EXPECT_NE(Item(worse, "psych.informed_physiotherapy"), nullptr);
  ExpectSafe(worse);
  // Only exercise made it worse: manual therapy stays available.
  input.previous_treatments = {"exercise"};
  EXPECT_NE(Item(GeneratePlanDraft(input, SourceLibrary()), "manual.thrust_manipulation"), nullptr);
}

TEST(Depth, PainMedicinesTheGuidelineAdvisesAgainstGetAReview) {
  auto input = Patient(Phase::kMovementControl, StartBackRisk::kMedium);
  EXPECT_EQ(Item(GeneratePlanDraft(input, SourceLibrary()), "pain.medication_review"), nullptr);
  input.analgesics = {Analgesic::kParacetamol};
  auto paracetamol = GeneratePlanDraft(input, SourceLibrary());
  ASSERT_NE(Item(paracetamol, "pain.medication_review"), nullptr);
  EXPECT_NE(Item(paracetamol, "pain.medication_review")->reason.find("paracetamol on its own"), std::string::npos);
  EXPECT_NE(Item(paracetamol, "pain.medication_review")->source.find("NICE NG59"), std::string::npos);
  EXPECT_NE(Item(paracetamol, "pain.medication_review")->instructions.find("Do not stop"), std::string::npos);
  // Opioids: for chronic pain not recommended; for recent pain only when an NSAID is unsuitable.
  input.analgesics = {Analgesic::kParacetamol, Analgesic::kOpioid};
  input.chronic = true;
  const auto chronic = Item(GeneratePlanDraft(input, SourceLibrary()), "pain.medication_review")->reason;
  EXPECT_NE(chronic.find("not recommended for chronic low back pain"), std::string::npos) << chronic;
  EXPECT_EQ(chronic.find("paracetamol on its own"), std::string::npos) << chronic;  // not on its own
  input.chronic = false;
  EXPECT_NE(Item(GeneratePlanDraft(input, SourceLibrary()), "pain.medication_review")->reason.find("only a weak opioid"),
            std::string::npos);
  input.analgesics = {Analgesic::kNsaid};
  input.cardiovascular_disease = true;
  const auto nsaid = Item(GeneratePlanDraft(input, SourceLibrary()), "pain.medication_review")->reason;
  EXPECT_NE(nsaid.find("lowest effective dose"), std::string::npos);
  EXPECT_NE(nsaid.find("heart or circulation disease"), std::string::npos);
  input.analgesics = {Analgesic::kNeuropathic};
  EXPECT_NE(Item(GeneratePlanDraft(input, SourceLibrary()), "pain.medication_review")->reason.find("anticonvulsants"),
            std::string::npos);
}

// Issue 26 item 11: for sciatica NICE NG59 (2020) says what not to offer, rather than "the GP
// decides"; an NSAID with an anticoagulant, or in pregnancy, is flagged.
TEST(Depth, TheMedicinesReviewFollowsTheSciaticaAdviceAndFlagsRiskyNsaids) {
  auto input = Patient(Phase::kMovementControl, StartBackRisk::kMedium);
  input.analgesics = {Analgesic::kNeuropathic};
  input.sciatica = true;
  const auto sciatica = Item(GeneratePlanDraft(input, SourceLibrary()), "pain.medication_review")->reason;
  EXPECT_NE(sciatica.find("gabapentinoids (gabapentin, pregabalin) and other antiepileptics are not to be offered"),
            std::string::npos)
      << sciatica;
  EXPECT_EQ(sciatica.find("GP decides"), std::string::npos) << sciatica;
  input.analgesics = {Analgesic::kOpioid};
  input.chronic = true;
  EXPECT_NE(Item(GeneratePlanDraft(input, SourceLibrary()), "pain.medication_review")->reason.find("nor for chronic sciatica"),
            std::string::npos);

  input = Patient(Phase::kMovementControl, StartBackRisk::kMedium);
  input.analgesics = {Analgesic::kNsaid};
  EXPECT_EQ(Item(GeneratePlanDraft(input, SourceLibrary()), "pain.medication_review")->reason.find("anticoagulant"),
            std::string::npos);
  input.takes_anticoagulants = true;
  input.pregnant = true;
  const auto nsaid = Item(GeneratePlanDraft(input, SourceLibrary()), "pain.medication_review")->reason;
  EXPECT_NE(nsaid.find("an NSAID with an anticoagulant: a higher risk of bleeding"), std::string::npos) << nsaid;
  EXPECT_NE(nsaid.find("an NSAID in pregnancy"), std::string::npos) << nsaid;
  EXPECT_NE(Item(GeneratePlanDraft(input, SourceLibrary()), "pain.medication_review")->source.find("gabapentinoids"),
            std::string::npos);
}

// Issue 26 item 11: each specific medicine gets what NG59 says of it, for sciatica and without.
TEST(Depth, EachSpecificMedicineGetsWhatTheGuidelineSaysOfIt) {
  auto input = Patient(Phase::kMovementControl, StartBackRisk::kMedium);
  auto review = [&](Analgesic medicine, bool sciatica) {
    input.analgesics = {medicine};
    input.sciatica = sciatica;
    const auto plan = GeneratePlanDraft(input, SourceLibrary());
    const auto* item = Item(plan, "pain.medication_review");
    return item == nullptr ? std::string() : item->reason;
  };
  EXPECT_NE(review(Analgesic::kGabapentinoid, true).find("gabapentinoids (gabapentin, pregabalin) for sciatica: not to be offered"),
            std::string::npos);
  EXPECT_NE(review(Analgesic::kGabapentinoid, false).find("not recommended for low back pain"), std::string::npos);
  EXPECT_NE(review(Analgesic::kGabapentinoid, true).find("do not stop them suddenly"), std::string::npos);
  EXPECT_NE(review(Analgesic::kOralCorticosteroid, true).find("oral corticosteroids for sciatica: not to be offered"),
            std::string::npos);
  EXPECT_NE(review(Analgesic::kOralCorticosteroid, false).find("makes no recommendation"), std::string::npos);
  EXPECT_NE(review(Analgesic::kBenzodiazepine, true).find("benzodiazepines for sciatica: not to be offered"),
            std::string::npos);
  EXPECT_NE(review(Analgesic::kBenzodiazepine, false).find("risk of dependence"), std::string::npos);
  EXPECT_NE(review(Analgesic::kAntidepressant, false).find("not recommended for low back pain"), std::string::npos);
  EXPECT_NE(review(Analgesic::kAntidepressant, true).find("makes no recommendation on them"), std::string::npos);
  // None of them is silently ignored.
  for (auto medicine : {Analgesic::kGabapentinoid, Analgesic::kAntidepressant, Analgesic::kOralCorticosteroid,
                        Analgesic::kBenzodiazepine}) {
    for (bool sciatica : {false, true}) EXPECT_FALSE(review(medicine, sciatica).empty());
  }
}

// Issue 26 item 12: one rule for goals and the responder judgement. For every baseline, a
// patient who reaches the disability goal has improved meaningfully by the rule progress
// applies (physio/common/meaningful_change.h), and a tenth of a point short has not.
TEST(Goals, ReachingADisabilityGoalIsAlwaysAMeaningfulImprovement) {
  for (const double mdc : {10.0, 6.0}) {
    PlanPolicy policy;
    policy.odi_mdc_points = mdc;
    for (int tenths = 5; tenths <= 1000; tenths += 7) {
      const double baseline = tenths / 10.0;
      auto input = Patient(Phase::kMovementControl, StartBackRisk::kMedium);
      input.odi_percent = baseline;
      const auto plan = GeneratePlanDraft(input, SourceLibrary(), policy);
      const auto goal = std::find_if(plan.goals.begin(), plan.goals.end(),
                                     [](const auto& g) { return g.measure == GoalMeasure::kOdi; });
      ASSERT_NE(goal, plan.goals.end());
      const MeaningfulChangeRule rule{10, mdc};
      // Below the smallest meaningful drop itself no change can count: the goal is then 0.
      if (baseline < SmallestMeaningfulDrop(baseline, rule)) {
        EXPECT_DOUBLE_EQ(goal->target, 0) << baseline;
        continue;
      }
      EXPECT_TRUE(IsMeaningfulDrop(baseline, baseline - goal->target, rule)) << baseline << " -> " << goal->target;
      // ... as the progress service's judgement of a re-measure at the goal says.
      EXPECT_TRUE(progress::JudgeChange(progress::Outcome::kOdi, baseline, goal->target, {mdc, 4}).improved)
          << baseline << " -> " << goal->target;
      if (goal->target > 0.1) {
        EXPECT_FALSE(IsMeaningfulDrop(baseline, baseline - goal->target - 0.2, rule))
            << baseline << " -> " << goal->target << " is more than the smallest meaningful drop";
      }
    }
  }
  // The case the review found: a baseline ODI of 20 had a goal of 14, a drop the responder rule did not count.
  auto input = Patient(Phase::kMovementControl, StartBackRisk::kMedium);
  input.odi_percent = 20;
  const auto plan = GeneratePlanDraft(input, SourceLibrary());
  for (const auto& goal : plan.goals) {
    if (goal.measure == GoalMeasure::kOdi) {
      EXPECT_DOUBLE_EQ(goal.target, 10.0);
    }
  }
}

}  // namespace
}  // namespace physio::planning
