#include "evaluation.h"

#include "physio/common/meaningful_change.h"

#include <algorithm>
#include <cmath>

namespace physio::progress {

namespace {
constexpr int64_t kWeek = 7 * 24 * 3600;

std::string OutcomeName(Outcome outcome) {
  switch (outcome) {
    case Outcome::kNprs: return "pain";
    case Outcome::kOdi: return "Oswestry";
    case Outcome::kRmdq: return "Roland-Morris";
    case Outcome::kPsfs: return "PSFS";
  }
  return "";
}

std::string Number(double value) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.1f", value);
  std::string text = buffer;
  if (text.size() > 2 && text.substr(text.size() - 2) == ".0") text.resize(text.size() - 2);
  return text;
}

// The absolute meaningful change of each outcome, in its points (PSFS: on the mean).
double MeaningfulChangePoints(Outcome outcome) {
  switch (outcome) {
    case Outcome::kNprs: return 2;
    case Outcome::kOdi: return 10;
    case Outcome::kRmdq: return 5;
    case Outcome::kPsfs: return 2;
  }
  return 0;
}

// Improvement is a fall for pain and disability, a rise for PSFS.
double Gain(Outcome outcome, double change) { return outcome == Outcome::kPsfs ? change : -change; }
}  // namespace

std::string DecisionName(Decision decision) {
  switch (decision) {
    case Decision::kContinue: return "continue";
    case Decision::kProgress: return "progress";
    case Decision::kRegress: return "regress";
    case Decision::kReassess: return "re-assess";
    case Decision::kRefer: return "refer";
    case Decision::kSuggestCompletion: return "suggest completion";
  }
  return "";
}

OutcomeChange JudgeChange(Outcome outcome, double baseline, double latest, const DetectableChange& mdc) {
  OutcomeChange c{outcome, baseline, latest, latest - baseline, 0, false, false, ""};
  if (baseline != 0) c.percent_change = std::round(1000.0 * c.change / baseline) / 10.0;
  const double gain = Gain(outcome, c.change);
  const double mcid = MeaningfulChangePoints(outcome);
  c.improved = gain >= mcid;
  c.deteriorated = gain <= -mcid;
  switch (outcome) {
    case Outcome::kNprs: c.rule = "2 points"; break;
    // The rule plan goals are set by too (physio/common/meaningful_change.h).
    case Outcome::kOdi:
      c.rule = "10 points, or 30% beyond the MDC of " + Number(mdc.odi_points);
      c.improved = IsMeaningfulDrop(baseline, gain, {mcid, mdc.odi_points});
      break;
    case Outcome::kRmdq:
      c.rule = "5 points, or 30% beyond the MDC of " + Number(mdc.rmdq_points);
      c.improved = IsMeaningfulDrop(baseline, gain, {mcid, mdc.rmdq_points});
      break;
    case Outcome::kPsfs: c.rule = "2 points on the mean"; break;
  }
  return c;
}

std::vector<WeekAdherence> AdherenceByWeek(int64_t start_seconds, int64_t now_seconds, int prescribed_per_week,
                                           const std::vector<int64_t>& log_times) {
  std::vector<WeekAdherence> weeks;
  if (prescribed_per_week <= 0 || now_seconds <= start_seconds) return weeks;
  const int64_t elapsed = now_seconds - start_seconds;
  const int count = static_cast<int>((elapsed + kWeek - 1) / kWeek);
  for (int w = 0; w < count; ++w) {
    const int64_t from = start_seconds + w * kWeek;
    const int64_t to = std::min(from + kWeek, now_seconds);
    // The current week is prescribed pro rata, so a Monday check is not "non-adherent".
    const bool complete = to - from == kWeek;
    const int prescribed =
        complete ? prescribed_per_week
                 : static_cast<int>(std::floor(prescribed_per_week * static_cast<double>(to - from) / kWeek));
    if (prescribed == 0) continue;
    const int logged = static_cast<int>(
        std::count_if(log_times.begin(), log_times.end(), [&](int64_t t) { return t >= from && t < to; }));
    weeks.push_back(
        {w + 1, prescribed, logged, std::min(100.0, std::round(1000.0 * logged / prescribed) / 10.0), complete});
  }
  return weeks;
}

ResponderStatus ResponderStatusOf(const EvaluationInput& input, const EvaluationPolicy& policy) {
  const int64_t weeks = (input.now_seconds - input.plan_start_seconds) / kWeek;
  const bool any_improved = std::any_of(input.changes.begin(), input.changes.end(), [](const OutcomeChange& c) { return c.improved; });
  if (any_improved) return ResponderStatus::kResponder;
  return weeks >= policy.responder_check_week ? ResponderStatus::kNonResponder : ResponderStatus::kTooEarly;
}

bool EarlyImprovement(const OutcomeChange& change, double fraction_of_mcid) {
  return Gain(change.outcome, change.change) >= fraction_of_mcid * MeaningfulChangePoints(change.outcome);
}

bool Recovered(const EvaluationInput& input, const EvaluationPolicy& policy) {
  return input.latest_nprs && input.latest_rmdq && *input.latest_nprs <= policy.recovered_pain_max &&
         *input.latest_rmdq <= policy.recovered_rmdq_max;
}

Evaluation Evaluate(const EvaluationInput& input, const EvaluationPolicy& policy) {
  Evaluation result;
  result.responder = ResponderStatusOf(input, policy);
  result.recovered = Recovered(input, policy);
  // Early response (design default from the reference: most of an episode's change
  // comes early): from week 2, on track once any outcome moved a fraction (half) of its MCID.
  const int64_t weeks = (input.now_seconds - input.plan_start_seconds) / kWeek;
  if (result.responder == ResponderStatus::kResponder ||
      std::any_of(input.changes.begin(), input.changes.end(), [&](const OutcomeChange& change) {
        return EarlyImprovement(change, policy.early_response_fraction_of_mcid);
      })) {
    result.early_response = weeks >= policy.early_response_week || result.responder == ResponderStatus::kResponder
                                ? EarlyResponse::kOnTrack
                                : EarlyResponse::kTooEarly;
  } else {
    result.early_response = weeks >= policy.early_response_week ? EarlyResponse::kSlow : EarlyResponse::kTooEarly;
  }

  // A flare: the latest readings all sit >= 2 above the reading just before them,
  // and have done so for more than 24 h (from the first raised reading to the latest).
  const auto& pain = input.pain;
  for (size_t k = pain.size(); k-- > 1 && !result.flare;) {
    const int reference = pain[k - 1].pain;
    const bool raised = std::all_of(pain.begin() + static_cast<long>(k), pain.end(),
                                    [&](const PainReading& r) { return r.pain >= reference + policy.flare_points; });
    if (raised && pain[k].time_seconds >= input.evidence_since_seconds) {
      result.flare = pain.back().time_seconds - pain[k].time_seconds > policy.flare_persist_seconds;
    }
  }
  // Judged on the last whole week; the current partial week only when there is none yet.
  const WeekAdherence* last_full = input.adherence.empty() ? nullptr : &input.adherence.back();
  for (const auto& week : input.adherence) {
    if (week.complete) last_full = &week;
  }
  const double adherence = last_full ? last_full->percent : 0;
  result.low_adherence = last_full != nullptr && adherence < policy.low_adherence_percent;

  if (input.new_red_flag) {
    result.decision = Decision::kRefer;
    result.reasons.push_back("new red flag at check-in");
    result.reasons.insert(result.reasons.end(), input.red_flag_reasons.begin(), input.red_flag_reasons.end());
    return result;
  }
  if (!input.neurological_worse.empty()) {
    // Worsening neurology is looked at again by a clinician, whatever the other outcomes say.
    result.decision = Decision::kReassess;
    result.reasons.push_back("neurological findings worse at a visit: re-assess (never a progression)");
    result.reasons.insert(result.reasons.end(), input.neurological_worse.begin(), input.neurological_worse.end());
    return result;
  }
  for (const auto& c : input.changes) {
    if (c.deteriorated) {
      result.decision = Decision::kReassess;
      result.reasons.push_back(OutcomeName(c.outcome) + " worse by " + Number(std::fabs(c.change)) +
                               " (meaningful change " + c.rule + ")");
    }
  }
  if (result.decision == Decision::kReassess) return result;
  if (result.flare) {
    result.decision = Decision::kRegress;
    result.reasons.push_back("flare: pain up by " + std::to_string(policy.flare_points) +
                             " or more, lasting more than 24 hours");
    return result;
  }
  if (result.recovered) {
    result.decision = Decision::kSuggestCompletion;
    result.reasons.push_back("recovered: pain " + Number(*input.latest_nprs) + " and Roland-Morris " +
                             Number(*input.latest_rmdq) + " (at most 2; Kamper 2010): consider completing the plan, "
                             "with advice on staying active and what to do if pain returns");
    return result;
  }
  if (result.responder == ResponderStatus::kNonResponder && input.sciatica) {
    // Sciatica that has not improved with non-surgical care: the spinal-opinion route (NICE NG59
    // 1.3.1), whatever the adherence (which the reasons name when low).
    result.non_response_judged = true;
    result.decision = Decision::kRefer;
    result.reasons.push_back("sciatica not improving: no outcome has reached its meaningful change by week " +
                             std::to_string(policy.responder_check_week) +
                             ": offer the spinal-opinion route (NICE NG59 1.3.1: spinal decompression is considered "
                             "when non-surgical treatment has not improved pain or function and imaging is "
                             "consistent with the symptoms)");
    if (result.low_adherence) {
      result.reasons.push_back("home-programme adherence was " + Number(adherence) + "%: discuss it as well");
    }
    return result;
  }
  if (result.responder == ResponderStatus::kNonResponder && result.low_adherence) {
    // A programme that was not done cannot be judged ineffective: adherence first.
    result.decision = Decision::kContinue;
    result.reasons.push_back("no outcome has reached its meaningful change by week " +
                             std::to_string(policy.responder_check_week) + ", but home-programme adherence was " +
                             Number(adherence) + "%: address adherence and its barriers before judging response");
    return result;
  }
  if (result.responder == ResponderStatus::kNonResponder) {
    result.non_response_judged = true;
    result.decision = Decision::kReassess;
    result.reasons.push_back("no outcome has reached its meaningful change by week " +
                             std::to_string(policy.responder_check_week) +
                             ": review, re-classify, consider psychologically informed care or referral");
    return result;
  }
  if (input.dose_completed && adherence >= policy.good_adherence_percent && !input.worse_with_treatment.empty()) {
    result.decision = Decision::kContinue;
    std::string items;
    for (const auto& item : input.worse_with_treatment) items += (items.empty() ? "" : ", ") + item;
    result.reasons.push_back("dose completed, but a treatment made symptoms worse at a visit (" + items +
                             "): not progressing until it is reviewed");
    return result;
  }
  if (input.dose_completed && adherence >= policy.good_adherence_percent && input.rated_too_hard) {
    result.decision = Decision::kContinue;
    result.reasons.push_back("dose completed, but an exercise was rated too hard: not progressing yet");
    return result;
  }
  const std::string slow_early_response =
      "slow early response: no outcome has moved " + Number(100 * policy.early_response_fraction_of_mcid) +
      "% of its meaningful change by week " +
      std::to_string(policy.early_response_week) + "; check adherence and dose, and review the classification before "
      "the week-" + std::to_string(policy.responder_check_week) + " responder check";
  if (input.dose_completed && adherence >= policy.good_adherence_percent) {
    result.decision = Decision::kProgress;
    result.reasons.push_back("prescribed dose completed with " + Number(adherence) + "% adherence and no flare");
    if (result.early_response == EarlyResponse::kSlow) result.reasons.push_back(slow_early_response);
    return result;
  }
  result.decision = Decision::kContinue;
  if (result.early_response == EarlyResponse::kSlow) result.reasons.push_back(slow_early_response);
  if (last_full == nullptr) {
    result.reasons.push_back("too early to judge: no home sessions are due yet");
  } else if (result.low_adherence) {
    result.reasons.push_back("home-programme adherence " + Number(adherence) + "%: discuss barriers before changing the plan");
  } else if (!input.dose_completed) {
    result.reasons.push_back("prescribed dose not yet completed");
  } else {
    result.reasons.push_back("adherence " + Number(adherence) + "% is below the " +
                             Number(policy.good_adherence_percent) + "% needed to progress");
  }
  return result;
}

}  // namespace physio::progress
