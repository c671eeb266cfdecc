// ListDueTasks (issue 29): the active plans' outcome schedules (written by the planning
// service with every change of a plan) against the measures recorded, for one patient or
// every patient of a clinic the caller reaches.
#include <google/protobuf/util/time_util.h>

#include <algorithm>
#include <set>

#include "physio/common/error.h"
#include "physio/common/validation.h"
#include "progress_app.h"

namespace physio::progress {

namespace {
namespace cpb = physio::common::v1;
constexpr auto kStoreBudget = std::chrono::seconds(5);
constexpr std::int64_t kDay = 24 * 3600;

pb::TaskState ToProto(TaskState state) {
  switch (state) {
    case TaskState::kUpcoming: return pb::TASK_STATE_UPCOMING;
    case TaskState::kDue: return pb::TASK_STATE_DUE;
    case TaskState::kOverdue: return pb::TASK_STATE_OVERDUE;
    case TaskState::kDone: return pb::TASK_STATE_DONE;
  }
  return pb::TASK_STATE_UNSPECIFIED;
}
}  // namespace

pb::ListDueTasksResponse ProgressApp::ListDueTasks(const CallContext& ctx, const pb::ListDueTasksRequest& request,
                                                   AuditTarget& audit) {
  if (tasks_ == nullptr) throw Error(ErrorCode::kFailedPrecondition, "outcome schedules are not configured on this server");
  if (request.patient_id().empty() == request.clinic_id().empty()) {
    ThrowInvalidArgument("patient_id", "give a patient_id or a clinic_id (not both)");
  }
  const std::int64_t now =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  const std::int64_t start = request.has_start_time() ? request.start_time().seconds() : now - 30 * kDay;
  const std::int64_t end = request.has_end_time() ? request.end_time().seconds() : now + 7 * kDay;
  if (end <= start) ThrowInvalidArgument("end_time", "must be after start_time");
  if (end - start > 366 * kDay) ThrowInvalidArgument("end_time", "at most 366 days after start_time");
  if (!request.patient_id().empty()) {
    ValidateOpaqueId("patient_id", request.patient_id());
    audit.patient_id = request.patient_id();
    RequirePatientAccess(ctx, request.patient_id());
  } else {
    if (!IsClinicId(request.clinic_id())) ThrowInvalidArgument("clinic_id", "1-64 characters of [A-Za-z0-9._:-]");
    audit.resource_id = "clinic:" + request.clinic_id();
    if (!IsStaff(ctx)) throw Error(ErrorCode::kPermissionDenied, "a clinic's tasks are for its staff");
    // Staff bound to clinics list their own clinics' (others are not found, as for another tenant).
    if (!ctx.all_clinics && !ctx.clinics.empty() && !ctx.clinics.contains(request.clinic_id())) {
      throw Error(ErrorCode::kNotFound, "clinic not found");
    }
  }
  const auto deadline = ctx.DeadlineCappedAt(kStoreBudget);
  auto schedules = tasks_->ActiveSchedules(ctx.tenant, request.patient_id(), request.clinic_id(), deadline);
  // A clinic's list: only the patients this caller reaches (clinics, emergency grants, a platform's consents).
  if (!request.clinic_id().empty()) {
    std::erase_if(schedules, [&](const PlanSchedule& schedule) { return !CanSeePatient(ctx, schedule.patient_id); });
  }
  pb::ListDueTasksResponse response;
  if (schedules.empty()) return response;
  std::set<std::string> patients;
  std::int64_t since = now;
  std::map<std::string, std::int64_t> week_starts;
  for (const auto& schedule : schedules) {
    patients.insert(schedule.patient_id);
    since = std::min(since, schedule.activated);
    const std::int64_t weeks = std::max<std::int64_t>(0, now - schedule.activated) / (7 * kDay);
    week_starts[schedule.patient_id] = schedule.activated + weeks * 7 * kDay;
  }
  const auto measures =
      tasks_->Measures(ctx.tenant, std::vector<std::string>(patients.begin(), patients.end()), since, deadline);
  const auto sessions = tasks_->HomeSessionsSince(ctx.tenant, week_starts, deadline);
  std::vector<pb::DueTask> listed;
  for (const auto& schedule : schedules) {
    const auto found = measures.find(schedule.patient_id);
    for (const auto& task : TasksOf(schedule.activated, schedule.schedule,
                                    found == measures.end() ? std::vector<RecordedMeasure>{} : found->second, now,
                                    task_policy_)) {
      if (task.due < start || task.due >= end) continue;
      if (task.state == TaskState::kDone && !request.include_done()) continue;
      pb::DueTask out;
      out.set_task_id(schedule.plan_id + "/" + task.key);
      out.set_patient_id(schedule.patient_id);
      out.set_plan_id(schedule.plan_id);
      cpb::Instrument instrument = cpb::INSTRUMENT_UNSPECIFIED;
      cpb::Instrument_Parse(task.instrument, &instrument);
      out.set_instrument(instrument);
      out.mutable_due_time()->set_seconds(task.due);
      out.mutable_open_time()->set_seconds(task.open);
      out.mutable_overdue_time()->set_seconds(task.overdue);
      out.set_state(ToProto(task.state));
      out.set_purpose(task.purpose);
      if (task.state == TaskState::kDone) out.mutable_answer_time()->set_seconds(task.answered);
      listed.push_back(std::move(out));
    }
    if (schedule.home_sessions_per_week > 0) {
      auto* rhythm = response.add_home_programmes();
      rhythm->set_patient_id(schedule.patient_id);
      rhythm->set_sessions_per_week(schedule.home_sessions_per_week);
      const auto logged = sessions.find(schedule.patient_id);
      rhythm->set_sessions_this_week(logged == sessions.end() ? 0 : logged->second);
      rhythm->mutable_week_start_time()->set_seconds(week_starts[schedule.patient_id]);
    }
  }
  std::stable_sort(listed.begin(), listed.end(), [](const pb::DueTask& a, const pb::DueTask& b) {
    return a.due_time().seconds() < b.due_time().seconds();
  });
  for (auto& task : listed) *response.add_tasks() = std::move(task);
  return response;
}

}  // namespace physio::progress
