// The progress summary built from parsed records (summary.h), without I/O.
#include <gtest/gtest.h>

#include "summary.h"

namespace physio::progress {
namespace {

namespace cpb = physio::common::v1;
constexpr std::int64_t kDay = 24 * 3600;
constexpr std::int64_t kStart = 1'780'000'000;  // a fixed instant: the summary takes `now` as given

v1::Visit VisitAt(std::int64_t seconds, int pain_before) {
  v1::Visit visit;
  visit.mutable_visit_time()->set_seconds(seconds);
  visit.set_pain_before(pain_before);
  return visit;
}

v1::OutcomeMeasure PainMeasureAt(std::int64_t seconds, int pain) {
  v1::OutcomeMeasure measure;
  measure.mutable_measure_time()->set_seconds(seconds);
  measure.mutable_score()->set_instrument(cpb::INSTRUMENT_NPRS);
  measure.mutable_score()->set_score(pain);
  return measure;
}

v1::HomeExerciseLog LogAt(std::int64_t seconds, int pain_after) {
  v1::HomeExerciseLog log;
  log.mutable_performed_time()->set_seconds(seconds);
  log.set_pain_after(pain_after);
  return log;
}

TEST(Summary, WithoutAPlanItCountsTheRecordsAndTracesPainInTimeOrder) {
  PatientRecords records;
  records.visits = {VisitAt(kStart, 6)};
  records.home_logs = {LogAt(kStart + 2 * kDay, 5)};
  records.measures = {PainMeasureAt(kStart + kDay, 4)};
  records.open_alerts.emplace_back().set_alert_id("alert-1");
  const auto snapshot = Summarize("pt-1", std::nullopt, records, kStart + 3 * kDay, EvaluationPolicy{});
  const auto& summary = snapshot.summary;
  EXPECT_EQ(summary.patient_id(), "pt-1");
  EXPECT_FALSE(summary.has_active_plan());
  EXPECT_EQ(summary.visit_count(), 1);
  EXPECT_EQ(summary.home_log_count(), 1);
  ASSERT_EQ(summary.pain_trend_size(), 3);
  EXPECT_EQ(summary.pain_trend(0).source(), "visit");
  EXPECT_EQ(summary.pain_trend(1).source(), "remeasure");
  EXPECT_EQ(summary.pain_trend(2).source(), "home_log");
  EXPECT_EQ(summary.latest_pain(), 4);  // usual pain: the re-measure, not the later pain after exercise
  ASSERT_EQ(summary.open_alerts_size(), 1);
  EXPECT_EQ(summary.open_alerts(0).alert_id(), "alert-1");
}

TEST(Summary, AgainstAPlanPainStartsFromItsBaselineAndWeeksCountFromItsStart) {
  planning::v1::Plan plan;
  plan.set_plan_id("plan-1");
  plan.mutable_create_time()->set_seconds(kStart);
  plan.mutable_activate_time()->set_seconds(kStart);
  auto* baseline = plan.add_baseline_scores();
  baseline->set_instrument(cpb::INSTRUMENT_NPRS);
  baseline->set_score(8);
  PatientRecords records;
  records.measures = {PainMeasureAt(kStart + 14 * kDay, 3)};
  const auto snapshot = Summarize("pt-1", plan, records, kStart + 15 * kDay, EvaluationPolicy{});
  const auto& summary = snapshot.summary;
  EXPECT_EQ(summary.active_plan().plan_id(), "plan-1");
  EXPECT_EQ(summary.baseline_pain(), 8);
  EXPECT_EQ(summary.latest_pain(), 3);
  EXPECT_EQ(summary.weeks_since_start(), 2);
  EXPECT_EQ(snapshot.evaluation.latest_nprs, 3);
  EXPECT_EQ(snapshot.evaluation.plan_start_seconds, kStart);
}

// Issue 26 item 7: after a relapse with a new plan (baseline ODI 44), an ODI 20 from the
// earlier plan is not this episode's latest: no "improved by 24 points".
TEST(Summary, OutcomeChangesCompareMeasuresOfTheCurrentEpisodeOnly) {
  planning::v1::Plan plan;
  plan.set_plan_id("plan-2");
  plan.mutable_create_time()->set_seconds(kStart);
  plan.mutable_activate_time()->set_seconds(kStart);
  auto* odi = plan.add_baseline_scores();
  odi->set_instrument(cpb::INSTRUMENT_ODI);
  odi->set_score(44);
  auto* nprs = plan.add_baseline_scores();
  nprs->set_instrument(cpb::INSTRUMENT_NPRS);
  nprs->set_score(7);
  v1::OutcomeMeasure old_odi;
  old_odi.mutable_measure_time()->set_seconds(kStart - 30 * kDay);
  old_odi.mutable_score()->set_instrument(cpb::INSTRUMENT_ODI);
  old_odi.mutable_score()->set_score(20);
  PatientRecords records;
  records.measures = {old_odi, PainMeasureAt(kStart - 2 * kDay, 2)};
  records.visits = {VisitAt(kStart - kDay, 2)};
  auto snapshot = Summarize("pt-1", plan, records, kStart + 3 * kDay, EvaluationPolicy{});
  EXPECT_EQ(snapshot.summary.outcome_changes_size(), 0) << snapshot.summary.DebugString();
  EXPECT_EQ(snapshot.summary.pain_trend_size(), 1);  // the baseline only
  // This episode's own re-measure is compared.
  v1::OutcomeMeasure new_odi = old_odi;
  new_odi.mutable_measure_time()->set_seconds(kStart + 2 * kDay);
  new_odi.mutable_score()->set_score(40);
  records.measures.push_back(new_odi);
  snapshot = Summarize("pt-1", plan, records, kStart + 3 * kDay, EvaluationPolicy{});
  ASSERT_EQ(snapshot.summary.outcome_changes_size(), 1);
  EXPECT_EQ(snapshot.summary.outcome_changes(0).baseline(), 44);
  EXPECT_EQ(snapshot.summary.outcome_changes(0).latest(), 40);
  EXPECT_FALSE(snapshot.summary.outcome_changes(0).improved_meaningfully());
}


// Work participation (issue 32 part 3): the assessment's status, then each visit's, in time order.
TEST(Summary, WorkIsTrackedFromTheAssessmentThroughTheVisits) {
  namespace apb = physio::assessment::v1;
  planning::v1::Plan plan;
  plan.set_plan_id("plan-1");
  plan.mutable_create_time()->set_seconds(kStart);
  plan.mutable_activate_time()->set_seconds(kStart);
  plan.set_work_status_at_assessment("WORK_STATUS_OFF_WORK");
  plan.set_usual_work_hours(37);
  PatientRecords records;
  auto now = Summarize("pt-1", plan, records, kStart + kDay, EvaluationPolicy{});
  ASSERT_TRUE(now.summary.has_work());
  EXPECT_EQ(now.summary.work().at_assessment(), apb::WORK_STATUS_OFF_WORK);
  EXPECT_EQ(now.summary.work().latest(), apb::WORK_STATUS_OFF_WORK);
  EXPECT_FALSE(now.summary.work().returned_to_usual_work());

  v1::Visit modified = VisitAt(kStart + 14 * kDay, 4);
  modified.mutable_work()->set_status(apb::WORK_STATUS_MODIFIED_DUTIES);
  modified.mutable_work()->set_current_hours_per_week(18);
  records.visits = {modified};
  now = Summarize("pt-1", plan, records, kStart + 15 * kDay, EvaluationPolicy{});
  EXPECT_EQ(now.summary.work().latest(), apb::WORK_STATUS_MODIFIED_DUTIES);
  EXPECT_EQ(now.summary.work().latest_hours_per_week(), 18);
  EXPECT_EQ(now.summary.work().latest_time().seconds(), kStart + 14 * kDay);
  EXPECT_FALSE(now.summary.work().returned_to_usual_work()) << "18 of 37 hours";

  v1::Visit full = VisitAt(kStart + 35 * kDay, 2);
  full.mutable_work()->set_status(apb::WORK_STATUS_MODIFIED_DUTIES);
  full.mutable_work()->set_current_hours_per_week(37);
  v1::Visit unasked = VisitAt(kStart + 40 * kDay, 2);  // a visit that did not ask about work
  records.visits = {modified, full, unasked};
  now = Summarize("pt-1", plan, records, kStart + 41 * kDay, EvaluationPolicy{});
  EXPECT_EQ(now.summary.work().latest_time().seconds(), kStart + 35 * kDay);
  EXPECT_TRUE(now.summary.work().returned_to_usual_work()) << "back to the usual hours";

  // Nothing recorded anywhere: no work section.
  plan.clear_work_status_at_assessment();
  records.visits = {unasked};
  EXPECT_FALSE(Summarize("pt-1", plan, records, kStart + 41 * kDay, EvaluationPolicy{}).summary.has_work());
}
}  // namespace
}  // namespace physio::progress
