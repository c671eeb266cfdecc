#include "session_record.h"

#include <algorithm>

namespace physio::progress {
namespace {
bool Contains(const std::vector<std::string>& list, const std::string& value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}
void AddOnce(std::vector<std::string>& list, const std::string& value) {
  if (!Contains(list, value)) list.push_back(value);
}
const char* LossName(int loss) {
  switch (loss) {
    case 0: return "nil loss";
    case 1: return "minimal loss";
    case 2: return "moderate loss";
    default: return "major loss";
  }
}
}  // namespace

SessionJudgement JudgeSession(const std::vector<MovementTestResult>& tests,
                              const std::vector<TreatmentResponse>& treatments, const std::string& plan_direction,
                              const std::vector<std::string>& stopped) {
  SessionJudgement judged;
  for (const auto& test : tests) {
    if (test.response != SymptomResponse::kPeripheralising) continue;
    AddOnce(judged.stop_directions, test.direction);
    judged.findings.push_back("stopped: " + test.direction + " (peripheralising with " + test.test + ")");
  }
  for (const auto& treatment : treatments) {
    if (treatment.response == SymptomResponse::kWorse) {
      AddOnce(judged.worse_item_ids, treatment.item_id);
      judged.findings.push_back("held: " + treatment.item_id + " made symptoms worse; not progressed at the next evaluation");
    }
    if (treatment.response != SymptomResponse::kPeripheralising) continue;
    if (treatment.directional) {
      AddOnce(judged.stop_item_ids, treatment.item_id);
      judged.findings.push_back("stopped: the direction of " + treatment.item_id + " (peripheralising)");
    } else {
      judged.peripheral_other = true;
      // Not a direction the plan can stop: the clinic is alerted and the plan re-assessed.
      const std::string line = "peripheralising with " + treatment.item_id;
      judged.reassess.push_back(line + ": re-assess");
      judged.findings.push_back("re-assess: " + line);
    }
  }
  for (const auto& test : tests) {
    if (test.response != SymptomResponse::kCentralising) continue;
    if (Contains(judged.stop_directions, test.direction)) continue;  // the same session also peripheralised
    const bool stopped_before = Contains(stopped, test.direction);
    if (test.direction == plan_direction && !stopped_before) continue;  // confirms the plan's direction
    const std::string line =
        "centralising with " + test.test + "; the plan follows " +
        (plan_direction.empty() ? std::string("no direction") : plan_direction) +
        (stopped_before ? " (" + test.direction + " was stopped after symptoms spread)" : "") +
        ": re-assess the directional preference";
    judged.reassess.push_back(line);
    judged.findings.push_back("re-assess: " + line);
  }
  return judged;
}

std::vector<std::string> CompareRange(const std::vector<RangeReading>& before, const std::vector<RangeReading>& now) {
  std::vector<std::string> lines;
  for (const auto& reading : now) {
    const auto was = std::find_if(before.begin(), before.end(),
                                  [&](const RangeReading& r) { return r.movement == reading.movement; });
    if (was == before.end()) continue;
    std::string what = reading.movement + " " + LossName(was->loss) + (was->painful ? " (painful)" : "") + " -> " +
                       LossName(reading.loss) + (reading.painful ? " (painful)" : "");
    if (reading.loss < was->loss || (reading.loss == was->loss && was->painful && !reading.painful)) {
      lines.push_back("better since the last visit: " + what);
    } else if (reading.loss > was->loss || (reading.loss == was->loss && !was->painful && reading.painful)) {
      lines.push_back("worse since the last visit: " + what);
    }
  }
  return lines;
}

}  // namespace physio::progress
