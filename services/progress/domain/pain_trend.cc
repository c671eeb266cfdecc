#include "pain_trend.h"

#include <algorithm>
#include <cmath>

namespace physio::progress {

bool IsUsualPain(const PainReading& reading) { return reading.source != kAfterExercise; }

PainTrend BuildPainTrend(std::optional<PainReading> baseline, std::vector<PainReading> readings,
                         int64_t window_seconds) {
  PainTrend trend;
  std::stable_sort(readings.begin(), readings.end(),
                   [](const PainReading& a, const PainReading& b) { return a.time_seconds < b.time_seconds; });
  if (baseline) {
    trend.baseline = baseline->pain;
    trend.readings.push_back(*baseline);
  }
  trend.readings.insert(trend.readings.end(), readings.begin(), readings.end());
  std::erase_if(readings, [](const PainReading& reading) { return !IsUsualPain(reading); });
  if (readings.empty()) return trend;
  trend.latest = readings.back().pain;
  // Pain fluctuates day to day: judge the mean of the last week's usual-pain readings
  // (a documented smoothing; Dworkin 2008 IMMPACT recommends averaged ratings over
  // single ones), not the last reading alone.
  const int64_t from = readings.back().time_seconds - window_seconds;
  double sum = 0;
  bool beyond_home_logs = false;
  for (const auto& reading : readings) {
    if (reading.time_seconds < from) continue;
    sum += reading.pain;
    ++trend.recent_count;
    beyond_home_logs |= reading.source != kUsualOnHomeLog;
  }
  trend.recent_mean = std::round(10.0 * sum / trend.recent_count) / 10.0;
  trend.judgeable = trend.recent_count >= 2 || beyond_home_logs;
  if (trend.baseline) {
    const double change = *trend.recent_mean - *trend.baseline;
    trend.change = static_cast<int>(std::lround(change));
    trend.meaningful_improvement = trend.judgeable && -change >= kNprsMcid;
  }
  return trend;
}

}  // namespace physio::progress
