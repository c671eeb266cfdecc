#include "due_tasks.h"

#include <algorithm>
#include <limits>
#include <map>

namespace physio::progress {

std::vector<ScheduledTask> TasksOf(std::int64_t activated, const std::vector<ScheduledMeasure>& schedule,
                                   const std::vector<RecordedMeasure>& measures, std::int64_t now,
                                   const TaskPolicy& policy) {
  constexpr std::int64_t kDay = 24 * 3600;
  std::vector<ScheduledTask> tasks;
  for (const auto& entry : schedule) {
    ScheduledTask task;
    task.key = entry.instrument + "/d" + std::to_string(entry.day);
    task.instrument = entry.instrument;
    task.day = entry.day;
    task.purpose = entry.purpose;
    task.due = activated + entry.day * kDay;
    task.open = task.due - policy.lead_days * kDay;
    task.overdue = task.due + policy.grace_days * kDay;
    tasks.push_back(std::move(task));
  }
  std::sort(tasks.begin(), tasks.end(), [](const ScheduledTask& a, const ScheduledTask& b) {
    return a.due != b.due ? a.due < b.due : a.instrument < b.instrument;
  });
  // Per instrument, in day order: the window ends where the next one opens.
  std::map<std::string, std::vector<ScheduledTask*>> by_instrument;
  for (auto& task : tasks) by_instrument[task.instrument].push_back(&task);
  for (auto& [instrument, list] : by_instrument) {
    std::vector<std::int64_t> times;
    for (const auto& measure : measures) {
      if (measure.instrument == instrument) times.push_back(measure.at);
    }
    std::sort(times.begin(), times.end());
    for (std::size_t i = 0; i < list.size(); ++i) {
      ScheduledTask& task = *list[i];
      const std::int64_t end = i + 1 < list.size() ? list[i + 1]->open : std::numeric_limits<std::int64_t>::max();
      const auto answer = std::lower_bound(times.begin(), times.end(), task.open);
      if (answer != times.end() && *answer < end && *answer <= now) {
        task.state = TaskState::kDone;
        task.answered = *answer;
      } else if (now < task.open) {
        task.state = TaskState::kUpcoming;
      } else if (now < task.overdue) {
        task.state = TaskState::kDue;
      } else {
        task.state = TaskState::kOverdue;
      }
    }
  }
  return tasks;
}

}  // namespace physio::progress
