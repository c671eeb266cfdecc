#include "progress_records.h"

#include "physio/db/proto_json.h"

namespace physio::progress {

template <typename Record>
std::vector<Record> ReadHistory(PgConnection& conn, const std::string& tenant, const std::string& patient_id,
                                const std::string& table, const std::string& time_column,
                                const EvaluationPolicy& policy) {
  // A bounded window of one kind of history (see EvaluationPolicy): the newest
  // rows within it, returned oldest first.
  auto rows = conn.Exec("SELECT body FROM (SELECT body, " + time_column + ", created_at FROM progress." + table +
                       " WHERE tenant_id = $1 AND patient_id = $2 AND " + time_column +
                       " >= now() - make_interval(days => $3::int) ORDER BY " + time_column +
                       " DESC, created_at DESC LIMIT $4) newest ORDER BY " + time_column + ", created_at",
                   {tenant, patient_id, std::to_string(policy.history_days), std::to_string(policy.history_max_rows)});
  std::vector<Record> records(static_cast<size_t>(rows.rows()));
  for (int i = 0; i < rows.rows(); ++i) FromJson(rows.Get(i, 0), &records[static_cast<size_t>(i)]);
  return records;
}

template std::vector<v1::Visit> ReadHistory(PgConnection&, const std::string&, const std::string&, const std::string&,
                                            const std::string&, const EvaluationPolicy&);
template std::vector<v1::OutcomeMeasure> ReadHistory(PgConnection&, const std::string&, const std::string&,
                                                     const std::string&, const std::string&, const EvaluationPolicy&);

PatientRecords ReadPatientRecords(PgConnection& conn, const std::string& tenant, const std::string& patient_id,
                                  const EvaluationPolicy& policy) {
  PatientRecords records;
  records.visits = ReadHistory<v1::Visit>(conn, tenant, patient_id, "visits", "visit_time", policy);
  records.home_logs =
      ReadHistory<v1::HomeExerciseLog>(conn, tenant, patient_id, "home_exercise_logs", "performed_time", policy);
  records.measures = ReadHistory<v1::OutcomeMeasure>(conn, tenant, patient_id, "outcome_measures", "measure_time", policy);
  auto alerts = conn.Exec("SELECT body FROM progress.alerts WHERE tenant_id = $1 AND patient_id = $2"
                          " AND status = 'OPEN' ORDER BY created_at",
                          {tenant, patient_id});
  for (int i = 0; i < alerts.rows(); ++i) FromJson(alerts.Get(i, 0), &records.open_alerts.emplace_back());
  return records;
}

}  // namespace physio::progress
