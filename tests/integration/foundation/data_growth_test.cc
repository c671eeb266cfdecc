// The data-growth benchmark of docs/benchmarks.md (issue 33, "flat with data"; run by hand:
// --gtest_also_run_disabled_tests --gtest_filter='*DataGrowth*'; PHYSIO_GROWTH_ROWS sets the
// rows added for one patient, default 90,000, besides 500,000 for others and 200,000 alerts): the
// first and a deep page of ListAssessments and ListAlerts before and after the tables grow, the
// plans PostgreSQL chose, and the table and index sizes per million rows.
#include <algorithm>
#include <cstdio>
#include <set>

#include "foundation.h"
#include "outcome_report_records.h"
#include "progress_records.h"

namespace physio::testing {
namespace {

class DataGrowth : public Foundation {
 protected:
  // Every row of a query's answer, one per line (EXPLAIN's plan).
  std::string Lines(const std::string& sql) const {
    const std::string conninfo =
        "host=127.0.0.1 port=" + std::to_string(postgres_->port()) + " user=postgres dbname=physio";
    PGconn* conn = PQconnectdb(conninfo.c_str());
    PGresult* result = PQexec(conn, sql.c_str());
    std::string out;
    for (int i = 0; PQresultStatus(result) == PGRES_TUPLES_OK && i < PQntuples(result); ++i) {
      out += std::string("    ") + PQgetvalue(result, i, 0) + "\n";
    }
    if (PQresultStatus(result) != PGRES_TUPLES_OK) out = PQerrorMessage(conn);
    PQclear(result);
    PQfinish(conn);
    return out;
  }

  // Those of `names` (in name order) that are built and valid, comma-separated: once all are, or
  // after 60 s (the services build their indexes concurrently after they start).
  std::string ValidIndexes(const std::vector<std::string>& names) const {
    std::string in;
    for (const auto& name : names) in += (in.empty() ? "'" : ", '") + name + "'";
    std::string valid;
    for (int attempt = 0; attempt < 120; ++attempt) {
      if (attempt > 0) std::this_thread::sleep_for(std::chrono::milliseconds(500));
      valid = postgres_->Execute("SELECT coalesce(string_agg(c.relname, ',' ORDER BY c.relname), '') FROM pg_index i"
                                 " JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname IN (" + in +
                                     ") AND i.indisvalid",
                                 "physio");
      valid = valid.substr(0, valid.find_first_of("\r\n"));
      if (!valid.empty() && static_cast<std::size_t>(std::count(valid.begin(), valid.end(), ',')) + 1 == names.size()) {
        break;
      }
    }
    return valid;
  }

  // Median milliseconds of `call` over `times` runs.
  template <typename Call>
  static double MedianMs(int times, Call call) {
    std::vector<double> ms;
    for (int i = 0; i < times; ++i) {
      const auto started = std::chrono::steady_clock::now();
      call();
      ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count());
    }
    std::sort(ms.begin(), ms.end());
    return ms[ms.size() / 2];
  }

  // The first page of the patient's assessments and the page after `depth` pages (its token found once).
  std::pair<double, double> AssessmentPages(const Caller& caller, int depth) const {
    apb::ListAssessmentsRequest request;
    request.set_patient_id(patient_id_);
    request.set_page_size(20);
    apb::ListAssessmentsResponse response;
    const double first = MedianMs(30, [&] {
      EXPECT_TRUE(caller.Call(caller.assessment.get(), &apb::AssessmentService::Stub::ListAssessments, request, &response).ok());
    });
    for (int page = 0; page < depth && !response.next_page_token().empty(); ++page) {
      request.set_page_token(response.next_page_token());
      EXPECT_TRUE(caller.Call(caller.assessment.get(), &apb::AssessmentService::Stub::ListAssessments, request, &response).ok());
    }
    const double deep = MedianMs(30, [&] {
      EXPECT_TRUE(caller.Call(caller.assessment.get(), &apb::AssessmentService::Stub::ListAssessments, request, &response).ok());
    });
    return {first, deep};
  }

  // The first page of the clinic's open alerts, of all its alerts, and a deep page of all.
  std::tuple<double, double, double> AlertPages(const Caller& caller, int depth) const {
    gpb::ListAlertsRequest request;
    request.set_clinic_id("c-growth");
    request.set_page_size(20);
    gpb::ListAlertsResponse response;
    auto call = [&] {
      EXPECT_TRUE(caller.Call(caller.progress.get(), &gpb::ProgressService::Stub::ListAlerts, request, &response).ok());
    };
    const double open = MedianMs(30, call);
    request.set_include_acknowledged(true);
    const double all = MedianMs(30, call);
    for (int page = 0; page < depth && !response.next_page_token().empty(); ++page) {
      request.set_page_token(response.next_page_token());
      call();
    }
    const double deep = MedianMs(30, call);
    return {open, all, deep};
  }
};

TEST_F(DataGrowth, DISABLED_PagedListsCostTheSameWhateverTheTablesHold) {
  const long rows = std::getenv("PHYSIO_GROWTH_ROWS") ? std::atol(std::getenv("PHYSIO_GROWTH_ROWS")) : 90000;
  const Caller clinician = Clinician();
  const ppb::Plan plan = ApprovedPlanFor(clinician, patient_id_);
  ASSERT_FALSE(plan.assessment_id().empty());
  // A small start: the patient's one assessment and a clinic's 30 open alerts (and 30 acknowledged).
  postgres_->Execute(
      "INSERT INTO progress.alerts (tenant_id, alert_id, clinic_id, patient_id, kind, status, body, created_at)"
      " SELECT '" + tenant_ + "', 'alert_s' || lpad(i::text, 12, '0'), 'c-growth', 'pt-g' || i, 'ALERT_KIND_DETERIORATION',"
      " CASE WHEN i <= 30 THEN 'OPEN' ELSE 'ACKNOWLEDGED' END, jsonb_build_object('alert_id', 'alert_s' ||"
      " lpad(i::text, 12, '0'), 'clinic_id', 'c-growth', 'patient_id', 'pt-g' || i, 'kind', 'ALERT_KIND_DETERIORATION'),"
      " now() - i * interval '1 minute' FROM generate_series(1, 60) i",
      "physio");
  postgres_->Execute(
      "INSERT INTO assessment.assessments (tenant_id, assessment_id, patient_id, created_by, body, created_at)"
      " SELECT tenant_id, 'asm_s' || lpad(i::text, 12, '0'), patient_id, created_by, body,"
      " created_at - i * interval '1 millisecond' FROM assessment.assessments, generate_series(1, 99) i"
      " WHERE assessment_id = '" + plan.assessment_id() + "'",
      "physio");
  const auto [first_small, deep_small] = AssessmentPages(clinician, 2);
  const auto [open_small, all_small, deep_alerts_small] = AlertPages(clinician, 2);

  const std::string n = std::to_string(rows);
  postgres_->Execute(
      "INSERT INTO assessment.assessments (tenant_id, assessment_id, patient_id, created_by, body, created_at)"
      " SELECT tenant_id, 'asm_g' || lpad(i::text, 12, '0'), CASE WHEN i <= " + n + " THEN patient_id ELSE"
      " 'pt-other-' || (i % 5000) END, created_by, body, created_at - interval '1 second' - i * interval '1 second'"
      " FROM assessment.assessments, generate_series(1, " + n + " + 500000) i WHERE assessment_id = '" +
          plan.assessment_id() + "'",
      "physio");
  postgres_->Execute(
      "INSERT INTO progress.alerts (tenant_id, alert_id, clinic_id, patient_id, kind, status, body, created_at)"
      " SELECT '" + tenant_ + "', 'alert_g' || lpad(i::text, 12, '0'), 'c-growth', 'pt-h' || i, 'ALERT_KIND_DETERIORATION',"
      " 'ACKNOWLEDGED', jsonb_build_object('alert_id', 'alert_g' || lpad(i::text, 12, '0'), 'clinic_id', 'c-growth',"
      " 'patient_id', 'pt-h' || i, 'kind', 'ALERT_KIND_DETERIORATION'), now() - i * interval '1 second'"
      " FROM generate_series(1, 200000) i",
      "physio");
  postgres_->Execute("ANALYZE assessment.assessments; ANALYZE progress.alerts", "physio");
  // The services build their indexes concurrently at start; a build of this size takes seconds.
  const std::string indexes = ValidIndexes({"alerts_open_by_clinic", "assessments_by_patient_keyset"});
  const auto [first_big, deep_big] = AssessmentPages(clinician, 50);
  const auto [open_big, all_big, deep_alerts_big] = AlertPages(clinician, 50);

  std::printf("indexes present: %s\n", indexes.empty() ? "(none of the new ones)" : indexes.c_str());
  std::printf("ListAssessments, one patient: 100 then %ld of theirs, 100 then %ld rows in the table\n", rows + 100,
              rows + 500100);
  std::printf("  first page  %8.2f ms -> %8.2f ms\n", first_small, first_big);
  std::printf("  deep page   %8.2f ms -> %8.2f ms   (page 3 of 5 before, page 51 after)\n", deep_small, deep_big);
  std::printf("ListAlerts, one clinic: 60 then 200,060 alerts (30 open)\n");
  std::printf("  open, first page %8.2f ms -> %8.2f ms\n", open_small, open_big);
  std::printf("  all, first page  %8.2f ms -> %8.2f ms\n", all_small, all_big);
  std::printf("  all, page 51     %8.2f ms -> %8.2f ms   (page 3 before)\n", deep_alerts_small, deep_alerts_big);
  // The plans of the services' own statements (assessment_records.cc, progress_records.cc).
  const std::string assessments = "EXPLAIN SELECT body, created_at::text AS page_at, assessment_id FROM"
                                  " assessment.assessments WHERE tenant_id = '" + tenant_ + "' AND patient_id = '" +
                                  patient_id_ + "'";
  std::printf("plans:\n%s", Lines(assessments + " ORDER BY created_at DESC, assessment_id DESC LIMIT 21").c_str());
  std::printf("%s", Lines(assessments + " AND (created_at, assessment_id) < (now() - interval '1 hour', 'x')"
                                        " ORDER BY created_at DESC, assessment_id DESC LIMIT 21")
                        .c_str());
  std::printf("%s", Lines("EXPLAIN SELECT body, created_at::text AS page_at, alert_id FROM progress.alerts WHERE"
                          " tenant_id = '" + tenant_ + "' AND clinic_id = 'c-growth' AND (created_at, alert_id) <"
                          " (now() - interval '1 hour', 'x') ORDER BY created_at DESC, alert_id DESC LIMIT 21")
                        .c_str());
  std::printf("%s", Lines("EXPLAIN SELECT body, created_at::text AS page_at, alert_id FROM progress.alerts WHERE tenant_id = '" + tenant_ +
                          "' AND clinic_id = 'c-growth' AND status = 'OPEN' ORDER BY created_at DESC, alert_id DESC"
                          " LIMIT 21")
                        .c_str());
  std::printf("sizes per million rows (MB):\n%s",
              Lines("SELECT rpad(c.relname, 34) || round(pg_relation_size(c.oid) / 1048576.0 / (t.reltuples / 1e6)::numeric, 1)"
                    " FROM pg_class c JOIN pg_index i ON i.indexrelid = c.oid OR i.indrelid = c.oid"
                    " JOIN pg_class t ON t.oid = i.indrelid JOIN pg_namespace s ON s.oid = t.relnamespace"
                    " WHERE s.nspname IN ('assessment', 'progress') AND t.relname IN ('assessments', 'alerts')"
                    " AND t.reltuples > 0 GROUP BY c.relname, c.oid, t.reltuples ORDER BY 1")
                  .c_str());
}


// Not a benchmark, a check of the plans: a patient's history (visits, home logs, re-measures) is
// read through the patient's own index even in a tenant PostgreSQL has no statistics for yet (a
// new tenant, or one grown since the last ANALYZE; autovacuum analyses a big table only after a
// tenth of it changed). Both the primary key (tenant_id, id) and migration 0001's (tenant_id,
// patient_id, time) then cost one row, and PostgreSQL took the primary key: each read walked all
// of the tenant's rows (7.6 ms for 190 rows in a tenant of 6,000, growing with the tenant; the
// outcome-report refresher reads a history after every change). The history indexes match the
// read's order, so their path wins whatever the statistics say.
TEST_F(DataGrowth, APatientsHistoryIsOneRangeScanInATenantWithoutStatistics) {
  struct Table {
    std::string name, time_column, columns, values;
  };
  const std::vector<Table> tables = {
      {"visits", "visit_time", "(tenant_id, visit_id, patient_id, visit_time, body)", "'{}'::jsonb"},
      {"home_exercise_logs", "performed_time",
       "(tenant_id, log_id, patient_id, performed_time, plan_id, exercise_id, body)", "'plan_x', 'ex_x', '{}'::jsonb"},
      {"outcome_measures", "measure_time", "(tenant_id, measure_id, patient_id, measure_time, instrument, body)",
       "'INSTRUMENT_NPRS', '{}'::jsonb"}};
  ASSERT_EQ(ValidIndexes({"home_exercise_logs_history", "outcome_measures_history", "visits_history"}),
            "home_exercise_logs_history,outcome_measures_history,visits_history");
  const std::string fresh = tenant_ + "-new";
  for (const auto& table : tables) {
    // 60 tenants PostgreSQL knows (analysed), 8 patients each with the same ids in every tenant.
    const auto fill = [&](const std::string& tenant, const std::string& rows) {
      return "INSERT INTO progress." + table.name + " " + table.columns + " SELECT " + tenant + ", '" + table.name +
             "_' || i, 'pt-' || (i % 8), now() - (i % 900) * interval '1 minute', " + table.values +
             " FROM generate_series(1, " + rows + ") i";
    };
    postgres_->Execute(fill("'" + tenant_ + "-' || (i % 60)", "60000"), "physio");
    postgres_->Execute("ANALYZE progress." + table.name, "physio");
    // Then a tenant it does not: 4,000 rows, 500 of each patient's.
    postgres_->Execute(fill("'" + fresh + "'", "4000"), "physio");
    const std::string plan =
        Lines("PREPARE history(text, text, int, bigint) AS " + progress::PatientHistorySql(table.name, table.time_column) +
              "; EXPLAIN EXECUTE history('" + fresh + "', 'pt-3', 365, 2000)");
    EXPECT_NE(plan.find(table.name + "_history"), std::string::npos) << plan;
    EXPECT_NE(plan.find("(patient_id = 'pt-3'::text)"), std::string::npos) << "an index condition on the patient\n" << plan;
    EXPECT_EQ(plan.find("_pkey"), std::string::npos) << plan;
    EXPECT_EQ(plan.find("Filter"), std::string::npos) << "no row read and thrown away\n" << plan;
  }
}


// The same for a patient's latest episode (the outcome-report refresher reads it after every change
// of the patient's records; approvals lock it): planning.episodes had no index by patient, so each
// read walked every episode of the tenant, with statistics or without (15 ms in a tenant of 50,000).
TEST_F(DataGrowth, APatientsLatestEpisodeIsFoundByPatient) {
  ASSERT_EQ(ValidIndexes({"episodes_by_patient"}), "episodes_by_patient");
  // 20,000 episodes of 20,000 patients in a tenant PostgreSQL has statistics for, then the same in
  // one it has none for. Ended, and changed over an hour ago: the test cluster's refresher leaves them.
  for (const std::string& tenant : {tenant_, tenant_ + "-new"}) {
    postgres_->Execute(
        "INSERT INTO planning.episodes (tenant_id, episode_id, patient_id, plan_id, clinic_id, practitioner,"
        " risk_group, subgroup, phase, status, started_at, ended_at, updated_at, plan) SELECT '" + tenant + "',"
        " 'ep_' || i, 'pt-' || i, 'plan_' || i, 'c-1', 'clin-1', 'RISK_GROUP_LOW', 'SUBGROUP_X', 'PHASE_X',"
        " 'DISCHARGED', now() - interval '1 day' - i * interval '1 minute', now() - interval '2 hours',"
        " now() - interval '2 hours', '{}'::jsonb FROM generate_series(1, 20000) i",
        "physio");
    if (tenant == tenant_) postgres_->Execute("ANALYZE planning.episodes", "physio");
  }
  for (const std::string& tenant : {tenant_, tenant_ + "-new"}) {
    const std::string plan = Lines(std::string("PREPARE episode(text, text) AS ") + progress::EpisodeOfPatientSql() +
                                   "; EXPLAIN EXECUTE episode('" + tenant + "', 'pt-77')");
    EXPECT_NE(plan.find("episodes_by_patient"), std::string::npos) << plan;
    EXPECT_NE(plan.find("(patient_id = 'pt-77'::text)"), std::string::npos) << plan;
    EXPECT_EQ(plan.find("Filter"), std::string::npos) << "no row read and thrown away\n" << plan;
  }
}

// The daily recompute of open episodes' figures (the outcome-report refresher, once a minute) walked
// every open episode of every tenant with its figures (40 ms at 29,000). It now walks the figures
// that are due, of open episodes only: their partial index, nothing read and thrown away, with
// 20,000 figures not due beside them (PostgreSQL may read the index in order or sort what it found:
// either costs what is due).
TEST_F(DataGrowth, TheDailyRecomputeReadsOnlyTheFiguresThatAreDue) {
  ASSERT_EQ(ValidIndexes({"episode_progress_open_due"}), "episode_progress_open_due");
  postgres_->Execute(
      "INSERT INTO progress.episode_progress (tenant_id, plan_id, patient_id, computed_at, episode_open) SELECT '" +
          tenant_ + "-many', 'plan_' || i, 'pt-' || i, now() - (i % 600) * interval '1 minute', i % 3 <> 0"
          " FROM generate_series(1, 20000) i; ANALYZE progress.episode_progress",
      "physio");
  const std::string plan = Lines(std::string("PREPARE due(int, int) AS ") + progress::StaleFiguresSql() +
                                 "; EXPLAIN EXECUTE due(86400, 200)");
  EXPECT_NE(plan.find("episode_progress_open_due"), std::string::npos) << plan;
  EXPECT_EQ(plan.find("Filter"), std::string::npos) << "no row read and thrown away\n" << plan;
  EXPECT_EQ(plan.find("Seq Scan"), std::string::npos) << plan;
}

// Which patients the daily recompute takes: those whose open episode's figures are due; figures of
// an episode that ended, or of a plan a revision replaced, are marked and left (they no longer
// move); and, on the rare passes that look for them, open episodes with no figures of their plan.
TEST_F(DataGrowth, TheDailyRecomputeTakesDueOpenEpisodesAndMarksTheRest) {
  const std::string tenant = tenant_ + "-due";
  // Changed two hours ago: the test cluster's refresher (its hour of planning changes) leaves them.
  const auto episode = [&](const std::string& patient, const std::string& plan, bool open) {
    return "('" + tenant + "', 'ep_" + patient + "', '" + patient + "', '" + plan + "', 'c-1', 'clin-1',"
           " 'RISK_GROUP_LOW', 'SUBGROUP_X', 'PHASE_X', '" + (open ? "ACTIVE" : "DISCHARGED") + "',"
           " now() - interval '30 days', " + (open ? "NULL" : "now() - interval '3 days'") +
           ", now() - interval '2 hours', '{}'::jsonb)";
  };
  const auto figures = [&](const std::string& patient, const std::string& plan, const std::string& age) {
    return "('" + tenant + "', '" + plan + "', '" + patient + "', now() - interval '" + age + "')";
  };
  postgres_->Execute(
      "INSERT INTO planning.episodes (tenant_id, episode_id, patient_id, plan_id, clinic_id, practitioner,"
      " risk_group, subgroup, phase, status, started_at, ended_at, updated_at, plan) VALUES " +
          episode("pt-due", "plan_due", true) + ", " + episode("pt-fresh", "plan_fresh", true) + ", " +
          episode("pt-ended", "plan_ended", false) + ", " + episode("pt-revised", "plan_rev2", true) + ", " +
          episode("pt-new", "plan_new", true) +
          "; INSERT INTO progress.episode_progress (tenant_id, plan_id, patient_id, computed_at) VALUES " +
          figures("pt-due", "plan_due", "2 days") + ", " + figures("pt-fresh", "plan_fresh", "1 minute") + ", " +
          figures("pt-ended", "plan_ended", "2 days") + ", " + figures("pt-revised", "plan_rev1", "2 days"),
      "physio");
  PgOptions options;
  options.ports = std::to_string(postgres_->port());
  options.pool_size = 1;
  PgPool pool(options);
  progress::PgOutcomeReports store(pool);
  const auto taken = [&](bool never_computed) {
    std::set<std::string> patients;
    for (const auto& patient : store.StaleOpen(std::chrono::hours(24), 1000, never_computed, Clock::now() + std::chrono::seconds(5))) {
      if (patient.tenant == tenant) patients.insert(patient.patient_id);
    }
    return patients;
  };
  EXPECT_EQ(taken(false), std::set<std::string>{"pt-due"});
  const auto open = [&](const std::string& plan) {
    const std::string value = postgres_->Execute("SELECT episode_open FROM progress.episode_progress WHERE tenant_id = '" +
                                                     tenant + "' AND plan_id = '" + plan + "'",
                                                 "physio");
    return value.substr(0, value.find_first_of("\r\n"));
  };
  EXPECT_EQ(open("plan_due"), "t");
  EXPECT_EQ(open("plan_fresh"), "t");
  EXPECT_EQ(open("plan_ended"), "f");  // the episode ended
  EXPECT_EQ(open("plan_rev1"), "f");   // its episode has another plan now
  EXPECT_EQ(taken(true), (std::set<std::string>{"pt-due", "pt-new", "pt-revised"}));
}

// The other paged lists of item 5: the audit trail (ListAuditEvents over the three services'
// trails), a subscription's webhook deliveries and a plan's revisions. Each list's first page and a
// deep one, before and after the tables grow (PHYSIO_GROWTH_AUDIT_ROWS audit records, default
// 3,000,000 over the three trails; 1,000,000 deliveries; 500,000 revisions), and the plans chosen.
TEST_F(DataGrowth, DISABLED_AuditDeliveriesAndRevisionsPageFlat) {
  const long audit_rows =
      std::getenv("PHYSIO_GROWTH_AUDIT_ROWS") ? std::atol(std::getenv("PHYSIO_GROWTH_AUDIT_ROWS")) : 3000000;
  const Caller clinician = Clinician();
  const Caller auditor(*cluster_, MakeToken(*keys_, tenant_, "dpo-1", {"auditor"}));
  const Caller integrator = Integrator();
  const ppb::Plan plan = ApprovedPlanFor(clinician, patient_id_);
  ASSERT_FALSE(plan.plan_id().empty());
  const std::string subscription = "whs_growth";
  postgres_->Execute("INSERT INTO assessment.webhook_subscriptions (tenant_id, subscription_id, url, state, secret,"
                     " created_by, create_request_id) VALUES ('" + tenant_ + "', '" + subscription +
                         "', 'https://hooks.example/growth', 'paused', 'unused', 'ehr-1', 'rq-growth')",
                     "physio");
  // Rows of the tenant (one in `share` of the generated ones; the rest belong to 49 others).
  const auto audit = [&](const std::string& schema, long from, long to) {
    postgres_->Execute(
        "INSERT INTO " + schema + ".audit_events (tenant_id, occurred_at, principal, roles, action, patient_id,"
        " resource_id, outcome, request_id) SELECT CASE WHEN i % 5 = 0 THEN '" + tenant_ + "' ELSE 't-other-' || (i % 49)"
        " END, now() - interval '1 hour' - i * interval '3 seconds', 'clin-' || (i % 200), 'clinician', '/physio.x/Get',"
        " 'pt-a' || (i % 20000), 'r' || i, CASE WHEN i % 100 = 0 THEN 'NOT_FOUND' ELSE 'OK' END, 'rq' || i"
        " FROM generate_series(" + std::to_string(from) + ", " + std::to_string(to) + ") i",
        "physio");
  };
  const auto deliveries = [&](long from, long to) {
    postgres_->Execute(
        "INSERT INTO assessment.webhook_deliveries (tenant_id, subscription_id, message_id, source, sequence, kind,"
        " patient_id, occurred_at, state, attempts, created_at) SELECT '" + tenant_ + "', CASE WHEN i % 2 = 0 THEN '" +
            subscription + "' ELSE 'whs_other' || (i % 10) END, 'msg_' || i, 'planning', i, 'EVENT_KIND_PLAN_APPROVED',"
            " 'pt-a' || (i % 20000), now() - i * interval '1 second', CASE WHEN i % 200 = 0 THEN 'failed' ELSE"
            " 'delivered' END, 1, now() - i * interval '1 second' FROM generate_series(" + std::to_string(from) + ", " +
            std::to_string(to) + ") i",
        "physio");
  };
  const auto revisions = [&](long from, long to, const std::string& plan_id) {
    postgres_->Execute(
        "INSERT INTO planning.plan_revisions (tenant_id, plan_id, revision, change, reason, changed_by, body)"
        " SELECT tenant_id, " + (plan_id.empty() ? std::string("'plan_other' || (i % 5000)") : "plan_id") +
            ", 1000 + i, 'revise', 'growth', changed_by, body FROM planning.plan_revisions, generate_series(" +
            std::to_string(from) + ", " + std::to_string(to) + ") i WHERE tenant_id = '" + tenant_ + "' AND plan_id = '" +
            plan.plan_id() + "' AND revision = 1",
        "physio");
  };
  audit("assessment", 1, 2500);
  deliveries(1, 2000);
  revisions(1, 1000, plan.plan_id());

  // First page, and the page after walking `depth` rows in pages of `stride` (median of 20 each).
  struct Pages {
    double first = 0, deep = 0;
  };
  const auto audit_pages = [&](const apb::AuditQuery& query, int depth) {
    apb::ListAuditEventsRequest request;
    *request.mutable_query() = query;
    request.set_page_size(100);
    apb::ListAuditEventsResponse response;
    const auto call = [&] {
      const auto status =
          auditor.Call(auditor.assessment.get(), &apb::AssessmentService::Stub::ListAuditEvents, request, &response);
      EXPECT_TRUE(status.ok()) << status.error_message();
    };
    Pages pages;
    pages.first = MedianMs(20, call);
    request.set_page_size(500);
    for (int walked = 0; walked < depth && !response.next_page_token().empty(); walked += 500) {
      request.set_page_token(response.next_page_token());
      call();
    }
    request.set_page_size(100);
    request.set_page_token(response.next_page_token());
    pages.deep = MedianMs(20, call);
    if (depth > 0) {
      EXPECT_EQ(response.events_size(), 100);
    }
    return pages;
  };
  const auto delivery_pages = [&](apb::WebhookDeliveryState state, int depth) {
    apb::ListWebhookDeliveriesRequest request;
    request.set_subscription_id(subscription);
    request.set_state(state);
    request.set_page_size(50);
    apb::ListWebhookDeliveriesResponse response;
    const auto call = [&] {
      const auto status = integrator.Call(integrator.assessment.get(),
                                          &apb::AssessmentService::Stub::ListWebhookDeliveries, request, &response);
      EXPECT_TRUE(status.ok()) << status.error_message();
    };
    Pages pages;
    pages.first = MedianMs(20, call);
    for (int walked = 0; walked < depth && !response.next_page_token().empty(); walked += 50) {
      request.set_page_token(response.next_page_token());
      call();
    }
    pages.deep = MedianMs(20, call);
    EXPECT_GT(response.deliveries_size(), 0);
    return pages;
  };
  const auto revision_pages = [&](int depth) {
    ppb::ListPlanRevisionsRequest request;
    request.set_plan_id(plan.plan_id());
    request.set_page_size(20);
    ppb::ListPlanRevisionsResponse response;
    const auto call = [&] {
      const auto status =
          clinician.Call(clinician.planning.get(), &ppb::PlanningService::Stub::ListPlanRevisions, request, &response);
      EXPECT_TRUE(status.ok()) << status.error_message();
    };
    Pages pages;
    pages.first = MedianMs(20, call);
    for (int walked = 0; walked < depth && !response.next_page_token().empty(); walked += 20) {
      request.set_page_token(response.next_page_token());
      call();
    }
    pages.deep = MedianMs(20, call);
    EXPECT_GT(response.revisions_size(), 0);
    return pages;
  };
  apb::AuditQuery tenant_wide, one_patient, one_actor;
  one_patient.set_patient_id("pt-a5");
  one_actor.set_actor("clin-5");
  const Pages audit_small = audit_pages(tenant_wide, 400);
  const Pages patient_small = audit_pages(one_patient, 0);
  const Pages actor_small = audit_pages(one_actor, 0);
  const Pages deliveries_small = delivery_pages(apb::WEBHOOK_DELIVERY_STATE_UNSPECIFIED, 800);
  const Pages failed_small = delivery_pages(apb::WEBHOOK_DELIVERY_STATE_FAILED, 0);
  const Pages revisions_small = revision_pages(800);

  // The growth, in slices of a million rows (one statement each).
  const long slice = 1000000;
  for (long from = 2501; from <= audit_rows; from += slice) {
    const long to = std::min(audit_rows, from + slice - 1);
    const long k = (from - 2501) / slice;
    audit(k % 3 == 0 ? "assessment" : k % 3 == 1 ? "planning" : "progress", from, to);
  }
  deliveries(2001, 1000000);
  revisions(1001, 20000, plan.plan_id());
  revisions(20001, 500000, "");
  postgres_->Execute("ANALYZE assessment.audit_events; ANALYZE planning.audit_events; ANALYZE progress.audit_events;"
                     " ANALYZE assessment.webhook_deliveries; ANALYZE planning.plan_revisions",
                     "physio");
  for (int attempt = 0; attempt < 240; ++attempt) {
    if (postgres_->Execute("SELECT count(*) FROM pg_index WHERE NOT indisvalid", "physio") == "0") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  const Pages audit_big = audit_pages(tenant_wide, 100000);
  const Pages patient_big = audit_pages(one_patient, 0);
  const Pages actor_big = audit_pages(one_actor, 0);
  const Pages deliveries_big = delivery_pages(apb::WEBHOOK_DELIVERY_STATE_UNSPECIFIED, 100000);
  const Pages failed_big = delivery_pages(apb::WEBHOOK_DELIVERY_STATE_FAILED, 1000);
  const Pages revisions_big = revision_pages(10000);

  std::printf("audit records: 2,500 then %ld over three trails (the tenant holds one in five);\n"
              "deliveries: 2,000 then 1,000,000 (the subscription holds half, 0.5%% failed);\n"
              "revisions: 1,001 of the plan, then 20,000 of it and 480,000 of 5,000 others\n", audit_rows);
  const auto row = [](const char* what, double small, double big) {
    std::printf("  %-52s %8.2f ms -> %8.2f ms\n", what, small, big);
  };
  row("ListAuditEvents, tenant, first page of 100", audit_small.first, audit_big.first);
  row("ListAuditEvents, tenant, page after 500 / 100,000 rows", audit_small.deep, audit_big.deep);
  row("ListAuditEvents, one patient, first page", patient_small.first, patient_big.first);
  row("ListAuditEvents, one actor, first page", actor_small.first, actor_big.first);
  row("ListWebhookDeliveries, first page of 50", deliveries_small.first, deliveries_big.first);
  row("ListWebhookDeliveries, page after 1,000 / 100,000", deliveries_small.deep, deliveries_big.deep);
  row("ListWebhookDeliveries, failed only, first page", failed_small.first, failed_big.first);
  row("ListWebhookDeliveries, failed only, page after 1,000", failed_small.deep, failed_big.deep);
  row("ListPlanRevisions, first page of 20", revisions_small.first, revisions_big.first);
  row("ListPlanRevisions, page after 820 / 10,000", revisions_small.deep, revisions_big.deep);
  // The plans of the services' own statements, deep pages (audit_log.cc, webhook_records.cc, plan_records.cc).
  std::printf("plans:\n%s",
              Lines("EXPLAIN SELECT a.event_id FROM assessment.audit_events a WHERE a.tenant_id = '" + tenant_ +
                    "' AND (a.occurred_at, 'assessment', a.event_id) <"
                    " (now() - interval '3 days', 'assessment', 1) ORDER BY a.occurred_at DESC, a.event_id DESC LIMIT 101")
                  .c_str());
  std::printf("%s", Lines("EXPLAIN SELECT delivery_id FROM assessment.webhook_deliveries d WHERE tenant_id = '" + tenant_ +
                          "' AND subscription_id = '" + subscription +
                          "' AND state = 'failed' AND delivery_id < 900000 ORDER BY d.delivery_id DESC LIMIT 51")
                        .c_str());
  std::printf("%s", Lines("EXPLAIN SELECT delivery_id::text FROM assessment.webhook_deliveries d WHERE tenant_id = '" +
                          tenant_ + "' AND subscription_id = '" + subscription +
                          "' AND delivery_id < 9223372036854775807::bigint ORDER BY d.delivery_id DESC LIMIT 51")
                        .c_str());
  std::printf("%s", Lines("EXPLAIN SELECT revision FROM planning.plan_revisions WHERE tenant_id = '" + tenant_ +
                          "' AND plan_id = '" + plan.plan_id() + "' AND revision > 10000 ORDER BY revision LIMIT 21")
                        .c_str());
  std::printf("sizes per million rows (MB):\n%s",
              Lines("SELECT rpad(s.nspname || '.' || c.relname, 52) || round(pg_relation_size(c.oid) / 1048576.0 /"
                    " (t.reltuples / 1e6)::numeric, 1) FROM pg_class c JOIN pg_index i ON i.indexrelid = c.oid OR"
                    " i.indrelid = c.oid JOIN pg_class t ON t.oid = i.indrelid JOIN pg_namespace s ON s.oid ="
                    " t.relnamespace WHERE ((s.nspname = 'assessment' AND t.relname IN ('audit_events',"
                    " 'webhook_deliveries')) OR (s.nspname = 'planning' AND t.relname = 'plan_revisions'))"
                    " AND t.reltuples > 0 GROUP BY s.nspname, c.relname, c.oid, t.reltuples ORDER BY 1")
                  .c_str());
}

}  // namespace
}  // namespace physio::testing
