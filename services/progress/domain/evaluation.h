#pragma once
// Progress evaluation as plain C++: outcome change against each instrument's
// meaningful change (absolute and percent forms), home-programme adherence per
// week, responder status, and the decision (continue, progress, regress,
// re-assess, refer) with its reasons. Sources: ../shared/design/clinical-reference.md
// (Ostelo 2008 MCIDs; progression rule as a design default; non-responder at 4-6 weeks).
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "pain_trend.h"

namespace physio::progress {

enum class Outcome { kNprs, kOdi, kRmdq, kPsfs };

struct OutcomeReading {
  Outcome outcome;
  double score;
  int64_t time_seconds;
};

struct OutcomeChange {
  Outcome outcome;
  double baseline;
  double latest;
  double change;           // latest - baseline
  double percent_change;   // of baseline; 0 when the baseline is 0
  bool improved;           // by at least the meaningful change (either form)
  bool deteriorated;       // worse by at least the meaningful change (absolute form)
  std::string rule;        // e.g. "10 points or 30%"
};

// Higher is better only for PSFS.
// Minimal detectable change (MDC90): a percent improvement counts only when the
// change in points also exceeds what measurement error alone produces (Davidson &
// Keating 2002: RMDQ about 4-5 points, ODI about 10). Configurable.
struct DetectableChange {
  double odi_points = 10;
  double rmdq_points = 4;
};

OutcomeChange JudgeChange(Outcome outcome, double baseline, double latest, const DetectableChange& mdc = {});

struct WeekAdherence {
  int week;              // 1-based, from the plan start
  int prescribed;        // home sessions prescribed that week
  int logged;            // sessions logged that week
  double percent;        // logged / prescribed, capped at 100
  bool complete;         // a whole week (the current one is partial)
};

// `log_times`: when each home session was logged. Weeks run from `start_seconds`
// up to `now_seconds`; the current, partial week is prescribed pro rata (rounded
// down) and left out while nothing is due yet.
std::vector<WeekAdherence> AdherenceByWeek(int64_t start_seconds, int64_t now_seconds, int prescribed_per_week,
                                           const std::vector<int64_t>& log_times);

enum class ResponderStatus { kTooEarly, kResponder, kNonResponder };

enum class Decision { kContinue, kProgress, kRegress, kReassess, kRefer, kSuggestCompletion };

// The check at about 2 weeks: has any outcome moved half its meaningful change?
enum class EarlyResponse { kTooEarly, kOnTrack, kSlow };
std::string DecisionName(Decision decision);

struct EvaluationInput {
  int64_t now_seconds = 0;
  int64_t plan_start_seconds = 0;
  // The plan's last change: a flare must start after it (and `dose_completed` is
  // judged on logs after it), so one piece of evidence moves the plan only once.
  int64_t evidence_since_seconds = 0;
  std::vector<OutcomeChange> changes;
  std::vector<PainReading> pain;   // time-ordered readings after the baseline
  std::vector<WeekAdherence> adherence;
  bool dose_completed = false;     // every prescribed exercise at its dose for dose_completion_days
  bool rated_too_hard = false;     // a recent log rated an exercise too hard
  // Treatments that made symptoms worse at a visit since the plan's last change ("<item> (visit
  // <id>)"): the plan is not progressed until a clinician has looked at them.
  std::vector<std::string> worse_with_treatment;
  bool new_red_flag = false;       // a red flag at check-in calling for referral
  std::vector<std::string> red_flag_reasons;
  // Neurological findings worse at a visit since the plan's last change (sensation, a reflex,
  // neural tension, how far down the leg), one line each: a re-assessment, never a progression.
  std::vector<std::string> neurological_worse;
  // The plan is for sciatica: not improving by the responder check, the spinal-opinion route is
  // offered (NICE NG59 1.3.1).
  bool sciatica = false;
  // The latest re-measures since the plan started (for the recovery definition).
  std::optional<double> latest_nprs;
  std::optional<double> latest_rmdq;
};

struct EvaluationPolicy {
  int responder_check_week = 4;     // non-response judged from week 4 (4-6 weeks in the reference)
  int early_response_week = 2;      // the early-response check (re-measure at about 2 weeks)
  double early_response_fraction_of_mcid = 0.5;  // on track once any outcome moved this much of its MCID
  // Recovery (Kamper 2010): pain at most this and Roland-Morris at most that.
  double recovered_pain_max = 0;
  double recovered_rmdq_max = 2;
  double good_adherence_percent = 80;
  double low_adherence_percent = 50;
  int flare_points = 2;             // pain up by >= 2 ...
  int64_t flare_persist_seconds = 24 * 3600;  // ... persisting more than 24 h
  DetectableChange detectable;      // percent improvements count beyond these
  int dose_completion_days = 7;     // the prescribed dose held this long before progressing
  int pain_window_days = 7;         // pain judged on the mean of this many days' readings
  // How much history a summary or evaluation reads, so neither grows without
  // bound with a patient's record: the last `history_days`, at most
  // `history_max_rows` newest rows of each kind (visits, home logs, re-measures).
  int history_days = 365;
  int history_max_rows = 2000;
};

struct Evaluation {
  Decision decision = Decision::kContinue;
  ResponderStatus responder = ResponderStatus::kTooEarly;
  std::vector<std::string> reasons;
  bool flare = false;
  bool low_adherence = false;
  EarlyResponse early_response = EarlyResponse::kTooEarly;
  bool recovered = false;
  // Non-response is judged only on a programme that was done: at low adherence the
  // evaluation addresses adherence first and raises no non-response alert.
  bool non_response_judged = false;
};

// Whether `change` moved at least `fraction_of_mcid` of the instrument's meaningful change
// the right way (at the default half: NPRS 1 point, ODI 5, RMDQ 2.5, PSFS 1).
bool EarlyImprovement(const OutcomeChange& change, double fraction_of_mcid = 0.5);
// Pain 0 and Roland-Morris at most 2 (Kamper 2010); both must have been re-measured.
bool Recovered(const EvaluationInput& input, const EvaluationPolicy& policy);

ResponderStatus ResponderStatusOf(const EvaluationInput& input, const EvaluationPolicy& policy);
Evaluation Evaluate(const EvaluationInput& input, const EvaluationPolicy& policy);

}  // namespace physio::progress
