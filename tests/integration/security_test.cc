// Security through the public API on real stores (issue 11): authorisation
// before replay, bounded input, quotas, refusals audited.
#include <hiredis/hiredis.h>
#include <libpq-fe.h>

#include <httplib.h>

#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <vector>
#include <thread>

#include "clients.h"
#include "cluster_fixture.h"
#include "physio/auth/token_minter.h"
#include "physio/common/ids.h"
#include "physio/db/audit_archive.h"
#include "physio/db/migrations.h"
#include "physio/redis/redis_pool.h"

namespace physio::testing {
namespace {

using grpc::StatusCode;

class Security : public ClusterFixture {
 protected:
  void SetUp() override { tenant_ = NewId("t"); }

  Caller Patient(const std::string& patient_id) const {
    return Caller(*cluster_, MakeToken(*keys_, tenant_, "user-" + patient_id, {"patient"}, patient_id));
  }
  Caller Integrator(const std::string& subject) const {
    return Caller(*cluster_, MakeToken(*keys_, tenant_, subject, {"integrator"}));
  }

  apb::StartIntakeResponse StartIntake(const Caller& caller, const std::string& patient_id,
                                       const std::string& request_id) {
    apb::StartIntakeRequest start;
    start.set_request_id(request_id);
    start.set_patient_id(patient_id);
    start.add_instruments(cpb::INSTRUMENT_NPRS);
    apb::StartIntakeResponse started;
    EXPECT_TRUE(caller.Call(caller.assessment.get(), &apb::AssessmentService::Stub::StartIntake, start, &started).ok());
    return started;
  }

  // Runs one statement (as the superuser unless `user` is given); returns the
  // first value or "", and the error, if any, in `error` (else a test failure).
  static std::string Sql(const std::string& sql, const std::vector<std::string>& params,
                         const std::string& user = "postgres", std::string* error = nullptr) {
    const std::string conninfo =
        "host=127.0.0.1 port=" + std::to_string(postgres_->port()) + " user=" + user + " dbname=physio";
    PGconn* conn = PQconnectdb(conninfo.c_str());
    std::vector<const char*> values;
    for (const auto& value : params) values.push_back(value.c_str());
    PGresult* result = PQexecParams(conn, sql.c_str(), static_cast<int>(values.size()), nullptr, values.data(),
                                    nullptr, nullptr, 0);
    std::string first = PQresultStatus(result) == PGRES_TUPLES_OK && PQntuples(result) > 0 ? PQgetvalue(result, 0, 0)
                                                                                             : "";
    if (PQresultStatus(result) != PGRES_TUPLES_OK && PQresultStatus(result) != PGRES_COMMAND_OK) {
      if (error != nullptr) {
        *error = PQresultErrorMessage(result);
      } else {
        ADD_FAILURE() << PQresultErrorMessage(result);
      }
    }
    PQclear(result);
    PQfinish(conn);
    return first;
  }

  std::string tenant_;
};

// Patient B replays patient A's request (same request_id, same session, same
// answers): B is a different caller, so this is B's own new request, and B may
// not touch A's session.
TEST_F(Security, AnotherPatientReplayingARequestIdGetsNotFoundNeverTheFirstPatientsData) {
  Caller patient_a = Patient("pat-a");
  Caller patient_b = Patient("pat-b");
  const std::string session_id = StartIntake(patient_a, "pat-a", NewId("rq")).session().session_id();

  apb::SubmitIntakeAnswersRequest submit;
  submit.set_request_id(NewId("rq"));
  submit.set_session_id(session_id);
  *submit.add_answers() = Answer(cpb::INSTRUMENT_NPRS, "nprs", 7);
  submit.mutable_red_flag_screen();
  apb::SubmitIntakeAnswersResponse by_a;
  ASSERT_TRUE(patient_a.Call(patient_a.assessment.get(), &apb::AssessmentService::Stub::SubmitIntakeAnswers, submit,
                             &by_a).ok());
  ASSERT_EQ(by_a.session().patient_id(), "pat-a");

  apb::SubmitIntakeAnswersResponse by_b;
  auto status = patient_b.Call(patient_b.assessment.get(), &apb::AssessmentService::Stub::SubmitIntakeAnswers, submit,
                               &by_b);
  EXPECT_EQ(status.error_code(), StatusCode::NOT_FOUND) << status.error_message();
  EXPECT_FALSE(by_b.has_session());

  // The same for a PostgreSQL-recorded write: completing A's intake.
  apb::CompleteIntakeRequest complete;
  complete.set_request_id(NewId("rq"));
  complete.set_session_id(session_id);
  apb::CompleteIntakeResponse completed_by_a;
  status = patient_a.Call(patient_a.assessment.get(), &apb::AssessmentService::Stub::CompleteIntake, complete,
                          &completed_by_a);
  ASSERT_TRUE(status.ok()) << status.error_message();
  apb::CompleteIntakeResponse completed_by_b;
  status = patient_b.Call(patient_b.assessment.get(), &apb::AssessmentService::Stub::CompleteIntake, complete,
                          &completed_by_b);
  EXPECT_EQ(status.error_code(), StatusCode::NOT_FOUND) << status.error_message();
  EXPECT_FALSE(completed_by_b.has_assessment());

  // A's own retry still replays A's response.
  apb::CompleteIntakeResponse replayed;
  ASSERT_TRUE(patient_a.Call(patient_a.assessment.get(), &apb::AssessmentService::Stub::CompleteIntake, complete,
                             &replayed).ok());
  EXPECT_EQ(replayed.assessment().assessment_id(), completed_by_a.assessment().assessment_id());
}

// Two integration engines of one clinic chain that happen to pick the same
// request_id start two intakes, each its own, and neither is refused.
TEST_F(Security, TwoIntegrationsInOneTenantNeverCollideOnRequestIds) {
  const std::string shared_request_id = "rq-0001";
  Caller engine_one = Integrator("engine-one");
  Caller engine_two = Integrator("engine-two");
  auto first = StartIntake(engine_one, "pat-1", shared_request_id);
  apb::StartIntakeRequest start;
  start.set_request_id(shared_request_id);
  start.set_patient_id("pat-2");
  apb::StartIntakeResponse second;
  auto status = engine_two.Call(engine_two.assessment.get(), &apb::AssessmentService::Stub::StartIntake, start, &second);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(second.session().patient_id(), "pat-2");
  EXPECT_NE(second.session().session_id(), first.session().session_id());

  apb::CreateAssessmentRequest create;
  create.set_request_id(shared_request_id);
  create.set_patient_id("pat-1");
  *create.add_answers() = Answer(cpb::INSTRUMENT_NPRS, "nprs", 5);
  create.mutable_red_flag_screen();
  apb::CreateAssessmentResponse created_one, created_two;
  ASSERT_TRUE(engine_one.Call(engine_one.assessment.get(), &apb::AssessmentService::Stub::CreateAssessment, create,
                              &created_one).ok());
  create.set_patient_id("pat-2");
  status = engine_two.Call(engine_two.assessment.get(), &apb::AssessmentService::Stub::CreateAssessment, create,
                           &created_two);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(created_two.assessment().patient_id(), "pat-2");
  EXPECT_NE(created_two.assessment().assessment_id(), created_one.assessment().assessment_id());
}

// Idempotency records are not kept forever: past the retention they are purged
// by the service's background job, and the same id is then a new request.
TEST_F(Security, IdempotencyRecordsArePurgedAfterTheirRetention) {
  Caller engine = Integrator("engine-one");
  apb::CreateAssessmentRequest create;
  create.set_request_id(NewId("rq"));
  create.set_patient_id("pat-1");
  *create.add_answers() = Answer(cpb::INSTRUMENT_NPRS, "nprs", 5);
  create.mutable_red_flag_screen();
  apb::CreateAssessmentResponse first, replay, after_purge;
  ASSERT_TRUE(engine.Call(engine.assessment.get(), &apb::AssessmentService::Stub::CreateAssessment, create, &first).ok());
  ASSERT_TRUE(engine.Call(engine.assessment.get(), &apb::AssessmentService::Stub::CreateAssessment, create, &replay).ok());
  ASSERT_EQ(replay.assessment().assessment_id(), first.assessment().assessment_id());

  const std::string count_sql =
      "SELECT count(*) FROM assessment.idempotency WHERE tenant_id = $1 AND request_id = $2";
  ASSERT_EQ(Sql(count_sql, {tenant_, create.request_id()}), "1");
  // A day and an hour old: past the default 24 h retention.
  Sql("UPDATE assessment.idempotency SET created_at = now() - interval '25 hours' WHERE tenant_id = $1 AND "
      "request_id = $2",
      {tenant_, create.request_id()});
  std::string left = "1";
  for (int i = 0; i < 100 && left != "0"; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    left = Sql(count_sql, {tenant_, create.request_id()});
  }
  ASSERT_EQ(left, "0") << "the purge job did not remove the expired record";
  ASSERT_TRUE(
      engine.Call(engine.assessment.get(), &apb::AssessmentService::Stub::CreateAssessment, create, &after_purge).ok());
  EXPECT_NE(after_purge.assessment().assessment_id(), first.assessment().assessment_id());
}

// Redis runs with maxmemory and noeviction: when it is full, live sessions are
// not evicted; writes fail cleanly (UNAVAILABLE, retryable) and reads go on.
TEST_F(Security, AFullRedisRefusesWritesCleanlyAndEvictsNoSession) {
  Caller clinician = Integrator("engine-one");
  const std::string session_id = StartIntake(clinician, "pat-1", NewId("rq")).session().session_id();
  RedisOptions options;
  options.port = redis_->port();
  RedisPool admin(options);
  auto deadline = [] { return Clock::now() + std::chrono::seconds(2); };
  ASSERT_EQ(admin.Command({"CONFIG", "SET", "maxmemory", "1"}, deadline())->type, REDIS_REPLY_STATUS);

  apb::StartIntakeRequest start;
  start.set_request_id(NewId("rq"));
  start.set_patient_id("pat-2");
  apb::StartIntakeResponse started;
  auto refused = clinician.Call(clinician.assessment.get(), &apb::AssessmentService::Stub::StartIntake, start, &started);
  apb::GetIntakeRequest get;
  get.set_session_id(session_id);
  apb::GetIntakeResponse got;
  auto read = clinician.Call(clinician.assessment.get(), &apb::AssessmentService::Stub::GetIntake, get, &got);
  ASSERT_EQ(admin.Command({"CONFIG", "SET", "maxmemory", "256mb"}, deadline())->type, REDIS_REPLY_STATUS);

  EXPECT_EQ(refused.error_code(), StatusCode::UNAVAILABLE) << refused.error_message();
  EXPECT_EQ(refused.error_message().find("OOM"), std::string::npos);  // the store's text stays in the log
  EXPECT_TRUE(read.ok()) << read.error_message();
  EXPECT_EQ(got.session().patient_id(), "pat-1");
  // Room again: the same request now succeeds.
  auto retried = clinician.Call(clinician.assessment.get(), &apb::AssessmentService::Stub::StartIntake, start, &started);
  EXPECT_TRUE(retried.ok()) << retried.error_message();
}

// The control for the mutual-TLS suite's reflection-off test: served by default.
TEST_F(Security, ReflectionIsServedByDefault) {
  auto status = CallReflection(grpc::CreateChannel(cluster_->planning_addr(), grpc::InsecureChannelCredentials()));
  EXPECT_NE(status.error_code(), StatusCode::UNIMPLEMENTED) << status.error_message();
}

// Refused attempts are audited with the caller's address and what they aimed at:
// no token, a forged token, and a patient reaching for another patient's record.
TEST_F(Security, RefusedAttemptsAreAuditedWithPeerAndTarget) {
  const std::string probe_id = NewId("asmt");
  apb::GetAssessmentRequest get;
  get.set_assessment_id(probe_id);
  apb::GetAssessmentResponse got;
  Caller anonymous(*cluster_, "");
  EXPECT_EQ(anonymous.Call(anonymous.assessment.get(), &apb::AssessmentService::Stub::GetAssessment, get, &got)
                .error_code(),
            StatusCode::UNAUTHENTICATED);
  Caller forged(*cluster_, MakeToken(*keys_, tenant_, "clin-1", {"clinician"}) + "x");
  EXPECT_EQ(forged.Call(forged.assessment.get(), &apb::AssessmentService::Stub::GetAssessment, get, &got).error_code(),
            StatusCode::UNAUTHENTICATED);
  Caller patient = Patient("pat-a");
  apb::StartIntakeRequest start;
  start.set_request_id(NewId("rq"));
  start.set_patient_id("pat-b");
  apb::StartIntakeResponse started;
  EXPECT_EQ(patient.Call(patient.assessment.get(), &apb::AssessmentService::Stub::StartIntake, start, &started)
                .error_code(),
            StatusCode::PERMISSION_DENIED);

  // Refusals are written by the batch writer without holding the call: allow it a moment.
  auto rows_once_written = [&](const std::string& where, const std::string& param, const std::string& expected) {
    std::string rows;
    for (int i = 0; i < 50 && rows != expected; ++i) {
      if (i > 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
      rows = Sql("SELECT count(*)::text FROM assessment.audit_events WHERE " + where, {param});
    }
    return rows;
  };
  EXPECT_EQ(rows_once_written("resource_id = $1 AND outcome = 'UNAUTHENTICATED' AND tenant_id = ''"
                              " AND peer LIKE 'ipv%:127.0.0.1:%' AND action = 'GetAssessment'",
                              probe_id, "2"),
            "2");
  EXPECT_EQ(rows_once_written("tenant_id = $1 AND patient_id = 'pat-b' AND outcome = 'PERMISSION_DENIED'"
                              " AND action = 'StartIntake' AND principal = 'user-pat-a' AND peer IS NOT NULL",
                              tenant_, "1"),
            "1");
}

// A page token edited by hand (well-formed hex, this list's scope, a position
// that is not one) is INVALID_ARGUMENT, and no store text reaches the caller.
TEST_F(Security, ATamperedPageTokenIsInvalidArgument) {
  Caller engine = Integrator("engine-one");
  for (const char* position : {"v1|pat-1|not-a-time|asmt_1", "v1|pat-1|2026-11-23 06:00:00+00|'; DROP",
                                      "v1|pat-1|2026-13-45 99:99:99+00|asmt_1"}) {
    apb::ListAssessmentsRequest list;
    list.set_patient_id("pat-1");
    list.set_page_token(HexEncode(position));
    apb::ListAssessmentsResponse page;
    auto status = engine.Call(engine.assessment.get(), &apb::AssessmentService::Stub::ListAssessments, list, &page);
    EXPECT_EQ(status.error_code(), StatusCode::INVALID_ARGUMENT) << position << ": " << status.error_message();
    EXPECT_EQ(status.error_message().rfind("page_token:", 0), 0) << status.error_message();
  }
}

apb::CreateAssessmentRequest SmallAssessment(const std::string& patient_id) {
  apb::CreateAssessmentRequest create;
  create.set_request_id(NewId("rq"));
  create.set_patient_id(patient_id);
  *create.add_answers() = Answer(cpb::INSTRUMENT_NPRS, "nprs", 5);
  create.mutable_red_flag_screen();
  return create;
}

// A client built against another version of the protos sends fields this one
// does not know: refused, naming where, and nothing is stored.
TEST_F(Security, UnknownFieldsAreRefusedBeforeAnythingIsStored) {
  Caller engine = Integrator("engine-one");
  auto create = SmallAssessment("pat-1");
  auto with_unknown = create;
  with_unknown.GetReflection()->MutableUnknownFields(&with_unknown)->AddVarint(999, 1);
  apb::CreateAssessmentResponse created;
  auto status = engine.Call(engine.assessment.get(), &apb::AssessmentService::Stub::CreateAssessment, with_unknown,
                            &created);
  EXPECT_EQ(status.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("unknown field number 999"), std::string::npos) << status.error_message();

  auto nested = create;
  nested.mutable_answers(0)->GetReflection()->MutableUnknownFields(nested.mutable_answers(0))->AddLengthDelimited(
      42, "x");
  status = engine.Call(engine.assessment.get(), &apb::AssessmentService::Stub::CreateAssessment, nested, &created);
  EXPECT_EQ(status.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message().rfind("answers[0]: unknown field number 42", 0), 0) << status.error_message();

  // Nothing was stored under that request id: the clean request is a new one, and the only one.
  ASSERT_TRUE(engine.Call(engine.assessment.get(), &apb::AssessmentService::Stub::CreateAssessment, create, &created).ok());
  EXPECT_EQ(Sql("SELECT count(*) FROM assessment.assessments WHERE tenant_id = $1", {tenant_}), "1");
}

TEST_F(Security, OverlongStringsAndListsAreRefusedNamingTheField) {
  Caller engine = Integrator("engine-one");
  auto create = SmallAssessment("pat-1");
  create.mutable_answers(0)->set_text(std::string(9000, 'a'));
  apb::CreateAssessmentResponse created;
  auto status = engine.Call(engine.assessment.get(), &apb::AssessmentService::Stub::CreateAssessment, create, &created);
  EXPECT_EQ(status.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message().rfind("answers[0].text: at most 8192 bytes", 0), 0) << status.error_message();

  gpb::RecordVisitRequest visit;
  visit.set_request_id(NewId("rq"));
  visit.set_patient_id("pat-1");
  visit.set_kind(gpb::VISIT_KIND_CLINIC);
  for (int i = 0; i < 51; ++i) visit.add_delivered_item_ids("ex.item" + std::to_string(i));
  gpb::RecordVisitResponse visited;
  status = engine.Call(engine.progress.get(), &gpb::ProgressService::Stub::RecordVisit, visit, &visited);
  EXPECT_EQ(status.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message().rfind("delivered_item_ids: at most 50", 0), 0) << status.error_message();
}

// PostgreSQL's text and jsonb hold no NUL character (and libpq would cut a text parameter at one):
// a NUL in any text a caller sends is refused naming the field, before anything is stored, instead
// of failing the write late as INTERNAL; a library text carrying one escaped is refused at publishing,
// instead of failing every plan that draws on the entry.
TEST_F(Security, ANulCharacterInAnyTextIsRefusedNamingTheField) {
  Caller clinician(*cluster_, MakeToken(*keys_, tenant_, "clin-1", {"clinician"}));
  auto plan = ApprovedPlanFor(clinician, "pat-nul");
  ppb::AdjustPlanRequest adjust;
  adjust.set_request_id(NewId("rq"));
  adjust.set_plan_id(plan.plan_id());
  adjust.set_etag(plan.etag());
  adjust.set_adjustment(ppb::ADJUSTMENT_SUSPEND);
  adjust.set_reason(std::string("new leg pain") + '\0' + " both sides");
  ppb::AdjustPlanResponse adjusted;
  auto status = clinician.Call(clinician.planning.get(), &ppb::PlanningService::Stub::AdjustPlan, adjust, &adjusted);
  EXPECT_EQ(status.error_code(), StatusCode::INVALID_ARGUMENT) << status.error_message();
  EXPECT_EQ(status.error_message().rfind("reason: must not contain a NUL character", 0), 0) << status.error_message();
  EXPECT_EQ(Sql("SELECT status || ' ' || version FROM planning.plans WHERE tenant_id = $1 AND plan_id = $2",
                {tenant_, plan.plan_id()}),
            "ACTIVE " + std::to_string(plan.revision()));
  // Nested, in a repeated message.
  auto create = SmallAssessment("pat-nul");
  create.mutable_answers(0)->set_item_id(std::string("nprs") + '\0');
  apb::CreateAssessmentResponse created;
  status = clinician.Call(clinician.assessment.get(), &apb::AssessmentService::Stub::CreateAssessment, create, &created);
  EXPECT_EQ(status.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message().rfind("answers[0].item_id: must not contain a NUL character", 0), 0)
      << status.error_message();
  // The same text without the NUL is taken.
  adjust.set_reason("new leg pain, both sides");
  status = clinician.Call(clinician.planning.get(), &ppb::PlanningService::Stub::AdjustPlan, adjust, &adjusted);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(adjusted.plan().status(), ppb::PLAN_STATUS_SUSPENDED);

  Caller engine = Integrator("engine-one");
  ppb::ListPlanTemplatesResponse current;
  ASSERT_TRUE(engine.Call(engine.planning.get(), &ppb::PlanningService::Stub::ListPlanTemplates,
                          ppb::ListPlanTemplatesRequest(), &current)
                  .ok());
  ppb::PublishTenantLibraryRequest publish;
  publish.set_request_id(NewId("rq"));
  publish.set_expected_version(current.version());
  publish.set_reason("our lifting programme");
  publish.set_document(R"({"entries": [{"id": "tenant.ex.hinge", "kind": "exercise", "category": "functional",
     "title": "Banded\u0000 hip hinge", "instructions": "Hinge at the hips.", "reason": "lifting",
     "source": "Clinic protocol 2026", "dose": {"sets": 2, "reps": 10, "hold_seconds": 0, "sessions_per_week": 3,
     "duration_minutes": 0}, "phases": ["movement_control"], "contraindications": ["loading_contraindicated"]}],
     "templates": []})");
  ppb::PublishTenantLibraryResponse published;
  status = engine.Call(engine.planning.get(), &ppb::PlanningService::Stub::PublishTenantLibrary, publish, &published);
  EXPECT_EQ(status.error_code(), StatusCode::INVALID_ARGUMENT) << status.error_message();
  EXPECT_NE(status.error_message().find("entry 'tenant.ex.hinge': 'title' must not contain a NUL character"),
            std::string::npos)
      << status.error_message();
  EXPECT_EQ(Sql("SELECT count(*) FROM planning.tenant_libraries WHERE tenant_id = $1", {tenant_}), "0");
}

TEST_F(Security, RepeatedIdsAreStoredAndAppliedOnce) {
  Caller clinician(*cluster_, MakeToken(*keys_, tenant_, "clin-1", {"clinician"}));
  auto plan = ApprovedPlanFor(clinician, "pat-1");
  std::string exercise;
  for (const auto& item : plan.items()) {
    if (item.kind() == ppb::PLAN_ITEM_KIND_EXERCISE && !item.progression_id().empty()) exercise = item.item_id();
  }
  ASSERT_FALSE(exercise.empty());

  gpb::RecordVisitRequest visit;
  visit.set_request_id(NewId("rq"));
  visit.set_patient_id("pat-1");
  visit.set_kind(gpb::VISIT_KIND_CLINIC);
  for (int i = 0; i < 3; ++i) visit.add_delivered_item_ids(exercise);
  gpb::RecordVisitResponse visited;
  auto status = clinician.Call(clinician.progress.get(), &gpb::ProgressService::Stub::RecordVisit, visit, &visited);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(visited.visit().delivered_item_ids_size(), 1);

  // The same exercise named three times moves one step along its progression, not three.
  ppb::AdjustPlanRequest adjust;
  adjust.set_request_id(NewId("rq"));
  adjust.set_plan_id(plan.plan_id());
  adjust.set_etag(plan.etag());
  adjust.set_adjustment(ppb::ADJUSTMENT_PROGRESS);
  adjust.set_reason("tolerating the dose");
  for (int i = 0; i < 3; ++i) adjust.add_item_ids(exercise);
  ppb::AdjustPlanResponse adjusted;
  status = clinician.Call(clinician.planning.get(), &ppb::PlanningService::Stub::AdjustPlan, adjust, &adjusted);
  ASSERT_TRUE(status.ok()) << status.error_message();
  std::string expected_next;
  for (const auto& item : plan.items()) {
    if (item.item_id() == exercise) expected_next = item.progression_id();
  }
  bool has_next = false;
  for (const auto& item : adjusted.plan().items()) has_next |= item.item_id() == expected_next;
  EXPECT_TRUE(has_next) << "expected " << exercise << " to move to " << expected_next;
  EXPECT_EQ(adjusted.plan().revision(), plan.revision() + 1);
}

// Quotas: 5 calls/s (burst 5) per caller, 12/s (burst 12) per tenant.
class Quotas : public Security {
 protected:
  static void SetUpTestSuite() {
    StartStoresAndCluster([](const std::string&, Config& config) {
      config.Set("rate-limit-principal-per-second", "5");
      config.Set("rate-limit-principal-burst", "5");
      config.Set("rate-limit-tenant-per-second", "12");
      config.Set("rate-limit-tenant-burst", "12");
    });
  }

  // `calls` back-to-back ListInterventions; counts per status code; the last refusal's retry hint.
  static std::map<StatusCode, int> Burst(const Caller& caller, int calls, std::string* retry_after_ms = nullptr) {
    std::map<StatusCode, int> codes;
    for (int i = 0; i < calls; ++i) {
      ppb::ListInterventionsRequest request;
      ppb::ListInterventionsResponse response;
      auto context = caller.Context();
      auto status = caller.planning->ListInterventions(context.get(), request, &response);
      ++codes[status.error_code()];
      if (status.error_code() == StatusCode::RESOURCE_EXHAUSTED && retry_after_ms != nullptr) {
        auto hint = context->GetServerTrailingMetadata().find("retry-after-ms");
        *retry_after_ms = hint == context->GetServerTrailingMetadata().end()
                              ? ""
                              : std::string(hint->second.data(), hint->second.size());
      }
    }
    return codes;
  }
};

TEST_F(Quotas, ANoisyCallerIsLimitedWithARetryHintWhileAnotherTenantIsServed) {
  Caller noisy = Patient("pat-noisy");
  std::string retry_after_ms;
  auto codes = Burst(noisy, 15, &retry_after_ms);
  EXPECT_GE(codes[StatusCode::OK], 5);
  EXPECT_GE(codes[StatusCode::RESOURCE_EXHAUSTED], 5);
  EXPECT_EQ(codes[StatusCode::OK] + codes[StatusCode::RESOURCE_EXHAUSTED], 15);
  ASSERT_FALSE(retry_after_ms.empty());
  EXPECT_GT(std::stoi(retry_after_ms), 0);
  EXPECT_LE(std::stoi(retry_after_ms), 1000);  // one token at 5/s

  // Another tenant's caller is not slowed by it.
  Caller other(*cluster_, MakeToken(*keys_, NewId("t"), "clin-9", {"clinician"}));
  EXPECT_EQ(Burst(other, 5)[StatusCode::OK], 5);
  // The service role is no way around quotas: without mutual TLS no caller can
  // show a service certificate, so a token claiming it is refused outright
  // (tls_test: under mutual TLS our services' certificates are not limited).
  Caller service(*cluster_, MakeToken(*keys_, tenant_, "svc-progress", {"service"}));
  EXPECT_EQ(Burst(service, 20)[StatusCode::PERMISSION_DENIED], 20);

  // The noisy caller is served again once its bucket refills.
  std::this_thread::sleep_for(std::chrono::milliseconds(std::stoi(retry_after_ms) + 50));
  EXPECT_EQ(Burst(noisy, 1)[StatusCode::OK], 1);
}

TEST_F(Quotas, ATenantsCallersShareTheTenantQuota) {
  int ok = 0, refused = 0;
  // Five callers of one tenant, each within its own 5/s, together past the tenant's 12.
  const auto started = std::chrono::steady_clock::now();
  for (int i = 0; i < 5; ++i) {
    auto codes = Burst(Integrator("engine-" + std::to_string(i)), 4);
    ok += codes[StatusCode::OK];
    refused += codes[StatusCode::RESOURCE_EXHAUSTED];
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  EXPECT_GE(ok, 12);
  // The bucket's 12, plus what refilled (12/s) while the burst ran: slower under the sanitizers.
  EXPECT_LE(ok, 12 + static_cast<int>(seconds * 12) + 1) << "burst took " << seconds << " s";
  EXPECT_LT(ok, 20) << "the tenant's quota refused some of the five callers' 20 calls";
  EXPECT_EQ(ok + refused, 20);
  Caller other(*cluster_, MakeToken(*keys_, NewId("t"), "engine-0", {"integrator"}));
  EXPECT_EQ(Burst(other, 4)[StatusCode::OK], 4);
}

// Redis full (refusing writes) or gone must not switch rate limiting off:
// the same limits hold in the process, and /metrics counts the fallback.
TEST_F(Quotas, WhenRedisRefusesWritesTheLimitsHoldInProcess) {
  RedisOptions options;
  options.port = redis_->port();
  RedisPool admin(options);
  auto deadline = [] { return Clock::now() + std::chrono::seconds(2); };
  ASSERT_EQ(admin.Command({"CONFIG", "SET", "maxmemory", "1"}, deadline())->type, REDIS_REPLY_STATUS);
  Caller noisy = Patient("pat-noisy-full");
  auto codes = Burst(noisy, 15);
  ASSERT_EQ(admin.Command({"CONFIG", "SET", "maxmemory", "256mb"}, deadline())->type, REDIS_REPLY_STATUS);
  EXPECT_GE(codes[StatusCode::OK], 5);
  EXPECT_GE(codes[StatusCode::RESOURCE_EXHAUSTED], 5) << "the limit held while Redis refused writes";
  EXPECT_EQ(codes[StatusCode::OK] + codes[StatusCode::RESOURCE_EXHAUSTED], 15);
  httplib::Client metrics("127.0.0.1", cluster_->planning_metrics_port());
  auto text = metrics.Get("/metrics");
  ASSERT_TRUE(text);
  std::smatch match;
  ASSERT_TRUE(std::regex_search(text->body, match, std::regex(R"(\nphysio_rate_limit_fallbacks_total ([0-9.e+]+))")))
      << text->body;
  EXPECT_GE(std::stod(match[1]), 15.0);
}

// A token must not be issued in the future: iat three quarters of an hour
// ahead with a lifetime within the cap (so exp - iat passes) would live far
// past the cap from now.
TEST_F(Security, ATokenIssuedInTheFutureIsRefused) {
  TokenRequest ahead{kIssuer, kAudience, tenant_, "clin-ahead", {"clinician"}};
  ahead.issued_at_offset = std::chrono::seconds(2700);
  ahead.not_before_offset = std::chrono::seconds(-2700);  // nbf now: usable at once
  Caller caller(*cluster_, MintToken(keys_->private_key_pem, ahead));
  ppb::ListInterventionsRequest request;
  ppb::ListInterventionsResponse response;
  EXPECT_EQ(caller.Call(caller.planning.get(), &ppb::PlanningService::Stub::ListInterventions, request, &response)
                .error_code(),
            StatusCode::UNAUTHENTICATED);
  TokenRequest now{kIssuer, kAudience, tenant_, "clin-now", {"clinician"}};
  Caller control(*cluster_, MintToken(keys_->private_key_pem, now));
  EXPECT_TRUE(
      control.Call(control.planning.get(), &ppb::PlanningService::Stub::ListInterventions, request, &response).ok());
}

// An address flooding calls without a valid token: past its budget of failed
// logins (5 at once, 1/s here) its calls are refused RESOURCE_EXHAUSTED before
// any work; a caller with a valid token from the same address is still served;
// the refusals' audit rows are few (3 at once, 1/s), each saying in `repeats`
// how many refusals it stands for, and what the request named as the patient
// is kept as a claim, never as patient_id.
class Floods : public Security {
 protected:
  static void SetUpTestSuite() {
    StartStoresAndCluster([](const std::string&, Config& config) {
      config.Set("unauthenticated-per-address-per-second", "1");
      config.Set("unauthenticated-per-address-burst", "5");
      config.Set("refusal-audit-per-address-per-second", "1");
      config.Set("refusal-audit-per-address-burst", "3");
    });
  }
};

TEST_F(Floods, UnauthenticatedCallsAreLimitedPerAddressAndTheirAuditIsAggregated) {
  Caller forged(*cluster_, MakeToken(*keys_, tenant_, "clin-1", {"clinician"}) + "x");
  Caller clinician = Integrator("engine-flood");
  apb::ListAssessmentsRequest list;
  list.set_patient_id("pat-claimed");
  apb::ListAssessmentsResponse listed;
  std::map<StatusCode, int> codes;
  for (int i = 0; i < 40; ++i) {
    ++codes[forged.Call(forged.assessment.get(), &apb::AssessmentService::Stub::ListAssessments, list, &listed)
                .error_code()];
    if (i % 10 == 9) {
      EXPECT_TRUE(clinician.Call(clinician.assessment.get(), &apb::AssessmentService::Stub::ListAssessments, list,
                                 &listed).ok())
          << "a valid caller from the flooding address is still served";
    }
  }
  EXPECT_GE(codes[StatusCode::UNAUTHENTICATED], 5);
  EXPECT_LE(codes[StatusCode::UNAUTHENTICATED], 8);
  EXPECT_GE(codes[StatusCode::RESOURCE_EXHAUSTED], 32);
  // An event stream from the same address is refused before it gets a thread.
  {
    auto context = forged.Context(std::chrono::seconds(5));
    apb::WatchEventsRequest watch;
    auto reader = forged.assessment->WatchEvents(context.get(), watch);
    apb::WatchEventsResponse event;
    EXPECT_FALSE(reader->Read(&event));
    EXPECT_EQ(reader->Finish().error_code(), StatusCode::RESOURCE_EXHAUSTED);
  }
  // A quiet second: one more failure is allowed, and its row carries the ones not yet written.
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  ASSERT_EQ(forged.Call(forged.assessment.get(), &apb::AssessmentService::Stub::ListAssessments, list, &listed)
                .error_code(),
            StatusCode::UNAUTHENTICATED);
  const int unauthenticated = codes[StatusCode::UNAUTHENTICATED] + 1;
  std::string rows, repeats, named;
  for (int i = 0; i < 50 && repeats != std::to_string(unauthenticated); ++i) {
    if (i > 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    rows = Sql("SELECT count(*)::text FROM assessment.audit_events WHERE outcome = 'UNAUTHENTICATED'"
               " AND action = 'ListAssessments' AND claimed_patient_id = $1",
               {"pat-claimed"});
    repeats = Sql("SELECT coalesce(sum(repeats), 0)::text FROM assessment.audit_events WHERE outcome = 'UNAUTHENTICATED'"
                  " AND action = 'ListAssessments' AND claimed_patient_id = $1",
                  {"pat-claimed"});
  }
  EXPECT_EQ(repeats, std::to_string(unauthenticated)) << "every refused login is counted in the trail";
  EXPECT_LE(std::stoi(rows), 4) << "but in few rows";
  named = Sql("SELECT count(*)::text FROM assessment.audit_events WHERE outcome = 'UNAUTHENTICATED'"
              " AND patient_id IS NOT NULL", {});
  EXPECT_EQ(named, "0") << "an unauthenticated request's patient id is never recorded as a patient accessed";
  httplib::Client metrics("127.0.0.1", cluster_->assessment_metrics_port());
  auto text = metrics.Get("/metrics");
  ASSERT_TRUE(text);
  std::smatch match;
  ASSERT_TRUE(std::regex_search(text->body, match, std::regex(R"(\nphysio_unauthenticated_refused_total ([0-9.e+]+))")));
  EXPECT_GE(std::stod(match[1]), 32.0);
}

// Retention: records past it are written to a file (fsynced) and only then
// leave the table; younger ones stay; an archive that cannot be written deletes nothing.
TEST_F(Security, AuditRecordsPastTheirRetentionAreArchivedNeverJustDeleted) {
  const std::string old_id = NewId("req"), young_id = NewId("req");
  Sql("INSERT INTO assessment.audit_events (tenant_id, occurred_at, principal, roles, action, patient_id, outcome,"
      " request_id) VALUES ($1, now() - interval '7 years', 'clin-old', 'clinician', 'GetAssessment', 'pat-old', 'OK', $2),"
      " ($1, now() - interval '1 year', 'clin-young', 'clinician', 'GetAssessment', 'pat-young', 'OK', $3)",
      {tenant_, old_id, young_id});
  PgOptions options;
  options.ports = std::to_string(postgres_->port());
  options.pool_size = 1;
  PgPool pool(options);
  // A directory that cannot be made: nothing is deleted.
  const auto blocker = std::filesystem::temp_directory_path() / ("physio-archive-blocker-" + NewId("f"));
  std::ofstream(blocker) << "a file, not a directory";
  EXPECT_ANY_THROW(ArchiveAuditEvents(pool, "assessment", std::chrono::hours(24 * 2190), blocker / "sub"));
  EXPECT_EQ(Sql("SELECT count(*)::text FROM assessment.audit_events WHERE request_id = $1", {old_id}), "1");
  std::filesystem::remove(blocker);

  const auto directory = std::filesystem::temp_directory_path() / ("physio-archive-" + NewId("d"));
  const auto result = ArchiveAuditEvents(pool, "assessment", std::chrono::hours(24 * 2190), directory);
  EXPECT_GE(result.rows, 1);
  ASSERT_FALSE(result.files.empty());
  std::string archived;
  for (const auto& file : result.files) {
    std::ifstream in(file);
    archived += std::string(std::istreambuf_iterator<char>(in), {});
  }
  EXPECT_NE(archived.find("\"request_id\":\"" + old_id + "\""), std::string::npos) << archived;
  EXPECT_NE(archived.find("\"patient_id\":\"pat-old\""), std::string::npos);
  EXPECT_EQ(archived.find(young_id), std::string::npos);
  EXPECT_EQ(Sql("SELECT count(*)::text FROM assessment.audit_events WHERE request_id = $1", {old_id}), "0");
  EXPECT_EQ(Sql("SELECT count(*)::text FROM assessment.audit_events WHERE request_id = $1", {young_id}), "1");
  std::filesystem::remove_all(directory);
}

// Reads that grow with a patient's history work over a bounded window: here
// the 3 newest rows of each kind (history-max-rows) of the last 30 days.
class HistoryWindow : public Security {
 protected:
  static void SetUpTestSuite() {
    StartStoresAndCluster([](const std::string& service, Config& config) {
      if (service != "progress") return;
      config.Set("history-max-rows", "3");
      config.Set("history-window-days", "30");
    });
  }
};

TEST_F(HistoryWindow, ASummaryReadsOnlyTheNewestRowsWithinTheWindow) {
  Caller clinician(*cluster_, MakeToken(*keys_, tenant_, "clin-1", {"clinician"}));
  const int64_t now = std::time(nullptr);
  // In effect since before the oldest log: a log from before its plan began is refused.
  auto plan = ApprovedPlanFor(clinician, "pat-1", now - 41 * 24 * 3600);
  std::string exercise;
  for (const auto& item : plan.items()) {
    if (item.kind() == ppb::PLAN_ITEM_KIND_EXERCISE) exercise = item.item_id();
  }
  Caller patient = Patient("pat-1");
  // Five logs within the window (pain 1..5, newest last) and one 40 days ago (outside it).
  for (int days_ago : {40, 5, 4, 3, 2, 1}) {
    gpb::LogHomeExerciseRequest log;
    log.set_request_id(NewId("rq"));
    log.set_patient_id("pat-1");
    log.set_exercise_id(exercise);
    log.mutable_performed_time()->set_seconds(now - days_ago * 24 * 3600);
    log.set_sets_done(1);
    log.set_reps_done(1);
    log.set_pain_after(6 - days_ago % 6);
    gpb::LogHomeExerciseResponse logged;
    auto status = patient.Call(patient.progress.get(), &gpb::ProgressService::Stub::LogHomeExercise, log, &logged);
    ASSERT_TRUE(status.ok()) << days_ago << ": " << status.error_message();
  }
  gpb::GetProgressSummaryRequest request;
  request.set_patient_id("pat-1");
  gpb::GetProgressSummaryResponse response;
  ASSERT_TRUE(
      clinician.Call(clinician.progress.get(), &gpb::ProgressService::Stub::GetProgressSummary, request, &response).ok());
  EXPECT_EQ(response.summary().home_log_count(), 3);
  std::vector<int> home_pain;
  for (const auto& point : response.summary().pain_trend()) {
    if (point.source() == "home_log") home_pain.push_back(point.pain());
  }
  EXPECT_EQ(home_pain, (std::vector<int>{3, 4, 5}));  // the three newest, oldest first
}

// Keys rotate without a restart: the services read a directory of <kid>.pem
// public keys and notice added and removed keys (checked on every call here).
class KeyRotation : public Security {
 protected:
  static void SetUpTestSuite() {
    key_dir_ = std::filesystem::temp_directory_path() / NewId("jwt-keys");
    std::filesystem::create_directories(key_dir_);
    first_ = GenerateRsaKeyPair();
    second_ = GenerateRsaKeyPair();
    std::ofstream(key_dir_ / "key-2026-1.pem") << first_.public_key_pem;
    StartStoresAndCluster([](const std::string&, Config& config) {
      config.Set("jwt-public-key", key_dir_.string());
      config.Set("jwt-keys-reload-seconds", "0");
    });
  }
  static void TearDownTestSuite() {
    ClusterFixture::TearDownTestSuite();
    std::filesystem::remove_all(key_dir_);
  }

  grpc::StatusCode ListWith(const RsaKeyPair& key, const std::string& kid) const {
    TokenRequest token{kIssuer, kAudience, tenant_, "clin-1", {"clinician"}};
    token.key_id = kid;
    Caller caller(*cluster_, MintToken(key.private_key_pem, token));
    ppb::ListInterventionsRequest request;
    ppb::ListInterventionsResponse response;
    return caller.Call(caller.planning.get(), &ppb::PlanningService::Stub::ListInterventions, request, &response)
        .error_code();
  }

  inline static std::filesystem::path key_dir_;
  inline static RsaKeyPair first_, second_;
};

TEST_F(KeyRotation, AddedKeysVerifyAndRemovedKeysStopWithoutARestart) {
  EXPECT_EQ(ListWith(first_, "key-2026-1"), StatusCode::OK);
  EXPECT_EQ(ListWith(first_, ""), StatusCode::UNAUTHENTICATED);            // a key directory needs a kid
  EXPECT_EQ(ListWith(second_, "key-2026-2"), StatusCode::UNAUTHENTICATED);  // not published yet
  EXPECT_EQ(ListWith(second_, "key-2026-1"), StatusCode::UNAUTHENTICATED);  // signed by another key than it names

  std::ofstream(key_dir_ / "key-2026-2.pem") << second_.public_key_pem;
  EXPECT_EQ(ListWith(second_, "key-2026-2"), StatusCode::OK);
  EXPECT_EQ(ListWith(first_, "key-2026-1"), StatusCode::OK);  // both during the overlap

  std::filesystem::remove(key_dir_ / "key-2026-1.pem");
  EXPECT_EQ(ListWith(first_, "key-2026-1"), StatusCode::UNAUTHENTICATED);  // retired, even though it was cached
  EXPECT_EQ(ListWith(second_, "key-2026-2"), StatusCode::OK);
}

// Least privilege: each service's schema is owned (and migrated) by its own
// owner role, and the service runs as a role that can use only its own
// schema's tables and can only add to the audit trail.
class LeastPrivilege : public Security {
 protected:
  static constexpr const char* kServices[] = {"assessment", "planning", "progress"};
  static void SetUpTestSuite() {
    StartStoresAndCluster(
        [](const std::string& service, Config& config) {
          config.Set("pg-user", "physio_" + service);
          config.Set("pg-migration-user", "physio_" + service + "_owner");
        },
        [] {
          for (const std::string service : kServices) {
            Sql("CREATE ROLE physio_" + service + "_owner LOGIN", {});
            Sql("CREATE ROLE physio_" + service + " LOGIN", {});
            Sql("GRANT CREATE ON DATABASE physio TO physio_" + service + "_owner", {});
          }
          // As deploy/postgres-init and run.sh do: the audit read API's role, held by assessment's.
          Sql("CREATE ROLE physio_audit_reader NOLOGIN", {});
          Sql("GRANT physio_audit_reader TO physio_assessment", {});
        });
  }
};

TEST_F(LeastPrivilege, ServicesWorkAsTheirOwnRolesWhichCannotChangeTheAuditTrailOrTouchOtherSchemas) {
  // The services work end to end as their runtime roles (intake, plan, a visit, a summary).
  Caller clinician(*cluster_, MakeToken(*keys_, tenant_, "clin-1", {"clinician"}));
  auto plan = ApprovedPlanFor(clinician, "pat-1");
  ASSERT_EQ(plan.status(), ppb::PLAN_STATUS_ACTIVE);
  gpb::GetProgressSummaryRequest summary;
  summary.set_patient_id("pat-1");
  gpb::GetProgressSummaryResponse summarised;
  ASSERT_TRUE(
      clinician.Call(clinician.progress.get(), &gpb::ProgressService::Stub::GetProgressSummary, summary, &summarised).ok());
  EXPECT_EQ(Sql("SELECT tableowner FROM pg_tables WHERE schemaname = 'assessment' AND tablename = 'audit_events'", {}),
            "physio_assessment_owner");

  for (const std::string service : kServices) {
    const std::string role = "physio_" + service;
    std::vector<std::string> refused = {"UPDATE " + service + ".audit_events SET outcome = 'OK'",
                                        "DELETE FROM " + service + ".audit_events", "TRUNCATE " + service + ".audit_events",
                                        "DROP TABLE " + service + ".idempotency", "CREATE TABLE " + service + ".extra (x int)"};
    // Only the audit reader (assessment's role) reads audit trails, its own and the others'.
    if (service != "assessment") refused.push_back("SELECT count(*) FROM " + service + ".audit_events");
    for (const std::string& statement : refused) {
      std::string error;
      Sql(statement, {}, role, &error);
      EXPECT_TRUE(error.find("permission denied") != std::string::npos || error.find("must be owner") != std::string::npos)
          << role << ": " << statement << " -> " << error;
    }
  }
  // Nor another service's records.
  std::string error;
  Sql("SELECT count(*) FROM planning.plans", {}, "physio_assessment", &error);
  EXPECT_NE(error.find("permission denied"), std::string::npos) << error;
  // The audit trail was written by those roles all the same.
  EXPECT_NE(Sql("SELECT count(*)::text FROM planning.audit_events WHERE tenant_id = $1", {tenant_}), "0");
  // The audit reader reads every service's trail and nothing else of their schemas.
  for (const std::string service : kServices) {
    std::string read_error;
    EXPECT_NE(Sql("SELECT count(*)::text FROM " + service + ".audit_events WHERE tenant_id = $1", {tenant_},
                  "physio_assessment", &read_error),
              "0")
        << service << ": " << read_error;
  }
  std::string visits_error;
  Sql("SELECT count(*) FROM progress.visits", {}, "physio_assessment", &visits_error);
  EXPECT_NE(visits_error.find("permission denied"), std::string::npos) << visits_error;
  for (const std::string service : {"planning", "progress"}) {
    std::string reader_error;
    Sql("SELECT count(*) FROM assessment.audit_events", {}, "physio_" + service, &reader_error);
    EXPECT_NE(reader_error.find("permission denied"), std::string::npos) << service << ": " << reader_error;
  }
  // The audit trail's read indexes are built concurrently after start, by the schema's owner.
  const std::string valid_indexes =
      "SELECT count(*)::text FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON"
      " n.oid = c.relnamespace WHERE c.relname IN ('audit_events_actor', 'audit_events_tenant_time') AND i.indisvalid";
  for (int i = 0; i < 100 && Sql(valid_indexes, {}) != "6"; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(Sql(valid_indexes, {}), "6");
  EXPECT_EQ(Sql("SELECT tableowner FROM pg_indexes i JOIN pg_tables t USING (schemaname, tablename)"
                " WHERE i.schemaname = 'planning' AND i.indexname = 'audit_events_actor'",
                {}),
            "physio_planning_owner");
  // One a crash left INVALID is dropped and built again (as at the next start).
  Sql("UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'progress.audit_events_actor'::regclass", {});
  EXPECT_EQ(Sql(valid_indexes, {}), "5");
  PgOptions owner;
  owner.ports = std::to_string(postgres_->port());
  owner.database = "physio";
  owner.user = "postgres";
  EXPECT_EQ(BuildConcurrentIndexes(owner, "progress", PlatformConcurrentIndexes()),
            std::vector<std::string>{"audit_events_actor"});
  EXPECT_EQ(Sql(valid_indexes, {}), "6");
  EXPECT_TRUE(BuildConcurrentIndexes(owner, "progress", PlatformConcurrentIndexes()).empty());  // nothing left to build
  // A retired index (migration 0001's, made redundant by the keyset one) is dropped, concurrently, at start.
  const std::string patient_indexes =
      "SELECT string_agg(indexname, ',' ORDER BY indexname) FROM pg_indexes WHERE schemaname = 'assessment'"
      " AND indexname LIKE 'assessments_by_patient%'";
  for (int i = 0; i < 100 && Sql(patient_indexes, {}) != "assessments_by_patient_keyset"; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(Sql(patient_indexes, {}), "assessments_by_patient_keyset");
  // So the audit read API works under least privilege, across the three services.
  Caller auditor(*cluster_, MakeToken(*keys_, tenant_, "dpo-1", {"auditor"}));
  apb::ListAuditEventsRequest list;
  list.mutable_query()->set_patient_id("pat-1");
  list.set_page_size(500);
  apb::ListAuditEventsResponse listed;
  auto status = auditor.Call(auditor.assessment.get(), &apb::AssessmentService::Stub::ListAuditEvents, list, &listed);
  ASSERT_TRUE(status.ok()) << status.error_message();
  std::set<std::string> services;
  for (const auto& event : listed.events()) services.insert(event.service());
  EXPECT_EQ(services, (std::set<std::string>{"assessment", "planning", "progress"}));
}

// Store credentials from files: Redis requires a password (AUTH) and the
// services read it from redis-password-file.
class StoreCredentials : public Security {
 protected:
  static void SetUpTestSuite() {
    password_file_ = std::filesystem::temp_directory_path() / NewId("redis-password");
    std::ofstream(password_file_) << "s3cret-for-tests\n";  // the trailing newline is not part of it
    StartStoresAndCluster(
        [](const std::string&, Config& config) { config.Set("redis-password-file", password_file_.string()); },
        [] {
          RedisOptions options;
          options.port = redis_->port();
          RedisPool admin(options);
          admin.Command({"CONFIG", "SET", "requirepass", "s3cret-for-tests"}, Clock::now() + std::chrono::seconds(2));
        });
  }
  static void TearDownTestSuite() {
    ClusterFixture::TearDownTestSuite();
    std::filesystem::remove(password_file_);
  }
  inline static std::filesystem::path password_file_;
};

TEST_F(StoreCredentials, ServicesAuthenticateToRedisWithAPasswordFromAFile) {
  Caller engine = Integrator("engine-one");
  auto started = StartIntake(engine, "pat-1", NewId("rq"));  // a Redis session, so AUTH worked
  EXPECT_FALSE(started.session().session_id().empty());
  // And Redis does refuse a client without it.
  RedisOptions options;
  options.port = redis_->port();
  RedisPool anonymous(options);
  auto reply = anonymous.Command({"GET", "x"}, Clock::now() + std::chrono::seconds(2));
  ASSERT_EQ(reply->type, REDIS_REPLY_ERROR);
  EXPECT_NE(std::string(reply->str, reply->len).find("NOAUTH"), std::string::npos);
}

}  // namespace
}  // namespace physio::testing
