// foundation_test: Intake sessions, scoring, imports and what an assessment carries.
#include <future>

#include "foundation.h"
#include "intake_store.h"
#include "physio/redis/async_redis.h"

namespace physio::testing {
namespace {

using Intake = Foundation;

TEST_F(Intake, IntakeLifecycleErrors) {
  auto patient = Patient();
  auto session = StartIntake(patient);
  ASSERT_TRUE(Submit(patient, session.session_id(), {Answer(cpb::INSTRUMENT_NPRS, "nprs", 4)}).ok());
  auto incomplete = Complete(patient, session.session_id(), nullptr);
  EXPECT_EQ(incomplete.error_code(), StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(incomplete.error_message().find("odi.1"), std::string::npos);
  ASSERT_TRUE(Submit(patient, session.session_id(), FullIntake()).ok());
  ASSERT_TRUE(Complete(patient, session.session_id(), nullptr).ok());
  EXPECT_EQ(Submit(patient, session.session_id(), {Answer(cpb::INSTRUMENT_NPRS, "nprs", 2)}).error_code(),
            StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(Submit(patient, "intake_does_not_exist", {Answer(cpb::INSTRUMENT_NPRS, "nprs", 2)}).error_code(),
            StatusCode::NOT_FOUND);
}

TEST_F(Intake, ConcurrentSubmissionsToOneSessionLoseNothing) {
  auto patient = Patient();
  auto session = StartIntake(patient);
  auto answers = FullIntake();
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (const auto& answer : answers) {
    threads.emplace_back([&, answer] {
      if (!Submit(patient, session.session_id(), {answer}).ok()) ++failures;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  apb::GetIntakeRequest request;
  request.set_session_id(session.session_id());
  apb::GetIntakeResponse response;
  ASSERT_TRUE(patient.Call(patient.assessment.get(), &apb::AssessmentService::Stub::GetIntake, request, &response).ok());
  EXPECT_EQ(response.session().answers_size(), 11);
  EXPECT_TRUE(response.session().progress(0).complete());
  EXPECT_TRUE(response.session().progress(1).complete());
}

// A submission is applied once per request id, its outcome recorded in the same script as the
// change (issue 33): a retry gets the first outcome back, even after the session moved on, and
// changes nothing; the same id with other content is refused; retries racing the first attempt
// all get that one outcome.
TEST_F(Intake, ARetriedSubmissionReplaysItsFirstOutcomeAndChangesNothing) {
  using google::protobuf::util::MessageDifferencer;
  auto patient = Patient();
  auto session = StartIntake(patient);
  apb::IntakeSession first;
  ASSERT_TRUE(Submit(patient, session.session_id(), {Answer(cpb::INSTRUMENT_NPRS, "nprs", 4)}, &first, "rq-pain-1").ok());
  ASSERT_EQ(first.answers_size(), 1);
  EXPECT_GT(first.expire_time().seconds(), 0);
  apb::IntakeSession later;
  ASSERT_TRUE(Submit(patient, session.session_id(), {Answer(cpb::INSTRUMENT_NPRS, "nprs", 7)}, &later).ok());
  EXPECT_EQ(later.answers(0).value(), 7);

  apb::IntakeSession replayed;
  ASSERT_TRUE(Submit(patient, session.session_id(), {Answer(cpb::INSTRUMENT_NPRS, "nprs", 4)}, &replayed, "rq-pain-1").ok());
  EXPECT_TRUE(MessageDifferencer::Equals(replayed, first)) << replayed.DebugString() << "\nvs\n" << first.DebugString();
  apb::GetIntakeRequest get;
  get.set_session_id(session.session_id());
  apb::GetIntakeResponse now;
  ASSERT_TRUE(patient.Call(patient.assessment.get(), &apb::AssessmentService::Stub::GetIntake, get, &now).ok());
  EXPECT_EQ(now.session().answers(0).value(), 7) << "the retry must not apply the old answer again";

  auto reused = Submit(patient, session.session_id(), {Answer(cpb::INSTRUMENT_NPRS, "nprs", 2)}, nullptr, "rq-pain-1");
  EXPECT_EQ(reused.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(reused.error_message().find("request_id"), std::string::npos) << reused.error_message();

  // Another caller's request id is theirs: the same id from the clinician is a new submission.
  apb::IntakeSession by_clinician;
  ASSERT_TRUE(Submit(Clinician(), session.session_id(), {Answer(cpb::INSTRUMENT_NPRS, "nprs", 5)}, &by_clinician,
                     "rq-pain-1").ok());
  EXPECT_EQ(by_clinician.answers(0).value(), 5);

  // A refused submission leaves no record: the same id, once the cause is gone, is applied.
  auto wrong_instrument = Submit(patient, session.session_id(), {Answer(cpb::INSTRUMENT_START_BACK, "sbt.1", 1)},
                                 nullptr, "rq-after-refusal");
  EXPECT_EQ(wrong_instrument.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Submit(patient, "intake_gone", {Answer(cpb::INSTRUMENT_NPRS, "nprs", 3)}, nullptr, "rq-gone").error_code(),
            StatusCode::NOT_FOUND);
  apb::IntakeSession after_refusal;
  ASSERT_TRUE(Submit(patient, session.session_id(), {Answer(cpb::INSTRUMENT_NPRS, "nprs", 3)}, &after_refusal,
                     "rq-gone").ok());
  EXPECT_EQ(after_refusal.answers(0).value(), 3);

  // Eight copies of one request at once: one change, one outcome for all.
  std::vector<apb::IntakeSession> outcomes(8);
  std::vector<grpc::Status> statuses(8);
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      statuses[i] = Submit(patient, session.session_id(), {Answer(cpb::INSTRUMENT_ODI, "odi.1", 2)}, &outcomes[i],
                           "rq-raced");
    });
  }
  for (auto& thread : threads) thread.join();
  for (int i = 0; i < 8; ++i) {
    ASSERT_TRUE(statuses[i].ok()) << statuses[i].error_message();
    EXPECT_TRUE(MessageDifferencer::Equals(outcomes[i], outcomes[0])) << i;
  }
}

// A retry of a submission recorded by the earlier protocol (RedisIdempotency's "<fingerprint>\n
// <response>", which the service wrote before this release) still gets that response.
TEST_F(Intake, ASubmissionRecordedByTheEarlierProtocolIsStillReplayed) {
  auto patient = Patient();
  auto session = StartIntake(patient);
  apb::SubmitIntakeAnswersRequest request;
  request.set_request_id("rq-before-upgrade");
  request.set_session_id(session.session_id());
  *request.add_answers() = Answer(cpb::INSTRUMENT_NPRS, "nprs", 8);
  apb::SubmitIntakeAnswersResponse recorded;
  recorded.mutable_session()->set_session_id(session.session_id());
  recorded.mutable_session()->set_patient_id(patient_id_);
  *recorded.mutable_session()->add_answers() = Answer(cpb::INSTRUMENT_NPRS, "nprs", 8);
  *recorded.mutable_session()->mutable_instruments() = session.instruments();
  *recorded.mutable_session()->mutable_progress() = session.progress();  // as the earlier release stored it
  RedisOptions options;
  options.port = redis_->port();
  options.pool_size = 1;
  RedisPool redis(options);
  RedisIdempotency earlier(redis);
  earlier.Run({"asmt", tenant_, patient_id_, "SubmitIntakeAnswers", request.request_id()}, RequestFingerprint(request),
              Clock::now() + std::chrono::seconds(2), [&] { return recorded.SerializeAsString(); });

  apb::SubmitIntakeAnswersResponse replayed;
  ASSERT_TRUE(patient.Call(patient.assessment.get(), &apb::AssessmentService::Stub::SubmitIntakeAnswers, request,
                           &replayed).ok());
  ASSERT_EQ(replayed.session().answers_size(), 1);
  EXPECT_EQ(replayed.session().answers(0).value(), 8);
  ASSERT_EQ(session.progress_size(), 2);
  EXPECT_EQ(replayed.session().progress_size(), 2) << "progress once, not twice";
  apb::GetIntakeRequest get;
  get.set_session_id(session.session_id());
  apb::GetIntakeResponse now;
  ASSERT_TRUE(patient.Call(patient.assessment.get(), &apb::AssessmentService::Stub::GetIntake, get, &now).ok());
  EXPECT_EQ(now.session().answers_size(), 0) << "a replay changes nothing";
  request.mutable_answers(0)->set_value(1);
  EXPECT_EQ(patient.Call(patient.assessment.get(), &apb::AssessmentService::Stub::SubmitIntakeAnswers, request,
                         &replayed).error_code(),
            StatusCode::INVALID_ARGUMENT);
}

// Issue 33: a submission is answered without a worker thread (CallPipeline::ServeFastRead with
// AssessmentApp::StartSubmitIntakeAnswers, counted on assessment's /metrics), each with its audit
// row, and a refusal is made (and recorded) by the ordinary path.
TEST_F(Intake, SubmissionsAreAnsweredWithoutAWorkerAndEachIsAudited) {
  const auto fast = [&](const std::string& outcome) {
    return FastPathCount(cluster_->assessment_metrics_port(), outcome);
  };
  auto patient = Patient();
  auto session = StartIntake(patient);
  Submit(patient, session.session_id(), {Answer(cpb::INSTRUMENT_NPRS, "nprs", 1)});  // the script reaches Redis's cache
  const long answered_before = fast("answered");
  ASSERT_GE(answered_before, 0) << "physio_fast_reads_total is on assessment's /metrics";
  for (int value = 2; value <= 6; ++value) {
    apb::IntakeSession now;
    ASSERT_TRUE(Submit(patient, session.session_id(), {Answer(cpb::INSTRUMENT_NPRS, "nprs", value)}, &now).ok());
    EXPECT_EQ(now.answers(0).value(), value);
    EXPECT_EQ(now.progress_size(), 2) << "the response carries the progress, as on a worker";
  }
  EXPECT_GE(fast("answered"), answered_before + 5) << "the submissions were answered without a worker";
  EXPECT_EQ(CountRows("SELECT count(*) FROM assessment.audit_events WHERE tenant_id = $1 AND action = "
                      "'SubmitIntakeAnswers' AND patient_id = '" + patient_id_ + "' AND outcome = 'OK'"),
            6)
      << "one audit row per submission";
  const long not_started_before = fast("not_started");
  EXPECT_EQ(Submit(patient, "intake_not_there", {Answer(cpb::INSTRUMENT_NPRS, "nprs", 2)}).error_code(),
            StatusCode::NOT_FOUND);
  EXPECT_EQ(Submit(Patient(NewId("pat")), session.session_id(), {Answer(cpb::INSTRUMENT_NPRS, "nprs", 2)}).error_code(),
            StatusCode::NOT_FOUND)
      << "another patient's session";
  EXPECT_GE(fast("not_started") + fast("handed_over"), not_started_before + 2) << "refusals go the ordinary way";
}

// Issue 33: a cached assessment is answered without a worker thread (AssessmentApp::StartGetAssessment
// on the Redis cache, counted on assessment's /metrics), byte for byte the assessment as completed,
// each read with its own audit row; a clinician's red-flag judgement is in every read after it
// (the cache's generation rule); another patient and another tenant's clinician get NOT_FOUND,
// made and recorded by the ordinary path, with nothing of the assessment in the response.
TEST_F(Intake, CachedAssessmentReadsNeedNoWorkerFollowEveryJudgementAndEachIsAudited) {
  const auto fast = [&](const std::string& outcome) {
    return FastPathCount(cluster_->assessment_metrics_port(), outcome);
  };
  auto get = [&](const Caller& caller, const std::string& assessment_id, apb::GetAssessmentResponse* out) {
    apb::GetAssessmentRequest request;
    request.set_assessment_id(assessment_id);
    return caller.Call(caller.assessment.get(), &apb::AssessmentService::Stub::GetAssessment, request, out);
  };
  auto reads_audited = [&](const std::string& assessment_id) {
    return CountRows("SELECT count(*) FROM assessment.audit_events WHERE tenant_id = $1 AND action = 'GetAssessment'"
                     " AND resource_id = '" + assessment_id + "' AND patient_id = '" + patient_id_ +
                     "' AND outcome = 'OK'");
  };
  const auto completed = CompletedAssessment();
  const auto patient = Patient();
  const auto clinician = Clinician();
  apb::GetAssessmentResponse first;
  ASSERT_TRUE(get(clinician, completed.assessment_id(), &first).ok());  // fills the cache
  EXPECT_EQ(first.assessment().SerializeAsString(), completed.SerializeAsString());
  const long answered_before = fast("answered");
  ASSERT_GE(answered_before, 0) << "physio_fast_reads_total is on assessment's /metrics";
  for (const Caller* caller : {&patient, &clinician, &patient, &clinician, &patient}) {
    apb::GetAssessmentResponse again;
    ASSERT_TRUE(get(*caller, completed.assessment_id(), &again).ok());
    EXPECT_EQ(again.SerializeAsString(), first.SerializeAsString()) << "the cached read hands out the same assessment";
  }
  EXPECT_GE(fast("answered"), answered_before + 5) << "the cached reads were answered without a worker";
  EXPECT_EQ(reads_audited(completed.assessment_id()), 6) << "one audit row per read, the fast ones included";

  const long refused_before = fast("not_started") + fast("handed_over");
  apb::GetAssessmentResponse none;
  EXPECT_EQ(get(Patient(NewId("pat")), completed.assessment_id(), &none).error_code(), StatusCode::NOT_FOUND)
      << "another patient's assessment, cached";
  EXPECT_EQ(get(Clinician("other-tenant"), completed.assessment_id(), &none).error_code(), StatusCode::NOT_FOUND);
  EXPECT_EQ(get(clinician, "asm_not_there", &none).error_code(), StatusCode::NOT_FOUND);
  EXPECT_FALSE(none.has_assessment());
  EXPECT_GE(fast("not_started") + fast("handed_over"), refused_before + 3) << "refusals go the ordinary way";
  EXPECT_EQ(reads_audited(completed.assessment_id()), 6);

  // A judgement changes the stored assessment: every read after it has it, the cached ones too.
  for (const auto action : {apb::RED_FLAG_ACTION_MONITOR, apb::RED_FLAG_ACTION_ROUTINE_REFERRAL}) {
    apb::GetAssessmentResponse before;
    ASSERT_TRUE(get(clinician, completed.assessment_id(), &before).ok());  // cached
    apb::RecordRedFlagJudgementRequest judge;
    judge.set_request_id(NewId("rq"));
    judge.set_assessment_id(completed.assessment_id());
    judge.set_etag(before.assessment().etag());
    judge.set_action(action);
    judge.set_rationale("judged at review");
    apb::RecordRedFlagJudgementResponse judged;
    ASSERT_TRUE(clinician.Call(clinician.assessment.get(), &apb::AssessmentService::Stub::RecordRedFlagJudgement, judge,
                               &judged).ok());
    const long answered_after_judgement = fast("answered");
    for (int i = 0; i < 3; ++i) {
      apb::GetAssessmentResponse after;
      ASSERT_TRUE(get(i % 2 == 0 ? patient : clinician, completed.assessment_id(), &after).ok());
      EXPECT_EQ(after.assessment().etag(), judged.assessment().etag()) << "read " << i;
      EXPECT_EQ(after.assessment().clinician_red_flag_judgement().action(), action) << "read " << i;
      EXPECT_EQ(after.assessment().SerializeAsString(), judged.assessment().SerializeAsString()) << "read " << i;
    }
    EXPECT_GE(fast("answered"), answered_after_judgement + 2) << "refilled, then answered from the cache again";
  }
}

// The store's side of a submission without a worker (RedisIntakeStore::SubmitAsync, real Redis):
// "no answer" does not say the script did not run. With WAIT short of its replica the change
// lands and the caller is told nothing; the ordinary path's run under the same id then replays
// that outcome and applies nothing twice. An answered one is what a retry replays, byte for byte.
TEST_F(Intake, AFastSubmissionWithoutAnAnswerMayHaveLandedAndIsReplayedNotAppliedTwice) {
  using google::protobuf::util::MessageDifferencer;
  auto patient = Patient();
  auto session = StartIntake(patient);
  CallContext ctx;
  ctx.tenant = tenant_;
  ctx.principal = patient_id_;
  ctx.roles = {Role::kPatient};
  ctx.patient_id = patient_id_;
  const auto deadline = [] { return Clock::now() + std::chrono::seconds(2); };
  RedisOptions options;
  options.port = redis_->port();
  options.pool_size = 1;
  RedisPool plain(options);
  options.wait_replicas = 1;  // there is none: every WAIT answers 0
  options.wait_timeout = std::chrono::milliseconds(20);
  RedisPool waiting(options);
  AsyncRedis async_plain(plain, AsyncRedisOptions{});
  AsyncRedis async_waiting(waiting, AsyncRedisOptions{});
  for (int i = 0; i < 100 && !(async_plain.ready() && async_waiting.ready()); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(async_plain.ready() && async_waiting.ready());
  assessment::RedisIntakeStore store(plain, std::chrono::hours(1), std::chrono::hours(1), std::chrono::hours(1),
                                     &async_plain);
  assessment::RedisIntakeStore store_waiting(waiting, std::chrono::hours(1), std::chrono::hours(1),
                                             std::chrono::hours(1), &async_waiting);
  auto answer = [](int value) {
    assessment::IntakeChanges changes;
    changes.answers.push_back(assessment::ItemAnswer{assessment::InstrumentKind::kNprs, "nprs", value});
    return changes;
  };
  auto id = [&](const std::string& request_id, const std::string& fingerprint) {
    return SubmissionId{{"asmt", tenant_, patient_id_, "SubmitIntakeAnswers", request_id}, fingerprint};
  };
  auto submit_async = [&](assessment::IntakeStore& on, const std::string& session_id, int value,
                          const SubmissionId& submission) {
    std::promise<std::optional<apb::IntakeSession>> promise;
    auto future = promise.get_future();
    EXPECT_TRUE(on.SubmitAsync(ctx, session_id, answer(value), submission, deadline(),
                               [&](std::optional<apb::IntakeSession> done) { promise.set_value(std::move(done)); }));
    EXPECT_EQ(future.wait_for(std::chrono::seconds(5)), std::future_status::ready);
    return future.get();
  };
  std::optional<apb::IntakeSession> answered;
  for (int i = 0; i < 20 && !answered; ++i) {  // the first EVALSHA may find the script not yet loaded
    if (i > 0) store.Submit(ctx, session.session_id(), answer(3), id("rq-load", "fp-load"), deadline());
    answered = submit_async(store, session.session_id(), 3, id("rq-answered", "fp-3"));
  }
  ASSERT_TRUE(answered) << "answered without a worker";
  ASSERT_EQ(answered->answers_size(), 1);
  EXPECT_EQ(answered->answers(0).value(), 3);
  EXPECT_TRUE(MessageDifferencer::Equals(
      store.Submit(ctx, session.session_id(), answer(3), id("rq-answered", "fp-3"), deadline()), *answered))
      << "the ordinary path replays what the fast one answered";

  EXPECT_FALSE(submit_async(store_waiting, session.session_id(), 8, id("rq-unacknowledged", "fp-8")))
      << "a write no replica acknowledged is not answered";
  EXPECT_EQ(store.Read(ctx, session.session_id(), deadline()).answers(0).value(), 8) << "yet it landed";
  EXPECT_EQ(store.Submit(ctx, session.session_id(), answer(5), id("rq-later", "fp-5"), deadline()).answers(0).value(), 5);
  const auto replayed = store.Submit(ctx, session.session_id(), answer(8), id("rq-unacknowledged", "fp-8"), deadline());
  EXPECT_EQ(replayed.answers(0).value(), 8) << "the ordinary path's run replays the landed submission";
  EXPECT_EQ(store.Read(ctx, session.session_id(), deadline()).answers(0).value(), 5) << "and does not apply it again";

  EXPECT_FALSE(submit_async(store, "intake_not_there", 4, id("rq-gone", "fp-4"))) << "a refusal is not answered here";
  EXPECT_THROW(store.Submit(ctx, "intake_not_there", answer(4), id("rq-gone", "fp-4"), deadline()), Error)
      << "the ordinary path refuses it, with its status";
  assessment::RedisIntakeStore no_async(plain, std::chrono::hours(1), std::chrono::hours(1));
  EXPECT_FALSE(no_async.SubmitAsync(ctx, session.session_id(), answer(1), id("rq-none", "fp-1"), deadline(),
                                    [](std::optional<apb::IntakeSession>) { ADD_FAILURE() << "never runs"; }));
}

TEST_F(Intake, ScoreInstrumentScoresWithoutStoring) {
  auto clinician = Clinician();
  apb::ScoreInstrumentRequest request;
  request.set_instrument(cpb::INSTRUMENT_START_BACK);
  const int sbt[] = {1, 0, 1, 0, 1, 1, 0, 1, 3};  // total 6, psychosocial 4 -> high
  for (int i = 0; i < 9; ++i) *request.add_answers() = Answer(cpb::INSTRUMENT_START_BACK, "sbt." + std::to_string(i + 1), sbt[i]);
  apb::ScoreInstrumentResponse response;
  ASSERT_TRUE(clinician.Call(clinician.assessment.get(), &apb::AssessmentService::Stub::ScoreInstrument, request,
                             &response).ok());
  EXPECT_DOUBLE_EQ(response.score().score(), 6);
  EXPECT_EQ(response.score().band(), "high");
  ASSERT_EQ(response.score().subscores_size(), 1);
  EXPECT_EQ(response.score().subscores(0).name(), "psychosocial");
  EXPECT_DOUBLE_EQ(response.score().subscores(0).value(), 4);
  EXPECT_EQ(CountRows("SELECT count(*) FROM assessment.assessments WHERE tenant_id = $1"), 0);

  // An answer to another instrument and an incomplete set are refused with the reason.
  *request.add_answers() = Answer(cpb::INSTRUMENT_ODI, "odi.1", 1);
  auto status = clinician.Call(clinician.assessment.get(), &apb::AssessmentService::Stub::ScoreInstrument, request,
                               &response);
  EXPECT_EQ(status.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("answers[9].instrument"), std::string::npos);
  apb::ScoreInstrumentRequest partial;
  partial.set_instrument(cpb::INSTRUMENT_START_BACK);
  *partial.add_answers() = Answer(cpb::INSTRUMENT_START_BACK, "sbt.1", 1);
  status = clinician.Call(clinician.assessment.get(), &apb::AssessmentService::Stub::ScoreInstrument, partial, &response);
  EXPECT_EQ(status.error_code(), StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(status.error_message().find("sbt.2"), std::string::npos);
  // Nothing is stored, so patients may use it (their app scores a re-measure through progress).
  auto patient = Patient();
  EXPECT_EQ(patient.Call(patient.assessment.get(), &apb::AssessmentService::Stub::ScoreInstrument, partial, &response)
                .error_code(),
            StatusCode::FAILED_PRECONDITION);
}

TEST_F(Intake, IntakeAsksForTheChosenInstruments) {
  auto patient = Patient();
  apb::StartIntakeRequest start;
  start.set_request_id(NewId("rq"));
  start.set_patient_id(patient_id_);
  start.add_instruments(cpb::INSTRUMENT_START_BACK);
  start.add_instruments(cpb::INSTRUMENT_PSFS);
  apb::StartIntakeResponse started;
  ASSERT_TRUE(patient.Call(patient.assessment.get(), &apb::AssessmentService::Stub::StartIntake, start, &started).ok());
  ASSERT_EQ(started.session().progress_size(), 2);
  EXPECT_EQ(started.session().progress(0).instrument(), cpb::INSTRUMENT_START_BACK);
  const std::string session_id = started.session().session_id();

  auto status = Submit(patient, session_id, {Answer(cpb::INSTRUMENT_NPRS, "nprs", 3), Answer(cpb::INSTRUMENT_ODI, "odi.1", 1)});
  EXPECT_EQ(status.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("answers[0].instrument"), std::string::npos) << status.error_message();

  std::vector<cpb::InstrumentAnswer> answers;
  for (int i = 1; i <= 9; ++i) answers.push_back(Answer(cpb::INSTRUMENT_START_BACK, "sbt." + std::to_string(i), 0));
  for (int i = 1; i <= 3; ++i) {
    auto activity = Answer(cpb::INSTRUMENT_PSFS, "psfs." + std::to_string(i), 3 + i);
    activity.set_text(i == 1 ? "Lifting my toddler" : "Activity " + std::to_string(i));
    answers.push_back(activity);
  }
  apb::IntakeSession session;
  ASSERT_TRUE(Submit(patient, session_id, answers, &session).ok());
  EXPECT_TRUE(session.progress(0).complete());
  EXPECT_TRUE(session.progress(1).complete());
  apb::Assessment assessment;
  ASSERT_TRUE(Complete(patient, session_id, &assessment).ok());
  ASSERT_EQ(assessment.scores_size(), 2);
  EXPECT_EQ(assessment.scores(0).band(), "low");
  EXPECT_DOUBLE_EQ(assessment.scores(1).score(), 5.0);  // mean of 4, 5, 6
  bool text_kept = false;
  for (const auto& answer : assessment.answers()) text_kept |= answer.text() == "Lifting my toddler";
  EXPECT_TRUE(text_kept);

  start.set_request_id(NewId("rq"));
  start.add_instruments(cpb::INSTRUMENT_PSFS);
  status = patient.Call(patient.assessment.get(), &apb::AssessmentService::Stub::StartIntake, start, &started);
  EXPECT_EQ(status.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("instruments[2]"), std::string::npos);
}

// The session as stored, read back (intake_store's SessionFromFields, on the fast path's answer
// and on GetIntake's ordinary read alike): every answer once, ordered by instrument and then item
// id whatever order they came in, a declined item declined, a PSFS activity's words kept, and an
// item answered again holding its latest answer.
TEST_F(Intake, TheSessionReadBackHoldsEveryAnswerOnceInOrder) {
  auto patient = Patient();
  const std::string session_id =
      StartIntake(patient, "", {cpb::INSTRUMENT_PSFS, cpb::INSTRUMENT_ODI, cpb::INSTRUMENT_NPRS}).session_id();
  ASSERT_FALSE(session_id.empty());
  auto activity = Answer(cpb::INSTRUMENT_PSFS, "psfs.2", 4);
  activity.set_text("Walking to the shops");
  apb::IntakeSession submitted;
  ASSERT_TRUE(Submit(patient, session_id,
                     {activity, Answer(cpb::INSTRUMENT_ODI, "odi.10", 5), Answer(cpb::INSTRUMENT_ODI, "odi.2", 0, true),
                      Answer(cpb::INSTRUMENT_NPRS, "nprs", 7), Answer(cpb::INSTRUMENT_ODI, "odi.1", 3)},
                     &submitted)
                  .ok());
  ASSERT_TRUE(Submit(patient, session_id, {Answer(cpb::INSTRUMENT_ODI, "odi.1", 2)}).ok());
  apb::GetIntakeRequest get;
  get.set_session_id(session_id);
  apb::GetIntakeResponse read;
  ASSERT_TRUE(patient.Call(patient.assessment.get(), &apb::AssessmentService::Stub::GetIntake, get, &read).ok());
  struct Expected {
    cpb::Instrument instrument;
    std::string item_id;
    int value;
    bool declined;
    std::string text;
  };
  const auto check = [](const apb::IntakeSession& session, const std::vector<Expected>& expected,
                        const std::string& which) {
    ASSERT_EQ(session.answers_size(), static_cast<int>(expected.size())) << which;
    for (int i = 0; i < session.answers_size(); ++i) {
      const auto& answer = session.answers(i);
      const auto& want = expected[static_cast<size_t>(i)];
      EXPECT_EQ(answer.instrument(), want.instrument) << which << " answer " << i;
      EXPECT_EQ(answer.item_id(), want.item_id) << which << " answer " << i;
      EXPECT_EQ(answer.declined(), want.declined) << which << " answer " << i;
      if (!want.declined) {
        EXPECT_EQ(answer.value(), want.value) << which << " answer " << i;
      }
      EXPECT_EQ(answer.text(), want.text) << which << " answer " << i;
    }
    ASSERT_EQ(session.instruments_size(), 3) << which;
    EXPECT_EQ(session.instruments(0), cpb::INSTRUMENT_PSFS) << which << ": the intake's own order";
  };
  // NPRS (1) before ODI (2) before PSFS (6); item ids as text: "odi.1" < "odi.10" < "odi.2".
  std::vector<Expected> expected = {{cpb::INSTRUMENT_NPRS, "nprs", 7, false, ""},
                                    {cpb::INSTRUMENT_ODI, "odi.1", 3, false, ""},
                                    {cpb::INSTRUMENT_ODI, "odi.10", 5, false, ""},
                                    {cpb::INSTRUMENT_ODI, "odi.2", 0, true, ""},
                                    {cpb::INSTRUMENT_PSFS, "psfs.2", 4, false, "Walking to the shops"}};
  check(submitted, expected, "the submission's answer");
  expected[1].value = 2;  // odi.1, answered again
  check(read.session(), expected, "GetIntake after odi.1 was answered again");
}

TEST_F(Intake, IntegratorsImportAndListAssessmentsPageByPage) {
  auto integrator = Integrator();
  auto create = [&](int pain, const std::string& request_id, apb::Assessment* out) {
    apb::CreateAssessmentRequest request;
    request.set_request_id(request_id);
    request.set_patient_id(patient_id_);
    *request.add_answers() = Answer(cpb::INSTRUMENT_NPRS, "nprs", pain);
    for (int i = 1; i <= 24; ++i) *request.add_answers() = Answer(cpb::INSTRUMENT_RMDQ, "rmdq." + std::to_string(i), i <= pain);
    apb::CreateAssessmentResponse response;
    auto status =
        integrator.Call(integrator.assessment.get(), &apb::AssessmentService::Stub::CreateAssessment, request, &response);
    if (out) *out = response.assessment();
    return status;
  };
  apb::Assessment first, retried;
  ASSERT_TRUE(create(7, "import-1", &first).ok());
  ASSERT_EQ(first.scores_size(), 2);
  EXPECT_EQ(first.scores(0).instrument(), cpb::INSTRUMENT_NPRS);
  EXPECT_DOUBLE_EQ(first.scores(1).score(), 7);  // RMDQ: seven "yes"
  ASSERT_TRUE(create(7, "import-1", &retried).ok());
  EXPECT_EQ(retried.assessment_id(), first.assessment_id());
  for (int pain = 6; pain >= 3; --pain) ASSERT_TRUE(create(pain, "import-" + std::to_string(10 - pain), nullptr).ok());

  // An incomplete instrument is refused, naming what is missing.
  apb::CreateAssessmentRequest partial;
  partial.set_request_id("import-partial");
  partial.set_patient_id(patient_id_);
  *partial.add_answers() = Answer(cpb::INSTRUMENT_RMDQ, "rmdq.1", 1);
  apb::CreateAssessmentResponse ignored;
  auto status = integrator.Call(integrator.assessment.get(), &apb::AssessmentService::Stub::CreateAssessment, partial, &ignored);
  EXPECT_EQ(status.error_code(), StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(status.error_message().find("rmdq.2"), std::string::npos);

  // Five assessments in pages of two: newest first, each exactly once.
  std::vector<std::string> seen;
  std::vector<double> pains;
  apb::ListAssessmentsRequest list;
  list.set_patient_id(patient_id_);
  list.set_page_size(2);
  int pages = 0;
  do {
    apb::ListAssessmentsResponse page;
    ASSERT_TRUE(integrator.Call(integrator.assessment.get(), &apb::AssessmentService::Stub::ListAssessments, list, &page).ok());
    for (const auto& a : page.assessments()) {
      seen.push_back(a.assessment_id());
      pains.push_back(a.scores(0).score());
    }
    list.set_page_token(page.next_page_token());
    ++pages;
  } while (!list.page_token().empty() && pages < 10);
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(seen.size(), 5u);
  EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()).size(), 5u);
  EXPECT_EQ(pains, (std::vector<double>{3, 4, 5, 6, 7}));

  // Tokens are checked; a patient lists only their own; another tenant sees nothing.
  apb::ListAssessmentsResponse page;
  list.set_page_token("zz-not-a-token");
  status = integrator.Call(integrator.assessment.get(), &apb::AssessmentService::Stub::ListAssessments, list, &page);
  EXPECT_EQ(status.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("page_token"), std::string::npos);
  list.set_page_token("");
  list.set_page_size(101);
  EXPECT_EQ(integrator.Call(integrator.assessment.get(), &apb::AssessmentService::Stub::ListAssessments, list, &page)
                .error_code(),
            StatusCode::INVALID_ARGUMENT);
  list.set_page_size(0);
  auto patient = Patient();
  ASSERT_TRUE(patient.Call(patient.assessment.get(), &apb::AssessmentService::Stub::ListAssessments, list, &page).ok());
  EXPECT_EQ(page.assessments_size(), 5);
  auto other = Patient("pt-other");
  EXPECT_EQ(other.Call(other.assessment.get(), &apb::AssessmentService::Stub::ListAssessments, list, &page).error_code(),
            StatusCode::PERMISSION_DENIED);
  auto intruder = Clinician("other-tenant");
  ASSERT_TRUE(intruder.Call(intruder.assessment.get(), &apb::AssessmentService::Stub::ListAssessments, list, &page).ok());
  EXPECT_EQ(page.assessments_size(), 0);
}

TEST_F(Intake, RedFlagsAndClassificationTravelWithTheAssessment) {
  auto patient = Patient();
  auto clinician = Clinician();
  auto session = StartIntake(patient);
  ASSERT_TRUE(Submit(patient, session.session_id(), FullIntake()).ok());

  // The patient answers history and red flags; examination is for clinicians only.
  apb::SubmitIntakeAnswersRequest details;
  details.set_request_id(NewId("rq"));
  details.set_session_id(session.session_id());
  details.mutable_history()->set_age_years(62);
  details.mutable_history()->set_episode_duration_days(40);
  details.mutable_history()->set_symptom_extent(apb::SYMPTOM_EXTENT_THIGH);
  details.mutable_red_flag_screen()->set_history_of_cancer(true);
  details.mutable_examination()->set_directional_preference(apb::DIRECTIONAL_PREFERENCE_EXTENSION);
  apb::SubmitIntakeAnswersResponse submitted;
  auto status = patient.Call(patient.assessment.get(), &apb::AssessmentService::Stub::SubmitIntakeAnswers, details,
                             &submitted);
  EXPECT_EQ(status.error_code(), StatusCode::PERMISSION_DENIED);
  EXPECT_NE(status.error_message().find("examination"), std::string::npos);
  details.clear_examination();
  details.mutable_history()->set_age_years(130);
  status = patient.Call(patient.assessment.get(), &apb::AssessmentService::Stub::SubmitIntakeAnswers, details, &submitted);
  EXPECT_EQ(status.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("history.age_years"), std::string::npos);
  details.mutable_history()->set_age_years(62);
  ASSERT_TRUE(patient.Call(patient.assessment.get(), &apb::AssessmentService::Stub::SubmitIntakeAnswers, details,
                           &submitted).ok());
  EXPECT_TRUE(submitted.session().red_flag_screen().history_of_cancer());
  apb::SubmitIntakeAnswersRequest exam;
  exam.set_request_id(NewId("rq"));
  exam.set_session_id(session.session_id());
  exam.mutable_examination()->set_directional_preference(apb::DIRECTIONAL_PREFERENCE_EXTENSION);
  exam.mutable_examination()->set_centralisation(true);
  ASSERT_TRUE(clinician.Call(clinician.assessment.get(), &apb::AssessmentService::Stub::SubmitIntakeAnswers, exam,
                             &submitted).ok());

  apb::Assessment assessment;
  ASSERT_TRUE(Complete(patient, session.session_id(), &assessment).ok());
  EXPECT_EQ(assessment.red_flags().action(), apb::RED_FLAG_ACTION_URGENT_REFERRAL);
  ASSERT_EQ(assessment.red_flags().concerns_size(), 1);
  EXPECT_EQ(assessment.red_flags().concerns(0).condition(), "malignancy");
  EXPECT_EQ(assessment.classification().phase(), cpb::PHASE_MOVEMENT_CONTROL);
  EXPECT_EQ(assessment.classification().subgroup(), apb::SUBGROUP_SPECIFIC_EXERCISE);
  EXPECT_EQ(assessment.classification().direction(), "extension");

  // An urgent referral means a referral instead of a treatment plan...
  ppb::Plan referral;
  ASSERT_TRUE(Generate(clinician, assessment.assessment_id(), &referral).ok());
  EXPECT_EQ(referral.type(), ppb::PLAN_TYPE_REFERRAL);
  ASSERT_EQ(referral.items_size(), 1);
  EXPECT_EQ(referral.items(0).kind(), ppb::PLAN_ITEM_KIND_REFERRAL);
  EXPECT_NE(referral.items(0).reason().find("history of cancer"), std::string::npos);

  // ...until the clinician records their own judgement beside the computed one.
  apb::RecordRedFlagJudgementRequest judge;
  judge.set_request_id(NewId("rq"));
  judge.set_assessment_id(assessment.assessment_id());
  judge.set_etag("v0");
  judge.set_action(apb::RED_FLAG_ACTION_MONITOR);
  judge.set_rationale("Cancer treated 15 years ago, discharged from oncology follow-up; safety-netting given.");
  apb::RecordRedFlagJudgementResponse judged;
  EXPECT_EQ(clinician.Call(clinician.assessment.get(), &apb::AssessmentService::Stub::RecordRedFlagJudgement, judge,
                           &judged).error_code(),
            StatusCode::ABORTED);
  judge.set_etag(assessment.etag());
  ASSERT_TRUE(clinician.Call(clinician.assessment.get(), &apb::AssessmentService::Stub::RecordRedFlagJudgement, judge,
                             &judged).ok());
  EXPECT_EQ(judged.assessment().red_flags().action(), apb::RED_FLAG_ACTION_URGENT_REFERRAL);  // computed one kept
  EXPECT_EQ(judged.assessment().clinician_red_flag_judgement().action(), apb::RED_FLAG_ACTION_MONITOR);
  EXPECT_EQ(judged.assessment().clinician_red_flag_judgement().clinician(), "clin-1");
  EXPECT_NE(judged.assessment().etag(), assessment.etag());
  judge.set_request_id(NewId("rq"));
  EXPECT_EQ(patient.Call(patient.assessment.get(), &apb::AssessmentService::Stub::RecordRedFlagJudgement, judge,
                         &judged).error_code(),
            StatusCode::PERMISSION_DENIED);
  ppb::Plan plan;
  ASSERT_TRUE(Generate(clinician, assessment.assessment_id(), &plan).ok());
  EXPECT_EQ(plan.type(), ppb::PLAN_TYPE_TREATMENT);
  EXPECT_EQ(plan.phase(), cpb::PHASE_MOVEMENT_CONTROL);
  bool directional = false;
  for (const auto& item : plan.items()) directional |= item.item_id().rfind("ex.dir.", 0) == 0;
  EXPECT_TRUE(directional);  // the extension subgroup's directional exercise
}

}  // namespace
}  // namespace physio::testing
