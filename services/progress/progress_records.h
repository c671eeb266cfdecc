#pragma once
// The PostgreSQL reads of a patient's course of care: bounded windows of
// visits, home logs and re-measures (oldest first), and alerts. The summary is
// built from what these return (summary.h), without I/O.
#include <string>
#include <vector>

#include "domain/evaluation.h"
#include "physio/db/pg.h"
#include "summary.h"

namespace physio::progress {

// The newest rows of `table` within the policy's window (`history_days`, at most
// `history_max_rows`), returned oldest first by `time_column`.
template <typename Record>
std::vector<Record> ReadHistory(PgConnection& conn, const std::string& tenant, const std::string& patient_id,
                                const std::string& table, const std::string& time_column,
                                const EvaluationPolicy& policy);

// Everything the summary needs, read in `conn` (one transaction: one point in time).
PatientRecords ReadPatientRecords(PgConnection& conn, const std::string& tenant, const std::string& patient_id,
                                  const EvaluationPolicy& policy);

}  // namespace physio::progress
