#pragma once
// Pain trend and meaningful-change judgement, as plain C++.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace physio::progress {

// Where a reading came from. Every source but kAfterExercise is the patient's usual
// pain (the assessment's, at a visit, an NPRS re-measure, the daily usual-pain answer
// on a home log); pain right after a home exercise is exercise soreness, shown on the
// trend but never judged: the 2-point threshold (Childs 2005; Ostelo 2008) is for
// usual pain, not post-exercise pain (issue 26 item 8).
inline constexpr const char* kAfterExercise = "home_log";
inline constexpr const char* kUsualOnHomeLog = "home_log_usual";

struct PainReading {
  int64_t time_seconds;  // Unix time
  int pain;              // 0-10
  std::string source;    // "assessment", "visit", "remeasure", kUsualOnHomeLog, kAfterExercise
};

bool IsUsualPain(const PainReading& reading);

struct PainTrend {
  std::vector<PainReading> readings;  // every reading (after-exercise too), time order; ties keep input order
  std::optional<int> baseline;
  std::optional<int> latest;          // the most recent usual-pain reading
  // Mean of the usual-pain readings in the window (7 days) up to the latest one: pain
  // change and its meaningfulness are judged on it, not on one reading.
  std::optional<double> recent_mean;
  int recent_count = 0;
  // Whether the recent readings can carry a judgement: at least two, or one from a
  // visit or a re-measure. A single home-log answer cannot.
  bool judgeable = false;
  std::optional<int> change;          // recent mean - baseline, rounded; negative is better
  bool meaningful_improvement = false;
};

inline constexpr int kNprsMcid = 2;  // Ostelo 2008; Childs 2005
inline constexpr int64_t kPainWindowSeconds = 7 * 24 * 3600;

// `baseline` is the assessment's pain; `readings` the later ones in any order.
PainTrend BuildPainTrend(std::optional<PainReading> baseline, std::vector<PainReading> readings,
                         int64_t window_seconds = kPainWindowSeconds);

}  // namespace physio::progress
