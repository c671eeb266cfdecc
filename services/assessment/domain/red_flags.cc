#include "red_flags.h"

#include <algorithm>
#include <string>

namespace physio::assessment {

namespace {
struct Collector {
  std::vector<std::string> reasons;
  void Add(bool present, const std::string& reason) {
    if (present) reasons.push_back(reason);
  }
  int count() const { return static_cast<int>(reasons.size()); }
};

void Raise(RedFlagResult& result, const std::string& condition, RedFlagAction action, std::vector<std::string> reasons) {
  if (action == RedFlagAction::kNone) return;
  result.concerns.push_back({condition, action, std::move(reasons)});
  result.action = std::max(result.action, action);
}
}  // namespace

RedFlagResult ScreenRedFlags(const RedFlagAnswers& a, std::optional<int> age_years,
                             std::optional<int> episode_duration_days, const RedFlagPolicy& policy) {
  RedFlagResult result;
  const bool neuro = a.neurological_signs;

  // Cauda equina: any feature is an emergency (hospital within hours, MRI within 4 h).
  Collector ces;
  ces.Add(a.bladder_or_bowel_disturbance, "bladder or bowel disturbance");
  ces.Add(a.saddle_numbness, "saddle numbness");
  ces.Add(a.bilateral_leg_neurological_symptoms, "bilateral leg neurological symptoms");
  ces.Add(a.new_sexual_dysfunction, "new sexual dysfunction");
  if (ces.count() > 0) {
    Raise(result, "cauda_equina", RedFlagAction::kEmergencyReferral, ces.reasons);
  } else if (a.bilateral_leg_pain) {
    // Bilateral radicular pain is among the features of suspected cauda equina in the
    // national pathway (GIRFT 2023): new pain below the knee in both legs (an episode of
    // unknown length is taken as new), or pain in both legs with any neurological sign,
    // is an emergency. Long-standing, stable pain in both legs without neurological signs
    // is treated with safety-netting: the questions again at every visit and the warning card.
    const bool recent = !episode_duration_days || *episode_duration_days <= policy.new_bilateral_leg_pain_days;
    if (neuro) {
      Raise(result, "cauda_equina", RedFlagAction::kEmergencyReferral,
            {"pain in both legs on the body chart", "with neurological signs on examination"});
    } else if (a.bilateral_pain_below_knee && recent) {
      Raise(result, "cauda_equina", RedFlagAction::kEmergencyReferral,
            {"new pain below the knee in both legs",
             episode_duration_days ? "episode of " + std::to_string(*episode_duration_days) + " days (new: at most " +
                                         std::to_string(policy.new_bilateral_leg_pain_days) + ")"
                                   : "episode of unknown length, taken as new"});
    } else {
      Raise(result, "cauda_equina", RedFlagAction::kMonitor,
            {"pain in both legs on the body chart", "ask about bladder, bowel, saddle sensation and sexual function at "
                                                    "every visit and give the cauda equina warning card"});
    }
  }

  // Malignancy: a history of cancer is the strongest single feature; other features
  // count in combination. Suspected metastatic spinal cord compression (a history of
  // cancer with progressive weakness, widespread neurological signs, a neurological
  // deficit or bladder/bowel change) is an emergency (NICE NG234; Finucane 2020).
  Collector cancer;
  cancer.Add(a.history_of_cancer, "history of cancer");
  cancer.Add(age_years && *age_years > 50, "age over 50");
  cancer.Add(a.unexplained_weight_loss, "unexplained weight loss");
  cancer.Add(a.night_pain, "night pain");
  cancer.Add(a.unremitting_pain, "unremitting pain");
  Collector cord;
  cord.Add(neuro, "neurological signs");
  cord.Add(a.progressive_weakness, "progressive weakness");
  cord.Add(a.widespread_neurological_signs, "widespread neurological signs");
  cord.Add(a.bladder_or_bowel_disturbance, "bladder or bowel change");
  RedFlagAction malignancy = RedFlagAction::kNone;
  if (a.history_of_cancer || cancer.count() >= 3) {
    malignancy = cord.count() > 0 ? RedFlagAction::kEmergencyReferral : RedFlagAction::kUrgentReferral;
  } else if (cancer.count() == 2) {
    malignancy = cord.count() > 0 ? RedFlagAction::kUrgentReferral : RedFlagAction::kMonitor;
  } else if (cancer.count() == 1 && a.unexplained_weight_loss) {
    malignancy = RedFlagAction::kMonitor;
  }
  if (malignancy >= RedFlagAction::kUrgentReferral) {
    cancer.reasons.insert(cancer.reasons.end(), cord.reasons.begin(), cord.reasons.end());
  }
  Raise(result, "malignancy", malignancy, cancer.reasons);

  // Infection (Finucane 2020): systemically unwell, or any neurological deficit with
  // infection features, is an emergency; otherwise suspected infection (fever, or a
  // risk factor with any other feature) is urgent. A single risk factor alone is monitored.
  Collector risk;
  risk.Add(a.intravenous_drug_use, "intravenous drug use");
  risk.Add(a.immunosuppression, "immunosuppression");
  risk.Add(a.recent_infection_or_procedure, "recent infection or procedure");
  risk.Add(a.diabetes, "diabetes");
  RedFlagAction infection = RedFlagAction::kNone;
  std::vector<std::string> infection_reasons = risk.reasons;
  if (a.fever) infection_reasons.push_back("fever");
  if (a.systemically_unwell) infection_reasons.push_back("systemically unwell");
  const bool features = a.fever || a.systemically_unwell || risk.count() > 0;
  const bool suspected = a.fever || a.systemically_unwell || risk.count() >= 2 ||
                         (risk.count() == 1 && (a.unremitting_pain || a.night_pain));
  if (a.systemically_unwell || (neuro && features && suspected)) {
    infection = RedFlagAction::kEmergencyReferral;
    if (neuro) infection_reasons.push_back("neurological signs");
  } else if (suspected) {
    infection = RedFlagAction::kUrgentReferral;
    if (risk.count() == 1 && !a.fever) {
      infection_reasons.push_back(a.unremitting_pain ? "unremitting pain" : "night pain");
    }
  } else if (features) {
    infection = RedFlagAction::kMonitor;
  }
  Raise(result, "infection", infection, infection_reasons);

  // Fracture (Finucane 2020; NICE CKS; Royal Osteoporosis Society 2022): major trauma is an
  // emergency. A feature of a new fracture (minor trauma, a sudden severe onset) with any risk
  // factor is urgent: imaging before treatment. Two or more risk factors without such a
  // feature are urgent only in a new episode (osteoporotic fractures often follow no trauma);
  // in a long-standing, stable one they are monitored, and strengthening stays in the plan.
  // A single feature or risk factor is monitored.
  Collector acute;
  acute.Add(a.minor_trauma, "minor trauma");
  acute.Add(a.sudden_onset_severe_pain, "sudden onset of severe pain");
  Collector risk_factors;
  risk_factors.Add(age_years && *age_years > policy.fracture_risk_age,
                   "age over " + std::to_string(policy.fracture_risk_age));
  risk_factors.Add(a.long_term_corticosteroids, "long-term corticosteroids");
  risk_factors.Add(a.osteoporosis, "osteoporosis");
  risk_factors.Add(a.previous_fragility_fracture, "previous fragility fracture");
  risk_factors.Add(a.height_loss, "height loss");
  const bool new_episode = !episode_duration_days || *episode_duration_days <= policy.new_fracture_episode_days;
  std::vector<std::string> fracture_reasons;
  if (a.major_trauma) fracture_reasons.push_back("major trauma");
  fracture_reasons.insert(fracture_reasons.end(), acute.reasons.begin(), acute.reasons.end());
  fracture_reasons.insert(fracture_reasons.end(), risk_factors.reasons.begin(), risk_factors.reasons.end());
  RedFlagAction fracture_action = RedFlagAction::kNone;
  if (a.major_trauma) {
    fracture_action = RedFlagAction::kEmergencyReferral;
  } else if (acute.count() >= 1 && risk_factors.count() >= 1) {
    fracture_action = RedFlagAction::kUrgentReferral;
  } else if (risk_factors.count() >= 2 && new_episode) {
    fracture_action = RedFlagAction::kUrgentReferral;
    fracture_reasons.push_back(episode_duration_days ? "episode of " + std::to_string(*episode_duration_days) +
                                                           " days (new: at most " +
                                                           std::to_string(policy.new_fracture_episode_days) + ")"
                                                     : "episode of unknown length, taken as new");
  } else if (risk_factors.count() >= 2) {
    fracture_action = RedFlagAction::kMonitor;
    fracture_reasons.push_back("long-standing, stable pain without trauma or sudden onset: fracture risk; no "
                               "manipulation or loaded flexion, keep strengthening");
  } else if (acute.count() + risk_factors.count() == 1) {
    fracture_action = RedFlagAction::kMonitor;
  }
  // Spinal manipulation is contraindicated at any fracture concern, monitored ones included
  // (Royal Osteoporosis Society 2022 consensus; Sinaki & Mikkelsen 1984 on flexion loading).
  if (fracture_action >= RedFlagAction::kMonitor) result.manipulation_contraindicated = true;
  Raise(result, "fracture", fracture_action, fracture_reasons);

  // Progressive or widespread neurological deficit: specialist referral, emergency when both.
  Collector deficit;
  deficit.Add(a.progressive_weakness, "progressive weakness");
  deficit.Add(a.widespread_neurological_signs, "widespread neurological signs");
  RedFlagAction deficit_action = deficit.count() == 2   ? RedFlagAction::kEmergencyReferral
                                 : deficit.count() == 1 ? RedFlagAction::kUrgentReferral
                                                        : RedFlagAction::kNone;
  // The examination's own urgent findings (a foot drop, a progressing deficit): urgent at least.
  for (const auto& reason : a.urgent_neurological) {
    deficit.Add(true, reason);
    deficit_action = std::max(deficit_action, RedFlagAction::kUrgentReferral);
  }
  Raise(result, "neurological_deficit", deficit_action, deficit.reasons);

  // Axial spondyloarthritis (NICE NG65): onset before 45 and pain for more than 3
  // months; then >= 4 criteria: rheumatology referral; 3: consider HLA-B27.
  if (age_years && episode_duration_days && *episode_duration_days > 90) {
    const int onset_age = *age_years - *episode_duration_days / 365;
    if (onset_age < 45) {
      Collector spa;
      spa.Add(onset_age < 35, "onset before 35");
      spa.Add(a.waking_second_half_of_night, "waking in the second half of the night");
      spa.Add(a.buttock_pain, "buttock pain");
      spa.Add(a.better_with_movement, "better with movement");
      spa.Add(a.better_within_48h_of_nsaids, "better within 48 h of NSAIDs");
      spa.Add(a.relative_with_spondyloarthritis, "first-degree relative with spondyloarthritis");
      spa.Add(a.arthritis, "current or past arthritis");
      spa.Add(a.enthesitis, "current or past enthesitis");
      spa.Add(a.psoriasis, "current or past psoriasis");
      // An inflammatory pattern (Berlin criteria) is not one of NG65's criteria, so it does
      // not add to the count; it keeps a concern below three criteria monitored.
      std::string pattern;
      for (const auto& criterion : a.inflammatory_pattern) pattern += (pattern.empty() ? "" : ", ") + criterion;
      if (!pattern.empty()) pattern = "inflammatory pain pattern (Berlin criteria, Rudwaleit 2006: " + pattern + ")";
      if (spa.count() >= 4) {
        if (!pattern.empty()) spa.reasons.push_back(pattern);
        Raise(result, "axial_spondyloarthritis", RedFlagAction::kRoutineReferral, spa.reasons);
      } else if (spa.count() == 3) {
        spa.reasons.push_back("three criteria: consider an HLA-B27 test");
        if (!pattern.empty()) spa.reasons.push_back(pattern);
        Raise(result, "axial_spondyloarthritis", RedFlagAction::kMonitor, spa.reasons);
      } else if (!pattern.empty()) {
        spa.reasons.push_back(pattern);
        spa.reasons.push_back("re-screen for NG65 features; refer to rheumatology if four are met");
        Raise(result, "axial_spondyloarthritis", RedFlagAction::kMonitor, spa.reasons);
      }
    }
  }
  return result;
}

RedFlagResult NewSince(const RedFlagResult& now, const RedFlagResult& known, std::optional<RedFlagAction> judged) {
  RedFlagResult result;
  for (const auto& concern : now.concerns) {
    const auto was = std::find_if(known.concerns.begin(), known.concerns.end(),
                                  [&](const ConditionConcern& k) { return k.condition == concern.condition; });
    if (was != known.concerns.end()) {
      const bool changed = was->action != concern.action || was->reasons != concern.reasons;
      const RedFlagAction accepted = judged ? std::min(was->action, *judged) : was->action;
      if (!changed || concern.action <= accepted) continue;
    }
    result.concerns.push_back(concern);
    result.action = std::max(result.action, concern.action);
    if (concern.condition == "fracture") result.manipulation_contraindicated = true;
  }
  return result;
}

}  // namespace physio::assessment
