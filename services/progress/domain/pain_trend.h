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
  std::string source;    // "assessment", "visit", "home_log"
};

struct PainTrend {
  std::vector<PainReading> readings;  // time order; ties keep input order
  std::optional<int> baseline;
  std::optional<int> latest;
  std::optional<int> change;          // latest - baseline; negative is better
  bool meaningful_improvement = false;
};

inline constexpr int kNprsMcid = 2;  // Ostelo 2008; Childs 2005

// `baseline` is the assessment's pain; `readings` the later ones in any order.
PainTrend BuildPainTrend(std::optional<PainReading> baseline, std::vector<PainReading> readings);

}  // namespace physio::progress
