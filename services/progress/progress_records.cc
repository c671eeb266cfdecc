#include "progress_records.h"

#include <google/protobuf/util/time_util.h>

#include <algorithm>

#include "fhir_progress.h"
#include "physio/db/events.h"
#include "physio/db/proto_json.h"

namespace physio::progress {

namespace {
using google::protobuf::util::TimeUtil;

template <typename Record>
std::vector<Record> Parsed(const PgResult& rows) {
  std::vector<Record> records(static_cast<size_t>(rows.rows()));
  for (int i = 0; i < rows.rows(); ++i) FromJson(rows.Get(i, 0), &records[static_cast<size_t>(i)]);
  return records;
}

// A bounded window of one kind of history (see EvaluationPolicy): the newest
// rows within it, returned oldest first by `time_column`.
PgStatement HistoryStatement(const std::string& tenant, const std::string& patient_id, const std::string& table,
                             const std::string& time_column, const EvaluationPolicy& policy) {
  return {PatientHistorySql(table, time_column),
          {tenant, patient_id, std::to_string(policy.history_days), std::to_string(policy.history_max_rows)}};
}

// The patient's episode figures are out of date (outcome reports): the refresher recomputes them.
void MarkEpisodeChanged(PgConnection& conn, const std::string& tenant, const std::string& patient_id) {
  conn.Defer({"INSERT INTO progress.episode_changes (tenant_id, patient_id) VALUES ($1, $2)", {tenant, patient_id}});
}
}  // namespace

std::string PatientHistorySql(const std::string& table, const std::string& time_column) {
  return "SELECT body FROM (SELECT body, " + time_column + ", created_at FROM progress." + table +
         " WHERE tenant_id = $1 AND patient_id = $2 AND " + time_column +
         " >= now() - make_interval(days => $3::int) ORDER BY " + time_column +
         " DESC, created_at DESC LIMIT $4) newest ORDER BY " + time_column + ", created_at";
}

void PgProgressWriter::InsertVisit(const std::string& tenant, const v1::Visit& visit,
                                   const std::optional<std::string>& clinic_id) {
  conn_.Defer({"INSERT INTO progress.visits (tenant_id, visit_id, patient_id, visit_time, body, clinic_id)"
             " VALUES ($1,$2,$3,$4::timestamptz,$5::jsonb,$6)",
             {tenant, visit.visit_id(), visit.patient_id(), TimeUtil::ToString(visit.visit_time()), ToJson(visit),
              clinic_id}});
  MarkEpisodeChanged(conn_, tenant, visit.patient_id());
}

void PgProgressWriter::InsertHomeLog(const std::string& tenant, const v1::HomeExerciseLog& log) {
  conn_.Defer({"INSERT INTO progress.home_exercise_logs (tenant_id, log_id, patient_id, plan_id, exercise_id,"
             " performed_time, body) VALUES ($1,$2,$3,$4,$5,$6::timestamptz,$7::jsonb)",
             {tenant, log.log_id(), log.patient_id(), log.plan_id(), log.exercise_id(),
              TimeUtil::ToString(log.performed_time()), ToJson(log)}});
  MarkEpisodeChanged(conn_, tenant, log.patient_id());
}

void PgProgressWriter::InsertSymptomReport(const std::string& tenant, const v1::SymptomReport& report) {
  conn_.Defer({"INSERT INTO progress.symptom_reports (tenant_id, report_id, patient_id, report_time, body)"
             " VALUES ($1,$2,$3,$4::timestamptz,$5::jsonb)",
             {tenant, report.report_id(), report.patient_id(), TimeUtil::ToString(report.report_time()), ToJson(report)}});
  MarkEpisodeChanged(conn_, tenant, report.patient_id());
}

void PgProgressWriter::InsertOutcome(const std::string& tenant, const v1::OutcomeMeasure& measure) {
  conn_.Defer({"INSERT INTO progress.outcome_measures (tenant_id, measure_id, patient_id, instrument, measure_time,"
             " body) VALUES ($1,$2,$3,$4,$5::timestamptz,$6::jsonb)",
             {tenant, measure.measure_id(), measure.patient_id(),
              common::v1::Instrument_Name(measure.score().instrument()), TimeUtil::ToString(measure.measure_time()),
              ToJson(measure)}});
  MarkEpisodeChanged(conn_, tenant, measure.patient_id());
}

bool PgProgressWriter::InsertAlertUnlessOpen(const std::string& tenant, const v1::Alert& alert) {
  auto inserted = conn_.Exec(
      "INSERT INTO progress.alerts (tenant_id, alert_id, clinic_id, patient_id, kind, status, body)"
      " VALUES ($1,$2,$3,$4,$5,'OPEN',$6::jsonb)"
      " ON CONFLICT (tenant_id, patient_id, kind) WHERE status = 'OPEN' DO NOTHING RETURNING alert_id",
      {tenant, alert.alert_id(), alert.clinic_id(), alert.patient_id(), v1::AlertKind_Name(alert.kind()),
       ToJson(alert)});
  if (inserted.rows() > 0) MarkEpisodeChanged(conn_, tenant, alert.patient_id());
  return inserted.rows() > 0;
}

std::optional<v1::Alert> PgProgressWriter::FindAlertForUpdate(const std::string& tenant, const std::string& alert_id) {
  auto alerts = Parsed<v1::Alert>(conn_.Exec(
      "SELECT body FROM progress.alerts WHERE tenant_id = $1 AND alert_id = $2 FOR UPDATE", {tenant, alert_id}));
  if (alerts.empty()) return std::nullopt;
  return std::move(alerts.front());
}

std::optional<v1::Alert> PgProgressWriter::FindOpenAlertForUpdate(const std::string& tenant,
                                                                  const std::string& patient_id, v1::AlertKind kind) {
  auto alerts = Parsed<v1::Alert>(conn_.Exec(
      "SELECT body FROM progress.alerts WHERE tenant_id = $1 AND patient_id = $2 AND kind = $3 AND status = 'OPEN'"
      " FOR UPDATE",
      {tenant, patient_id, v1::AlertKind_Name(kind)}));
  if (alerts.empty()) return std::nullopt;
  return std::move(alerts.front());
}

void PgProgressWriter::UpdateOpenAlert(const std::string& tenant, const v1::Alert& alert) {
  conn_.Exec("UPDATE progress.alerts SET body = $3::jsonb WHERE tenant_id = $1 AND alert_id = $2 AND status = 'OPEN'",
             {tenant, alert.alert_id(), ToJson(alert)});
}

void PgProgressWriter::MarkAlertAcknowledged(const std::string& tenant, const v1::Alert& alert) {
  conn_.Exec("UPDATE progress.alerts SET status = 'ACKNOWLEDGED', body = $3::jsonb"
             " WHERE tenant_id = $1 AND alert_id = $2",
             {tenant, alert.alert_id(), ToJson(alert)});
}

std::optional<std::string> PgProgressWriter::LatestClinic(const std::string& tenant, const std::string& patient_id) {
  // Where an alert goes: a clinic the patient is enrolled at (the staff who can reach them),
  // preferring the one of the latest visit; without enrolment, the latest visit's clinic.
  auto latest = conn_.Exec(
      "WITH enrolled AS (SELECT clinic_id FROM assessment.patient_clinics WHERE tenant_id = $1 AND patient_id = $2),"
      " visited AS (SELECT clinic_id, visit_time FROM progress.visits WHERE tenant_id = $1 AND patient_id = $2"
      "             AND clinic_id IS NOT NULL)"
      " SELECT clinic_id FROM ("
      "   SELECT v.clinic_id, 0 AS rank, v.visit_time FROM visited v JOIN enrolled e USING (clinic_id)"
      "   UNION ALL SELECT clinic_id, 1, NULL FROM enrolled"
      "   UNION ALL SELECT clinic_id, 2, visit_time FROM visited WHERE NOT EXISTS (SELECT 1 FROM enrolled)"
      " ) candidates ORDER BY rank, visit_time DESC NULLS LAST, clinic_id LIMIT 1",
      {tenant, patient_id});
  if (latest.rows() == 0) return std::nullopt;
  return latest.Get(0, 0);
}

std::optional<std::string> PgProgressWriter::LockEvaluationsAndFindAdjustment(const std::string& tenant,
                                                                               const std::string& patient_id,
                                                                               const std::string& adjustment_key) {
  // Short and local: an advisory lock held to the end of this transaction.
  conn_.Exec("SELECT pg_advisory_xact_lock(hashtext($1))", {"evaluate/" + tenant + "/" + patient_id});
  auto first = conn_.Exec("SELECT evaluation_id FROM progress.evaluations WHERE tenant_id = $1 AND adjustment_key = $2",
                          {tenant, adjustment_key});
  if (first.rows() == 0) return std::nullopt;
  return first.Get(0, 0);
}

void PgProgressWriter::InsertEvaluation(const std::string& tenant, const std::string& patient_id,
                                        const v1::Evaluation& evaluation,
                                        const std::optional<std::string>& adjustment_key) {
  conn_.Defer({"INSERT INTO progress.evaluations (tenant_id, evaluation_id, patient_id, decision, body,"
             " adjustment_key) VALUES ($1,$2,$3,$4,$5::jsonb,$6)",
             {tenant, evaluation.evaluation_id(), patient_id, v1::Decision_Name(evaluation.decision()),
              ToJson(evaluation), adjustment_key}});
}

void PgProgressWriter::InsertEmergencyAccess(const std::string& tenant, const std::string& grant_id,
                                             const std::string& principal, const std::string& patient_id,
                                             const std::string& reason, std::int64_t expires_unix) {
  conn_.Defer({"INSERT INTO progress.emergency_access (tenant_id, grant_id, principal, patient_id, reason, expires_at)"
             " VALUES ($1,$2,$3,$4,$5, to_timestamp($6))",
             {tenant, grant_id, principal, patient_id, reason, std::to_string(expires_unix)}});
}

void PgProgressWriter::AppendEvent(const std::string& tenant, const std::string& kind, const std::string& patient_id,
                                   const std::string& resource_id) {
  physio::AppendEvent(conn_, kSchema, tenant, kind, patient_id, resource_id);
}

PatientRecords PgProgressRecords::ReadPatient(const std::string& tenant, const std::string& patient_id,
                                              const EvaluationPolicy& policy, Clock::time_point deadline) {
  PatientRecords records;
  WithTransaction(pool_, deadline, [&](PgConnection& conn) {
    // The four reads in one round trip (with the held BEGIN).
    auto rows = conn.ExecPipeline(
        {HistoryStatement(tenant, patient_id, "visits", "visit_time", policy),
         HistoryStatement(tenant, patient_id, "home_exercise_logs", "performed_time", policy),
         HistoryStatement(tenant, patient_id, "outcome_measures", "measure_time", policy),
         {"SELECT body FROM progress.alerts WHERE tenant_id = $1 AND patient_id = $2 AND status = 'OPEN'"
          " ORDER BY created_at",
          {tenant, patient_id}}});
    records.visits = Parsed<v1::Visit>(rows[0]);
    records.home_logs = Parsed<v1::HomeExerciseLog>(rows[1]);
    records.measures = Parsed<v1::OutcomeMeasure>(rows[2]);
    records.open_alerts = Parsed<v1::Alert>(rows[3]);
  });
  return records;
}

ExportedRecords PgProgressRecords::ReadForExport(const std::string& tenant, const std::string& patient_id,
                                                 const EvaluationPolicy& policy, Clock::time_point deadline) {
  ExportedRecords records;
  WithTransaction(pool_, deadline, [&](PgConnection& conn) {
    auto rows = conn.ExecPipeline(
        {HistoryStatement(tenant, patient_id, "visits", "visit_time", policy),
         HistoryStatement(tenant, patient_id, "outcome_measures", "measure_time", policy),
         {"SELECT body FROM progress.alerts WHERE tenant_id = $1 AND patient_id = $2"
          " ORDER BY created_at, alert_id LIMIT $3",
          {tenant, patient_id, std::to_string(policy.history_max_rows)}}});
    records.visits = Parsed<v1::Visit>(rows[0]);
    records.measures = Parsed<v1::OutcomeMeasure>(rows[1]);
    records.alerts = Parsed<v1::Alert>(rows[2]);
  });
  return records;
}

std::optional<std::string> PgProgressRecords::PatientOfRecord(const std::string& tenant, const std::string& record_id,
                                                              Clock::time_point deadline) {
  auto rows = QueryOnce(pool_, deadline,
                        {"SELECT patient_id FROM progress.visits WHERE tenant_id = $1 AND visit_id = $2"
                         " UNION ALL SELECT patient_id FROM progress.outcome_measures WHERE tenant_id = $1 AND measure_id = $2"
                         " UNION ALL SELECT patient_id FROM progress.alerts WHERE tenant_id = $1 AND alert_id = $2 LIMIT 1",
                         {tenant, record_id}});
  if (rows.rows() == 0) return std::nullopt;
  return rows.Get(0, 0);
}

AlertPage PgProgressRecords::ListAlerts(const std::string& tenant, const std::string& clinic_id,
                                        bool include_acknowledged, const KeysetPosition& after, int page_size,
                                        Clock::time_point deadline) {
  // One more than the page: whether another page follows. Open alerts only and every alert, the
  // first page and the next, are each their own statement, so each is one range scan of an index
  // in its order (alerts_open_by_clinic, alerts_by_clinic) however many alerts the clinic has had.
  std::string sql =
      "SELECT body, created_at::text AS page_at, alert_id FROM progress.alerts WHERE tenant_id = $1 AND clinic_id = $2";
  if (!include_acknowledged) sql += " AND status = 'OPEN'";
  std::vector<PgParam> params = {tenant, clinic_id};
  if (after.created_at) {
    sql += " AND (created_at, alert_id) < ($3::timestamptz, $4)";
    params.push_back(after.created_at);
    params.push_back(after.id);
  }
  sql += " ORDER BY created_at DESC, alert_id DESC LIMIT $" + std::to_string(params.size() + 1);
  params.push_back(std::to_string(page_size + 1));
  auto rows = QueryOnce(pool_, deadline, {sql, params});
  AlertPage page;
  const int returned = std::min(rows.rows(), page_size);
  for (int i = 0; i < returned; ++i) FromJson(rows.Get(i, 0), &page.alerts.emplace_back());
  if (rows.rows() > page_size) page.next = KeysetPosition{rows.Get(returned - 1, 1), rows.Get(returned - 1, 2)};
  return page;
}

BulkExportSource::Batch PgProgressExportSource::Next(PgConnection& conn, const BulkExportJob& job,
                                                     const std::string& checkpoint, int limit) {
  // The tables in turn; the Observation of a visit's pain comes with the visit, a re-measure's alone.
  struct Table {
    char phase;
    const char* name;
    const char* id;
    bool wanted;
  };
  const bool observations = job.types.contains("Observation");
  const Table tables[] = {{'v', "visits", "visit_id", job.types.contains("Encounter") || observations},
                          {'m', "outcome_measures", "measure_id", observations},
                          {'a', "alerts", "alert_id", job.types.contains("Flag")}};
  const char phase = checkpoint.empty() ? 'v' : checkpoint[0];
  const std::string after = checkpoint.size() > 2 ? checkpoint.substr(2) : "";
  Batch batch;
  bool started = false;
  for (std::size_t t = 0; t < std::size(tables); ++t) {
    const Table& table = tables[t];
    if (!started && table.phase != phase) continue;
    const std::string from = started ? "" : after;
    started = true;
    if (!table.wanted) continue;
    auto rows = conn.Exec(std::string("SELECT r.body, r.") + table.id + ", r.patient_id FROM progress." + table.name +
                              " r WHERE " + BulkExportScopeSql() + " AND r." + table.id + " > $3 ORDER BY r." +
                              table.id + " LIMIT $4",
                          {job.tenant, job.group_id, from, std::to_string(limit)});
    for (int i = 0; i < rows.rows(); ++i) {
      const std::string patient = rows.Get(i, 2);
      std::vector<nlohmann::json> resources;
      if (table.phase == 'v') {
        v1::Visit visit;
        FromJson(rows.Get(i, 0), &visit);
        resources = ProgressRestResources(patient, {visit}, {}, {}, identifier_system_);
      } else if (table.phase == 'm') {
        v1::OutcomeMeasure measure;
        FromJson(rows.Get(i, 0), &measure);
        resources = ProgressRestResources(patient, {}, {measure}, {}, identifier_system_);
      } else {
        v1::Alert alert;
        FromJson(rows.Get(i, 0), &alert);
        resources = ProgressRestResources(patient, {}, {}, {alert}, identifier_system_);
      }
      for (auto& resource : resources) batch.resources.push_back(std::move(resource));
    }
    if (rows.rows() == limit) {
      batch.checkpoint = std::string(1, table.phase) + ":" + rows.Get(rows.rows() - 1, 1);
      return batch;
    }
    if (!batch.resources.empty() && t + 1 < std::size(tables)) {
      batch.checkpoint = std::string(1, tables[t + 1].phase) + ":";  // the next table in the next batch
      return batch;
    }
  }
  batch.checkpoint = "a:~";
  batch.done = true;
  return batch;
}

}  // namespace physio::progress
