#pragma once
// Outcome reports (GetOutcomeReport, docs/reports.md): what one episode contributes (its
// figures, from the progress summary's own rules), the small-group suppression and the CSV
// form. No I/O: the figures are stored and aggregated by outcome_report_records.h.
#include <chrono>
#include <optional>
#include <string>

#include "physio/common/clock.h"
#include "physio/progress/v1/progress.pb.h"

namespace physio::progress {

// One episode's progress figures, from its progress summary.
struct EpisodeFigures {
  std::optional<double> latest_pain;
  bool pain_judged = false;    // the summary judged a pain change against the baseline
  bool pain_improved = false;  // by at least its meaningful change
  std::optional<double> latest_odi;
  std::optional<double> latest_rmdq;
  bool disability_judged = false;  // an Oswestry or Roland-Morris re-measure against its baseline
  bool disability_improved = false;
  std::optional<double> adherence_percent;  // unset when nothing was prescribed yet
  std::string course_status;                // ON_TRACK, RECOVERED, ...; empty without a plan
};

EpisodeFigures FiguresOf(const v1::ProgressSummary& summary);

// How far back a refresher pass looks for episodes the planning service changed (approved,
// superseded, ended: planning.episodes.updated_at). Each episode changed within the look-back
// costs a pass a probe of its figures, so looking back the whole hour on every pass costs in
// proportion to the plans changed in the last hour (66 ms a pass at 20,000 of them, measured
// 2026-12-07), every second, idle or not. A pass looks back to when the last pass that caught up
// began, plus `margin` for a transaction that commits after its updated_at (its start); the
// whole `full` look-back until a pass has caught up, on the passes the refresher asks for it (its
// periodic ones), and whenever the shorter one would reach past it. A pass that did not catch up
// (it failed, or left work waiting) does not move the start on, so nothing it missed falls out of
// the look-back.
class PlanningChangeWindow {
 public:
  PlanningChangeWindow(std::chrono::seconds full, std::chrono::seconds margin) : full_(full), margin_(margin) {}
  // The look-back, in whole seconds, of the pass that begins at `now`; `whole`: the full one.
  std::chrono::seconds For(Clock::time_point now, bool whole) const;
  // The pass that began at `began` refreshed every episode changed within its look-back.
  void CaughtUp(Clock::time_point began) { since_ = began; }

 private:
  std::chrono::seconds full_, margin_;
  std::optional<Clock::time_point> since_;
};

// Withholds what could single a patient out: a group of fewer than `min_size` episodes (every
// figure unset, `suppressed` set) and, when exactly one group of several was suppressed, the next
// smallest too (so a group cannot be worked out from the total and the others); in the groups
// left, every median, quartile and share computed from fewer than `min_size` episodes.
void SuppressSmallGroups(google::protobuf::RepeatedPtrField<v1::OutcomeReportGroup>* groups, int min_size);

// The report as CSV (RFC 4180, CRLF line ends): a header row and one row per group; withheld
// figures are empty cells; a key a spreadsheet would read as a formula is quoted with a leading '.
std::string OutcomeReportCsv(const v1::GetOutcomeReportResponse& report);

}  // namespace physio::progress
