#pragma once
// The one rule for a meaningful improvement of a disability score (Oswestry, Roland-Morris),
// shared by the plan's goals (planning) and the responder judgement (progress), so that
// reaching a goal always counts as improvement (issue 26 item 12).
//
// A fall of `drop` points from `baseline` is meaningful when it is at least the minimal
// clinically important difference in points, or at least 30% of the baseline and at least
// the minimal detectable change (Ostelo 2008; Davidson & Keating 2002 for the MDC).
#include <algorithm>

namespace physio {

struct MeaningfulChangeRule {
  double mcid_points;  // ODI 10, RMDQ 5
  double mdc_points;   // ODI 10, RMDQ 4 (settings odi-mdc-points, rmdq-mdc-points)
};

// Scores are decimals (ODI to a tenth of a percent): a drop within a millionth of a
// threshold is taken as reaching it, so binary fractions never decide.
inline bool IsMeaningfulDrop(double baseline, double drop, const MeaningfulChangeRule& rule) {
  constexpr double kSlack = 1e-6;
  return drop + kSlack >= rule.mcid_points ||
         (baseline > 0 && drop + kSlack >= 0.3 * baseline && drop + kSlack >= rule.mdc_points);
}

// The smallest drop from `baseline` that IsMeaningfulDrop counts (a goal is baseline minus it).
inline double SmallestMeaningfulDrop(double baseline, const MeaningfulChangeRule& rule) {
  return std::min(rule.mcid_points, std::max(0.3 * baseline, rule.mdc_points));
}

}  // namespace physio
