#pragma once
// A patient's progress summary and the evaluation's input, built from their
// parsed records and plan: no I/O, so it is tested directly. The records come
// from progress_records.h (ProgressRecords::ReadPatient); the decision from domain/evaluation.h.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "domain/evaluation.h"
#include "physio/planning/v1/planning.pb.h"
#include "physio/progress/v1/progress.pb.h"

namespace physio::progress {

// The records of one patient the summary is built from, each list oldest first.
struct PatientRecords {
  std::vector<v1::Visit> visits;
  std::vector<v1::HomeExerciseLog> home_logs;
  std::vector<v1::OutcomeMeasure> measures;
  std::vector<v1::Alert> open_alerts;
};

struct ProgressSnapshot {
  v1::ProgressSummary summary;
  EvaluationInput evaluation;
  Evaluation judged;  // Evaluate(evaluation) against the plan; set only when there is a plan
};

// When the episode of `plan` began: its creation (the assessment's baseline) or, for an import
// effective earlier, its start. What is judged against the plan counts from here.
std::int64_t EpisodeStart(const planning::v1::Plan& plan);

// Keeps only the visits, home logs and re-measures of [from_seconds, to_seconds]: an episode's own
// records, for its figures or summary as they stood at its end.
void KeepRecordsWithin(PatientRecords& records, std::int64_t from_seconds, std::int64_t to_seconds);

// Everything known about the patient's progress against `plan` (if any; null: none) at `now_seconds`.
ProgressSnapshot Summarize(const std::string& patient_id, const planning::v1::Plan* plan,
                           const PatientRecords& records, std::int64_t now_seconds, const EvaluationPolicy& policy);
inline ProgressSnapshot Summarize(const std::string& patient_id, const std::optional<planning::v1::Plan>& plan,
                                  const PatientRecords& records, std::int64_t now_seconds,
                                  const EvaluationPolicy& policy) {
  return Summarize(patient_id, plan ? &*plan : nullptr, records, now_seconds, policy);
}

// Conversions between the progress rules and the API.
std::optional<Outcome> OutcomeOf(common::v1::Instrument instrument);
v1::EarlyResponse ToProto(EarlyResponse early);
v1::ResponderStatus ToProto(ResponderStatus status);

}  // namespace physio::progress
