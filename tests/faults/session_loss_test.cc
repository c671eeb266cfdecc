// Live sessions across a Redis crash (issue 12, item 3). Redis runs as run.sh
// runs it: an append-only file with fsync every second. Redis writes each
// command to the file before it replies, so a crash of the Redis process
// (SIGKILL here) loses nothing that was acknowledged; only a crash of the
// machine can lose what was written in the last second before it. Each
// submission is one Lua script, logged whole: after the restart a session has
// every acknowledged submission whole, never part of one.
#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <map>
#include <thread>

#include "clients.h"
#include "physio/common/ids.h"

namespace physio::testing {
namespace {

using grpc::StatusCode;

class SessionLoss : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    spdlog::set_level(spdlog::level::err);
    keys_ = std::make_unique<TestKeys>();
    redis_ = std::make_unique<RedisServer>(/*persistent=*/true);
    postgres_ = std::make_unique<PostgresServer>();
    postgres_->CreateDatabase("physio");
    cluster_ = std::make_unique<ServiceCluster>(*keys_, redis_->port(), postgres_->port(), "physio");
  }
  static void TearDownTestSuite() {
    cluster_.reset();
    postgres_.reset();
    redis_.reset();
    keys_.reset();
  }

  Caller Patient() const { return Caller(*cluster_, MakeToken(*keys_, "acme", "pt-1", {"patient"}, "pt-1")); }

  // GetIntake, retried while Redis is coming back (UNAVAILABLE); its last status.
  grpc::Status GetIntakeAfterRestart(const std::string& session_id, apb::GetIntakeResponse* got) {
    auto patient = Patient();
    apb::GetIntakeRequest get;
    get.set_session_id(session_id);
    grpc::Status status;
    for (int i = 0; i < 50; ++i) {
      status = patient.Call(patient.assessment.get(), &apb::AssessmentService::Stub::GetIntake, get, got,
                            std::chrono::seconds(2));
      if (status.error_code() != StatusCode::UNAVAILABLE) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return status;
  }

  inline static std::unique_ptr<TestKeys> keys_;
  inline static std::unique_ptr<RedisServer> redis_;
  inline static std::unique_ptr<PostgresServer> postgres_;
  inline static std::unique_ptr<ServiceCluster> cluster_;
};

TEST_F(SessionLoss, EveryAcknowledgedSubmissionSurvivesARedisCrashWholeAndNoneHalfMerged) {
  auto patient = Patient();
  apb::StartIntakeRequest start;
  start.set_request_id(NewId("rq"));
  start.set_patient_id("pt-1");
  start.add_instruments(cpb::INSTRUMENT_ODI);
  apb::StartIntakeResponse started;
  ASSERT_TRUE(patient.Call(patient.assessment.get(), &apb::AssessmentService::Stub::StartIntake, start, &started).ok());
  const std::string session_id = started.session().session_id();

  // A burst of submissions, each setting all ten ODI items to one value, the
  // crash right after the last acknowledgement.
  int last_acknowledged = -1;
  for (int round = 0; round < 30; ++round) {
    apb::SubmitIntakeAnswersRequest submit;
    submit.set_request_id(NewId("rq"));
    submit.set_session_id(session_id);
    for (int item = 1; item <= 10; ++item) {
      *submit.add_answers() = Answer(cpb::INSTRUMENT_ODI, "odi." + std::to_string(item), round % 6);
    }
    apb::SubmitIntakeAnswersResponse submitted;
    ASSERT_TRUE(patient.Call(patient.assessment.get(), &apb::AssessmentService::Stub::SubmitIntakeAnswers, submit,
                             &submitted).ok());
    last_acknowledged = round % 6;
  }
  redis_->Crash();
  redis_->Start();

  apb::GetIntakeResponse got;
  auto status = GetIntakeAfterRestart(session_id, &got);
  ASSERT_TRUE(status.ok()) << status.error_message();
  std::map<std::string, int> values;
  for (const auto& answer : got.session().answers()) values[answer.item_id()] = answer.value();
  ASSERT_EQ(values.size(), 10u) << "every item of the acknowledged submissions is there";
  for (const auto& [item, value] : values) {
    EXPECT_EQ(value, last_acknowledged) << item << ": the last acknowledged submission, whole";
  }
  EXPECT_EQ(got.session().progress(0).answered_items(), 10);
}

// A session Redis no longer has (lost, expired, or never there) is NOT_FOUND
// with what to do, never an empty or partial session.
TEST_F(SessionLoss, ASessionRedisNoLongerHasIsNotFoundWithWhatToDo) {
  apb::GetIntakeResponse got;
  auto status = GetIntakeAfterRestart(NewId("intake"), &got);
  EXPECT_EQ(status.error_code(), StatusCode::NOT_FOUND);
  EXPECT_NE(status.error_message().find("start a new intake (StartIntake) and submit the answers again"),
            std::string::npos)
      << status.error_message();
  EXPECT_FALSE(got.has_session());
}

}  // namespace
}  // namespace physio::testing
