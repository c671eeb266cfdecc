// Outcome reports' pure parts (issue 31): what an episode contributes, small-group suppression
// (primary and complementary), figure-level withholding and the CSV form.
#include <gtest/gtest.h>

#include "outcome_report.h"

namespace physio::progress {
namespace {

namespace pb = physio::progress::v1;
namespace cpb = physio::common::v1;

pb::OutcomeReportGroup Group(const std::string& key, int episodes, int with_pain = -1) {
  pb::OutcomeReportGroup group;
  group.set_key(key);
  group.set_episodes_started(episodes);
  group.set_episodes_completed(1);
  auto* pain = group.mutable_latest_pain();
  pain->set_count(with_pain < 0 ? episodes : with_pain);
  pain->set_q1(2);
  pain->set_median(3);
  pain->set_q3(4);
  auto* share = group.mutable_on_track();
  share->set_of(with_pain < 0 ? episodes : with_pain);
  share->set_count(1);
  share->set_percent(10);
  return group;
}

google::protobuf::RepeatedPtrField<pb::OutcomeReportGroup> Groups(std::vector<pb::OutcomeReportGroup> list) {
  google::protobuf::RepeatedPtrField<pb::OutcomeReportGroup> groups;
  for (auto& group : list) *groups.Add() = std::move(group);
  return groups;
}

TEST(OutcomeReport, AGroupBelowTheMinimumIsSuppressedWithEveryFigure) {
  auto groups = Groups({Group("a", 9), Group("b", 4), Group("c", 7)});
  SuppressSmallGroups(&groups, 5);
  EXPECT_FALSE(groups[0].suppressed());
  EXPECT_TRUE(groups[1].suppressed());
  EXPECT_EQ(groups[1].key(), "b");
  EXPECT_FALSE(groups[1].has_episodes_started());
  EXPECT_FALSE(groups[1].has_episodes_completed());
  EXPECT_FALSE(groups[1].has_latest_pain());
  // One suppressed group of three: the smallest other one (c, 7) goes too, so b cannot be
  // worked out as the total less a and c.
  EXPECT_TRUE(groups[2].suppressed());
  EXPECT_EQ(groups[0].episodes_started(), 9);
  EXPECT_EQ(groups[0].latest_pain().median(), 3);
}

TEST(OutcomeReport, TwoSuppressedGroupsNeedNoComplement) {
  auto groups = Groups({Group("a", 9), Group("b", 4), Group("c", 1), Group("d", 5)});
  SuppressSmallGroups(&groups, 5);
  EXPECT_FALSE(groups[0].suppressed());
  EXPECT_TRUE(groups[1].suppressed());
  EXPECT_TRUE(groups[2].suppressed());
  EXPECT_FALSE(groups[3].suppressed()) << "exactly the minimum is reported";
}

TEST(OutcomeReport, ASingleSmallGroupIsSuppressedAlone) {
  auto groups = Groups({Group("all", 4)});
  SuppressSmallGroups(&groups, 5);
  EXPECT_TRUE(groups[0].suppressed());
}

TEST(OutcomeReport, FiguresFromFewerEpisodesThanTheMinimumAreWithheld) {
  auto groups = Groups({Group("a", 12, 3), Group("b", 12, 5)});
  SuppressSmallGroups(&groups, 5);
  ASSERT_FALSE(groups[0].suppressed());
  EXPECT_EQ(groups[0].latest_pain().count(), 3);
  EXPECT_FALSE(groups[0].latest_pain().has_median());
  EXPECT_FALSE(groups[0].latest_pain().has_q1());
  EXPECT_FALSE(groups[0].on_track().has_count());
  EXPECT_FALSE(groups[0].on_track().has_percent());
  EXPECT_EQ(groups[0].on_track().of(), 3);
  EXPECT_TRUE(groups[1].latest_pain().has_median());
  EXPECT_TRUE(groups[1].on_track().has_percent());
}

TEST(OutcomeReport, TheMinimumIsConfigurable) {
  auto groups = Groups({Group("a", 3), Group("b", 2)});
  SuppressSmallGroups(&groups, 2);
  EXPECT_FALSE(groups[0].suppressed());
  EXPECT_FALSE(groups[1].suppressed());
}

TEST(OutcomeReport, CsvHasAHeaderAndARowPerGroupWithWithheldCellsEmpty) {
  pb::GetOutcomeReportResponse report;
  *report.add_groups() = Group("north", 6);
  *report.add_groups() = Group("=HYPERLINK(\"x\")", 2);
  SuppressSmallGroups(report.mutable_groups(), 5);
  const std::string csv = OutcomeReportCsv(report);
  std::vector<std::string> lines;
  for (size_t at = 0; at < csv.size();) {
    const size_t end = csv.find("\r\n", at);
    ASSERT_NE(end, std::string::npos) << "every line ends with CRLF";
    lines.push_back(csv.substr(at, end - at));
    at = end + 2;
  }
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0].rfind("group,suppressed,episodes_started,episodes_completed,", 0), 0u) << lines[0];
  const auto columns = std::count(lines[0].begin(), lines[0].end(), ',');
  EXPECT_EQ(std::count(lines[1].begin(), lines[1].end(), ','), columns);
  EXPECT_EQ(lines[1].rfind("north,true,,,", 0), 0u) << "suppressed as the complement of the other: " << lines[1];
  // A key a spreadsheet would run as a formula is quoted and starts with a quote mark.
  EXPECT_EQ(lines[2].rfind("\"'=HYPERLINK(\"\"x\"\")\",true,", 0), 0u) << lines[2];
}

TEST(OutcomeReport, CsvCarriesTheFiguresOfAReportedGroup) {
  pb::GetOutcomeReportResponse report;
  *report.add_groups() = Group("north", 6);
  SuppressSmallGroups(report.mutable_groups(), 5);
  const std::string csv = OutcomeReportCsv(report);
  const std::string row = csv.substr(csv.find("\r\n") + 2);
  // key, suppressed, 9 counts (7 not set here: empty), then baseline_pain (n 0, no median or
  // quartiles), latest_pain (n 6, median 3, q1 2, q3 4) ...; on_track last (1 of 6, 10%).
  EXPECT_EQ(row.rfind("north,false,6,1,,,,,,,,0,,,,6,3,2,4,", 0), 0u) << row;
  EXPECT_EQ(row.substr(row.size() - 9), ",1,6,10\r\n") << row;
}

TEST(OutcomeReport, AnEpisodesFiguresComeFromItsSummary) {
  pb::ProgressSummary summary;
  summary.set_latest_pain(3);
  auto* pain = summary.add_outcome_changes();
  pain->set_instrument(cpb::INSTRUMENT_NPRS);
  pain->set_improved_meaningfully(true);
  auto* odi = summary.add_outcome_changes();
  odi->set_instrument(cpb::INSTRUMENT_ODI);
  odi->set_latest(22);
  odi->set_improved_meaningfully(false);
  auto* rmdq = summary.add_outcome_changes();
  rmdq->set_instrument(cpb::INSTRUMENT_RMDQ);
  rmdq->set_latest(4);
  rmdq->set_improved_meaningfully(true);
  summary.mutable_expected_course()->set_status(pb::COURSE_STATUS_SLOWER_THAN_EXPECTED);
  EpisodeFigures figures = FiguresOf(summary);
  EXPECT_EQ(figures.latest_pain, 3);
  EXPECT_TRUE(figures.pain_judged && figures.pain_improved);
  EXPECT_EQ(figures.latest_odi, 22);
  EXPECT_EQ(figures.latest_rmdq, 4);
  EXPECT_TRUE(figures.disability_judged);
  EXPECT_TRUE(figures.disability_improved) << "either disability measure's meaningful change counts";
  EXPECT_FALSE(figures.adherence_percent) << "nothing prescribed yet";
  EXPECT_EQ(figures.course_status, "SLOWER_THAN_EXPECTED");
  auto* week = summary.add_adherence();
  week->set_prescribed_sessions(7);
  summary.set_adherence_percent(57.1);
  EXPECT_EQ(FiguresOf(summary).adherence_percent, 57.1);
}

// The refresher's look-back for plan changes: short while it keeps up, never short of what a pass
// that did not catch up left behind, and the whole hour on the first pass and on the periodic ones.
TEST(PlanningChangeWindow, LooksBackToTheLastPassThatCaughtUpWithAMarginAndTheWholeHourOnPeriodicPasses) {
  using std::chrono::seconds;
  PlanningChangeWindow window(seconds(3600), seconds(30));
  const Clock::time_point t0{};
  EXPECT_EQ(window.For(t0, false), seconds(3600));  // the first pass: nothing caught up yet
  window.CaughtUp(t0);
  EXPECT_EQ(window.For(t0 + std::chrono::milliseconds(1200), false), seconds(32));  // 1.2 s, rounded up, + 30
  // That pass did not catch up (it failed, or left a full batch): the next still looks back to t0.
  EXPECT_EQ(window.For(t0 + seconds(5), false), seconds(35));
  window.CaughtUp(t0 + seconds(5));
  EXPECT_EQ(window.For(t0 + seconds(6), false), seconds(31));
  EXPECT_EQ(window.For(t0 + seconds(7), true), seconds(3600));  // a periodic pass: the whole hour
  // An outage longer than the hour: never more than the hour.
  EXPECT_EQ(window.For(t0 + seconds(9000), false), seconds(3600));
}

TEST(PlanningChangeWindow, WithoutAPassThatCaughtUpEveryPassLooksBackTheWholeHour) {
  using std::chrono::seconds;
  PlanningChangeWindow window(seconds(3600), seconds(30));
  for (int pass = 0; pass < 5; ++pass) EXPECT_EQ(window.For(Clock::time_point{} + seconds(pass), false), seconds(3600));
}

}  // namespace
}  // namespace physio::progress
