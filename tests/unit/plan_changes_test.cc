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
  StepExercises(plan, Library(), {"ex.motor.bracing_heel_slide"}, /*progress=*/false);
  EXPECT_EQ(plan.items(0).item_id(), "ex.motor.abdominal_bracing");
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
