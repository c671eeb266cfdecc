#pragma once
// Pain trend and meaningful-change judgement, as plain C++.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace physio::progress {

struct PainReading {
  int64_t time_seconds;  // Unix time
  int pain;              // 0-10
  std::string source;    // "assessment", "visit", "home_log", "remeasure"
};

struct PainTrend {
  std::vector<PainReading> readings;  // time order; ties keep input order
  std::optional<int> baseline;
  std::optional<int> latest;          // the most recent single reading
  // Mean of the readings in the window (7 days) up to the latest one: pain change
  // and its meaningfulness are judged on it, not on one reading.
  std::optional<double> recent_mean;
  int recent_count = 0;
  // Whether the recent readings can carry a judgement: at least two, or one from a
  // visit or a re-measure. A single post-exercise home-log reading cannot.
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
