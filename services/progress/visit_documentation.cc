#include "visit_documentation.h"

#include <algorithm>
#include <set>

#include "domain/home_log.h"
#include "physio/common/error.h"
#include "physio/common/validation.h"

namespace physio::progress {
namespace {
SymptomResponse ResponseOf(v1::SymptomResponse response) {
  switch (response) {
    case v1::SYMPTOM_RESPONSE_CENTRALISING: return SymptomResponse::kCentralising;
    case v1::SYMPTOM_RESPONSE_PERIPHERALISING: return SymptomResponse::kPeripheralising;
    case v1::SYMPTOM_RESPONSE_BETTER: return SymptomResponse::kBetter;
    case v1::SYMPTOM_RESPONSE_WORSE: return SymptomResponse::kWorse;
    default: return SymptomResponse::kNoEffect;
  }
}

void ValidateResponse(const std::string& field, v1::SymptomResponse response) {
  if (response == v1::SYMPTOM_RESPONSE_UNSPECIFIED || !v1::SymptomResponse_IsValid(response)) {
    ThrowInvalidArgument(field, "is required: CENTRALISING, PERIPHERALISING, BETTER, NO_EFFECT or WORSE");
  }
}

std::string TestName(v1::MovementTest test) {
  switch (test) {
    case v1::MOVEMENT_TEST_FLEXION_STANDING: return "repeated flexion in standing";
    case v1::MOVEMENT_TEST_FLEXION_LYING: return "repeated flexion in lying";
    case v1::MOVEMENT_TEST_EXTENSION_STANDING: return "repeated extension in standing";
    case v1::MOVEMENT_TEST_EXTENSION_LYING: return "repeated extension in lying";
    case v1::MOVEMENT_TEST_SIDE_GLIDE_LEFT: return "repeated side glide to the left";
    case v1::MOVEMENT_TEST_SIDE_GLIDE_RIGHT: return "repeated side glide to the right";
    default: return "a repeated movement";
  }
}

std::string MovementName(v1::LumbarMovement movement) {
  switch (movement) {
    case v1::LUMBAR_MOVEMENT_FLEXION: return "flexion";
    case v1::LUMBAR_MOVEMENT_EXTENSION: return "extension";
    case v1::LUMBAR_MOVEMENT_SIDE_FLEXION_LEFT: return "side flexion left";
    case v1::LUMBAR_MOVEMENT_SIDE_FLEXION_RIGHT: return "side flexion right";
    case v1::LUMBAR_MOVEMENT_ROTATION_LEFT: return "rotation left";
    case v1::LUMBAR_MOVEMENT_ROTATION_RIGHT: return "rotation right";
    default: return "movement";
  }
}
}  // namespace

void ValidateSessionRecord(const std::string& field, const v1::SessionRecord& session) {
  if (session.interventions_size() > 20) ThrowInvalidArgument(field + ".interventions", "at most 20");
  if (session.movement_tests_size() > 20) ThrowInvalidArgument(field + ".movement_tests", "at most 20");
  if (session.range_of_movement_size() > 20) ThrowInvalidArgument(field + ".range_of_movement", "at most 20");
  if (session.notes_size() > 20) ThrowInvalidArgument(field + ".notes", "at most 20");
  std::set<std::string> items;
  for (int i = 0; i < session.interventions_size(); ++i) {
    const std::string at = field + ".interventions[" + std::to_string(i) + "]";
    const auto& given = session.interventions(i);
    ValidateOpaqueId(at + ".item_id", given.item_id());
    if (!items.insert(given.item_id()).second) ThrowInvalidArgument(at + ".item_id", "is listed twice");
    ValidateRange(at + ".sets", given.sets(), 0, 20);
    ValidateRange(at + ".reps", given.reps(), 0, 200);
    ValidateRange(at + ".hold_seconds", given.hold_seconds(), 0, 300);
    ValidateRange(at + ".minutes", given.minutes(), 0, 120);
    ValidateResponse(at + ".response", given.response());
  }
  for (int i = 0; i < session.movement_tests_size(); ++i) {
    const std::string at = field + ".movement_tests[" + std::to_string(i) + "]";
    const auto& test = session.movement_tests(i);
    if (test.test() == v1::MOVEMENT_TEST_UNSPECIFIED || !v1::MovementTest_IsValid(test.test())) {
      ThrowInvalidArgument(at + ".test", "is required (MOVEMENT_TEST_FLEXION_STANDING, ...)");
    }
    ValidateRange(at + ".repetitions", test.repetitions(), 1, 50);
    ValidateResponse(at + ".response", test.response());
  }
  std::set<int> movements;
  for (int i = 0; i < session.range_of_movement_size(); ++i) {
    const std::string at = field + ".range_of_movement[" + std::to_string(i) + "]";
    const auto& range = session.range_of_movement(i);
    if (range.movement() == v1::LUMBAR_MOVEMENT_UNSPECIFIED || !v1::LumbarMovement_IsValid(range.movement())) {
      ThrowInvalidArgument(at + ".movement", "is required (LUMBAR_MOVEMENT_FLEXION, ...)");
    }
    if (!movements.insert(range.movement()).second) ThrowInvalidArgument(at + ".movement", "is listed twice");
    if (range.loss() == v1::MOVEMENT_LOSS_UNSPECIFIED || !v1::MovementLoss_IsValid(range.loss())) {
      ThrowInvalidArgument(at + ".loss", "is required: NIL, MINIMAL, MODERATE or MAJOR");
    }
  }
  std::set<int> notes;
  for (int i = 0; i < session.notes_size(); ++i) {
    const std::string at = field + ".notes[" + std::to_string(i) + "]";
    const auto note = session.notes(i);
    if (note == v1::SESSION_NOTE_UNSPECIFIED || !v1::SessionNote_IsValid(note)) {
      ThrowInvalidArgument(at, "is not a known note code");
    }
    if (!notes.insert(note).second) ThrowInvalidArgument(at, "is listed twice");
  }
}

std::string DirectionOfTest(v1::MovementTest test) {
  switch (test) {
    case v1::MOVEMENT_TEST_FLEXION_STANDING:
    case v1::MOVEMENT_TEST_FLEXION_LYING: return "flexion";
    case v1::MOVEMENT_TEST_EXTENSION_STANDING:
    case v1::MOVEMENT_TEST_EXTENSION_LYING: return "extension";
    default: return "lateral_shift";
  }
}

SessionJudgement JudgeSessionRecord(const v1::SessionRecord& session, const physio::planning::v1::Plan* plan) {
  std::vector<MovementTestResult> tests;
  for (const auto& test : session.movement_tests()) {
    tests.push_back({TestName(test.test()), DirectionOfTest(test.test()), ResponseOf(test.response())});
  }
  std::vector<std::string> plan_exercises;
  if (plan != nullptr) {
    for (const auto& item : plan->items()) plan_exercises.push_back(item.item_id());
  }
  const std::vector<std::string> directional = DirectionalExercises(plan_exercises);
  std::vector<TreatmentResponse> treatments;
  for (const auto& given : session.interventions()) {
    const bool in_plan_directional =
        std::find(directional.begin(), directional.end(), given.item_id()) != directional.end();
    treatments.push_back({given.item_id(), in_plan_directional, ResponseOf(given.response())});
  }
  return JudgeSession(tests, treatments, plan != nullptr ? plan->direction() : "",
                      plan != nullptr ? std::vector<std::string>(plan->stopped_directions().begin(),
                                                                 plan->stopped_directions().end())
                                      : std::vector<std::string>{});
}

std::vector<RangeReading> RangeOf(const v1::SessionRecord& session) {
  std::vector<RangeReading> readings;
  for (const auto& range : session.range_of_movement()) {
    readings.push_back({MovementName(range.movement()), static_cast<int>(range.loss()) - 1, range.painful()});
  }
  return readings;
}

}  // namespace physio::progress
