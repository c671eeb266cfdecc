#pragma once
// The fixture of foundation_test: end-to-end tests through the public gRPC API
// against real redis-server and PostgreSQL and the three services on port 0,
// started once for the whole binary (SharedClusterFixture); each test uses its
// own tenant and patient. The tests are split by feature: episode, access,
// intake, fhir, plans.
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <hiredis/hiredis.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <string>
#include <thread>

#include "clients.h"
#include "cluster_fixture.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "physio/auth/token_minter.h"
#include "physio/common/stored_message.h"
#include "physio/redis/redis_idempotency.h"
#include "physio/redis/redis_keys.h"
#include "physio/redis/redis_pool.h"
#include "planning_server.h"
#include "physio/common/ids.h"
#include "src/proto/grpc/reflection/v1alpha/reflection.grpc.pb.h"

namespace physio::testing {

using grpc::StatusCode;

// Runs the independent FHIR validator (scripts/node/validate-fhir.js) on a JSON document; true when valid.
inline bool FhirValid(const std::string& json, const std::string& name) {
  const std::string path = "/tmp/physio-fhir-" + name + "-" + NewId("f").substr(2, 8) + ".json";
  std::ofstream(path) << json;
  const std::string command = "node " PHYSIO_SOURCE_DIR "/scripts/node/validate-fhir.js " + path;
  const int rc = std::system(command.c_str());
  std::remove(path.c_str());
  return rc == 0;
}

class Foundation : public SharedClusterFixture {
 protected:

  void SetUp() override {
    // A fresh tenant and patient per test: tests cannot see each other's data.
    tenant_ = "t-" + NewId("x").substr(2, 10);
    patient_id_ = "pt-" + NewId("x").substr(2, 10);
  }

  Caller Clinician(const std::string& tenant = "") const {
    return Caller(*cluster_, MakeToken(*keys_, tenant.empty() ? tenant_ : tenant, "clin-1", {"clinician"}));
  }
  Caller Integrator() const { return Caller(*cluster_, MakeToken(*keys_, tenant_, "ehr-1", {"integrator"})); }
  Caller Patient(const std::string& patient_id = "") const {
    const std::string id = patient_id.empty() ? patient_id_ : patient_id;
    return Caller(*cluster_, MakeToken(*keys_, tenant_, id, {"patient"}, id));
  }

  // A service's count of calls on the fast path (physio_fast_reads_total{outcome} on its /metrics:
  // answered, handed_over, not_started); -1 when the counter is not there.
  static long FastPathCount(int metrics_port, const std::string& outcome);  // environment.cc

  long CountRows(const std::string& sql) const {
    const std::string conninfo = "host=127.0.0.1 port=" + std::to_string(postgres_->port()) + " user=postgres dbname=physio";
    PGconn* conn = PQconnectdb(conninfo.c_str());
    const char* params[] = {tenant_.c_str()};
    PGresult* result = PQexecParams(conn, sql.c_str(), 1, nullptr, params, nullptr, nullptr, 0);
    long count = PQresultStatus(result) == PGRES_TUPLES_OK ? std::stol(PQgetvalue(result, 0, 0)) : -1;
    PQclear(result);
    PQfinish(conn);
    return count;
  }

  // `instruments` empty: the service's default list.
  apb::IntakeSession StartIntake(const Caller& caller, const std::string& request_id = "",
                                 const std::vector<cpb::Instrument>& instruments = {}) {
    apb::StartIntakeRequest request;
    request.set_request_id(request_id.empty() ? NewId("rq") : request_id);
    request.set_patient_id(patient_id_);
    for (const auto instrument : instruments) request.add_instruments(instrument);
    apb::StartIntakeResponse response;
    auto status = caller.Call(caller.assessment.get(), &apb::AssessmentService::Stub::StartIntake, request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response.session();
  }

  grpc::Status Submit(const Caller& caller, const std::string& session_id,
                      const std::vector<cpb::InstrumentAnswer>& answers, apb::IntakeSession* out = nullptr,
                      const std::string& request_id = "") {
    apb::SubmitIntakeAnswersRequest request;
    request.set_request_id(request_id.empty() ? NewId("rq") : request_id);
    request.set_session_id(session_id);
    for (const auto& answer : answers) *request.add_answers() = answer;
    apb::SubmitIntakeAnswersResponse response;
    auto status =
        caller.Call(caller.assessment.get(), &apb::AssessmentService::Stub::SubmitIntakeAnswers, request, &response);
    if (out) *out = response.session();
    return status;
  }

  // The red-flag questions answered, nothing found: a plan needs a screen.
  void ScreenNoRedFlags(const Caller& caller, const std::string& session_id) {
    apb::SubmitIntakeAnswersRequest request;
    request.set_request_id(NewId("rq"));
    request.set_session_id(session_id);
    request.mutable_red_flag_screen();
    apb::SubmitIntakeAnswersResponse response;
    EXPECT_TRUE(
        caller.Call(caller.assessment.get(), &apb::AssessmentService::Stub::SubmitIntakeAnswers, request, &response)
            .ok());
  }

  // The intake of the clinical reference's worked example: pain 6; ODI 16 over 9 sections (35.6%).
  std::vector<cpb::InstrumentAnswer> FullIntake() {
    std::vector<cpb::InstrumentAnswer> answers = {Answer(cpb::INSTRUMENT_NPRS, "nprs", 6)};
    const int odi[] = {2, 1, 3, 1, 2, 2, 1, 0, 2, 2};
    for (int i = 0; i < 10; ++i) {
      answers.push_back(Answer(cpb::INSTRUMENT_ODI, "odi." + std::to_string(i + 1), odi[i], i == 7));
    }
    return answers;
  }

  grpc::Status Complete(const Caller& caller, const std::string& session_id, apb::Assessment* out,
                        const std::string& request_id = "") {
    apb::CompleteIntakeRequest request;
    request.set_request_id(request_id.empty() ? NewId("rq") : request_id);
    request.set_session_id(session_id);
    apb::CompleteIntakeResponse response;
    auto status = caller.Call(caller.assessment.get(), &apb::AssessmentService::Stub::CompleteIntake, request, &response);
    if (out) *out = response.assessment();
    return status;
  }

  apb::Assessment CompletedAssessment() {
    auto patient = Patient();
    auto session = StartIntake(patient);
    EXPECT_TRUE(Submit(patient, session.session_id(), FullIntake()).ok());
    ScreenNoRedFlags(patient, session.session_id());
    apb::Assessment assessment;
    auto status = Complete(patient, session.session_id(), &assessment);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return assessment;
  }

  grpc::Status Generate(const Caller& caller, const std::string& assessment_id, ppb::Plan* out,
                        const std::string& request_id = "", const std::string& template_id = "") {
    ppb::GeneratePlanRequest request;
    request.set_request_id(request_id.empty() ? NewId("rq") : request_id);
    request.set_assessment_id(assessment_id);
    request.set_template_id(template_id);
    ppb::GeneratePlanResponse response;
    auto status = caller.Call(caller.planning.get(), &ppb::PlanningService::Stub::GeneratePlan, request, &response);
    if (out) *out = response.plan();
    return status;
  }

  grpc::Status Approve(const std::string& plan_id, const std::string& etag, ppb::Plan* out = nullptr) {
    auto clinician = Clinician();
    ppb::ApprovePlanRequest request;
    request.set_request_id(NewId("rq"));
    request.set_plan_id(plan_id);
    request.set_etag(etag);
    ppb::ApprovePlanResponse response;
    auto status = clinician.Call(clinician.planning.get(), &ppb::PlanningService::Stub::ApprovePlan, request, &response);
    if (out) *out = response.plan();
    return status;
  }

  ppb::Plan ActivePlan() {
    auto assessment = CompletedAssessment();
    ppb::Plan draft, active;
    EXPECT_TRUE(Generate(Clinician(), assessment.assessment_id(), &draft).ok());
    EXPECT_TRUE(Approve(draft.plan_id(), draft.etag(), &active).ok());
    return active;
  }

  grpc::Status LogExercise(const Caller& caller, const std::string& exercise_id, int pain_after,
                           gpb::HomeExerciseLog* out = nullptr, const std::string& request_id = "",
                           std::optional<int> usual_pain = std::nullopt) {
    gpb::LogHomeExerciseRequest request;
    request.set_request_id(request_id.empty() ? NewId("rq") : request_id);
    request.set_patient_id(patient_id_);
    request.set_exercise_id(exercise_id);
    request.set_sets_done(2);
    request.set_reps_done(10);
    request.set_pain_during(pain_after);
    request.set_pain_after(pain_after);
    if (usual_pain) request.set_usual_pain(*usual_pain);
    gpb::LogHomeExerciseResponse response;
    auto status = caller.Call(caller.progress.get(), &gpb::ProgressService::Stub::LogHomeExercise, request, &response);
    if (out) *out = response.log();
    return status;
  }

  gpb::ProgressSummary Summary(const Caller& caller) {
    gpb::GetProgressSummaryRequest request;
    request.set_patient_id(patient_id_);
    gpb::GetProgressSummaryResponse response;
    auto status =
        caller.Call(caller.progress.get(), &gpb::ProgressService::Stub::GetProgressSummary, request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response.summary();
  }

  std::string tenant_;
  std::string patient_id_;
};

}  // namespace physio::testing
