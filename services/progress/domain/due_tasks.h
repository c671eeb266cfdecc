#pragma once
// Which of a plan's scheduled outcome questionnaires are due, overdue, upcoming or answered
// (issue 29): the plan's schedule (planning's outcome_schedule: instrument and day after the
// plan took effect), the measures recorded since, and the clock. Plain C++, no I/O.
#include <cstdint>
#include <string>
#include <vector>

namespace physio::progress {

struct ScheduledMeasure {
  std::string instrument;  // "INSTRUMENT_NPRS", ...
  int day = 0;             // after the plan took effect
  std::string purpose;
};

struct RecordedMeasure {
  std::string instrument;
  std::int64_t at = 0;  // Unix seconds
};

struct TaskPolicy {
  int lead_days = 1;   // a task opens (an answer counts, it is due) this long before its day
  int grace_days = 3;  // and is overdue this long after it
};

enum class TaskState { kUpcoming, kDue, kOverdue, kDone };

struct ScheduledTask {
  std::string key;  // "<instrument>/d<day>": unique within the plan
  std::string instrument;
  int day = 0;
  std::string purpose;
  std::int64_t open = 0, due = 0, overdue = 0;  // Unix seconds
  TaskState state = TaskState::kUpcoming;
  std::int64_t answered = 0;  // kDone: the first answer in its window
};

// Each task's window runs from its opening to the next task of the same instrument's opening
// (the last one's has no end): the first measure of that instrument in it answers it. A
// measure before the first window answers nothing (it is the baseline's time).
std::vector<ScheduledTask> TasksOf(std::int64_t activated, const std::vector<ScheduledMeasure>& schedule,
                                   const std::vector<RecordedMeasure>& measures, std::int64_t now,
                                   const TaskPolicy& policy);

}  // namespace physio::progress
