#pragma once
// Red-flag screening (Finucane et al., JOSPT 2020 framework; NICE NG65 for axial
// spondyloarthritis): structured answers in, a level of concern per suspected
// condition and one overall action out, each with its reasons. Single flags are
// weak and combinations matter, so most conditions need a combination before
// they ask for more than monitoring. The combination rules are design defaults
// documented in docs/clinical-rules.md.
#include <optional>
#include <string>
#include <vector>

#include "neuro_exam.h"

namespace physio::assessment {

struct RedFlagAnswers {
  // Cauda equina syndrome
  bool bladder_or_bowel_disturbance = false;
  bool saddle_numbness = false;
  bool bilateral_leg_neurological_symptoms = false;
  bool new_sexual_dysfunction = false;
  // Pain in both legs on the body chart (not an answer to the screen's question).
  // New pain below the knee in both legs, or pain in both legs with neurological
  // signs, is suspected cauda equina (GIRFT 2023); long-standing pain in both legs
  // without them is monitored with the cauda equina questions asked at every visit.
  bool bilateral_leg_pain = false;
  bool bilateral_pain_below_knee = false;  // a lower leg or foot on each side
  // Malignancy / spinal cord compression
  bool history_of_cancer = false;
  bool unexplained_weight_loss = false;
  bool night_pain = false;
  bool unremitting_pain = false;
  // Infection
  bool fever = false;
  bool systemically_unwell = false;
  bool intravenous_drug_use = false;
  bool immunosuppression = false;
  bool recent_infection_or_procedure = false;
  bool diabetes = false;
  // Fracture: features of a new fracture (trauma, a sudden severe onset) and risk factors
  // (age, corticosteroids, osteoporosis, an earlier fragility fracture, height loss).
  bool major_trauma = false;
  bool minor_trauma = false;
  bool sudden_onset_severe_pain = false;
  bool long_term_corticosteroids = false;
  bool osteoporosis = false;
  bool previous_fragility_fracture = false;
  bool height_loss = false;
  // Neurological
  bool neurological_signs = false;  // objective deficit on examination
  bool progressive_weakness = false;
  bool widespread_neurological_signs = false;
  // Urgent findings of the neurological examination (neuro_exam.h: a new severe or a progressing
  // motor deficit, an upper motor neurone sign), each a reason: an urgent referral at least.
  std::vector<std::string> urgent_neurological;
  // Axial spondyloarthritis (NICE NG65), asked when onset < 45 and pain > 3 months
  bool waking_second_half_of_night = false;
  bool buttock_pain = false;
  bool better_with_movement = false;
  bool better_within_48h_of_nsaids = false;
  bool relative_with_spondyloarthritis = false;
  bool arthritis = false;
  bool enthesitis = false;
  bool psoriasis = false;
  // The Berlin criteria of inflammatory back pain met (Rudwaleit 2006), from the
  // history's 24-hour pattern; non-empty means an inflammatory pattern.
  std::vector<std::string> inflammatory_pattern;
};

// Ordered by urgency: the overall action is the most urgent of any condition.
enum class RedFlagAction {
  kNone,              // treat
  kMonitor,           // treat with safety-netting and close monitoring
  kRoutineReferral,   // treat, and refer routinely (e.g. rheumatology for axSpA)
  kUrgentReferral,    // do not start treatment; contact within 24 h
  kEmergencyReferral  // hospital now; no treatment plan
};


struct ConditionConcern {
  std::string condition;  // "cauda_equina", "malignancy", "infection", "fracture", "neurological_deficit", "axial_spondyloarthritis"
  RedFlagAction action;
  std::vector<std::string> reasons;  // the features that led there
};

struct RedFlagResult {
  RedFlagAction action = RedFlagAction::kNone;
  std::vector<ConditionConcern> concerns;  // only conditions with any concern
  // No spinal manipulation or loading until cleared (suspected fracture).
  bool manipulation_contraindicated = false;
};

// Settings of the screen where the literature leaves a range (docs/clinical-rules.md).
struct RedFlagPolicy {
  // Pain below the knee in both legs in an episode at most this old (or of unknown
  // length) is new: an emergency (GIRFT 2023 lists bilateral radicular pain among
  // the features of suspected cauda equina). Default: the acute phase, 6 weeks.
  int new_bilateral_leg_pain_days = 42;
  // Fracture risk: age over this counts as a risk factor (NICE CKS; Finucane 2020: older age).
  int fracture_risk_age = 70;
  // Risk factors alone (no trauma, no sudden severe onset) in an episode at most this old
  // (or of unknown length) are a suspected new fracture: urgent. Past it the pain is
  // long-standing and stable, and the risk is monitored, with strengthening kept
  // (Royal Osteoporosis Society 2022). Default: 6 weeks.
  int new_fracture_episode_days = 42;
  // The neurological examination's thresholds (neuro_exam.h).
  NeuroPolicy neuro;
};

// What a check-in's re-screen found beyond what was known when the plan was made
// (issue 26 item 6). `now` is the screen of intake's answers plus the check-in's,
// `known` of intake's alone (same age and episode length), `judged` the clinician's
// recorded judgement at intake, if any (the progress service merges intake's screen into the
// check-in's for `now`: a "yes" of either counts). A concern is new when the check-in's answers
// changed it (it differs from `known`'s concern for that condition in action or reasons)
// and its action is above what was accepted for the plan: `known`'s action, capped by the
// clinician's judgement. Otherwise it was answered by the plan (and the judgement) already,
// and a re-screen never re-raises it. The overall action and manipulation flag are recomputed.
RedFlagResult NewSince(const RedFlagResult& now, const RedFlagResult& known,
                       std::optional<RedFlagAction> judged = std::nullopt);

// `age_years` and `episode_duration_days` come from the history (nullopt when unknown).
RedFlagResult ScreenRedFlags(const RedFlagAnswers& answers, std::optional<int> age_years,
                             std::optional<int> episode_duration_days, const RedFlagPolicy& policy = {});

}  // namespace physio::assessment
