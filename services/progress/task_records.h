#pragma once
// The outcome schedules' side of the progress service (issue 29): the plans' schedules
// (planning.plan_schedules, which the planning service opens read-only to every role),
// the measures that answer them (outcome re-measures, and visits' pain for NPRS), home
// sessions logged, and the once-only notices of due and overdue questionnaires
// (progress.task_notices). The use case's seam (TaskRecords) and its PostgreSQL implementation.
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "domain/due_tasks.h"
#include "physio/common/clock.h"
#include "physio/db/pg.h"

namespace physio::progress {

struct PlanSchedule {
  std::string tenant, plan_id, patient_id;
  std::int64_t activated = 0;  // Unix seconds
  int home_sessions_per_week = 0;
  std::vector<ScheduledMeasure> schedule;
};

class TaskRecords {
 public:
  virtual ~TaskRecords() = default;
  // The active plans' schedules: of one patient, or of every patient enrolled at `clinic`.
  virtual std::vector<PlanSchedule> ActiveSchedules(const std::string& tenant, const std::string& patient_id,
                                                    const std::string& clinic, Clock::time_point deadline) = 0;
  // The measures recorded for these patients since `since` (Unix seconds), by patient.
  virtual std::map<std::string, std::vector<RecordedMeasure>> Measures(const std::string& tenant,
                                                                       const std::vector<std::string>& patients,
                                                                       std::int64_t since, Clock::time_point deadline) = 0;
  // Home sessions logged per patient since each one's `since` (Unix seconds).
  virtual std::map<std::string, int> HomeSessionsSince(const std::string& tenant,
                                                       const std::map<std::string, std::int64_t>& since,
                                                       Clock::time_point deadline) = 0;
};

class PgTaskRecords final : public TaskRecords {
 public:
  explicit PgTaskRecords(PgPool& pool) : pool_(pool) {}
  std::vector<PlanSchedule> ActiveSchedules(const std::string& tenant, const std::string& patient_id,
                                            const std::string& clinic, Clock::time_point deadline) override;
  std::map<std::string, std::vector<RecordedMeasure>> Measures(const std::string& tenant,
                                                               const std::vector<std::string>& patients,
                                                               std::int64_t since, Clock::time_point deadline) override;
  std::map<std::string, int> HomeSessionsSince(const std::string& tenant, const std::map<std::string, std::int64_t>& since,
                                               Clock::time_point deadline) override;

  // The scheduler's statements. Active schedules of every tenant after (tenant, plan) in key order.
  std::vector<PlanSchedule> ActiveSchedulesAfter(const std::string& tenant, const std::string& plan_id, int limit,
                                                 Clock::time_point deadline);
  // Records the notice ("due" or "overdue") of a task once, with its event in the same
  // transaction; false when it was already given (by this replica or another, before or
  // after a restart). `also` is recorded silently with it (an overdue task's due notice).
  bool Notify(const std::string& tenant, const std::string& patient_id, const std::string& task_id,
              const std::string& notice, const std::string& also, Clock::time_point deadline);

 private:
  std::vector<PlanSchedule> SchedulesOf(const PgResult& rows) const;
  PgPool& pool_;
};

}  // namespace physio::progress
