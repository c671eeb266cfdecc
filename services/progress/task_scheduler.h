#pragma once
// The questionnaire scheduler of one progress replica (issue 29): every
// `outcome-task-scan-interval-s` it walks the active plans' schedules, and for each task
// that is now due or overdue gives its QUESTIONNAIRE_DUE or QUESTIONNAIRE_OVERDUE event
// once (PgTaskRecords::Notify: a notice row and the event in one transaction, so replicas
// and restarts never give one twice). Tasks due longer ago than `notify_within` are not
// announced (a back-dated import does not flood the feed; ListDueTasks still lists them).
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "task_records.h"

namespace physio::progress {

struct TaskSchedulerSettings {
  std::chrono::seconds interval{60};
  std::chrono::hours notify_within{24 * 14};
  TaskPolicy policy;
};

class TaskScheduler {
 public:
  TaskScheduler(PgTaskRecords& records, TaskSchedulerSettings settings);
  ~TaskScheduler();
  TaskScheduler(const TaskScheduler&) = delete;
  TaskScheduler& operator=(const TaskScheduler&) = delete;

  // One pass over every active schedule; the notices given.
  int Pass();

 private:
  PgTaskRecords& records_;
  TaskSchedulerSettings settings_;
  std::mutex mutex_;
  std::condition_variable_any wake_;
  std::jthread thread_;
};

}  // namespace physio::progress
