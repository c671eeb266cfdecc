#include "task_scheduler.h"

#include <spdlog/spdlog.h>

#include <set>

namespace physio::progress {

TaskScheduler::TaskScheduler(PgTaskRecords& records, TaskSchedulerSettings settings)
    : records_(records), settings_(settings) {
  thread_ = std::jthread([this](std::stop_token stop) {
    while (!stop.stop_requested()) {
      try {
        if (const int given = Pass(); given > 0) spdlog::info("outcome questionnaires: {} notices given", given);
      } catch (const std::exception& e) {
        spdlog::warn("outcome questionnaire pass failed (tried again next interval): {}", e.what());
      }
      std::unique_lock lock(mutex_);
      wake_.wait_for(lock, stop, settings_.interval, [] { return false; });
    }
  });
}

TaskScheduler::~TaskScheduler() {
  thread_.request_stop();
  wake_.notify_all();
}

int TaskScheduler::Pass() {
  int given = 0;
  const std::int64_t now =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  const std::int64_t oldest = now - std::chrono::duration_cast<std::chrono::seconds>(settings_.notify_within).count();
  std::string after_tenant, after_plan;
  while (true) {
    const auto deadline = Clock::now() + std::chrono::seconds(10);
    auto page = records_.ActiveSchedulesAfter(after_tenant, after_plan, 500, deadline);
    if (page.empty()) break;
    after_tenant = page.back().tenant;
    after_plan = page.back().plan_id;
    // The measures of each tenant's patients on this page, in one query per tenant.
    std::map<std::string, std::vector<const PlanSchedule*>> by_tenant;
    for (const auto& schedule : page) by_tenant[schedule.tenant].push_back(&schedule);
    for (const auto& [tenant, schedules] : by_tenant) {
      std::set<std::string> patients;
      std::int64_t since = now;
      for (const auto* schedule : schedules) {
        patients.insert(schedule->patient_id);
        since = std::min(since, schedule->activated);
      }
      const auto measures =
          records_.Measures(tenant, std::vector<std::string>(patients.begin(), patients.end()), since, deadline);
      for (const auto* schedule : schedules) {
        const auto found = measures.find(schedule->patient_id);
        const auto tasks = TasksOf(schedule->activated, schedule->schedule,
                                   found == measures.end() ? std::vector<RecordedMeasure>{} : found->second, now,
                                   settings_.policy);
        for (const auto& task : tasks) {
          if (task.due < oldest) continue;
          const std::string task_id = schedule->plan_id + "/" + task.key;
          if (task.state == TaskState::kDue) {
            given += records_.Notify(tenant, schedule->patient_id, task_id, "due", "", deadline) ? 1 : 0;
          } else if (task.state == TaskState::kOverdue) {
            // Overdue without having been announced due (a replica down meanwhile): overdue only.
            given += records_.Notify(tenant, schedule->patient_id, task_id, "overdue", "due", deadline) ? 1 : 0;
          }
        }
      }
    }
    if (page.size() < 500) break;
  }
  return given;
}

}  // namespace physio::progress
