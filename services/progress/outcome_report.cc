#include "outcome_report.h"

#include <algorithm>
#include <cstdio>
#include <vector>

namespace physio::progress {

namespace pb = physio::progress::v1;
namespace cpb = physio::common::v1;

EpisodeFigures FiguresOf(const pb::ProgressSummary& summary) {
  EpisodeFigures figures;
  if (summary.has_latest_pain()) figures.latest_pain = summary.latest_pain();
  for (const auto& change : summary.outcome_changes()) {
    switch (change.instrument()) {
      case cpb::INSTRUMENT_NPRS:
        figures.pain_judged = true;
        figures.pain_improved = change.improved_meaningfully();
        break;
      case cpb::INSTRUMENT_ODI:
      case cpb::INSTRUMENT_RMDQ:
        (change.instrument() == cpb::INSTRUMENT_ODI ? figures.latest_odi : figures.latest_rmdq) = change.latest();
        figures.disability_judged = true;
        figures.disability_improved = figures.disability_improved || change.improved_meaningfully();
        break;
      default: break;
    }
  }
  int prescribed = 0;
  for (const auto& week : summary.adherence()) prescribed += week.prescribed_sessions();
  if (prescribed > 0) figures.adherence_percent = summary.adherence_percent();
  const auto status = summary.expected_course().status();
  if (status != pb::COURSE_STATUS_UNSPECIFIED) {
    figures.course_status = pb::CourseStatus_Name(status).substr(sizeof("COURSE_STATUS_") - 1);
  }
  return figures;
}

namespace {
void Withhold(pb::ReportDistribution* distribution, int min_size) {
  if (distribution->count() >= min_size) return;
  distribution->clear_median();
  distribution->clear_q1();
  distribution->clear_q3();
}

void Withhold(pb::ReportShare* share, int min_size) {
  if (share->of() >= min_size) return;
  share->clear_count();
  share->clear_percent();
}

std::vector<pb::ReportDistribution*> Distributions(pb::OutcomeReportGroup& group) {
  return {group.mutable_baseline_pain(), group.mutable_latest_pain(),  group.mutable_baseline_odi(),
          group.mutable_latest_odi(),    group.mutable_baseline_rmdq(), group.mutable_latest_rmdq(),
          group.mutable_adherence_percent(), group.mutable_weeks_to_end()};
}

std::vector<pb::ReportShare*> Shares(pb::OutcomeReportGroup& group) {
  return {group.mutable_pain_meaningful_change(), group.mutable_disability_meaningful_change(), group.mutable_on_track()};
}
}  // namespace

void SuppressSmallGroups(google::protobuf::RepeatedPtrField<pb::OutcomeReportGroup>* groups, int min_size) {
  std::vector<pb::OutcomeReportGroup*> small, kept;
  for (auto& group : *groups) (group.episodes_started() < min_size ? small : kept).push_back(&group);
  // One suppressed group among several: the smallest other one goes too (complementary suppression).
  if (small.size() == 1 && !kept.empty()) {
    auto smallest = std::min_element(kept.begin(), kept.end(), [](const auto* a, const auto* b) {
      return a->episodes_started() != b->episodes_started() ? a->episodes_started() < b->episodes_started()
                                                            : a->key() < b->key();
    });
    small.push_back(*smallest);
    kept.erase(smallest);
  }
  for (auto* group : small) {
    const std::string key = group->key();
    group->Clear();
    group->set_key(key);
    group->set_suppressed(true);
  }
  for (auto* group : kept) {
    for (auto* distribution : Distributions(*group)) Withhold(distribution, min_size);
    for (auto* share : Shares(*group)) Withhold(share, min_size);
  }
}

namespace {
std::string Number(double value) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.10g", value);
  return text;
}

std::string Cell(const std::string& text) {
  std::string value = text;
  if (!value.empty() && (value[0] == '=' || value[0] == '+' || value[0] == '-' || value[0] == '@' ||
                         value[0] == '\t' || value[0] == '\r')) {
    value = "'" + value;
  }
  if (value.find_first_of(",\"\r\n'") == std::string::npos) return value;
  std::string quoted = "\"";
  for (const char c : value) {
    if (c == '"') quoted += '"';
    quoted += c;
  }
  return quoted + "\"";
}

std::string Maybe(bool has, double value) { return has ? Number(value) : ""; }
}  // namespace

std::string OutcomeReportCsv(const pb::GetOutcomeReportResponse& report) {
  static const char* kDistributions[] = {"baseline_pain", "latest_pain", "baseline_odi", "latest_odi",
                                         "baseline_rmdq", "latest_rmdq", "adherence_percent", "weeks_to_end"};
  static const char* kShares[] = {"pain_meaningful_change", "disability_meaningful_change", "on_track"};
  std::string csv = "group,suppressed,episodes_started,episodes_completed,episodes_discharged,episodes_referred,"
                    "episodes_with_red_flags,episodes_goals_met,episodes_self_managing,episodes_did_not_attend,"
                    "episodes_relapsed";
  for (const char* name : kDistributions) {
    for (const char* part : {"_n", "_median", "_q1", "_q3"}) csv += std::string(",") + name + part;
  }
  for (const char* name : kShares) {
    for (const char* part : {"_count", "_of", "_percent"}) csv += std::string(",") + name + part;
  }
  csv += "\r\n";
  for (const auto& source : report.groups()) {
    pb::OutcomeReportGroup group = source;
    csv += Cell(group.key()) + (group.suppressed() ? ",true" : ",false");
    auto count = [&](bool has, int value) { csv += "," + (has ? std::to_string(value) : std::string()); };
    count(group.has_episodes_started(), group.episodes_started());
    count(group.has_episodes_completed(), group.episodes_completed());
    count(group.has_episodes_discharged(), group.episodes_discharged());
    count(group.has_episodes_referred(), group.episodes_referred());
    count(group.has_episodes_with_red_flags(), group.episodes_with_red_flags());
    count(group.has_episodes_goals_met(), group.episodes_goals_met());
    count(group.has_episodes_self_managing(), group.episodes_self_managing());
    count(group.has_episodes_did_not_attend(), group.episodes_did_not_attend());
    count(group.has_episodes_relapsed(), group.episodes_relapsed());
    for (auto* d : Distributions(group)) {
      csv += "," + (group.suppressed() ? std::string() : std::to_string(d->count()));
      csv += "," + Maybe(d->has_median(), d->median());
      csv += "," + Maybe(d->has_q1(), d->q1());
      csv += "," + Maybe(d->has_q3(), d->q3());
    }
    for (auto* s : Shares(group)) {
      csv += "," + (s->has_count() ? std::to_string(s->count()) : std::string());
      csv += "," + (group.suppressed() ? std::string() : std::to_string(s->of()));
      csv += "," + Maybe(s->has_percent(), s->percent());
    }
    csv += "\r\n";
  }
  return csv;
}

std::chrono::seconds PlanningChangeWindow::For(Clock::time_point now, bool whole) const {
  if (whole || !since_) return full_;
  const auto back = std::chrono::ceil<std::chrono::seconds>(now - *since_) + margin_;
  return std::min(back, full_);
}

}  // namespace physio::progress
