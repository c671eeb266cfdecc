#include "outcome_report_records.h"

#include <google/protobuf/util/time_util.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

#include "physio/db/proto_json.h"
#include "summary.h"

namespace physio::progress {

namespace pb = physio::progress::v1;
using google::protobuf::util::TimeUtil;

namespace {
std::string IsoTime(std::int64_t seconds) { return TimeUtil::ToString(TimeUtil::SecondsToTimestamp(seconds)); }

// The SQL of a group's key.
std::string KeyOf(pb::ReportGrouping grouping) {
  switch (grouping) {
    case pb::REPORT_GROUPING_CLINIC: return "e.clinic_id";
    case pb::REPORT_GROUPING_PRACTITIONER: return "e.practitioner";
    case pb::REPORT_GROUPING_RISK_GROUP: return "e.risk_group";
    case pb::REPORT_GROUPING_SUBGROUP: return "e.subgroup";
    case pb::REPORT_GROUPING_PHASE: return "e.phase";
    case pb::REPORT_GROUPING_QUARTER: return "to_char(e.started_at AT TIME ZONE 'UTC', 'YYYY-\"Q\"Q')";
    default: return "'all'";
  }
}

// A distribution's figures from count and percentile_cont(ARRAY[0.25, 0.5, 0.75]) ("{1,2.5,4}" or NULL).
void ReadDistribution(const PgResult& rows, int row, int column, pb::ReportDistribution* out) {
  out->set_count(static_cast<int>(rows.GetLong(row, column)));
  if (rows.IsNull(row, column + 1)) return;
  std::string text = rows.Get(row, column + 1);
  std::vector<double> values;
  std::string number;
  for (const char c : text) {
    if (c == '{' || c == '}' || c == ',') {
      if (!number.empty() && number != "NULL") values.push_back(std::stod(number));
      number.clear();
    } else {
      number += c;
    }
  }
  if (values.size() != 3) return;
  auto rounded = [](double value) { return std::round(value * 100.0) / 100.0; };
  out->set_q1(rounded(values[0]));
  out->set_median(rounded(values[1]));
  out->set_q3(rounded(values[2]));
}

void ReadShare(const PgResult& rows, int row, int column, pb::ReportShare* out) {
  out->set_of(static_cast<int>(rows.GetLong(row, column)));
  out->set_count(static_cast<int>(rows.GetLong(row, column + 1)));
  if (out->of() > 0) out->set_percent(std::round(1000.0 * out->count() / out->of()) / 10.0);
}

std::string Quartiles(const std::string& expression) {
  return "count(" + expression + ")::int, percentile_cont(ARRAY[0.25, 0.5, 0.75]) WITHIN GROUP (ORDER BY " +
         expression + ")";
}

std::vector<PatientToRefresh> Patients(const PgResult& rows, bool with_change = false) {
  std::vector<PatientToRefresh> patients;
  for (int i = 0; i < rows.rows(); ++i) {
    patients.push_back({rows.Get(i, 0), rows.Get(i, 1), with_change ? rows.Get(i, 2) : std::string()});
  }
  return patients;
}
}  // namespace

std::vector<pb::OutcomeReportGroup> PgOutcomeReports::Groups(const std::string& tenant,
                                                             const OutcomeReportQuery& query,
                                                             Clock::time_point deadline) {
  std::string clinics = "{";
  for (const auto& clinic : query.clinics) clinics += (clinics.size() > 1 ? "," : "") + clinic;
  clinics += "}";
  const std::string sql =
      "SELECT " + KeyOf(query.group_by) +
      " AS key, count(*)::int, count(*) FILTER (WHERE e.status = 'COMPLETED')::int,"
      " count(*) FILTER (WHERE e.status = 'DISCHARGED')::int, count(*) FILTER (WHERE e.referred)::int,"
      " count(*) FILTER (WHERE e.intake_red_flag OR COALESCE(p.red_flag_alerts, 0) > 0)::int,"
      " count(*) FILTER (WHERE e.discharge_reason = 'GOALS_MET')::int,"
      " count(*) FILTER (WHERE e.discharge_reason = 'SELF_MANAGING')::int,"
      " count(*) FILTER (WHERE e.discharge_reason = 'DID_NOT_ATTEND')::int, count(*) FILTER (WHERE e.relapses > 0)::int, " +
      Quartiles("e.baseline_nprs") + ", " + Quartiles("p.latest_pain") + ", " + Quartiles("e.baseline_odi") + ", " +
      Quartiles("p.latest_odi") + ", " + Quartiles("e.baseline_rmdq") + ", " + Quartiles("p.latest_rmdq") + ", " +
      Quartiles("p.adherence_percent") + ", " +
      Quartiles("EXTRACT(EPOCH FROM e.ended_at - e.started_at) / 604800.0") +
      ", count(*) FILTER (WHERE p.pain_judged)::int, count(*) FILTER (WHERE p.pain_improved)::int,"
      " count(*) FILTER (WHERE p.disability_judged)::int, count(*) FILTER (WHERE p.disability_improved)::int,"
      " count(*) FILTER (WHERE p.course_status IN ('ON_TRACK', 'SLOWER_THAN_EXPECTED', 'RECOVERED', 'NEEDS_REVIEW'))::int,"
      " count(*) FILTER (WHERE p.course_status IN ('ON_TRACK', 'RECOVERED'))::int"
      " FROM planning.episodes e LEFT JOIN progress.episode_progress p"
      " ON p.tenant_id = e.tenant_id AND p.plan_id = e.plan_id"
      " WHERE e.tenant_id = $1 AND e.started_at >= $2::timestamptz AND e.started_at < $3::timestamptz"
      " AND ($4::boolean OR e.clinic_id = ANY($5::text[])) GROUP BY 1 ORDER BY 1";
  auto rows = QueryOnce(pool_, deadline,
                        {sql,
                         {tenant, IsoTime(query.start_seconds), IsoTime(query.end_seconds),
                          query.all_clinics ? "true" : "false", clinics}});
  std::vector<pb::OutcomeReportGroup> groups;
  for (int i = 0; i < rows.rows(); ++i) {
    pb::OutcomeReportGroup group;
    group.set_key(rows.Get(i, 0));
    group.set_episodes_started(static_cast<int>(rows.GetLong(i, 1)));
    group.set_episodes_completed(static_cast<int>(rows.GetLong(i, 2)));
    group.set_episodes_discharged(static_cast<int>(rows.GetLong(i, 3)));
    group.set_episodes_referred(static_cast<int>(rows.GetLong(i, 4)));
    group.set_episodes_with_red_flags(static_cast<int>(rows.GetLong(i, 5)));
    group.set_episodes_goals_met(static_cast<int>(rows.GetLong(i, 6)));
    group.set_episodes_self_managing(static_cast<int>(rows.GetLong(i, 7)));
    group.set_episodes_did_not_attend(static_cast<int>(rows.GetLong(i, 8)));
    group.set_episodes_relapsed(static_cast<int>(rows.GetLong(i, 9)));
    int column = 10;
    for (auto* distribution :
         {group.mutable_baseline_pain(), group.mutable_latest_pain(), group.mutable_baseline_odi(),
          group.mutable_latest_odi(), group.mutable_baseline_rmdq(), group.mutable_latest_rmdq(),
          group.mutable_adherence_percent(), group.mutable_weeks_to_end()}) {
      ReadDistribution(rows, i, column, distribution);
      column += 2;
    }
    for (auto* share : {group.mutable_pain_meaningful_change(), group.mutable_disability_meaningful_change(),
                        group.mutable_on_track()}) {
      ReadShare(rows, i, column, share);
      column += 2;
    }
    groups.push_back(std::move(group));
  }
  return groups;
}

std::vector<PatientToRefresh> PgOutcomeReports::Changed(int limit, Clock::time_point deadline) {
  return Patients(QueryOnce(pool_, deadline,
                            {"SELECT tenant_id, patient_id, max(change_id) FROM progress.episode_changes"
                             " GROUP BY tenant_id, patient_id ORDER BY min(change_id) LIMIT $1",
                             {std::to_string(limit)}}),
                  true);
}

std::vector<PatientToRefresh> PgOutcomeReports::ChangedByPlanning(std::chrono::seconds look_back, int limit,
                                                                  Clock::time_point deadline) {
  const auto seconds = std::clamp<long>(look_back.count(), 1, 3600);
  return Patients(QueryOnce(
      pool_, deadline,
      {"SELECT e.tenant_id, e.patient_id FROM planning.episodes e"
       " WHERE e.updated_at > now() - make_interval(secs => $2::int)"
       " AND NOT EXISTS (SELECT 1 FROM progress.episode_progress p WHERE p.tenant_id = e.tenant_id"
       " AND p.plan_id = e.plan_id AND p.computed_at >= e.updated_at) ORDER BY e.updated_at LIMIT $1",
       {std::to_string(limit), std::to_string(seconds)}}));
}

const char* StaleFiguresSql() {
  return "SELECT tenant_id, patient_id FROM progress.episode_progress WHERE episode_open"
         " AND computed_at < now() - make_interval(secs => $1::int) ORDER BY computed_at LIMIT $2";
}

std::vector<PatientToRefresh> PgOutcomeReports::StaleOpen(std::chrono::seconds age, int limit,
                                                          bool never_computed, Clock::time_point deadline) {
  const std::string seconds = std::to_string(age.count());
  // First the due figures whose episode is no longer open as that plan (it ended, or a revision or a
  // relapse gave it another plan, whose figures have a row of their own): marked, so that they leave
  // the index the walk reads. Bounded (a backlog, from before migration 0009, drains over passes);
  // rows another replica holds are skipped, never waited for.
  WithTransaction(pool_, deadline, [&](PgConnection& conn) {
    conn.Exec("SET LOCAL synchronous_commit = off");  // derived, as the figures are (Refreshed)
    conn.Exec(
        "UPDATE progress.episode_progress p SET episode_open = false WHERE (p.tenant_id, p.plan_id) IN ("
        " SELECT q.tenant_id, q.plan_id FROM progress.episode_progress q WHERE q.episode_open"
        " AND q.computed_at < now() - make_interval(secs => $1::int) AND NOT EXISTS (SELECT 1 FROM planning.episodes e"
        " WHERE e.tenant_id = q.tenant_id AND e.plan_id = q.plan_id AND e.ended_at IS NULL)"
        " ORDER BY q.computed_at LIMIT $2 FOR UPDATE SKIP LOCKED)",
        {seconds, std::to_string(std::max(limit, 1) * 5)});
  });
  auto patients = Patients(QueryOnce(pool_, deadline, {StaleFiguresSql(), {seconds, std::to_string(limit)}}));
  if (never_computed) {
    // Open episodes with no open figures of their plan: a change the refresher never saw (it was
    // down for longer than the planning changes' hour). Every open episode is looked at, so this
    // runs rarely (EpisodeRefresherSettings::never_computed_every).
    auto missing = Patients(QueryOnce(
        pool_, deadline,
        {"SELECT e.tenant_id, e.patient_id FROM planning.episodes e WHERE e.ended_at IS NULL AND NOT EXISTS"
         " (SELECT 1 FROM progress.episode_progress p WHERE p.tenant_id = e.tenant_id AND p.plan_id = e.plan_id"
         " AND p.episode_open) LIMIT $1",
         {std::to_string(limit)}}));
    for (auto& patient : missing) patients.push_back(std::move(patient));
  }
  return patients;
}

const char* EpisodeOfPatientSql() {
  return "SELECT plan_id, plan, extract(epoch FROM started_at)::bigint, extract(epoch FROM ended_at)::bigint,"
         " episode_id FROM planning.episodes WHERE tenant_id = $1 AND patient_id = $2"
         " ORDER BY (ended_at IS NULL) DESC, started_at DESC LIMIT 1";
}

std::optional<EpisodeOfPatient> PgOutcomeReports::EpisodeOf(const std::string& tenant, const std::string& patient_id,
                                                             Clock::time_point deadline) {
  auto rows = QueryOnce(pool_, deadline, {EpisodeOfPatientSql(), {tenant, patient_id}});
  if (rows.rows() == 0) return std::nullopt;
  EpisodeOfPatient episode;
  episode.plan_id = rows.Get(0, 0);
  FromJson(rows.Get(0, 1), &episode.plan);
  episode.started_seconds = rows.GetLong(0, 2);
  if (!rows.IsNull(0, 3)) episode.ended_seconds = rows.GetLong(0, 3);
  episode.episode_id = rows.Get(0, 4);
  return episode;
}

void PgOutcomeReports::Refreshed(const PatientToRefresh& patient, const EpisodeOfPatient* episode,
                                 const EpisodeFigures* figures, Clock::time_point deadline) {
  if ((!episode || !figures) && patient.last_change.empty()) return;
  auto number = [](const std::optional<double>& value) {
    return value ? PgParam(std::to_string(*value)) : PgParam();
  };
  auto flag = [](bool value) { return PgParam(value ? "true" : "false"); };
  WithTransaction(pool_, deadline, [&](PgConnection& conn) {
    // Figures derived from the records, stored with the change rows they answer in one commit,
    // which need not wait for the disk: lost in a crash (or a failover) before it is flushed, both
    // are lost together, the change rows are still there, and the next pass computes the same
    // figures again. So a refresh costs the request path's commits no flush of their own.
    conn.Exec("SET LOCAL synchronous_commit = off");
    if (episode && figures) {
      conn.Exec(
          "INSERT INTO progress.episode_progress (tenant_id, plan_id, patient_id, latest_pain, pain_judged, pain_improved,"
          " latest_odi, latest_rmdq, disability_judged, disability_improved, adherence_percent, course_status,"
          " red_flag_alerts, computed_at, episode_open) VALUES ($1, $2, $3, $4::float8, $5::boolean, $6::boolean, $7::float8,"
          " $8::float8, $9::boolean, $10::boolean, $11::float8, $12, (SELECT count(*) FROM progress.alerts a"
          " WHERE a.tenant_id = $1 AND a.patient_id = $3 AND a.kind IN ('ALERT_KIND_RED_FLAG', 'ALERT_KIND_SAFETY_NET')"
          " AND a.created_at >= to_timestamp($13) AND ($14::bigint IS NULL OR a.created_at <= to_timestamp($14))),"
          " clock_timestamp(), $14::bigint IS NULL) ON CONFLICT (tenant_id, plan_id) DO UPDATE SET latest_pain = EXCLUDED.latest_pain,"
          " pain_judged = EXCLUDED.pain_judged, pain_improved = EXCLUDED.pain_improved, latest_odi = EXCLUDED.latest_odi,"
          " latest_rmdq = EXCLUDED.latest_rmdq, disability_judged = EXCLUDED.disability_judged,"
          " disability_improved = EXCLUDED.disability_improved, adherence_percent = EXCLUDED.adherence_percent,"
          " course_status = EXCLUDED.course_status, red_flag_alerts = EXCLUDED.red_flag_alerts,"
          " computed_at = EXCLUDED.computed_at, episode_open = EXCLUDED.episode_open",
          {patient.tenant, episode->plan_id, patient.patient_id, number(figures->latest_pain),
           flag(figures->pain_judged), flag(figures->pain_improved), number(figures->latest_odi),
           number(figures->latest_rmdq), flag(figures->disability_judged), flag(figures->disability_improved),
           number(figures->adherence_percent), figures->course_status, std::to_string(episode->started_seconds),
           episode->ended_seconds ? PgParam(std::to_string(*episode->ended_seconds)) : PgParam()});
    }
    if (!patient.last_change.empty()) {
      conn.Exec("DELETE FROM progress.episode_changes WHERE tenant_id = $1 AND patient_id = $2"
                " AND change_id <= $3::bigint",
                {patient.tenant, patient.patient_id, patient.last_change});
    }
  });
}

EpisodeRefresher::EpisodeRefresher(PgOutcomeReports& store, ProgressRecords& records, EvaluationPolicy policy,
                                   EpisodeRefresherSettings settings)
    : store_(store),
      records_(records),
      policy_(policy),
      settings_(settings),
      planning_window_(std::chrono::hours(1), std::chrono::seconds(30)) {
  thread_ = std::jthread([this](std::stop_token stop) {
    while (!stop.stop_requested()) {
      int refreshed = 0;
      try {
        refreshed = Pass();
        if (failing_) spdlog::info("outcome report figures: passes succeed again");
        failing_ = false;
      } catch (const std::exception& e) {
        // Once when a store goes away, then once a minute while it stays away.
        const auto now = Clock::now();
        if (!failing_ || now - last_warning_ > std::chrono::minutes(1)) {
          spdlog::warn("outcome report figures: pass failed (tried again every interval): {}", e.what());
          last_warning_ = now;
        }
        failing_ = true;
      }
      // A full batch: more are waiting, go on at once.
      if (refreshed >= settings_.batch) continue;
      std::unique_lock lock(mutex_);
      wake_.wait_for(lock, stop, settings_.interval, [] { return false; });
    }
  });
}

EpisodeRefresher::~EpisodeRefresher() {
  thread_.request_stop();
  wake_.notify_all();
}

int EpisodeRefresher::Pass() {
  const auto began = Clock::now();
  const auto deadline = began + std::chrono::seconds(30);
  std::vector<PatientToRefresh> patients = store_.Changed(settings_.batch, deadline);
  const auto batch = static_cast<std::size_t>(settings_.batch);
  bool more_waiting = patients.size() >= batch;
  std::set<std::pair<std::string, std::string>> seen;
  for (const auto& patient : patients) seen.insert({patient.tenant, patient.patient_id});
  // Once a minute or so, not every pass: the whole hour of plan changes, and the walk over the open
  // episodes for stale figures.
  const long pass = passes_++;
  const bool periodic = pass % settings_.stale_every_passes == 0;
  auto by_planning = store_.ChangedByPlanning(planning_window_.For(began, periodic), settings_.batch, deadline);
  more_waiting |= by_planning.size() >= batch;
  for (auto& patient : by_planning) {
    if (seen.insert({patient.tenant, patient.patient_id}).second) patients.push_back(std::move(patient));
  }
  if (periodic) {
    const bool never_computed = pass / settings_.stale_every_passes % settings_.never_computed_every == 0;
    auto stale = store_.StaleOpen(settings_.stale_after, settings_.batch, never_computed, deadline);
    more_waiting |= stale.size() >= batch;
    for (auto& patient : stale) {
      if (seen.insert({patient.tenant, patient.patient_id}).second) patients.push_back(std::move(patient));
    }
  }
  int refreshed = 0;
  for (const auto& patient : patients) {
    try {
      Refresh(patient, Clock::now() + std::chrono::seconds(10));
      ++refreshed;
    } catch (const std::exception& e) {
      // Its change row stays: tried again next pass. No patient id in the log (PHI).
      spdlog::warn("outcome report figures: one patient's refresh failed: {}", e.what());
    }
  }
  if (!more_waiting && refreshed == static_cast<int>(patients.size())) {
    caught_up_->store(Clock::now().time_since_epoch().count(), std::memory_order_relaxed);
    planning_window_.CaughtUp(began);
  }
  return refreshed;
}

void EpisodeRefresher::Refresh(const PatientToRefresh& patient, Clock::time_point deadline) {
  const auto episode = store_.EpisodeOf(patient.tenant, patient.patient_id, deadline);
  if (episode) {
    PatientRecords records = records_.ReadPatient(patient.tenant, patient.patient_id, policy_, deadline);
    std::int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                           std::chrono::system_clock::now().time_since_epoch()).count();
    if (episode->ended_seconds) {
      // An ended episode's figures are as they stood at its end.
      now = std::min(now, *episode->ended_seconds);
      KeepRecordsWithin(records, std::numeric_limits<std::int64_t>::min(), now);
    }
    const ProgressSnapshot snapshot = Summarize(patient.patient_id, &episode->plan, records, now, policy_);
    const EpisodeFigures figures = FiguresOf(snapshot.summary);
    store_.Refreshed(patient, &*episode, &figures, deadline);
    return;
  }
  store_.Refreshed(patient, nullptr, nullptr, deadline);
}

}  // namespace physio::progress
