#pragma once
// The discharge summary of an ended episode of care (GetDischargeSummary, issue 32 part 4), for
// the patient and their GP: built from the plan in use at the end, the patient's records up to
// the end and the progress summary at the end. No I/O.
#include <cstdint>
#include <string>

#include "physio/planning/v1/planning.pb.h"
#include "physio/progress/v1/progress.pb.h"
#include "summary.h"

namespace physio::progress {

struct EndedEpisode {
  std::string episode_id;
  planning::v1::Plan plan;  // the plan in use at the end (COMPLETED or DISCHARGED)
  std::int64_t start_seconds = 0;
  std::int64_t end_seconds = 0;
};

// `records`: the patient's records up to the end; `at_end`: Summarize at the end.
v1::DischargeSummary BuildDischargeSummary(const std::string& patient_id, const EndedEpisode& episode,
                                           const PatientRecords& records, const v1::ProgressSummary& at_end);

}  // namespace physio::progress
