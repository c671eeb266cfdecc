// Outcome schedules (issue 29 item 4): each active plan carries its questionnaire schedule,
// ListDueTasks answers what is due or overdue (per patient, per clinic, in a window), and
// QUESTIONNAIRE_DUE / QUESTIONNAIRE_OVERDUE fire once each, from a scheduler that runs on
// every progress replica.
#include <gtest/gtest.h>
#include <httplib.h>
#include <libpq-fe.h>
#include <nlohmann/json.hpp>

#include <thread>

#include "clients.h"
#include "cluster_fixture.h"
#include "physio/auth/token_minter.h"
#include "physio/common/ids.h"

namespace physio::testing {
namespace {

using namespace std::chrono_literals;
constexpr std::int64_t kDay = 24 * 3600;

class Schedules : public ClusterFixture {
 protected:
  static void SetUpTestSuite() {
    StartStoresAndCluster([](const std::string& service, Config& config) {
      if (service == "progress") config.Set("outcome-task-scan-interval-s", "1");
    });
  }
  static std::int64_t Now() {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  }
  static Caller Clinician(const std::string& tenant) {
    TokenRequest token{kIssuer, kAudience, tenant, "clin-schedules", {"clinician"}};
    token.clinics = {"north"};
    return Caller(*cluster_, MintToken(keys_->private_key_pem, token));
  }
  static gpb::ListDueTasksResponse Due(const Caller& caller, const gpb::ListDueTasksRequest& request,
                                       grpc::Status* status = nullptr) {
    gpb::ListDueTasksResponse response;
    const auto got = caller.Call(caller.progress.get(), &gpb::ProgressService::Stub::ListDueTasks, request, &response);
    if (status != nullptr) {
      *status = got;
    } else {
      EXPECT_TRUE(got.ok()) << got.error_message();
    }
    return response;
  }
  // How many events of `kind` the progress feed holds for the task.
  static int EventsFor(const std::string& tenant, const std::string& kind, const std::string& task_id) {
    PGconn* conn = PQconnectdb(postgres_->Conninfo("physio").c_str());
    const char* values[] = {tenant.c_str(), kind.c_str(), task_id.c_str()};
    PGresult* result = PQexecParams(conn,
                                    "SELECT count(*) FROM progress.events WHERE tenant_id = $1 AND kind = $2"
                                    " AND resource_id = $3",
                                    3, nullptr, values, nullptr, nullptr, 0);
    const int count = PQntuples(result) == 1 ? std::stoi(PQgetvalue(result, 0, 0)) : -1;
    PQclear(result);
    PQfinish(conn);
    return count;
  }
  static const gpb::DueTask* Find(const gpb::ListDueTasksResponse& response, const std::string& task_id) {
    for (const auto& task : response.tasks()) {
      if (task.task_id() == task_id) return &task;
    }
    return nullptr;
  }
};

TEST_F(Schedules, APlanCarriesItsScheduleAndItsQuestionnairesFallDueAndOverdueOnce) {
  const std::string tenant = "schedules-main";
  auto clinician = Clinician(tenant);
  // Approved 12 days ago: NPRS of day 7 is overdue (due day 7, grace 3 days), day 14's opens tomorrow.
  const auto plan = ApprovedPlanFor(clinician, "pt-sched-1", Now() - 12 * kDay);
  ASSERT_GT(plan.outcome_schedule_size(), 0);
  bool weekly = false, review = false;
  for (const auto& entry : plan.outcome_schedule()) {
    if (entry.instrument() == cpb::INSTRUMENT_NPRS && entry.day() == 7) weekly = true;
    if (entry.instrument() == cpb::INSTRUMENT_ODI && entry.purpose().find("review") != std::string::npos) review = true;
  }
  EXPECT_TRUE(weekly);
  EXPECT_TRUE(review) << "the baseline's ODI again at a review point";

  gpb::ListDueTasksRequest request;
  request.set_patient_id("pt-sched-1");
  auto due = Due(clinician, request);
  const std::string day7 = plan.plan_id() + "/INSTRUMENT_NPRS/d7";
  const auto* first = Find(due, day7);
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(first->state(), gpb::TASK_STATE_OVERDUE);
  EXPECT_EQ(first->due_time().seconds(), plan.activate_time().seconds() + 7 * kDay);
  const auto* second = Find(due, plan.plan_id() + "/INSTRUMENT_NPRS/d14");
  ASSERT_NE(second, nullptr);
  EXPECT_EQ(second->state(), gpb::TASK_STATE_UPCOMING);
  ASSERT_EQ(due.home_programmes_size(), 1);
  EXPECT_EQ(due.home_programmes(0).sessions_per_week(), plan.home_sessions_per_week());

  // The scheduler (every second here) gives the overdue event once, however many passes run.
  const auto give_up = std::chrono::steady_clock::now() + 20s;
  while (EventsFor(tenant, "EVENT_KIND_QUESTIONNAIRE_OVERDUE", day7) == 0 && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(200ms);
  }
  std::this_thread::sleep_for(2500ms);  // two more passes
  EXPECT_EQ(EventsFor(tenant, "EVENT_KIND_QUESTIONNAIRE_OVERDUE", day7), 1);
  EXPECT_EQ(EventsFor(tenant, "EVENT_KIND_QUESTIONNAIRE_DUE", day7), 0) << "overdue when first seen: no due event after it";

  // Answered now (late, but before day 14's window opens): done.
  gpb::RecordOutcomeRequest measure;
  measure.set_request_id(NewId("rq"));
  measure.set_patient_id("pt-sched-1");
  measure.set_instrument(cpb::INSTRUMENT_NPRS);
  *measure.add_answers() = Answer(cpb::INSTRUMENT_NPRS, "nprs", 4);
  gpb::RecordOutcomeResponse recorded;
  ASSERT_TRUE(clinician.Call(clinician.progress.get(), &gpb::ProgressService::Stub::RecordOutcome, measure, &recorded).ok());
  due = Due(clinician, request);
  EXPECT_EQ(Find(due, day7), nullptr) << "answered tasks are left out by default";
  request.set_include_done(true);
  due = Due(clinician, request);
  ASSERT_NE(Find(due, day7), nullptr);
  EXPECT_EQ(Find(due, day7)->state(), gpb::TASK_STATE_DONE);
  EXPECT_EQ(Find(due, day7)->answer_time().seconds(), recorded.measure().measure_time().seconds());

  // The patient sees their own, through the Connect/JSON port too.
  httplib::Client http("127.0.0.1", cluster_->progress_http_port());
  auto answered = http.Post("/physio.progress.v1.ProgressService/ListDueTasks",
                            {{"Authorization", "Bearer " + MakeToken(*keys_, tenant, "pt-sched-1", {"patient"}, "pt-sched-1")}},
                            R"({"patientId":"pt-sched-1"})", "application/json");
  ASSERT_TRUE(answered);
  ASSERT_EQ(answered->status, 200) << answered->body;
  const auto listed = nlohmann::json::parse(answered->body);
  ASSERT_FALSE(listed["tasks"].empty());
  EXPECT_EQ(listed["tasks"][0]["state"], "TASK_STATE_UPCOMING");
}

TEST_F(Schedules, ATaskWhoseWindowOpenedFiresDueOnceAndAClinicListsItsPatients) {
  const std::string tenant = "schedules-clinic";
  auto clinician = Clinician(tenant);
  // Approved 6.5 days ago: NPRS of day 7 opened half a day ago.
  const auto plan = ApprovedPlanFor(clinician, "pt-sched-2", Now() - 6 * kDay - kDay / 2);
  const auto other = ApprovedPlanFor(clinician, "pt-sched-3", Now() - 2 * kDay);
  const std::string day7 = plan.plan_id() + "/INSTRUMENT_NPRS/d7";
  const auto give_up = std::chrono::steady_clock::now() + 20s;
  while (EventsFor(tenant, "EVENT_KIND_QUESTIONNAIRE_DUE", day7) == 0 && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(200ms);
  }
  std::this_thread::sleep_for(2500ms);
  EXPECT_EQ(EventsFor(tenant, "EVENT_KIND_QUESTIONNAIRE_DUE", day7), 1);
  EXPECT_EQ(EventsFor(tenant, "EVENT_KIND_QUESTIONNAIRE_OVERDUE", day7), 0);

  // The clinic's list: both patients (enrolled at the clinician's clinic by their first assessment).
  gpb::ListDueTasksRequest request;
  request.set_clinic_id("north");
  request.mutable_end_time()->set_seconds(Now() + 10 * kDay);
  const auto due = Due(clinician, request);
  std::set<std::string> patients;
  for (const auto& task : due.tasks()) patients.insert(task.patient_id());
  EXPECT_EQ(patients, (std::set<std::string>{"pt-sched-2", "pt-sched-3"}));
  EXPECT_EQ(Find(due, day7)->state(), gpb::TASK_STATE_DUE);
  EXPECT_NE(Find(due, other.plan_id() + "/INSTRUMENT_NPRS/d7"), nullptr);
  for (int i = 1; i < due.tasks_size(); ++i) {
    EXPECT_LE(due.tasks(i - 1).due_time().seconds(), due.tasks(i).due_time().seconds()) << "by due time";
  }

  // Another clinic's staff: not found. A patient: not a clinic's list. Bad input: named.
  TokenRequest south{kIssuer, kAudience, tenant, "clin-south", {"clinician"}};
  south.clinics = {"south"};
  Caller stranger(*cluster_, MintToken(keys_->private_key_pem, south));
  grpc::Status status;
  Due(stranger, request, &status);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  Caller patient(*cluster_, MakeToken(*keys_, tenant, "pt-sched-2", {"patient"}, "pt-sched-2"));
  Due(patient, request, &status);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  gpb::ListDueTasksRequest neither;
  Due(clinician, neither, &status);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("patient_id"), std::string::npos);
  gpb::ListDueTasksRequest too_long;
  too_long.set_patient_id("pt-sched-2");
  too_long.mutable_start_time()->set_seconds(Now());
  too_long.mutable_end_time()->set_seconds(Now() + 400 * kDay);
  Due(clinician, too_long, &status);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("end_time"), std::string::npos);
}

}  // namespace
}  // namespace physio::testing
