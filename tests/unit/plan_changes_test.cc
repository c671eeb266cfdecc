// Progression and regression along library links, dose steps without a link,
// clinician revisions and the NICE NG59 invariants, as pure functions.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "physio/common/error.h"
#include "plan_changes.h"

namespace physio::planning {
namespace {

const InterventionLibrary& Library() {
  static const InterventionLibrary library = [] {
    std::ifstream in(PHYSIO_SOURCE_DIR "/services/planning/library/interventions.json");
    std::stringstream buffer;
    buffer << in.rdbuf();
    return InterventionLibrary::Parse(buffer.str());
  }();
  return library;
}

v1::Plan PlanWith(std::initializer_list<const char*> ids) {
  v1::Plan plan;
  for (const char* id : ids) *plan.add_items() = ItemFromLibrary(*Library().Find(id), "test");
  return plan;
}

TEST(StepExercises, FollowsProgressionAndRegressionLinks) {
  auto plan = PlanWith({"ex.motor.abdominal_bracing", "edu.self_management"});
  auto changes = StepExercises(plan, Library(), {}, /*progress=*/true);
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0], "ex.motor.abdominal_bracing -> ex.motor.bracing_heel_slide");
  EXPECT_EQ(plan.items(0).item_id(), "ex.motor.bracing_heel_slide");
  EXPECT_EQ(plan.items(0).reason(), "progressed from ex.motor.abdominal_bracing");
  // Back along the link would add a 10 s hold the heel slide does not have, so the
  // regression keeps the exercise and lowers its dose instead (a regression never raises a dose).
  const auto before = plan.items(0).dose();
  changes = StepExercises(plan, Library(), {"ex.motor.bracing_heel_slide"}, /*progress=*/false);
  EXPECT_EQ(plan.items(0).item_id(), "ex.motor.bracing_heel_slide");
  EXPECT_LT(plan.items(0).dose().sets() * plan.items(0).dose().reps(), before.sets() * before.reps());
  EXPECT_NE(changes[0].find("ex.motor.abdominal_bracing skipped (a dose of another kind)"), std::string::npos);
}

TEST(StepExercises, WithoutALinkTheDoseSteps) {
  auto plan = PlanWith({"ex.strength.curl_up", "ex.aerobic.stationary_cycling"});  // no links
  StepExercises(plan, Library(), {}, true);
  EXPECT_EQ(plan.items(0).dose().sets(), 3);
  EXPECT_EQ(plan.items(0).dose().reps(), 10);  // at 3 sets, reps rise by 2
  EXPECT_EQ(plan.items(1).dose().duration_minutes(), 25);
  EXPECT_EQ(plan.home_sessions_per_week(), 3);
  StepExercises(plan, Library(), {"ex.strength.curl_up"}, false);
  EXPECT_EQ(plan.items(0).dose().sets(), 2);
}

TEST(StepExercises, RefusesItemsThatAreNotExercises) {
  auto plan = PlanWith({"ex.motor.abdominal_bracing", "edu.self_management"});
  try {
    StepExercises(plan, Library(), {"ex.motor.abdominal_bracing", "edu.self_management"}, true);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("item_ids[1]"), std::string::npos);
  }
  EXPECT_EQ(plan.items(0).item_id(), "ex.motor.abdominal_bracing");  // nothing changed
}

// Issue 26 item 5: the items that keep a patient safe cannot be revised away.
TEST(Revisions, SafetyItemsCannotBeRemoved) {
  auto plan = PlanWith({"ex.motor.abdominal_bracing", "edu.self_management"});
  for (const char* id : {"safety.cauda_equina", "safety.netting", "safety.overridden_concern", "selfcare.flare_up_plan",
                         "referral.routine"}) {
    auto* item = plan.add_items();
    item->set_item_id(id);
    item->set_kind(v1::PLAN_ITEM_KIND_EDUCATION);
  }
  for (const char* id : {"safety.cauda_equina", "safety.netting", "safety.overridden_concern", "selfcare.flare_up_plan",
                         "referral.routine"}) {
    google::protobuf::RepeatedPtrField<v1::PlanChange> changes;
    changes.Add()->set_remove_item_id("edu.self_management");  // allowed on its own
    changes.Add()->set_remove_item_id(id);
    auto copy = plan;
    try {
      ApplyRevision(copy, Library(), changes);
      ADD_FAILURE() << id << " was removed";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kFailedPrecondition) << id;
      EXPECT_EQ(std::string(e.what()).rfind("changes[1].remove_item_id: '" + std::string(id) + "'", 0), 0u) << e.what();
    }
  }
  google::protobuf::RepeatedPtrField<v1::PlanChange> ordinary;
  ordinary.Add()->set_remove_item_id("edu.self_management");
  ApplyRevision(plan, Library(), ordinary);
  EXPECT_EQ(plan.items_size(), 6);
}

TEST(Revisions, ManualTherapyAndCbtNeverWithoutExercise) {
  auto plan = PlanWith({"ex.motor.abdominal_bracing", "manual.joint_mobilisation"});
  google::protobuf::RepeatedPtrField<v1::PlanChange> changes;
  changes.Add()->set_remove_item_id("ex.motor.abdominal_bracing");
  EXPECT_THROW(ApplyRevision(plan, Library(), changes), Error);
  auto cbt = PlanWith({"psych.informed_physiotherapy"});
  EXPECT_THROW(CheckPlanInvariants(cbt), Error);
  google::protobuf::RepeatedPtrField<v1::PlanChange> bad_dose;
  auto* dose = bad_dose.Add()->mutable_set_dose();
  dose->set_item_id("ex.motor.abdominal_bracing");
  dose->mutable_dose()->set_sets(0);
  auto fresh = PlanWith({"ex.motor.abdominal_bracing"});
  try {
    ApplyRevision(fresh, Library(), bad_dose);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind("changes[0].set_dose.dose.sets", 0), 0u);
  }
}

}  // namespace
}  // namespace physio::planning

namespace physio::planning {
namespace {

TEST(SafeSteps, ProgressionNeverLandsOnAContraindicatedExercise) {
  auto plan = PlanWith({"ex.strength.sit_to_stand"});
  plan.add_contraindications("loading_contraindicated");  // e.g. a fracture concern
  plan.set_phase(physio::common::v1::PHASE_FUNCTION_OPTIMISATION);
  auto changes = StepExercises(plan, Library(), {}, /*progress=*/true);
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_NE(plan.items(0).item_id(), "ex.strength.goblet_squat");
  for (const auto& token : Library().Find(plan.items(0).item_id())->contraindications) {
    EXPECT_NE(token, "loading_contraindicated") << plan.items(0).item_id();
  }
  EXPECT_NE(changes[0].find("ex.strength.goblet_squat skipped (loading_contraindicated)"), std::string::npos)
      << changes[0];
  // Without the contraindication the same step follows the link.
  auto free = PlanWith({"ex.strength.sit_to_stand"});
  free.set_phase(physio::common::v1::PHASE_FUNCTION_OPTIMISATION);
  StepExercises(free, Library(), {}, true);
  EXPECT_EQ(free.items(0).item_id(), "ex.strength.goblet_squat");
}

TEST(SafeSteps, EveryLinkRespectsEveryContraindicationAndPhase) {
  // Property over the whole library: for each exercise, each patient contraindication
  // and each phase, a step lands on an exercise generation would allow, or keeps the item.
  const std::vector<std::string> tokens = KnownContraindications();
  const physio::common::v1::Phase phases[] = {physio::common::v1::PHASE_SYMPTOM_MODULATION,
                                              physio::common::v1::PHASE_MOVEMENT_CONTROL,
                                              physio::common::v1::PHASE_FUNCTION_OPTIMISATION};
  int steps = 0;
  for (const auto& entry : Library().entries()) {
    if (entry.kind != InterventionKind::kExercise) continue;
    for (const auto& token : tokens) {
      for (auto phase : phases) {
        for (bool progress : {true, false}) {
          v1::Plan plan;
          *plan.add_items() = ItemFromLibrary(entry, "test");
          plan.add_contraindications(token);
          plan.set_phase(phase);
          StepExercises(plan, Library(), {}, progress);
          const Intervention* landed = Library().Find(plan.items(0).item_id());
          ASSERT_NE(landed, nullptr);
          if (landed->id == entry.id) continue;  // kept, dose changed
          ++steps;
          EXPECT_EQ(std::count(landed->contraindications.begin(), landed->contraindications.end(), token), 0)
              << entry.id << " -> " << landed->id << " with " << token;
        }
      }
    }
  }
  EXPECT_GT(steps, 20);  // the property was exercised on real links
}

TEST(SafeSteps, ARegressionNeverRaisesAnyPartOfTheDose) {
  int checked = 0;
  for (const auto& entry : Library().entries()) {
    if (entry.kind != InterventionKind::kExercise) continue;
    v1::Plan plan;
    *plan.add_items() = ItemFromLibrary(entry, "test");
    const v1::ExerciseDose before = plan.items(0).dose();
    StepExercises(plan, Library(), {}, /*progress=*/false);
    const v1::ExerciseDose& after = plan.items(0).dose();
    EXPECT_LE(after.sets(), before.sets()) << entry.id;
    EXPECT_LE(after.reps(), before.reps()) << entry.id;
    EXPECT_LE(after.hold_seconds(), before.hold_seconds()) << entry.id;
    EXPECT_LE(after.duration_minutes(), before.duration_minutes()) << entry.id;
    EXPECT_LE(after.sessions_per_week(), before.sessions_per_week()) << entry.id;
    ++checked;
  }
  EXPECT_GT(checked, 40);
  // Holds and durations shrink too when the dose itself steps down.
  auto held = PlanWith({"ex.strength.curl_up"});
  held.mutable_items(0)->mutable_dose()->set_hold_seconds(30);
  held.mutable_items(0)->set_regression_id("");
  StepExercises(held, Library(), {}, false);
  EXPECT_LT(held.items(0).dose().hold_seconds(), 30);
}

TEST(SafeSteps, AClinicianAddingAContraindicatedInterventionMustSayWhy) {
  auto plan = PlanWith({"ex.strength.sit_to_stand"});
  plan.add_contraindications("loading_contraindicated");
  google::protobuf::RepeatedPtrField<v1::PlanChange> changes;
  changes.Add()->set_add_intervention_id("ex.strength.goblet_squat");
  try {
    ApplyRevision(plan, Library(), changes);
    FAIL() << "a contraindicated intervention was added without a reason";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("changes[0].contraindication_override"), std::string::npos) << e.what();
  }
  changes.Mutable(0)->set_contraindication_override("cleared by imaging; supervised loading");
  ApplyRevision(plan, Library(), changes);
  ASSERT_EQ(plan.items_size(), 2);
  EXPECT_EQ(plan.items(1).reason(),
            "added by the clinician despite loading_contraindicated: cleared by imaging; supervised loading");
}

}  // namespace
}  // namespace physio::planning
