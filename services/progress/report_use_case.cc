// The episodes of care read back: GetOutcomeReport (issue 31, docs/reports.md), the outcomes of
// the episodes that started in a period, at the clinics the caller reaches, grouped, with small
// groups suppressed; GetDischargeSummary (issue 32), one ended episode for the patient and the GP.
#include <google/protobuf/util/time_util.h>

#include <algorithm>
#include <set>

#include "discharge_summary.h"
#include "outcome_report.h"
#include "physio/common/error.h"
#include "physio/common/validation.h"
#include "progress_app.h"

namespace physio::progress {

namespace {
constexpr auto kReportBudget = std::chrono::seconds(10);
constexpr std::int64_t kMaxSeconds = 253402300799;  // 9999-12-31T23:59:59Z
constexpr std::int64_t kMaxPeriod = 1827LL * 24 * 3600;  // five years

std::int64_t RequiredTime(const char* field, bool has, const google::protobuf::Timestamp& time) {
  if (!has) ThrowInvalidArgument(field, "is required");
  if (time.seconds() < 0 || time.seconds() > kMaxSeconds || time.nanos() < 0 || time.nanos() > 999999999) {
    ThrowInvalidArgument(field, "must be between 1970 and 9999");
  }
  return time.seconds();
}
}  // namespace

pb::GetOutcomeReportResponse ProgressApp::GetOutcomeReport(const CallContext& ctx,
                                                           const pb::GetOutcomeReportRequest& request,
                                                           AuditTarget& audit) {
  if (reports_ == nullptr) throw Error(ErrorCode::kFailedPrecondition, "outcome reports are not configured on this server");
  const std::int64_t start = RequiredTime("start_time", request.has_start_time(), request.start_time());
  const std::int64_t end = RequiredTime("end_time", request.has_end_time(), request.end_time());
  if (end <= start) ThrowInvalidArgument("end_time", "must be after start_time");
  if (end - start > kMaxPeriod) ThrowInvalidArgument("end_time", "at most five years after start_time");
  if (request.group_by() == pb::REPORT_GROUPING_UNSPECIFIED || !pb::ReportGrouping_IsValid(request.group_by())) {
    ThrowInvalidArgument("group_by", "must be one of REPORT_GROUPING_NONE, _CLINIC, _PRACTITIONER, _RISK_GROUP, "
                                     "_SUBGROUP, _PHASE, _QUARTER");
  }
  if (request.clinic_ids_size() > 64) ThrowInvalidArgument("clinic_ids", "at most 64");
  std::set<std::string> asked;
  for (const auto& clinic : request.clinic_ids()) {
    if (!IsClinicId(clinic)) ThrowInvalidArgument("clinic_ids", "each 1-64 characters of [A-Za-z0-9._:-]");
    asked.insert(clinic);
  }
  // A platform's reach depends on each patient's consent to sharing with it: aggregates are not
  // offered through one.
  if (!ctx.platform.empty()) throw Error(ErrorCode::kPermissionDenied, "outcome reports are not offered to platforms");
  audit.resource_id = "report:" + pb::ReportGrouping_Name(request.group_by());

  // The caller's reach: an organisation-wide grant, or a token without clinics, covers the tenant;
  // otherwise the clinics the token names, and only those may be asked for.
  const bool unscoped = ctx.all_clinics || ctx.clinics.empty();
  OutcomeReportQuery query;
  query.start_seconds = start;
  query.end_seconds = end;
  query.group_by = request.group_by();
  if (asked.empty()) {
    query.all_clinics = unscoped;
    if (!unscoped) query.clinics.assign(ctx.clinics.begin(), ctx.clinics.end());
  } else {
    for (const auto& clinic : asked) {
      if (!unscoped && !ctx.clinics.contains(clinic)) {
        throw Error(ErrorCode::kPermissionDenied, "clinic_ids: " + clinic + " is not one of your clinics");
      }
    }
    query.clinics.assign(asked.begin(), asked.end());
  }

  pb::GetOutcomeReportResponse response;
  for (auto& group : reports_->Groups(ctx.tenant, query, ctx.DeadlineCappedAt(kReportBudget))) {
    *response.add_groups() = std::move(group);
  }
  SuppressSmallGroups(response.mutable_groups(), report_min_group_size_);
  response.set_min_group_size(report_min_group_size_);
  for (const auto& clinic : query.clinics) response.add_clinic_ids(clinic);
  *response.mutable_generate_time() = google::protobuf::util::TimeUtil::GetCurrentTime();
  if (request.include_csv()) response.set_csv(OutcomeReportCsv(response));
  return response;
}

pb::GetDischargeSummaryResponse ProgressApp::GetDischargeSummary(const CallContext& ctx,
                                                                 const pb::GetDischargeSummaryRequest& request,
                                                                 AuditTarget& audit) {
  ValidateOpaqueId("patient_id", request.patient_id());
  audit.patient_id = request.patient_id();
  RequirePatientAccess(ctx, request.patient_id());
  if (reports_ == nullptr) throw Error(ErrorCode::kFailedPrecondition, "episodes are not configured on this server");
  const auto deadline = ctx.DeadlineCappedAt(kReportBudget);
  const auto episode = reports_->EpisodeOf(ctx.tenant, request.patient_id(), deadline);
  if (!episode) throw Error(ErrorCode::kNotFound, "patient_id: the patient has no episode of care");
  if (!episode->ended_seconds) {
    throw Error(ErrorCode::kFailedPrecondition,
                "patient_id: the episode of care is still open; its summary is written when the plan is completed or "
                "discharged (CompletePlan)");
  }
  audit.resource_id = episode->episode_id;
  PatientRecords records = records_.ReadPatient(ctx.tenant, request.patient_id(), policy_, deadline);
  // The episode's own records: from its start to its end.
  const std::int64_t start = episode->started_seconds, end = *episode->ended_seconds;
  KeepRecordsWithin(records, start, end);
  records.open_alerts.clear();
  const ProgressSnapshot at_end = Summarize(request.patient_id(), &episode->plan, records, end, policy_);
  pb::GetDischargeSummaryResponse response;
  *response.mutable_summary() = BuildDischargeSummary(
      request.patient_id(), EndedEpisode{episode->episode_id, episode->plan, start, end}, records, at_end.summary);
  return response;
}

}  // namespace physio::progress
