#include "pain_trend.h"

#include <algorithm>

namespace physio::progress {

PainTrend BuildPainTrend(std::optional<PainReading> baseline, std::vector<PainReading> readings) {
  PainTrend trend;
  std::stable_sort(readings.begin(), readings.end(),
                   [](const PainReading& a, const PainReading& b) { return a.time_seconds < b.time_seconds; });
  if (baseline) {
    trend.baseline = baseline->pain;
    trend.readings.push_back(*baseline);
  }
  trend.readings.insert(trend.readings.end(), readings.begin(), readings.end());
  if (!readings.empty()) trend.latest = readings.back().pain;
  if (trend.baseline && trend.latest) {
    trend.change = *trend.latest - *trend.baseline;
    trend.meaningful_improvement = -*trend.change >= kNprsMcid;
  }
  return trend;
}

}  // namespace physio::progress
