#include "plan_rules.h"

#include <algorithm>
#include <cmath>

namespace physio::planning {

namespace {
constexpr const char* kNiceSelfManagement = "NICE NG59 1.2.1 (self-management advice at every step)";
constexpr const char* kNiceExercise = "NICE NG59 1.2.2 (exercise programme); George et al., JOSPT 2021";
constexpr const char* kMotorControlDose = "Niederer & Mueller (motor control 20-30 min, 3-5x/week, ~6 weeks)";
constexpr const char* kResistanceDose = "ACSM 2009 (8-12 reps, 1-3 sets, 2-3 days/week)";

std::string PhaseReason(Phase phase) {
  switch (phase) {
    case Phase::kSymptomModulation: return "symptom-modulation phase: high pain or disability at baseline";
    case Phase::kMovementControl: return "movement-control phase: moderate pain and disability at baseline";
    case Phase::kFunctionOptimisation: return "function-optimisation phase: low pain and disability at baseline";
  }
  return "";
}

double RoundTenth(double value) { return std::round(value * 10.0) / 10.0; }
}  // namespace

PlanDraft GeneratePlanDraft(const PlanInput& input) {
  PlanDraft plan{input.phase, {}, {}, {}};
  const std::string why_phase = PhaseReason(plan.phase);
  auto& items = plan.items;

  items.push_back({"edu.self_management", ItemKind::kEducation,
                   "Advice to stay active, reassurance about the usually favourable course, self-management",
                   {}, "recommended for every patient with low back pain", kNiceSelfManagement, false});

  switch (plan.phase) {
    case Phase::kSymptomModulation:
      items.push_back({"ex.mobility.knee_rocking", ItemKind::kExercise, "Supine knee rocking within comfort",
                       {1, 10, 0, 7}, why_phase + "; gentle movement to reduce guarding", kNiceExercise, true});
      items.push_back({"ex.motor.abdominal_bracing", ItemKind::kExercise,
                       "Abdominal bracing in crook lying, breathing normally", {2, 10, 10, 5},
                       why_phase + "; low-load trunk activation", kMotorControlDose, true});
      items.push_back({"pain.heat", ItemKind::kPainManagement, "Local heat for short-term pain relief at home", {},
                       "self-management of flare-ups while activity is built up",
                       "NICE NG59 (heat or cold acceptable as self-management)", true});
      break;
    case Phase::kMovementControl:
      items.push_back({"ex.motor.abdominal_bracing", ItemKind::kExercise,
                       "Abdominal bracing in crook lying, breathing normally", {2, 10, 10, 5},
                       why_phase + "; trunk activation before adding load", kMotorControlDose, true});
      items.push_back({"ex.motor.bird_dog", ItemKind::kExercise, "Four-point kneeling opposite arm and leg reach",
                       {2, 8, 5, 4}, why_phase + "; trunk control with limb movement", kMotorControlDose, true});
      items.push_back({"ex.aerobic.walking", ItemKind::kExercise, "Brisk walking, 20 minutes", {1, 1, 0, 5},
                       "general aerobic exercise for chronic and recurrent low back pain", kNiceExercise, true});
      items.push_back({"edu.body_mechanics", ItemKind::kEducation,
                       "Body mechanics for lifting and sitting: vary posture, keep loads close", {},
                       "supports return to normal activities", "NICE NG59 1.2.1; George et al., JOSPT 2021", false});
      break;
    case Phase::kFunctionOptimisation:
      items.push_back({"ex.strength.glute_bridge", ItemKind::kExercise, "Glute bridge", {3, 10, 0, 3},
                       why_phase + "; build trunk and hip strength", kResistanceDose, true});
      items.push_back({"ex.strength.goblet_squat", ItemKind::kExercise, "Goblet squat with a light load", {3, 10, 0, 3},
                       why_phase + "; loaded functional movement", kResistanceDose, true});
      items.push_back({"ex.aerobic.walking", ItemKind::kExercise, "Brisk walking, 30 minutes", {1, 1, 0, 5},
                       "general aerobic exercise", kNiceExercise, true});
      items.push_back({"life.return_to_activity", ItemKind::kLifestyle,
                       "Graded return to usual work, sport and leisure activities", {},
                       "support return to work and normal activities", "NICE NG59 1.2.1", false});
      break;
  }

  if (input.nprs && *input.nprs > 0) {
    // NPRS MCID is 2 points (Ostelo 2008; Childs 2005).
    plan.goals.push_back({"Reduce pain by at least the meaningful change of 2 points", GoalMeasure::kNprs,
                          std::max(0.0, *input.nprs - 2)});
  }
  if (input.odi_percent && *input.odi_percent > 0) {
    // ODI MCID: 10 points or 30% (Ostelo 2008); the smaller drop meets either form.
    const double drop = std::min(10.0, 0.3 * *input.odi_percent);
    plan.goals.push_back({"Reduce disability (Oswestry) by a meaningful change", GoalMeasure::kOdi,
                          RoundTenth(std::max(0.0, *input.odi_percent - drop))});
  }
  plan.reviews = {{2, "re-measure pain and Oswestry; check home-programme adherence"},
                  {6, "responder check against the meaningful-change thresholds; progress, regress or re-assess"}};
  return plan;
}

}  // namespace physio::planning
