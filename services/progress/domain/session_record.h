#pragma once
// What a treatment session's documentation means for the plan, as plain C++ (McKenzie & May
// 2003; Donelson 1990): symptoms spreading down the leg (peripheralisation) with a repeated
// movement or a directional exercise stops that direction at once; symptoms centralising with a
// direction the plan does not follow call for a re-assessment of the directional preference; a
// treatment that made symptoms worse is not progressed. Range of movement is compared with the
// last visit that measured it.
#include <string>
#include <vector>

namespace physio::progress {

enum class SymptomResponse { kCentralising, kPeripheralising, kBetter, kNoEffect, kWorse };

struct MovementTestResult {
  std::string test;       // as named to the clinician, e.g. "repeated extension in lying"
  std::string direction;  // "extension", "flexion" or "lateral_shift"
  SymptomResponse response;
};

struct TreatmentResponse {
  std::string item_id;
  bool directional = false;  // a directional exercise (library "ex.dir.*") of the plan in use
  SymptomResponse response;
};

struct SessionJudgement {
  std::vector<std::string> stop_directions;  // from movement tests, each once
  std::vector<std::string> stop_item_ids;    // directional exercises that peripheralised
  std::vector<std::string> reassess;         // why the plan should be re-assessed, one line each
  std::vector<std::string> worse_item_ids;   // treatments that made symptoms worse
  std::vector<std::string> findings;         // one line per consequence, for the visit record
  bool peripheralised() const { return !stop_directions.empty() || !stop_item_ids.empty() || peripheral_other; }
  bool peripheral_other = false;  // a non-directional treatment peripheralised
};

// `plan_direction`: the direction the plan in use follows (empty: none); `stopped`: its stopped
// directions. Peripheralising wins over centralising in the same direction (the safer reading).
SessionJudgement JudgeSession(const std::vector<MovementTestResult>& tests,
                              const std::vector<TreatmentResponse>& treatments, const std::string& plan_direction,
                              const std::vector<std::string>& stopped);

// McKenzie's loss of range: 0 nil, 1 minimal, 2 moderate, 3 major.
struct RangeReading {
  std::string movement;  // e.g. "flexion", "side flexion left"
  int loss = 0;
  bool painful = false;
};

// One line per movement whose loss or pain changed against `before` (the last visit that measured
// it): "better since the last visit: flexion moderate loss -> minimal loss".
std::vector<std::string> CompareRange(const std::vector<RangeReading>& before, const std::vector<RangeReading>& now);

}  // namespace physio::progress
