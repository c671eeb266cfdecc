// The data-growth benchmark of docs/benchmarks.md (issue 33, "flat with data"; run by hand:
// --gtest_also_run_disabled_tests --gtest_filter='*DataGrowth*'; PHYSIO_GROWTH_ROWS sets the
// rows added for one patient, default 90,000, besides 500,000 for others and 200,000 alerts): the
// first and a deep page of ListAssessments and ListAlerts before and after the tables grow, the
// plans PostgreSQL chose, and the table and index sizes per million rows.
#include <algorithm>
#include <cstdio>

#include "foundation.h"

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
  std::string indexes;
  for (int attempt = 0; attempt < 120; ++attempt) {
    indexes = postgres_->Execute(
        "SELECT string_agg(c.relname, ',') FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
        " WHERE c.relname IN ('assessments_by_patient_keyset', 'alerts_open_by_clinic') AND i.indisvalid",
        "physio");
    if (indexes.find(',') != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
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

}  // namespace
}  // namespace physio::testing
