#pragma once
// Outcome reports (GetOutcomeReport, docs/reports.md): what one episode contributes (its
// figures, from the progress summary's own rules), the small-group suppression and the CSV
// form. No I/O: the figures are stored and aggregated by outcome_report_records.h.
#include <optional>
#include <string>

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

// Withholds what could single a patient out: a group of fewer than `min_size` episodes (every
// figure unset, `suppressed` set) and, when exactly one group of several was suppressed, the next
// smallest too (so a group cannot be worked out from the total and the others); in the groups
// left, every median, quartile and share computed from fewer than `min_size` episodes.
void SuppressSmallGroups(google::protobuf::RepeatedPtrField<v1::OutcomeReportGroup>* groups, int min_size);

// The report as CSV (RFC 4180, CRLF line ends): a header row and one row per group; withheld
// figures are empty cells; a key a spreadsheet would read as a formula is quoted with a leading '.
std::string OutcomeReportCsv(const v1::GetOutcomeReportResponse& report);

}  // namespace physio::progress
