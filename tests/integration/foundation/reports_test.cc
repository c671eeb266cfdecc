// Outcome reports (issue 31, part 1) through the public API: a constructed cohort at three
// clinics, its figures computed by hand, small groups suppressed, and every caller scoped to
// their clinics (an analyst sees aggregates and no patient record).
#include "foundation.h"

namespace physio::testing {
namespace {

class Reports : public Foundation {
 protected:
  Caller StaffAt(const std::vector<std::string>& clinics, const std::string& role, const std::string& subject) const {
    TokenRequest request{kIssuer, kAudience, tenant_, subject, {role}};
    request.clinics = clinics;
    return Caller(*cluster_, MintToken(keys_->private_key_pem, request));
  }

  grpc::Status Report(const Caller& caller, gpb::ReportGrouping group_by, gpb::GetOutcomeReportResponse* report,
                      const std::vector<std::string>& clinics = {}, bool csv = false) const {
    gpb::GetOutcomeReportRequest request;
    const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                         std::chrono::system_clock::now().time_since_epoch()).count();
    request.mutable_start_time()->set_seconds(now - 365 * 24 * 3600);
    request.mutable_end_time()->set_seconds(now + 24 * 3600);
    request.set_group_by(group_by);
    for (const auto& clinic : clinics) request.add_clinic_ids(clinic);
    request.set_include_csv(csv);
    return caller.Call(caller.progress.get(), &gpb::ProgressService::Stub::GetOutcomeReport, request, report);
  }

  // One episode: an approved plan (baseline pain 6, Oswestry 40%) effective `weeks_ago`, at the
  // clinician's clinic; a visit with `pain` (and a red flag when asked); optionally an Oswestry
  // re-measure of 20% and an end (completed or discharged).
  void Episode(const Caller& clinician, int weeks_ago, int pain, bool odi_remeasure,
               ppb::PlanStatus end = ppb::PLAN_STATUS_UNSPECIFIED, bool red_flag = false,
               ppb::DischargeReason reason = ppb::DISCHARGE_REASON_UNSPECIFIED) {
    const std::string patient = "pt-" + NewId("x").substr(2, 10);
    const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                         std::chrono::system_clock::now().time_since_epoch()).count();
    const ppb::Plan plan = ApprovedPlanFor(clinician, patient, now - int64_t{weeks_ago} * 7 * 24 * 3600);
    ASSERT_EQ(plan.status(), ppb::PLAN_STATUS_ACTIVE);
    gpb::RecordVisitRequest visit;
    visit.set_request_id(NewId("rq"));
    visit.set_patient_id(patient);
    visit.set_kind(gpb::VISIT_KIND_CLINIC);
    visit.set_pain_before(pain);
    if (red_flag) visit.mutable_red_flag_screen()->set_saddle_numbness(true);
    gpb::RecordVisitResponse visited;
    auto status = clinician.Call(clinician.progress.get(), &gpb::ProgressService::Stub::RecordVisit, visit, &visited);
    ASSERT_TRUE(status.ok()) << status.error_message();
    if (odi_remeasure) {
      gpb::RecordOutcomeResponse recorded;
      status = RecordOdiFor(clinician, patient, 1, &recorded);
      ASSERT_TRUE(status.ok()) << status.error_message();
      ASSERT_EQ(recorded.measure().score().score(), 20);
    }
    if (end != ppb::PLAN_STATUS_UNSPECIFIED) {
      const ppb::Plan current = PlanInUseOrSuspended(clinician, patient);
      ppb::CompletePlanRequest complete;
      complete.set_request_id(NewId("rq"));
      complete.set_plan_id(current.plan_id());
      complete.set_etag(current.etag());
      complete.set_outcome(end);
      complete.set_reason("programme finished");
      complete.set_discharge_reason(reason);
      ppb::CompletePlanResponse completed;
      status = clinician.Call(clinician.planning.get(), &ppb::PlanningService::Stub::CompletePlan, complete, &completed);
      ASSERT_TRUE(status.ok()) << status.error_message();
    }
    patients_.push_back(patient);
  }

  // Waits for the refresher to have computed every episode's figures: the tenant-wide report
  // counts `with_pain` episodes with a latest pain and `ended` with weeks to their end.
  gpb::OutcomeReportGroup Settled(const Caller& caller, int with_pain, int ended) const {
    gpb::GetOutcomeReportResponse report;
    for (int attempt = 0; attempt < 150; ++attempt) {
      report.Clear();
      auto status = Report(caller, gpb::REPORT_GROUPING_NONE, &report);
      EXPECT_TRUE(status.ok()) << status.error_message();
      if (report.groups_size() == 1 && report.groups(0).latest_pain().count() == with_pain &&
          report.groups(0).weeks_to_end().count() == ended) {
        return report.groups(0);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    ADD_FAILURE() << "the figures did not settle: " << report.ShortDebugString();
    return {};
  }

  std::vector<std::string> patients_;
};

TEST_F(Reports, ACohortsFiguresAreTheOnesComputedByHandAndSmallGroupsAreSuppressed) {
  const Caller north = StaffAt({"north"}, "clinician", "clin-north");
  const Caller east = StaffAt({"east"}, "clinician", "clin-east");
  const Caller south = StaffAt({"south"}, "clinician", "clin-south");
  // North, six episodes: latest pain 2..7 (baseline 6 each); five with an Oswestry re-measure
  // of 20% (baseline 40%); four completed and one discharged after 2..6 weeks; one red flag.
  Episode(north, 2, 2, true, ppb::PLAN_STATUS_COMPLETED, false, ppb::DISCHARGE_REASON_GOALS_MET);
  Episode(north, 3, 3, true, ppb::PLAN_STATUS_COMPLETED, false, ppb::DISCHARGE_REASON_GOALS_MET);
  Episode(north, 4, 4, true, ppb::PLAN_STATUS_COMPLETED, false, ppb::DISCHARGE_REASON_SELF_MANAGING);
  Episode(north, 5, 5, true, ppb::PLAN_STATUS_COMPLETED);
  Episode(north, 6, 6, true, ppb::PLAN_STATUS_DISCHARGED, false, ppb::DISCHARGE_REASON_DID_NOT_ATTEND);
  Episode(north, 8, 7, false, ppb::PLAN_STATUS_UNSPECIFIED, /*red_flag=*/true);
  // East, five episodes in progress; south, three.
  for (int i = 0; i < 5; ++i) Episode(east, 1, 5, false);
  for (int i = 0; i < 3; ++i) Episode(south, 1, 4, false);
  ASSERT_FALSE(HasFatalFailure());

  const Caller analyst = StaffAt({}, "analyst", "analyst-1");  // no clinics claim: the whole tenant
  const gpb::OutcomeReportGroup all = Settled(analyst, 14, 5);
  EXPECT_EQ(all.key(), "all");
  EXPECT_EQ(all.episodes_started(), 14);

  // The north clinician's own clinic, every figure by hand.
  gpb::GetOutcomeReportResponse report;
  ASSERT_TRUE(Report(north, gpb::REPORT_GROUPING_NONE, &report).ok());
  ASSERT_EQ(report.groups_size(), 1);
  const auto& n = report.groups(0);
  EXPECT_FALSE(n.suppressed());
  EXPECT_EQ(n.episodes_started(), 6);
  EXPECT_EQ(n.episodes_completed(), 4);
  EXPECT_EQ(n.episodes_discharged(), 1);
  EXPECT_EQ(n.episodes_referred(), 0);
  EXPECT_EQ(n.episodes_with_red_flags(), 1) << "the saddle-numbness visit";
  EXPECT_EQ(n.episodes_goals_met(), 2);
  EXPECT_EQ(n.episodes_self_managing(), 1);
  EXPECT_EQ(n.episodes_did_not_attend(), 1);
  EXPECT_EQ(n.episodes_relapsed(), 0);
  EXPECT_EQ(n.baseline_pain().count(), 6);
  EXPECT_EQ(n.baseline_pain().median(), 6);
  // Latest pain 2, 3, 4, 5, 6, 7: median 4.5, quartiles 3.25 and 5.75 (linear interpolation).
  EXPECT_EQ(n.latest_pain().count(), 6);
  EXPECT_DOUBLE_EQ(n.latest_pain().median(), 4.5);
  EXPECT_DOUBLE_EQ(n.latest_pain().q1(), 3.25);
  EXPECT_DOUBLE_EQ(n.latest_pain().q3(), 5.75);
  EXPECT_EQ(n.baseline_odi().count(), 6);
  EXPECT_DOUBLE_EQ(n.baseline_odi().median(), 40);
  EXPECT_EQ(n.latest_odi().count(), 5);
  EXPECT_DOUBLE_EQ(n.latest_odi().median(), 20);
  EXPECT_EQ(n.baseline_rmdq().count(), 0);
  EXPECT_FALSE(n.baseline_rmdq().has_median());
  // Pain improved by 2 points or more (6 -> 2, 3, 4): 3 of 6. Oswestry 40 -> 20: 5 of 5.
  EXPECT_EQ(n.pain_meaningful_change().of(), 6);
  EXPECT_EQ(n.pain_meaningful_change().count(), 3);
  EXPECT_DOUBLE_EQ(n.pain_meaningful_change().percent(), 50);
  EXPECT_EQ(n.disability_meaningful_change().of(), 5);
  EXPECT_EQ(n.disability_meaningful_change().count(), 5);
  EXPECT_DOUBLE_EQ(n.disability_meaningful_change().percent(), 100);
  // Nothing logged at home: adherence 0 in every episode.
  EXPECT_EQ(n.adherence_percent().count(), 6);
  EXPECT_DOUBLE_EQ(n.adherence_percent().median(), 0);
  // Ended after 2, 3, 4, 5 and 6 weeks: median 4, quartiles 3 and 5.
  EXPECT_EQ(n.weeks_to_end().count(), 5);
  EXPECT_NEAR(n.weeks_to_end().median(), 4, 0.01);
  EXPECT_NEAR(n.weeks_to_end().q1(), 3, 0.01);
  EXPECT_NEAR(n.weeks_to_end().q3(), 5, 0.01);
  EXPECT_LE(n.on_track().of(), 6);

  // By clinic, as the analyst: south (3) is below 5 and suppressed, and east (5) with it, so south
  // cannot be worked out from the total; north is reported.
  ASSERT_TRUE(Report(analyst, gpb::REPORT_GROUPING_CLINIC, &report, {}, true).ok());
  ASSERT_EQ(report.groups_size(), 3);
  EXPECT_EQ(report.min_group_size(), 5);
  EXPECT_EQ(report.groups(0).key(), "east");
  EXPECT_TRUE(report.groups(0).suppressed());
  EXPECT_FALSE(report.groups(0).has_episodes_started());
  EXPECT_EQ(report.groups(1).key(), "north");
  EXPECT_FALSE(report.groups(1).suppressed());
  EXPECT_EQ(report.groups(1).episodes_started(), 6);
  EXPECT_EQ(report.groups(2).key(), "south");
  EXPECT_TRUE(report.groups(2).suppressed());
  EXPECT_FALSE(report.groups(2).latest_pain().has_median());
  EXPECT_NE(report.csv().find("\r\nnorth,false,6,4,1,0,1,2,1,1,0,6,6,6,6,6,4.5,3.25,5.75,"), std::string::npos) << report.csv();
  EXPECT_NE(report.csv().find("\r\nsouth,true,,,,,,"), std::string::npos) << report.csv();

  // By practitioner and by quarter: the same suppression by size.
  ASSERT_TRUE(Report(analyst, gpb::REPORT_GROUPING_PRACTITIONER, &report).ok());
  ASSERT_EQ(report.groups_size(), 3);
  EXPECT_EQ(report.groups(0).key(), "clin-east");
  EXPECT_EQ(report.groups(1).key(), "clin-north");
  EXPECT_EQ(report.groups(1).episodes_started(), 6);
  ASSERT_TRUE(Report(analyst, gpb::REPORT_GROUPING_PHASE, &report).ok());
  int phases = 0;
  for (const auto& group : report.groups()) phases += group.suppressed() ? 0 : group.episodes_started();
  EXPECT_LE(phases, 14);
}

TEST_F(Reports, EveryCallerSeesOnlyTheirClinicsAndAnAnalystNoPatientRecord) {
  const Caller north = StaffAt({"north"}, "clinician", "clin-north");
  const Caller south = StaffAt({"south"}, "clinician", "clin-south");
  for (int i = 0; i < 5; ++i) Episode(north, 1, 3, false);
  for (int i = 0; i < 5; ++i) Episode(south, 1, 3, false);
  ASSERT_FALSE(HasFatalFailure());
  const Caller analyst = StaffAt({}, "analyst", "analyst-1");
  Settled(analyst, 10, 0);

  // A clinician of north: north's figures only, whatever the grouping; south's refused.
  gpb::GetOutcomeReportResponse report;
  ASSERT_TRUE(Report(north, gpb::REPORT_GROUPING_CLINIC, &report).ok());
  ASSERT_EQ(report.groups_size(), 1);
  EXPECT_EQ(report.groups(0).key(), "north");
  EXPECT_EQ(report.groups(0).episodes_started(), 5);
  ASSERT_EQ(report.clinic_ids_size(), 1);
  EXPECT_EQ(report.clinic_ids(0), "north");
  auto status = Report(north, gpb::REPORT_GROUPING_NONE, &report, {"south"});
  EXPECT_EQ(status.error_code(), StatusCode::PERMISSION_DENIED);
  EXPECT_NE(status.error_message().find("clinic_ids"), std::string::npos) << status.error_message();
  status = Report(north, gpb::REPORT_GROUPING_NONE, &report, {"north", "south"});
  EXPECT_EQ(status.error_code(), StatusCode::PERMISSION_DENIED);

  // An analyst of south: south's aggregates, and never a patient's record.
  const Caller south_analyst = StaffAt({"south"}, "analyst", "analyst-south");
  ASSERT_TRUE(Report(south_analyst, gpb::REPORT_GROUPING_NONE, &report).ok());
  ASSERT_EQ(report.groups_size(), 1);
  EXPECT_EQ(report.groups(0).episodes_started(), 5);
  gpb::GetProgressSummaryRequest summary;
  summary.set_patient_id(patients_.back());
  gpb::GetProgressSummaryResponse summarized;
  EXPECT_EQ(south_analyst.Call(south_analyst.progress.get(), &gpb::ProgressService::Stub::GetProgressSummary, summary,
                               &summarized)
                .error_code(),
            StatusCode::PERMISSION_DENIED);
  apb::ListAssessmentsRequest list;
  list.set_patient_id(patients_.back());
  apb::ListAssessmentsResponse listed;
  EXPECT_EQ(south_analyst.Call(south_analyst.assessment.get(), &apb::AssessmentService::Stub::ListAssessments, list,
                               &listed)
                .error_code(),
            StatusCode::PERMISSION_DENIED);
  // A patient may not ask for reports at all; another tenant's analyst sees nothing of these.
  EXPECT_EQ(Report(Patient(patients_.back()), gpb::REPORT_GROUPING_NONE, &report).error_code(),
            StatusCode::PERMISSION_DENIED);
  TokenRequest other{kIssuer, kAudience, "t-other-" + tenant_, "analyst-x", {"analyst"}};
  ASSERT_TRUE(Report(Caller(*cluster_, MintToken(keys_->private_key_pem, other)), gpb::REPORT_GROUPING_NONE, &report).ok());
  EXPECT_EQ(report.groups_size(), 0);
}

// Hundreds of callers at once (a dashboard refreshed across a chain): every one answered, none
// RESOURCE_EXHAUSTED, each with the same figures.
TEST_F(Reports, TwoHundredConcurrentReportsAreAllAnsweredAlike) {
  const Caller north = StaffAt({"north"}, "clinician", "clin-north");
  for (int i = 0; i < 5; ++i) Episode(north, 1, 3, false);
  ASSERT_FALSE(HasFatalFailure());
  const Caller analyst = StaffAt({}, "analyst", "analyst-1");
  const gpb::OutcomeReportGroup settled = Settled(analyst, 5, 0);
  constexpr int kCallers = 200;
  std::vector<grpc::Status> statuses(kCallers);
  std::vector<gpb::GetOutcomeReportResponse> reports(kCallers);
  std::vector<std::thread> callers;
  for (int i = 0; i < kCallers; ++i) {
    callers.emplace_back([&, i] { statuses[i] = Report(analyst, gpb::REPORT_GROUPING_NONE, &reports[i]); });
  }
  for (auto& caller : callers) caller.join();
  std::map<grpc::StatusCode, int> codes;
  for (const auto& status : statuses) ++codes[status.error_code()];
  EXPECT_EQ(codes[grpc::StatusCode::OK], kCallers) << "RESOURCE_EXHAUSTED: " << codes[grpc::StatusCode::RESOURCE_EXHAUSTED]
                                                   << ", UNAVAILABLE: " << codes[grpc::StatusCode::UNAVAILABLE];
  for (int i = 0; i < kCallers; ++i) {
    if (!statuses[i].ok()) continue;
    ASSERT_EQ(reports[i].groups_size(), 1);
    EXPECT_EQ(reports[i].groups(0).episodes_started(), settled.episodes_started());
    EXPECT_EQ(reports[i].groups(0).latest_pain().median(), settled.latest_pain().median());
  }
}

TEST_F(Reports, BadRequestsAreRefusedNamingTheField) {
  const Caller analyst = StaffAt({}, "analyst", "analyst-1");
  gpb::GetOutcomeReportRequest request;
  gpb::GetOutcomeReportResponse report;
  auto call = [&] {
    return analyst.Call(analyst.progress.get(), &gpb::ProgressService::Stub::GetOutcomeReport, request, &report);
  };
  request.set_group_by(gpb::REPORT_GROUPING_CLINIC);
  auto status = call();
  EXPECT_EQ(status.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("start_time"), std::string::npos) << status.error_message();
  request.mutable_start_time()->set_seconds(1'700'000'000);
  request.mutable_end_time()->set_seconds(1'600'000'000);
  status = call();
  EXPECT_EQ(status.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("end_time"), std::string::npos) << status.error_message();
  request.mutable_end_time()->set_seconds(1'700'000'000 + 10LL * 365 * 24 * 3600);
  EXPECT_EQ(call().error_code(), StatusCode::INVALID_ARGUMENT) << "ten years is too long a period";
  request.mutable_end_time()->set_seconds(253402300799LL * 4);
  EXPECT_EQ(call().error_code(), StatusCode::INVALID_ARGUMENT);
  request.mutable_end_time()->set_seconds(1'710'000'000);
  request.set_group_by(gpb::REPORT_GROUPING_UNSPECIFIED);
  status = call();
  EXPECT_EQ(status.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("group_by"), std::string::npos) << status.error_message();
  request.set_group_by(static_cast<gpb::ReportGrouping>(99));
  EXPECT_EQ(call().error_code(), StatusCode::INVALID_ARGUMENT);
  request.set_group_by(gpb::REPORT_GROUPING_QUARTER);
  request.add_clinic_ids("bad clinic'; --");
  status = call();
  EXPECT_EQ(status.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("clinic_ids"), std::string::npos) << status.error_message();
  request.clear_clinic_ids();
  status = call();
  EXPECT_TRUE(status.ok()) << status.error_message();
}

// The episode lifecycle (issue 32 part 4): a discharge with its reason and a summary for the
// patient and the GP; a new plan within the relapse window taking the episode up again.
TEST_F(Reports, ADischargeHasAReasonAndASummaryAndARelapseContinuesTheEpisode) {
  const Caller north = StaffAt({"north"}, "clinician", "clin-north");
  const std::string patient = patient_id_;
  const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch()).count();
  const ppb::Plan first = ApprovedPlanFor(north, patient, now - 6 * 7 * 24 * 3600);
  ASSERT_EQ(first.episode_id(), first.plan_id()) << "the first plan starts the episode";
  EXPECT_FALSE(first.relapse());
  // Two visits (pain 6 -> 3 and 2), one delivering a home exercise; home sessions of it; an Oswestry re-measure.
  std::string exercise;
  for (const auto& item : first.items()) {
    if (item.kind() == ppb::PLAN_ITEM_KIND_EXERCISE && item.home_programme()) {
      exercise = item.item_id();
      break;
    }
  }
  ASSERT_FALSE(exercise.empty());
  for (int pain : {3, 2}) {
    gpb::RecordVisitRequest visit;
    visit.set_request_id(NewId("rq"));
    visit.set_patient_id(patient);
    visit.set_kind(gpb::VISIT_KIND_CLINIC);
    visit.set_pain_before(pain);
    visit.add_delivered_item_ids(exercise);
    gpb::RecordVisitResponse visited;
    ASSERT_TRUE(north.Call(north.progress.get(), &gpb::ProgressService::Stub::RecordVisit, visit, &visited).ok());
  }
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(LogExercise(Patient(), exercise, 2).ok());
  gpb::RecordOutcomeResponse recorded;
  ASSERT_TRUE(RecordOdiFor(north, patient, 1, &recorded).ok());

  // Not yet: the episode is open.
  gpb::GetDischargeSummaryRequest ask;
  ask.set_patient_id(patient);
  gpb::GetDischargeSummaryResponse summary;
  auto status = north.Call(north.progress.get(), &gpb::ProgressService::Stub::GetDischargeSummary, ask, &summary);
  EXPECT_EQ(status.error_code(), StatusCode::FAILED_PRECONDITION) << status.error_message();

  // A reason that does not go with the outcome is refused, naming the field.
  const ppb::Plan current = PlanInUseOrSuspended(north, patient);
  ppb::CompletePlanRequest complete;
  complete.set_request_id(NewId("rq"));
  complete.set_plan_id(current.plan_id());
  complete.set_etag(current.etag());
  complete.set_outcome(ppb::PLAN_STATUS_COMPLETED);
  complete.set_reason("goals met: back at work and walking an hour");
  complete.set_discharge_reason(ppb::DISCHARGE_REASON_DID_NOT_ATTEND);
  ppb::CompletePlanResponse completed;
  status = north.Call(north.planning.get(), &ppb::PlanningService::Stub::CompletePlan, complete, &completed);
  EXPECT_EQ(status.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("discharge_reason"), std::string::npos) << status.error_message();
  complete.set_discharge_reason(ppb::DISCHARGE_REASON_GOALS_MET);
  status = north.Call(north.planning.get(), &ppb::PlanningService::Stub::CompletePlan, complete, &completed);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(completed.plan().discharge_reason(), ppb::DISCHARGE_REASON_GOALS_MET);
  EXPECT_TRUE(completed.plan().has_end_time());

  // The summary, for the clinician and for the patient: the same.
  status = north.Call(north.progress.get(), &gpb::ProgressService::Stub::GetDischargeSummary, ask, &summary);
  ASSERT_TRUE(status.ok()) << status.error_message();
  const auto& s = summary.summary();
  EXPECT_EQ(s.episode_id(), first.plan_id());
  EXPECT_EQ(s.outcome(), ppb::PLAN_STATUS_COMPLETED);
  EXPECT_EQ(s.discharge_reason(), ppb::DISCHARGE_REASON_GOALS_MET);
  EXPECT_EQ(s.weeks(), 6);
  EXPECT_EQ(s.visits(), 2);
  std::map<cpb::Instrument, gpb::DischargeScore> scores;
  for (const auto& score : s.scores()) scores[score.instrument()] = score;
  ASSERT_TRUE(scores.contains(cpb::INSTRUMENT_NPRS));
  EXPECT_EQ(scores[cpb::INSTRUMENT_NPRS].baseline(), 6);
  EXPECT_EQ(scores[cpb::INSTRUMENT_NPRS].at_discharge(), 2.5) << "the last week's mean of 3 and 2";
  EXPECT_TRUE(scores[cpb::INSTRUMENT_NPRS].improved_meaningfully());
  ASSERT_TRUE(scores.contains(cpb::INSTRUMENT_ODI));
  EXPECT_EQ(scores[cpb::INSTRUMENT_ODI].baseline(), 40);
  EXPECT_EQ(scores[cpb::INSTRUMENT_ODI].at_discharge(), 20);
  EXPECT_TRUE(scores[cpb::INSTRUMENT_ODI].improved_meaningfully());
  ASSERT_GE(s.helped_size(), 1);
  EXPECT_EQ(s.helped(0).item_id(), exercise);
  EXPECT_EQ(s.helped(0).home_sessions(), 3);
  EXPECT_EQ(s.helped(0).visits_delivered(), 2);
  EXPECT_NE(s.flare_up_plan().find("flare-up"), std::string::npos) << s.flare_up_plan();
  EXPECT_NE(s.seek_urgent_care_if().find("emergency"), std::string::npos);
  EXPECT_FALSE(s.come_back_if().empty());
  EXPECT_NE(s.text().find("Discharge summary"), std::string::npos);
  EXPECT_NE(s.text().find("the goals of treatment were met"), std::string::npos) << s.text();
  EXPECT_NE(s.text().find("6 at the start, 2.5 at discharge (a meaningful improvement"), std::string::npos) << s.text();
  gpb::GetDischargeSummaryResponse own;
  const Caller patient_caller = Patient();
  ASSERT_TRUE(patient_caller.Call(patient_caller.progress.get(), &gpb::ProgressService::Stub::GetDischargeSummary, ask,
                                  &own).ok());
  EXPECT_EQ(own.summary().text(), s.text());

  // Back within the relapse window (90 days): the same episode, taken up again.
  const ppb::Plan again = ApprovedPlanFor(north, patient);
  EXPECT_TRUE(again.relapse());
  EXPECT_EQ(again.episode_id(), first.plan_id());
  EXPECT_EQ(CountRows("SELECT count(*) FROM planning.episodes WHERE tenant_id = $1"), 1);
  EXPECT_EQ(CountRows("SELECT relapses FROM planning.episodes WHERE tenant_id = $1"), 1);
  EXPECT_EQ(CountRows("SELECT count(*) FROM planning.episodes WHERE tenant_id = $1 AND ended_at IS NULL"), 1);
  status = north.Call(north.progress.get(), &gpb::ProgressService::Stub::GetDischargeSummary, ask, &summary);
  EXPECT_EQ(status.error_code(), StatusCode::FAILED_PRECONDITION) << "open again";
  // The report (minimum group size aside) counts one episode: started once, relapsed once.
  gpb::GetOutcomeReportResponse report;
  ASSERT_TRUE(Report(north, gpb::REPORT_GROUPING_NONE, &report).ok());
  ASSERT_EQ(report.groups_size(), 1);
  EXPECT_TRUE(report.groups(0).suppressed()) << "one episode is below the minimum group size";
}

// Work participation (issue 32 part 3) through the API: a patient off work gets a graded return
// and a return-to-work goal; work is tracked at visits into the summary and the discharge summary.
TEST_F(Reports, APatientOffWorkGetsAGradedReturnAndWorkIsTrackedToDischarge) {
  const Caller north = StaffAt({"north"}, "clinician", "clin-north");
  apb::CreateAssessmentRequest create;
  create.set_request_id(NewId("rq"));
  create.set_patient_id(patient_id_);
  *create.add_answers() = Answer(cpb::INSTRUMENT_NPRS, "nprs", 6);
  for (int i = 1; i <= 10; ++i) *create.add_answers() = Answer(cpb::INSTRUMENT_ODI, "odi." + std::to_string(i), 2);
  create.mutable_red_flag_screen();
  create.mutable_history()->set_occupation_demand(apb::OCCUPATION_DEMAND_HEAVY);
  auto* work = create.mutable_history()->mutable_work();
  work->set_status(apb::WORK_STATUS_WORKING);
  work->set_days_off_work(21);
  apb::CreateAssessmentResponse created;
  auto status = north.Call(north.assessment.get(), &apb::AssessmentService::Stub::CreateAssessment, create, &created);
  EXPECT_EQ(status.error_code(), StatusCode::INVALID_ARGUMENT) << "days off while working";
  EXPECT_NE(status.error_message().find("history.work.days_off_work"), std::string::npos) << status.error_message();
  work->set_status(apb::WORK_STATUS_OFF_WORK);
  work->set_usual_hours_per_week(40);
  work->set_fit_note(true);
  work->set_planned_return_in_days(14);
  work->add_obstacles("heavy_lifting");
  create.set_request_id(NewId("rq"));
  status = north.Call(north.assessment.get(), &apb::AssessmentService::Stub::CreateAssessment, create, &created);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ppb::Plan draft, plan;
  ASSERT_TRUE(Generate(north, created.assessment().assessment_id(), &draft).ok());
  ppb::ApprovePlanRequest approve;
  approve.set_request_id(NewId("rq"));
  approve.set_plan_id(draft.plan_id());
  approve.set_etag(draft.etag());
  ppb::ApprovePlanResponse approved;
  ASSERT_TRUE(north.Call(north.planning.get(), &ppb::PlanningService::Stub::ApprovePlan, approve, &approved).ok());
  plan = approved.plan();
  EXPECT_EQ(plan.work_status_at_assessment(), "WORK_STATUS_OFF_WORK");
  bool graded = false, generic = false;
  for (const auto& item : plan.items()) {
    graded |= item.item_id() == "work.graded_return";
    generic |= item.item_id() == "life.return_to_work";
    if (item.item_id() == "work.graded_return") {
      EXPECT_NE(item.instructions().find("from week 7 your usual hours (about 40 hours a week)"), std::string::npos)
          << item.instructions();
      EXPECT_NE(item.instructions().find("heavy lifting"), std::string::npos);
    }
  }
  EXPECT_TRUE(graded);
  EXPECT_FALSE(generic) << "the graded return replaces the general advice";
  bool goal = false;
  for (const auto& g : plan.goals()) goal |= g.measure() == "work_hours_per_week" && g.target_score() == 40;
  EXPECT_TRUE(goal);

  // Visits record work; a visit's work without a status is refused, naming the field.
  auto visit_with = [&](apb::WorkStatus status_now, std::optional<int> hours) {
    gpb::RecordVisitRequest visit;
    visit.set_request_id(NewId("rq"));
    visit.set_patient_id(patient_id_);
    visit.set_kind(gpb::VISIT_KIND_CLINIC);
    visit.set_pain_before(3);
    visit.mutable_work()->set_status(status_now);
    if (hours) visit.mutable_work()->set_current_hours_per_week(*hours);
    gpb::RecordVisitResponse visited;
    return north.Call(north.progress.get(), &gpb::ProgressService::Stub::RecordVisit, visit, &visited);
  };
  status = visit_with(apb::WORK_STATUS_UNSPECIFIED, 20);
  EXPECT_EQ(status.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("work.status"), std::string::npos) << status.error_message();
  ASSERT_TRUE(visit_with(apb::WORK_STATUS_MODIFIED_DUTIES, 20).ok());
  gpb::ProgressSummary summary = Summary(north);
  EXPECT_EQ(summary.work().at_assessment(), apb::WORK_STATUS_OFF_WORK);
  EXPECT_EQ(summary.work().latest(), apb::WORK_STATUS_MODIFIED_DUTIES);
  EXPECT_EQ(summary.work().latest_hours_per_week(), 20);
  EXPECT_FALSE(summary.work().returned_to_usual_work());
  ASSERT_TRUE(visit_with(apb::WORK_STATUS_WORKING, 40).ok());
  summary = Summary(north);
  EXPECT_EQ(summary.work().latest(), apb::WORK_STATUS_WORKING);
  EXPECT_TRUE(summary.work().returned_to_usual_work());

  // Discharged: the summary says where work stands.
  ppb::CompletePlanResponse completed;
  const ppb::Plan current = PlanInUseOrSuspended(north, patient_id_);
  ASSERT_TRUE(CompletePlanWith(north, current.plan_id(), current.etag(), ppb::PLAN_STATUS_COMPLETED, "back at work",
                               &completed).ok());
  gpb::GetDischargeSummaryRequest ask;
  ask.set_patient_id(patient_id_);
  gpb::GetDischargeSummaryResponse discharge;
  ASSERT_TRUE(north.Call(north.progress.get(), &gpb::ProgressService::Stub::GetDischargeSummary, ask, &discharge).ok());
  EXPECT_TRUE(discharge.summary().work().returned_to_usual_work());
  EXPECT_NE(discharge.summary().text().find("Work: off work at the start; at work, usual duties (40 hours a week) at discharge"),
            std::string::npos)
      << discharge.summary().text();
}

// The benchmark of docs/benchmarks.md#outcome-reports (run by hand: --gtest_also_run_disabled_tests
// --gtest_filter='*HundredThousand*'; PHYSIO_REPORT_EPISODES to change the size): episodes and
// their figures made in SQL, then each grouping's report through the API, against the same
// server's health check.
TEST_F(Reports, DISABLED_AReportOverAHundredThousandEpisodes) {
  const int episodes = std::getenv("PHYSIO_REPORT_EPISODES") ? std::atoi(std::getenv("PHYSIO_REPORT_EPISODES")) : 100000;
  const std::string n = std::to_string(episodes);
  postgres_->Execute(
      "BEGIN;"
      "INSERT INTO planning.episodes (tenant_id, episode_id, patient_id, plan_id, clinic_id, practitioner, risk_group,"
      " subgroup, phase, status, referred, intake_red_flag, started_at, ended_at, baseline_nprs, baseline_odi,"
      " baseline_rmdq, plan)"
      " SELECT '" + tenant_ + "', 'ep-' || g, 'pt-' || g, 'plan-' || g, 'clinic-' || (g % 20), 'clin-' || (g % 200),"
      " (ARRAY['LOW','MEDIUM','HIGH'])[1 + g % 3], (ARRAY['MANIPULATION','SPECIFIC_EXERCISE','STABILISATION',"
      "'UNCLASSIFIED'])[1 + g % 4], (ARRAY['SYMPTOM_MODULATION','MOVEMENT_CONTROL','FUNCTION_OPTIMISATION'])[1 + g % 3],"
      " CASE WHEN g % 3 = 0 THEN 'COMPLETED' WHEN g % 7 = 0 THEN 'DISCHARGED' ELSE 'ACTIVE' END, g % 50 = 0, g % 97 = 0,"
      " now() - (g % 360) * interval '1 day', CASE WHEN g % 3 = 0 OR g % 7 = 0 THEN now() - (g % 360) * interval '1 day'"
      " + (2 + g % 12) * interval '1 week' END, g % 11, (g * 7) % 80, CASE WHEN g % 2 = 0 THEN g % 25 END, '{}'"
      " FROM generate_series(1, " + n + ") g;"
      "INSERT INTO progress.episode_progress (tenant_id, plan_id, patient_id, latest_pain, pain_judged, pain_improved,"
      " latest_odi, latest_rmdq, disability_judged, disability_improved, adherence_percent, course_status,"
      " red_flag_alerts) SELECT '" + tenant_ + "', 'plan-' || g, 'pt-' || g, (g * 3) % 11, true, g % 2 = 0,"
      " (g * 5) % 70, CASE WHEN g % 2 = 0 THEN (g * 3) % 25 END, true, g % 3 = 0, (g * 13) % 101,"
      " (ARRAY['ON_TRACK','SLOWER_THAN_EXPECTED','RECOVERED','TOO_EARLY','NEEDS_REVIEW'])[1 + g % 5],"
      " CASE WHEN g % 40 = 0 THEN 1 ELSE 0 END FROM generate_series(1, " + n + ") g;"
      "COMMIT; ANALYZE planning.episodes; ANALYZE progress.episode_progress;",
      "physio");
  const Caller analyst = StaffAt({}, "analyst", "analyst-bench");
  auto health = grpc::health::v1::Health::NewStub(grpc::CreateChannel(cluster_->progress_addr(),
                                                                       grpc::InsecureChannelCredentials()));
  auto median_ms = [](std::vector<double> times) {
    std::sort(times.begin(), times.end());
    return times[times.size() / 2];
  };
  std::vector<double> checks;
  for (int i = 0; i < 21; ++i) {
    grpc::ClientContext context;
    grpc::health::v1::HealthCheckRequest request;
    grpc::health::v1::HealthCheckResponse response;
    const auto started = std::chrono::steady_clock::now();
    ASSERT_TRUE(health->Check(&context, request, &response).ok());
    checks.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count());
  }
  std::printf("episodes %d; health check median %.2f ms\n", episodes, median_ms(checks));
  for (auto grouping : {gpb::REPORT_GROUPING_NONE, gpb::REPORT_GROUPING_CLINIC, gpb::REPORT_GROUPING_PRACTITIONER,
                        gpb::REPORT_GROUPING_RISK_GROUP, gpb::REPORT_GROUPING_QUARTER}) {
    std::vector<double> times;
    gpb::GetOutcomeReportResponse report;
    for (int i = 0; i < 7; ++i) {
      report.Clear();
      const auto started = std::chrono::steady_clock::now();
      auto status = Report(analyst, grouping, &report, {}, /*csv=*/true);
      times.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count());
      ASSERT_TRUE(status.ok()) << status.error_message();
    }
    int total = 0;
    for (const auto& group : report.groups()) total += group.episodes_started();
    std::printf("%-30s groups %4d  episodes %6d  median %8.1f ms  min %8.1f ms  max %8.1f ms  csv %zu bytes\n",
                gpb::ReportGrouping_Name(grouping).c_str(), report.groups_size(), total, median_ms(times),
                *std::min_element(times.begin(), times.end()), *std::max_element(times.begin(), times.end()),
                report.csv().size());
  }
  // One clinic of the twenty (a clinic's analyst), by practitioner.
  std::vector<double> times;
  gpb::GetOutcomeReportResponse report;
  for (int i = 0; i < 7; ++i) {
    report.Clear();
    const auto started = std::chrono::steady_clock::now();
    ASSERT_TRUE(Report(analyst, gpb::REPORT_GROUPING_PRACTITIONER, &report, {"clinic-1"}).ok());
    times.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count());
  }
  std::printf("one clinic, by practitioner     groups %4d  median %8.1f ms\n", report.groups_size(), median_ms(times));
}

}  // namespace
}  // namespace physio::testing
