// Progression and regression along library links, dose steps without a link,
// clinician revisions and the NICE NG59 invariants, as pure functions.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>

#include "physio/common/error.h"
#include "use_case_support.h"
#include "plan_changes.h"

namespace physio::planning {
namespace {

using physio::testing::SourceLibrary;  // the shipped library, read once

v1::Plan PlanWith(std::initializer_list<const char*> ids) {
  v1::Plan plan;
  for (const char* id : ids) *plan.add_items() = ItemFromLibrary(*SourceLibrary().Find(id), "test");
  return plan;
}

TEST(StepExercises, FollowsProgressionAndRegressionLinks) {
  auto plan = PlanWith({"ex.motor.abdominal_bracing", "edu.self_management"});
  auto changes = StepExercises(plan, SourceLibrary(), {}, /*progress=*/true);
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0], "ex.motor.abdominal_bracing -> ex.motor.bracing_heel_slide");
  EXPECT_EQ(plan.items(0).item_id(), "ex.motor.bracing_heel_slide");
  EXPECT_EQ(plan.items(0).reason(), "progressed from ex.motor.abdominal_bracing");
  // Back along the link would add a 10 s hold the heel slide does not have, so the
  // regression keeps the exercise and lowers its dose instead (a regression never raises a dose).
  const auto before = plan.items(0).dose();
  changes = StepExercises(plan, SourceLibrary(), {"ex.motor.bracing_heel_slide"}, /*progress=*/false);
  EXPECT_EQ(plan.items(0).item_id(), "ex.motor.bracing_heel_slide");
  EXPECT_LT(plan.items(0).dose().sets() * plan.items(0).dose().reps(), before.sets() * before.reps());
  EXPECT_NE(changes[0].find("ex.motor.abdominal_bracing skipped (a dose of another kind)"), std::string::npos);
}

TEST(StepExercises, WithoutALinkTheDoseSteps) {
  auto plan = PlanWith({"ex.strength.curl_up", "ex.aerobic.stationary_cycling"});  // no links
  StepExercises(plan, SourceLibrary(), {}, true);
  EXPECT_EQ(plan.items(0).dose().sets(), 3);
  EXPECT_EQ(plan.items(0).dose().reps(), 10);  // at 3 sets, reps rise by 2
  EXPECT_EQ(plan.items(1).dose().duration_minutes(), 25);
  EXPECT_EQ(plan.home_sessions_per_week(), 3);
  StepExercises(plan, SourceLibrary(), {"ex.strength.curl_up"}, false);
  EXPECT_EQ(plan.items(0).dose().sets(), 2);
}

TEST(StepExercises, RefusesItemsThatAreNotExercises) {
  auto plan = PlanWith({"ex.motor.abdominal_bracing", "edu.self_management"});
  try {
    StepExercises(plan, SourceLibrary(), {"ex.motor.abdominal_bracing", "edu.self_management"}, true);
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
      ApplyRevision(copy, SourceLibrary(), changes);
      ADD_FAILURE() << id << " was removed";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kFailedPrecondition) << id;
      EXPECT_EQ(std::string(e.what()).rfind("changes[1].remove_item_id: '" + std::string(id) + "'", 0), 0u) << e.what();
    }
  }
  google::protobuf::RepeatedPtrField<v1::PlanChange> ordinary;
  ordinary.Add()->set_remove_item_id("edu.self_management");
  ApplyRevision(plan, SourceLibrary(), ordinary);
  EXPECT_EQ(plan.items_size(), 6);
}

TEST(Revisions, ManualTherapyAndCbtNeverWithoutExercise) {
  auto plan = PlanWith({"ex.motor.abdominal_bracing", "manual.joint_mobilisation"});
  google::protobuf::RepeatedPtrField<v1::PlanChange> changes;
  changes.Add()->set_remove_item_id("ex.motor.abdominal_bracing");
  EXPECT_THROW(ApplyRevision(plan, SourceLibrary(), changes), Error);
  auto cbt = PlanWith({"psych.informed_physiotherapy"});
  EXPECT_THROW(CheckPlanInvariants(cbt), Error);
  google::protobuf::RepeatedPtrField<v1::PlanChange> bad_dose;
  auto* dose = bad_dose.Add()->mutable_set_dose();
  dose->set_item_id("ex.motor.abdominal_bracing");
  dose->mutable_dose()->set_sets(0);
  auto fresh = PlanWith({"ex.motor.abdominal_bracing"});
  try {
    ApplyRevision(fresh, SourceLibrary(), bad_dose);
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
  auto changes = StepExercises(plan, SourceLibrary(), {}, /*progress=*/true);
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_NE(plan.items(0).item_id(), "ex.strength.goblet_squat");
  for (const auto& token : SourceLibrary().Find(plan.items(0).item_id())->contraindications) {
    EXPECT_NE(token, "loading_contraindicated") << plan.items(0).item_id();
  }
  EXPECT_NE(changes[0].find("ex.strength.goblet_squat skipped (loading_contraindicated)"), std::string::npos)
      << changes[0];
  // Without the contraindication the same step follows the link.
  auto free = PlanWith({"ex.strength.sit_to_stand"});
  free.set_phase(physio::common::v1::PHASE_FUNCTION_OPTIMISATION);
  StepExercises(free, SourceLibrary(), {}, true);
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
  for (const auto& entry : SourceLibrary().entries()) {
    if (entry.kind != InterventionKind::kExercise) continue;
    for (const auto& token : tokens) {
      for (auto phase : phases) {
        for (bool progress : {true, false}) {
          v1::Plan plan;
          *plan.add_items() = ItemFromLibrary(entry, "test");
          plan.add_contraindications(token);
          plan.set_phase(phase);
          StepExercises(plan, SourceLibrary(), {}, progress);
          const Intervention* landed = SourceLibrary().Find(plan.items(0).item_id());
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
  for (const auto& entry : SourceLibrary().entries()) {
    if (entry.kind != InterventionKind::kExercise) continue;
    v1::Plan plan;
    *plan.add_items() = ItemFromLibrary(entry, "test");
    const v1::ExerciseDose before = plan.items(0).dose();
    StepExercises(plan, SourceLibrary(), {}, /*progress=*/false);
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
  StepExercises(held, SourceLibrary(), {}, false);
  EXPECT_LT(held.items(0).dose().hold_seconds(), 30);
}

TEST(SafeSteps, AClinicianAddingAContraindicatedInterventionMustSayWhy) {
  auto plan = PlanWith({"ex.strength.sit_to_stand"});
  plan.add_contraindications("loading_contraindicated");
  google::protobuf::RepeatedPtrField<v1::PlanChange> changes;
  changes.Add()->set_add_intervention_id("ex.strength.goblet_squat");
  try {
    ApplyRevision(plan, SourceLibrary(), changes);
    FAIL() << "a contraindicated intervention was added without a reason";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("changes[0].contraindication_override"), std::string::npos) << e.what();
  }
  // White space is no reason either (a form's field left at its spaces).
  changes.Mutable(0)->set_contraindication_override("   \xC2\xA0 ");
  try {
    ApplyRevision(plan, SourceLibrary(), changes);
    FAIL() << "a contraindicated intervention was added with a blank reason";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("changes[0].contraindication_override"), std::string::npos) << e.what();
  }
  ASSERT_EQ(plan.items_size(), 1);
  changes.Mutable(0)->set_contraindication_override("cleared by imaging; supervised loading");
  ApplyRevision(plan, SourceLibrary(), changes);
  ASSERT_EQ(plan.items_size(), 2);
  EXPECT_EQ(plan.items(1).reason(),
            "added by the clinician despite loading_contraindicated: cleared by imaging; supervised loading");
}

// Issue 26 item 3: a monitor-level concern found at a check-in puts its precautions on
// the plan in use.
google::protobuf::RepeatedPtrField<v1::FoundConcern> Concerns(
    std::initializer_list<std::pair<const char*, const char*>> found) {
  google::protobuf::RepeatedPtrField<v1::FoundConcern> concerns;
  for (const auto& [condition, summary] : found) {
    auto* concern = concerns.Add();
    concern->set_condition(condition);
    concern->set_summary(summary);
  }
  return concerns;
}

constexpr std::int64_t kWeek = 7 * 24 * 3600;

TEST(AddPrecautions, ANewFractureConcernTakesOutManipulationAndLoadedFlexionAddsSafetyNettingAndAnEarlierReview) {
  auto plan = PlanWith({"manual.thrust_manipulation", "ex.motor.abdominal_bracing", "ex.flex.cat_camel",
                        "edu.self_management"});
  plan.set_type(v1::PLAN_TYPE_TREATMENT);
  plan.mutable_activate_time()->set_seconds(1000 * kWeek);
  auto* review = plan.add_review_points();
  review->set_week(6);
  review->set_purpose("responder check");
  const auto changes =
      AddPrecautions(plan, SourceLibrary(), Concerns({{"fracture", "fracture: minor trauma"}}), 1000 * kWeek + 2 * kWeek + 5);

  EXPECT_EQ(changes.front(), "new concern: fracture: minor trauma");
  auto has = [&](const std::string& id) {
    return std::any_of(plan.items().begin(), plan.items().end(), [&](const auto& item) { return item.item_id() == id; });
  };
  EXPECT_FALSE(has("manual.thrust_manipulation"));
  EXPECT_FALSE(has("ex.flex.cat_camel"));
  EXPECT_TRUE(has("ex.motor.abdominal_bracing"));
  EXPECT_TRUE(has("safety.no_manipulation"));
  EXPECT_TRUE(has("safety.netting"));
  EXPECT_EQ(std::vector<std::string>(plan.contraindications().begin(), plan.contraindications().end()),
            (std::vector<std::string>{"flexion_loading", "manipulation_contraindicated"}));
  EXPECT_EQ(std::vector<std::string>(plan.monitored_conditions().begin(), plan.monitored_conditions().end()),
            std::vector<std::string>{"fracture"});
  // Two weeks in: a review in week 3, before the week-6 one.
  ASSERT_EQ(plan.review_points_size(), 2);
  EXPECT_EQ(plan.review_points(0).week(), 3);
  EXPECT_NE(plan.review_points(0).purpose().find("safety-netting review"), std::string::npos);
  EXPECT_EQ(plan.review_points(1).week(), 6);
  auto said = [&](const std::string& line) { return std::find(changes.begin(), changes.end(), line) != changes.end(); };
  EXPECT_TRUE(said("removed manual.thrust_manipulation (manipulation_contraindicated)"));
  EXPECT_TRUE(said("removed ex.flex.cat_camel (flexion_loading)"));
  EXPECT_FALSE(plan.needs_reassessment());

  // The same condition again changes nothing.
  const v1::Plan before = plan;
  EXPECT_TRUE(AddPrecautions(plan, SourceLibrary(), Concerns({{"fracture", "fracture: minor trauma"}}), 1000 * kWeek).empty());
  EXPECT_EQ(plan.SerializeAsString(), before.SerializeAsString());

  // Another condition extends the safety-netting; the review due within the week stands.
  const auto more = AddPrecautions(plan, SourceLibrary(), Concerns({{"malignancy", "malignancy: night pain, age over 50"}}),
                                   1000 * kWeek + 2 * kWeek + 9);
  EXPECT_TRUE(std::find(more.begin(), more.end(), "safety-netting extended") != more.end());
  EXPECT_EQ(plan.review_points_size(), 2);
  EXPECT_EQ(plan.monitored_conditions_size(), 2);
}

TEST(AddPrecautions, SafetyItemsStayAndAPlanLeftWithoutExerciseAsksForReassessment) {
  auto plan = PlanWith({"ex.flex.knee_to_chest", "edu.self_management"});
  plan.set_type(v1::PLAN_TYPE_TREATMENT);
  v1::PlanItem safety_net;
  safety_net.set_item_id("safety.cauda_equina");
  *plan.add_items() = safety_net;
  AddPrecautions(plan, SourceLibrary(), Concerns({{"fracture", "fracture: osteoporosis"}}), 0);
  EXPECT_TRUE(plan.needs_reassessment());
  EXPECT_TRUE(std::any_of(plan.items().begin(), plan.items().end(),
                          [](const auto& item) { return item.item_id() == "safety.cauda_equina"; }));
}

TEST(AddPrecautions, AConcernIsValidatedNamingTheField) {
  auto plan = PlanWith({"edu.self_management"});
  for (const auto& [concerns, field] :
       std::vector<std::pair<google::protobuf::RepeatedPtrField<v1::FoundConcern>, std::string>>{
           {Concerns({}), "concerns"},
           {Concerns({{"Fracture!", "x"}}), "concerns[0].condition"},
           {Concerns({{"fracture", ""}}), "concerns[0].summary"}}) {
    try {
      AddPrecautions(plan, SourceLibrary(), concerns, 0);
      ADD_FAILURE() << field;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
      EXPECT_EQ(std::string(e.what()).rfind(field + ":", 0), 0u) << e.what();
    }
  }
}

// The precautions a check-in concern brings are those generation gives the same concern.
TEST(AddPrecautions, AConcernBringsTheContraindicationsGenerationWouldGiveIt) {
  PlanInput fracture;
  fracture.fracture_concern = true;
  EXPECT_EQ(ContraindicationsForConcern("fracture"), PatientContraindications(fracture));
  PlanInput blocked;
  blocked.manipulation_blocked = {"malignancy concern"};
  for (const char* condition : {"malignancy", "infection", "cauda_equina", "axial_spondyloarthritis"}) {
    EXPECT_EQ(ContraindicationsForConcern(condition), PatientContraindications(blocked)) << condition;
  }
  EXPECT_TRUE(ContraindicationsForConcern("something_else").empty());
}

TEST(StopDirections, PeripheralisationStopsTheDirectionForGoodAndAsksForReassessment) {
  auto plan = PlanWith({"ex.dir.prone_on_elbows", "ex.dir.prone_press_up", "ex.motor.abdominal_bracing",
                        "edu.self_management"});
  plan.set_type(v1::PLAN_TYPE_TREATMENT);
  v1::PlanItem safety_net;
  safety_net.set_item_id("safety.cauda_equina");
  *plan.add_items() = safety_net;
  const auto changes = StopDirections(plan, SourceLibrary(), {"ex.dir.prone_on_elbows"});
  auto has = [&](const std::string& id) {
    return std::any_of(plan.items().begin(), plan.items().end(), [&](const auto& item) { return item.item_id() == id; });
  };
  EXPECT_FALSE(has("ex.dir.prone_on_elbows"));
  EXPECT_FALSE(has("ex.dir.prone_press_up"));  // the same direction, though not the one logged
  EXPECT_TRUE(has("ex.motor.abdominal_bracing"));
  EXPECT_TRUE(has("safety.cauda_equina"));
  EXPECT_EQ(std::vector<std::string>(plan.stopped_directions().begin(), plan.stopped_directions().end()),
            std::vector<std::string>{"extension"});
  EXPECT_EQ(std::vector<std::string>(plan.contraindications().begin(), plan.contraindications().end()),
            std::vector<std::string>{"extension_intolerant"});
  EXPECT_TRUE(plan.needs_reassessment());
  EXPECT_EQ(changes.front(), "stopped direction: extension");
  EXPECT_EQ(changes.back(), "marked for re-assessment");
  // Nothing steps back onto the direction: progressing what is left never lands on an extension item.
  StepExercises(plan, SourceLibrary(), {}, /*progress=*/true);
  for (const auto& item : plan.items()) {
    const Intervention* entry = SourceLibrary().Find(item.item_id());
    if (entry != nullptr) {
      EXPECT_NE(DirectionOfCategory(entry->category), "extension") << item.item_id();
    }
  }
  // Stopped already: nothing new.
  auto again = PlanWith({"ex.dir.prone_lying"});
  again.add_stopped_directions("extension");
  again.add_contraindications("extension_intolerant");
  EXPECT_TRUE(StopDirections(again, SourceLibrary(), {"ex.dir.prone_lying"}).empty());
}

TEST(StopDirections, EveryDirectionHasItsTokenOnEveryItemOfThatDirection) {
  for (const auto& entry : SourceLibrary().entries()) {
    const std::string direction = DirectionOfCategory(entry.category);
    if (direction.empty()) continue;
    EXPECT_NE(std::find(entry.contraindications.begin(), entry.contraindications.end(), direction + "_intolerant"),
              entry.contraindications.end())
        << entry.id << " is not excluded when " << direction << " is stopped";
  }
  for (const char* id : {"ex.dir.side_glide_wall", "ex.dir.flexion_in_lying"}) {
    auto plan = PlanWith({id});
    StopDirections(plan, SourceLibrary(), {id});
    EXPECT_EQ(plan.items_size(), 0) << id;
  }
}

TEST(StopDirections, OnlyDirectionalExercisesOfThePlanNamingTheField) {
  auto plan = PlanWith({"ex.dir.prone_lying", "ex.motor.abdominal_bracing"});
  for (const auto& [ids, field] : std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{}, "item_ids"},
           {{"ex.motor.abdominal_bracing"}, "item_ids[0]"},
           {{"ex.dir.prone_lying", "ex.dir.flexion_in_lying"}, "item_ids[1]"}}) {
    try {
      StopDirections(plan, SourceLibrary(), ids);
      ADD_FAILURE() << field;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
      EXPECT_EQ(std::string(e.what()).rfind(field + ":", 0), 0u) << e.what();
    }
  }
}

}  // namespace
}  // namespace physio::planning

namespace physio::planning {
namespace {

bool HasItem(const v1::Plan& plan, const std::string& id) {
  return std::any_of(plan.items().begin(), plan.items().end(), [&](const auto& item) { return item.item_id() == id; });
}

TEST(StopDirections, ADirectionNamedByAMovementTestIsStoppedWithoutAnItemOfIt) {
  auto plan = PlanWith({"ex.dir.prone_press_up", "ex.motor.abdominal_bracing"});
  const auto changes = StopDirections(plan, SourceLibrary(), {}, {"extension"});
  EXPECT_FALSE(HasItem(plan, "ex.dir.prone_press_up"));
  EXPECT_TRUE(HasItem(plan, "ex.motor.abdominal_bracing"));
  EXPECT_EQ(changes.front(), "stopped direction: extension");
  // A direction whose items the plan does not hold is still recorded, so nothing steps onto it.
  auto other = PlanWith({"ex.motor.abdominal_bracing"});
  StopDirections(other, SourceLibrary(), {}, {"flexion"});
  EXPECT_EQ(other.stopped_directions(0), "flexion");
  EXPECT_EQ(other.contraindications(0), "flexion_intolerant");
  try {
    StopDirections(other, SourceLibrary(), {}, {"rotation"});
    FAIL() << "an unknown direction was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("directions[0]"), std::string::npos) << e.what();
  }
  EXPECT_THROW(StopDirections(other, SourceLibrary(), {}, {}), Error);
}

TEST(Reassessment, TheDraftSaysWhatItChangesAgainstThePlanInUse) {
  auto in_use = PlanWith({"ex.dir.prone_press_up", "ex.motor.abdominal_bracing", "edu.self_management"});
  in_use.set_direction("extension");
  in_use.set_phase(physio::common::v1::PHASE_MOVEMENT_CONTROL);
  auto draft = PlanWith({"ex.dir.flexion_in_lying", "ex.motor.abdominal_bracing", "edu.self_management"});
  draft.set_direction("flexion");
  draft.set_phase(physio::common::v1::PHASE_MOVEMENT_CONTROL);
  draft.set_assessment_id("asm-2");
  draft.mutable_items(1)->mutable_dose()->set_sets(draft.items(1).dose().sets() + 1);
  std::map<std::string, v1::ProposedChange> by_item;
  std::vector<v1::ProposedChange> plan_level;
  for (const auto& change : DiffPlans(in_use, draft)) {
    if (change.item_id().empty()) {
      plan_level.push_back(change);
    } else {
      by_item[change.item_id()] = change;
    }
  }
  ASSERT_EQ(plan_level.size(), 1u) << "only the direction changed";
  EXPECT_EQ(plan_level[0].before(), "direction: extension");
  EXPECT_EQ(plan_level[0].after(), "direction: flexion");
  EXPECT_EQ(by_item["ex.dir.flexion_in_lying"].kind(), v1::PROPOSED_CHANGE_KIND_ADDED);
  EXPECT_EQ(by_item["ex.dir.flexion_in_lying"].reason(), "test");
  EXPECT_EQ(by_item["ex.dir.prone_press_up"].kind(), v1::PROPOSED_CHANGE_KIND_REMOVED);
  EXPECT_EQ(by_item["ex.motor.abdominal_bracing"].kind(), v1::PROPOSED_CHANGE_KIND_DOSE_CHANGED);
  EXPECT_FALSE(by_item.contains("edu.self_management")) << "unchanged items are not listed";
}

TEST(Reassessment, ThePlanInUsesPrecautionsAndStoppedDirectionsAreCarriedOver) {
  auto in_use = PlanWith({"ex.motor.abdominal_bracing"});
  in_use.set_plan_id("plan-1");
  in_use.add_monitored_conditions("fracture");
  in_use.add_stopped_directions("flexion");
  auto draft = PlanWith({"ex.dir.flexion_in_lying", "ex.motor.abdominal_bracing", "manual.thrust_manipulation"});
  draft.set_type(v1::PLAN_TYPE_TREATMENT);
  draft.set_direction("extension");
  const auto carried = CarryOverSafety(draft, in_use, SourceLibrary(), 0);
  EXPECT_FALSE(HasItem(draft, "ex.dir.flexion_in_lying")) << "flexion stays stopped";
  EXPECT_FALSE(HasItem(draft, "manual.thrust_manipulation")) << "the fracture concern's precautions hold";
  EXPECT_TRUE(HasItem(draft, "safety.netting"));
  EXPECT_FALSE(draft.needs_reassessment()) << "the re-assessment is the one the stop asked for";
  ASSERT_FALSE(carried.empty());
  for (const auto& change : carried) EXPECT_EQ(change.kind(), v1::PROPOSED_CHANGE_KIND_CARRIED_OVER);
  // The re-assessment finding the stopped direction again offers it, flagged.
  auto again = PlanWith({"ex.dir.flexion_in_lying"});
  again.set_type(v1::PLAN_TYPE_TREATMENT);
  again.set_direction("flexion");
  in_use.clear_monitored_conditions();  // a fracture concern would take flexion loading out anyway
  const auto offered = CarryOverSafety(again, in_use, SourceLibrary(), 0);
  EXPECT_TRUE(HasItem(again, "ex.dir.flexion_in_lying"));
  EXPECT_TRUE(std::any_of(offered.begin(), offered.end(), [](const auto& change) {
    return change.kind() == v1::PROPOSED_CHANGE_KIND_DIRECTION_OFFERED_AGAIN;
  }));
}

}  // namespace
}  // namespace physio::planning

namespace physio::planning {
namespace {

TEST(ApplyTemplate, TheTemplatesItemsReplaceTheTreatmentWhileSafetyStaysAndTheGuardHolds) {
  auto plan = PlanWith({"ex.motor.abdominal_bracing", "edu.self_management", "manual.thrust_manipulation"});
  plan.set_type(v1::PLAN_TYPE_TREATMENT);
  plan.set_phase(physio::common::v1::PHASE_MOVEMENT_CONTROL);
  plan.add_contraindications("loading_contraindicated");
  v1::PlanItem net;
  net.set_item_id("safety.cauda_equina");
  *plan.add_items() = net;
  PlanTemplate chosen;
  chosen.id = "tenant.tpl.test";
  chosen.name = "Test";
  chosen.items = {{"ex.motor.bird_dog", Dose{2, 6, 5, 5, 0}}, {"ex.strength.front_plank", std::nullopt},
                  {"edu.self_management", std::nullopt}};
  const auto notes = ApplyTemplate(plan, SourceLibrary(), chosen);
  EXPECT_TRUE(HasItem(plan, "safety.cauda_equina"));
  EXPECT_TRUE(HasItem(plan, "ex.motor.bird_dog"));
  EXPECT_TRUE(HasItem(plan, "edu.self_management"));
  EXPECT_FALSE(HasItem(plan, "ex.motor.abdominal_bracing")) << "the generated treatment item is replaced";
  EXPECT_FALSE(HasItem(plan, "manual.thrust_manipulation"));
  EXPECT_FALSE(HasItem(plan, "ex.strength.front_plank")) << "contraindicated for this patient";
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_EQ(notes[0], "left out ex.strength.front_plank: contraindicated for this patient (loading_contraindicated)");
  for (const auto& item : plan.items()) {
    if (item.item_id() == "ex.motor.bird_dog") {
      EXPECT_EQ(item.dose().sets(), 2);
      EXPECT_EQ(item.dose().hold_seconds(), 5);
      EXPECT_NE(item.reason().find("from template 'Test'"), std::string::npos);
    }
  }
  EXPECT_EQ(plan.template_id(), "tenant.tpl.test");
  // Nothing to exercise with: refused. A referral takes no template.
  auto bare = PlanWith({"ex.motor.abdominal_bracing"});
  bare.set_type(v1::PLAN_TYPE_TREATMENT);
  bare.add_contraindications("loading_contraindicated");
  PlanTemplate loaded;
  loaded.id = "tenant.tpl.loaded";
  loaded.items = {{"ex.strength.front_plank", std::nullopt}};
  EXPECT_THROW(ApplyTemplate(bare, SourceLibrary(), loaded), Error);
  auto referral = PlanWith({});
  referral.set_type(v1::PLAN_TYPE_REFERRAL);
  try {
    ApplyTemplate(referral, SourceLibrary(), chosen);
    FAIL() << "a referral took a template";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kFailedPrecondition);
  }
}

}  // namespace
}  // namespace physio::planning
