#include "task_records.h"

#include "physio/db/events.h"

namespace physio::progress {

namespace {
// Each schedule entry as a row (jsonb_to_recordset), after the plan's own columns.
std::string SchedulesSql(const std::string& where, const std::string& limit) {
  return "SELECT s.tenant_id, s.plan_id, s.patient_id, extract(epoch FROM s.activate_at)::bigint,"
         " s.home_sessions_per_week, e.instrument, e.day, e.purpose FROM (SELECT * FROM planning.plan_schedules s"
         " WHERE s.status = 'ACTIVE' AND s.activate_at IS NOT NULL AND " + where +
         " ORDER BY s.tenant_id, s.plan_id LIMIT " + limit + ") s"
         " LEFT JOIN LATERAL jsonb_to_recordset(s.schedule) AS e(instrument text, day int, purpose text) ON true"
         " ORDER BY s.tenant_id, s.plan_id, e.day";
}
}  // namespace

std::vector<PlanSchedule> PgTaskRecords::SchedulesOf(const PgResult& rows) const {
  std::vector<PlanSchedule> schedules;
  for (int i = 0; i < rows.rows(); ++i) {
    if (schedules.empty() || schedules.back().tenant != rows.Get(i, 0) || schedules.back().plan_id != rows.Get(i, 1)) {
      PlanSchedule schedule;
      schedule.tenant = rows.Get(i, 0);
      schedule.plan_id = rows.Get(i, 1);
      schedule.patient_id = rows.Get(i, 2);
      schedule.activated = std::stoll(rows.Get(i, 3));
      schedule.home_sessions_per_week = std::stoi(rows.Get(i, 4));
      schedules.push_back(std::move(schedule));
    }
    if (!rows.IsNull(i, 5) && !rows.IsNull(i, 6)) {
      schedules.back().schedule.push_back({rows.Get(i, 5), std::stoi(rows.Get(i, 6)), rows.Get(i, 7)});
    }
  }
  return schedules;
}

std::vector<PlanSchedule> PgTaskRecords::ActiveSchedules(const std::string& tenant, const std::string& patient_id,
                                                         const std::string& clinic, Clock::time_point deadline) {
  return SchedulesOf(QueryOnce(
      pool_, deadline,
      {SchedulesSql("s.tenant_id = $1 AND ($2 = '' OR s.patient_id = $2) AND ($3 = '' OR EXISTS (SELECT 1 FROM"
                    " assessment.patient_clinics c WHERE c.tenant_id = s.tenant_id AND c.patient_id = s.patient_id"
                    " AND c.clinic_id = $3))",
                    "5000"),
       {tenant, patient_id, clinic}}));
}

std::vector<PlanSchedule> PgTaskRecords::ActiveSchedulesAfter(const std::string& tenant, const std::string& plan_id,
                                                              int limit, Clock::time_point deadline) {
  return SchedulesOf(QueryOnce(pool_, deadline,
                               {SchedulesSql("(s.tenant_id, s.plan_id) > ($1, $2)", std::to_string(limit)),
                                {tenant, plan_id}}));
}

std::map<std::string, std::vector<RecordedMeasure>> PgTaskRecords::Measures(const std::string& tenant,
                                                                            const std::vector<std::string>& patients,
                                                                            std::int64_t since,
                                                                            Clock::time_point deadline) {
  // Re-measures, and the pain a visit recorded (an NPRS the clinician took).
  auto rows = QueryOnce(
      pool_, deadline,
      {"SELECT patient_id, instrument, extract(epoch FROM measure_time)::bigint FROM progress.outcome_measures"
       " WHERE tenant_id = $1 AND patient_id = ANY($2::text[]) AND measure_time >= to_timestamp($3::bigint)"
       " UNION ALL SELECT patient_id, 'INSTRUMENT_NPRS', extract(epoch FROM visit_time)::bigint FROM progress.visits"
       " WHERE tenant_id = $1 AND patient_id = ANY($2::text[]) AND visit_time >= to_timestamp($3::bigint)"
       " AND body ? 'pain_before'",
       {tenant, PgTextArray(patients), std::to_string(since)}});
  std::map<std::string, std::vector<RecordedMeasure>> measures;
  for (int i = 0; i < rows.rows(); ++i) {
    measures[rows.Get(i, 0)].push_back({rows.Get(i, 1), std::stoll(rows.Get(i, 2))});
  }
  return measures;
}

std::map<std::string, int> PgTaskRecords::HomeSessionsSince(const std::string& tenant,
                                                            const std::map<std::string, std::int64_t>& since,
                                                            Clock::time_point deadline) {
  std::vector<std::string> patients, starts;
  for (const auto& [patient, start] : since) {
    patients.push_back(patient);
    starts.push_back(std::to_string(start));
  }
  std::string start_array = "{";
  for (std::size_t i = 0; i < starts.size(); ++i) start_array += (i ? "," : "") + starts[i];
  start_array += "}";
  // One session a day counts once, whatever number of exercises were logged for it.
  auto rows = QueryOnce(
      pool_, deadline,
      {"SELECT p.patient_id, count(DISTINCT date_trunc('day', l.performed_time)) FROM unnest($2::text[], $3::bigint[])"
       " AS p(patient_id, since) JOIN progress.home_exercise_logs l ON l.tenant_id = $1 AND l.patient_id = p.patient_id"
       " AND l.performed_time >= to_timestamp(p.since) GROUP BY p.patient_id",
       {tenant, PgTextArray(patients), start_array}});
  std::map<std::string, int> sessions;
  for (int i = 0; i < rows.rows(); ++i) sessions[rows.Get(i, 0)] = std::stoi(rows.Get(i, 1));
  return sessions;
}

bool PgTaskRecords::Notify(const std::string& tenant, const std::string& patient_id, const std::string& task_id,
                           const std::string& notice, const std::string& also, Clock::time_point deadline) {
  bool given = false;
  WithTransaction(pool_, deadline, [&](PgConnection& conn) {
    given = conn.Exec("INSERT INTO progress.task_notices (tenant_id, task_id, notice, patient_id) VALUES ($1, $2, $3, $4)"
                      " ON CONFLICT DO NOTHING RETURNING 1",
                      {tenant, task_id, notice, patient_id})
                .rows() > 0;
    if (!given) return;
    if (!also.empty()) {
      conn.Exec("INSERT INTO progress.task_notices (tenant_id, task_id, notice, patient_id) VALUES ($1, $2, $3, $4)"
                " ON CONFLICT DO NOTHING",
                {tenant, task_id, also, patient_id});
    }
    AppendEvent(conn, "progress", tenant, notice == "due" ? "EVENT_KIND_QUESTIONNAIRE_DUE" : "EVENT_KIND_QUESTIONNAIRE_OVERDUE",
                patient_id, task_id);
  });
  return given;
}

}  // namespace physio::progress
