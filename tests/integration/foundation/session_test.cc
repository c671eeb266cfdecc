// Session documentation and structured re-assessment (issue 32 item 2) through the public API: a
// visit records each intervention with its dose and response, repeated-movement tests, range of
// movement and coded notes; peripheralising with a repeated movement stops that direction in the
// plan at once and alerts the clinic; centralising in a direction the plan does not follow marks it
// for re-assessment; ReassessPatient re-classifies from the new examination and GeneratePlan
// proposes the revised plan with its changes against the plan in use, which the clinician approves.
#include "foundation.h"

namespace physio::testing {
namespace {

class Sessions : public Foundation {
 protected:
  // Pain 6, ODI 10/50, symptoms centralising with extension: a specific-exercise plan (extension), approved.
  ppb::Plan ApprovedExtensionPlan(const Caller& clinician, apb::Assessment* assessment_out = nullptr) {
    apb::CreateAssessmentRequest create;
    create.set_request_id(NewId("rq"));
    create.set_patient_id(patient_id_);
    *create.add_answers() = Answer(cpb::INSTRUMENT_NPRS, "nprs", 6);
    for (int i = 1; i <= 10; ++i) *create.add_answers() = Answer(cpb::INSTRUMENT_ODI, "odi." + std::to_string(i), 1);
    create.mutable_red_flag_screen();
    create.mutable_history()->set_episode_duration_days(14);
    create.mutable_examination()->set_directional_preference(apb::DIRECTIONAL_PREFERENCE_EXTENSION);
    create.mutable_examination()->set_centralisation(true);
    apb::CreateAssessmentResponse created;
    auto status =
        clinician.Call(clinician.assessment.get(), &apb::AssessmentService::Stub::CreateAssessment, create, &created);
    EXPECT_TRUE(status.ok()) << status.error_message();
    if (assessment_out) *assessment_out = created.assessment();
    EXPECT_EQ(created.assessment().classification().direction(), "extension");
    return Approved(Drafted(clinician, created.assessment().assessment_id()));
  }

  // A draft (the fixture's Generate), expected to succeed.
  ppb::Plan Drafted(const Caller& clinician, const std::string& assessment_id) {
    ppb::Plan draft;
    auto status = Generate(clinician, assessment_id, &draft);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return draft;
  }

  // The draft approved (the fixture's Approve), expected to succeed.
  ppb::Plan Approved(const ppb::Plan& draft) {
    ppb::Plan active;
    auto status = Approve(draft.plan_id(), draft.etag(), &active);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return active;
  }

  static gpb::RepeatedMovementResult Test(gpb::MovementTest test, gpb::SymptomResponse response) {
    gpb::RepeatedMovementResult result;
    result.set_test(test);
    result.set_repetitions(10);
    result.set_response(response);
    return result;
  }

  grpc::Status Visit(const Caller& clinician, const gpb::SessionRecord& session, gpb::RecordVisitResponse* out) const {
    gpb::RecordVisitRequest visit;
    visit.set_request_id(NewId("rq"));
    visit.set_patient_id(patient_id_);
    visit.set_kind(gpb::VISIT_KIND_CLINIC);
    visit.set_clinic_id("north");
    visit.set_pain_before(5);
    *visit.mutable_session() = session;
    return clinician.Call(clinician.progress.get(), &gpb::ProgressService::Stub::RecordVisit, visit, out);
  }

  static bool AnyContains(const google::protobuf::RepeatedPtrField<std::string>& lines, const std::string& part) {
    for (const auto& line : lines) {
      if (line.find(part) != std::string::npos) return true;
    }
    return false;
  }

  static std::set<std::string> ItemIds(const ppb::Plan& plan) {
    std::set<std::string> ids;
    for (const auto& item : plan.items()) ids.insert(item.item_id());
    return ids;
  }
};

TEST_F(Sessions, ASessionIsDocumentedAndRangeOfMovementComparedWithTheLastVisit) {
  const Caller clinician = Clinician();
  const ppb::Plan plan = ApprovedExtensionPlan(clinician);
  EXPECT_EQ(plan.direction(), "extension");
  gpb::SessionRecord first;
  auto* given = first.add_interventions();
  given->set_item_id("ex.dir.prone_press_up");
  given->set_sets(3);
  given->set_reps(10);
  given->set_response(gpb::SYMPTOM_RESPONSE_BETTER);
  *first.add_movement_tests() = Test(gpb::MOVEMENT_TEST_EXTENSION_LYING, gpb::SYMPTOM_RESPONSE_CENTRALISING);
  auto* range = first.add_range_of_movement();
  range->set_movement(gpb::LUMBAR_MOVEMENT_FLEXION);
  range->set_loss(gpb::MOVEMENT_LOSS_MODERATE);
  range->set_painful(true);
  first.add_notes(gpb::SESSION_NOTE_TECHNIQUE_CORRECTED);
  first.add_notes(gpb::SESSION_NOTE_HOME_PROGRAMME_REVIEWED);
  gpb::RecordVisitResponse recorded;
  auto status = Visit(clinician, first, &recorded);
  ASSERT_TRUE(status.ok()) << status.error_message();
  // Kept as documented; centralising with the plan's own direction confirms it and changes nothing.
  ASSERT_EQ(recorded.visit().session().interventions_size(), 1);
  EXPECT_EQ(recorded.visit().session().interventions(0).sets(), 3);
  EXPECT_EQ(recorded.visit().session().notes_size(), 2);
  EXPECT_TRUE(recorded.visit().session_findings().empty());
  const ppb::Plan after_first = PlanInUseOrSuspended(clinician, patient_id_);
  EXPECT_FALSE(after_first.needs_reassessment());
  EXPECT_EQ(after_first.revision(), plan.revision());

  gpb::SessionRecord second;
  range = second.add_range_of_movement();
  range->set_movement(gpb::LUMBAR_MOVEMENT_FLEXION);
  range->set_loss(gpb::MOVEMENT_LOSS_MINIMAL);
  ASSERT_TRUE(Visit(clinician, second, &recorded).ok());
  EXPECT_TRUE(AnyContains(recorded.visit().session_findings(),
                          "better since the last visit: flexion moderate loss (painful) -> minimal loss"));
}

TEST_F(Sessions, PeripheralisingWithARepeatedMovementStopsThatDirectionAtOnceAndAlerts) {
  const Caller clinician = Clinician();
  const ppb::Plan plan = ApprovedExtensionPlan(clinician);
  bool had_extension = false;
  for (const auto& id : ItemIds(plan)) had_extension |= id.starts_with("ex.dir.");
  ASSERT_TRUE(had_extension);
  gpb::SessionRecord session;
  *session.add_movement_tests() = Test(gpb::MOVEMENT_TEST_EXTENSION_LYING, gpb::SYMPTOM_RESPONSE_PERIPHERALISING);
  gpb::RecordVisitResponse recorded;
  ASSERT_TRUE(Visit(clinician, session, &recorded).ok());
  EXPECT_TRUE(AnyContains(recorded.visit().session_findings(), "stopped: extension (peripheralising with repeated extension in lying)"));
  const ppb::Plan now = PlanInUseOrSuspended(clinician, patient_id_);
  ASSERT_EQ(now.stopped_directions_size(), 1);
  EXPECT_EQ(now.stopped_directions(0), "extension");
  EXPECT_TRUE(now.needs_reassessment());
  for (const auto& id : ItemIds(now)) EXPECT_FALSE(id.starts_with("ex.dir.")) << id << " is still in the plan";
  gpb::ListAlertsRequest list;
  list.set_clinic_id("north");
  gpb::ListAlertsResponse alerts;
  ASSERT_TRUE(clinician.Call(clinician.progress.get(), &gpb::ProgressService::Stub::ListAlerts, list, &alerts).ok());
  ASSERT_EQ(alerts.alerts_size(), 1);
  EXPECT_EQ(alerts.alerts(0).kind(), gpb::ALERT_KIND_PERIPHERALISATION);
  // The evaluation re-assesses; nothing steps up.
  gpb::EvaluateProgressRequest evaluate;
  evaluate.set_request_id(NewId("rq"));
  evaluate.set_patient_id(patient_id_);
  gpb::EvaluateProgressResponse evaluated;
  ASSERT_TRUE(clinician.Call(clinician.progress.get(), &gpb::ProgressService::Stub::EvaluateProgress, evaluate, &evaluated).ok());
  EXPECT_EQ(evaluated.evaluation().decision(), gpb::DECISION_REASSESS);
}

TEST_F(Sessions, AVisitSessionCarriesItsDocumentationToTheVisitItCompletes) {
  const Caller clinician = Clinician();
  ApprovedExtensionPlan(clinician);
  gpb::StartVisitSessionRequest start;
  start.set_request_id(NewId("rq"));
  start.set_patient_id(patient_id_);
  start.set_kind(gpb::VISIT_KIND_TELEHEALTH);
  start.set_clinic_id("north");
  gpb::StartVisitSessionResponse started;
  ASSERT_TRUE(clinician.Call(clinician.progress.get(), &gpb::ProgressService::Stub::StartVisitSession, start, &started).ok());
  gpb::UpdateVisitSessionRequest update;
  update.set_request_id(NewId("rq"));
  update.set_session_id(started.session().session_id());
  *update.mutable_session()->add_movement_tests() =
      Test(gpb::MOVEMENT_TEST_EXTENSION_STANDING, gpb::SYMPTOM_RESPONSE_PERIPHERALISING);
  update.mutable_session()->add_notes(gpb::SESSION_NOTE_SAFETY_NET_REPEATED);
  gpb::UpdateVisitSessionResponse updated;
  ASSERT_TRUE(clinician.Call(clinician.progress.get(), &gpb::ProgressService::Stub::UpdateVisitSession, update, &updated).ok());
  EXPECT_EQ(updated.session().session().movement_tests_size(), 1);
  // Nothing acts before completion; then the visit acts as RecordVisit does.
  EXPECT_TRUE(PlanInUseOrSuspended(clinician, patient_id_).stopped_directions().empty());
  gpb::CompleteVisitSessionRequest complete;
  complete.set_request_id(NewId("rq"));
  complete.set_session_id(started.session().session_id());
  gpb::CompleteVisitSessionResponse completed;
  ASSERT_TRUE(clinician.Call(clinician.progress.get(), &gpb::ProgressService::Stub::CompleteVisitSession, complete,
                             &completed).ok());
  EXPECT_EQ(completed.visit().session().notes_size(), 1);
  EXPECT_TRUE(AnyContains(completed.visit().session_findings(), "stopped: extension"));
  const ppb::Plan now = PlanInUseOrSuspended(clinician, patient_id_);
  ASSERT_EQ(now.stopped_directions_size(), 1);
  EXPECT_EQ(now.stopped_directions(0), "extension");
  // A bad update is refused naming the field.
  update.set_request_id(NewId("rq"));
  update.mutable_session()->mutable_movement_tests(0)->set_repetitions(0);
  auto status = clinician.Call(clinician.progress.get(), &gpb::ProgressService::Stub::UpdateVisitSession, update, &updated);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("session.movement_tests[0].repetitions"), std::string::npos) << status.error_message();
}

// A visit-session update is applied once per request id, in one Redis script with its record
// (issue 33): a retry gets the first outcome back, even after the session moved on, and changes
// nothing; the same id with other content is refused; copies racing the first all get one outcome;
// a record of the earlier protocol (RedisIdempotency's, before this release) is still replayed.
TEST_F(Sessions, ARetriedVisitSessionUpdateReplaysItsFirstOutcomeAndChangesNothing) {
  using google::protobuf::util::MessageDifferencer;
  const Caller clinician = Clinician();
  gpb::StartVisitSessionRequest start;
  start.set_request_id(NewId("rq"));
  start.set_patient_id(patient_id_);
  start.set_kind(gpb::VISIT_KIND_CLINIC);
  gpb::StartVisitSessionResponse started;
  ASSERT_TRUE(clinician.Call(clinician.progress.get(), &gpb::ProgressService::Stub::StartVisitSession, start, &started).ok());
  const std::string session_id = started.session().session_id();
  auto update = [&](const std::string& request_id, int pain_before, gpb::VisitSession* out) {
    gpb::UpdateVisitSessionRequest request;
    request.set_request_id(request_id);
    request.set_session_id(session_id);
    request.set_pain_before(pain_before);
    gpb::UpdateVisitSessionResponse response;
    auto status = clinician.Call(clinician.progress.get(), &gpb::ProgressService::Stub::UpdateVisitSession, request,
                                 &response);
    if (out != nullptr) *out = response.session();
    return status;
  };
  auto now = [&] {
    gpb::GetVisitSessionRequest request;
    request.set_session_id(session_id);
    gpb::GetVisitSessionResponse response;
    EXPECT_TRUE(clinician.Call(clinician.progress.get(), &gpb::ProgressService::Stub::GetVisitSession, request,
                               &response).ok());
    return response.session();
  };
  gpb::VisitSession first, later, replayed;
  ASSERT_TRUE(update("rq-pain-6", 6, &first).ok());
  EXPECT_EQ(first.pain_before(), 6);
  EXPECT_GT(first.expire_time().seconds(), 0);
  ASSERT_TRUE(update("rq-pain-3", 3, &later).ok());
  ASSERT_TRUE(update("rq-pain-6", 6, &replayed).ok());
  EXPECT_TRUE(MessageDifferencer::Equals(replayed, first)) << replayed.DebugString() << "\nvs\n" << first.DebugString();
  EXPECT_EQ(now().pain_before(), 3) << "the retry must not apply the old value again";
  const auto reused = update("rq-pain-6", 2, nullptr);
  EXPECT_EQ(reused.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(reused.error_message().find("request_id"), std::string::npos) << reused.error_message();
  // A refused update leaves no record: the same id works once the session exists.
  EXPECT_EQ(update("rq-pain-6", 6, nullptr).error_code(), grpc::StatusCode::OK);

  std::vector<gpb::VisitSession> outcomes(8);
  std::vector<grpc::Status> statuses(8);
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) threads.emplace_back([&, i] { statuses[i] = update("rq-raced", 5, &outcomes[i]); });
  for (auto& thread : threads) thread.join();
  for (int i = 0; i < 8; ++i) {
    ASSERT_TRUE(statuses[i].ok()) << statuses[i].error_message();
    EXPECT_TRUE(MessageDifferencer::Equals(outcomes[i], outcomes[0])) << i;
  }

  // Recorded by the earlier protocol: "<fingerprint>\n<UpdateVisitSessionResponse>".
  gpb::UpdateVisitSessionRequest before_upgrade;
  before_upgrade.set_request_id("rq-before-upgrade");
  before_upgrade.set_session_id(session_id);
  before_upgrade.set_pain_before(9);
  gpb::UpdateVisitSessionResponse recorded;
  *recorded.mutable_session() = now();
  recorded.mutable_session()->set_pain_before(9);
  RedisOptions options;
  options.port = redis_->port();
  options.pool_size = 1;
  RedisPool redis(options);
  RedisIdempotency earlier(redis);
  earlier.Run({"prog", tenant_, "clin-1", "UpdateVisitSession", before_upgrade.request_id()},
              RequestFingerprint(before_upgrade), Clock::now() + std::chrono::seconds(2),
              [&] { return recorded.SerializeAsString(); });
  gpb::UpdateVisitSessionResponse replayed_earlier;
  ASSERT_TRUE(clinician.Call(clinician.progress.get(), &gpb::ProgressService::Stub::UpdateVisitSession, before_upgrade,
                             &replayed_earlier).ok());
  EXPECT_EQ(replayed_earlier.session().pain_before(), 9);
  EXPECT_EQ(now().pain_before(), 5) << "a replay changes nothing";
}

// Issue 33: a visit-session update is answered without a worker thread (counted on progress's
// /metrics), each with its audit row; a refusal is made (and recorded) by the ordinary path.
TEST_F(Sessions, VisitSessionUpdatesAreAnsweredWithoutAWorkerAndEachIsAudited) {
  const Caller clinician = Clinician();
  gpb::StartVisitSessionRequest start;
  start.set_request_id(NewId("rq"));
  start.set_patient_id(patient_id_);
  start.set_kind(gpb::VISIT_KIND_TELEHEALTH);
  gpb::StartVisitSessionResponse started;
  ASSERT_TRUE(clinician.Call(clinician.progress.get(), &gpb::ProgressService::Stub::StartVisitSession, start, &started).ok());
  auto update = [&](const std::string& session_id, int pain_after, gpb::UpdateVisitSessionResponse* out) {
    gpb::UpdateVisitSessionRequest request;
    request.set_request_id(NewId("rq"));
    request.set_session_id(session_id);
    request.set_pain_after(pain_after);
    request.add_add_delivered_item_ids("ex.motor.abdominal_bracing");
    return clinician.Call(clinician.progress.get(), &gpb::ProgressService::Stub::UpdateVisitSession, request, out);
  };
  gpb::UpdateVisitSessionResponse first;
  ASSERT_TRUE(update(started.session().session_id(), 1, &first).ok());  // the script reaches Redis's cache
  const int port = cluster_->progress_metrics_port();
  const long answered_before = FastPathCount(port, "answered");
  ASSERT_GE(answered_before, 0) << "physio_fast_reads_total is on progress's /metrics";
  for (int pain = 2; pain <= 6; ++pain) {
    gpb::UpdateVisitSessionResponse updated;
    ASSERT_TRUE(update(started.session().session_id(), pain, &updated).ok());
    EXPECT_EQ(updated.session().pain_after(), pain);
    EXPECT_EQ(updated.session().patient_id(), patient_id_);
    ASSERT_EQ(updated.session().delivered_item_ids_size(), 1);
  }
  EXPECT_GE(FastPathCount(port, "answered"), answered_before + 5) << "the updates were answered without a worker";
  EXPECT_EQ(CountRows("SELECT count(*) FROM progress.audit_events WHERE tenant_id = $1 AND action = "
                      "'UpdateVisitSession' AND patient_id = '" + patient_id_ + "' AND outcome = 'OK'"),
            6)
      << "one audit row per update";
  const long refused_before = FastPathCount(port, "not_started") + FastPathCount(port, "handed_over");
  gpb::UpdateVisitSessionResponse none;
  EXPECT_EQ(update("vsess_not_there", 3, &none).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_GE(FastPathCount(port, "not_started") + FastPathCount(port, "handed_over"), refused_before + 1)
      << "a refusal goes the ordinary way";
  // An organisation-wide caller has no clinic check before the change: the script itself refuses,
  // on the fast path, and the ordinary path answers with the refusal's own status.
  const Caller integrator = Integrator();
  gpb::UpdateVisitSessionRequest gone;
  gone.set_request_id(NewId("rq"));
  gone.set_session_id("vsess_not_there");
  gone.set_pain_after(3);
  const long handed_before = FastPathCount(port, "handed_over");
  EXPECT_EQ(integrator.Call(integrator.progress.get(), &gpb::ProgressService::Stub::UpdateVisitSession, gone, &none)
                .error_code(),
            grpc::StatusCode::NOT_FOUND);
  EXPECT_GE(FastPathCount(port, "handed_over"), handed_before + 1) << "refused by the script, then by the ordinary path";
}

TEST_F(Sessions, CentralisingElsewhereLeadsToAReassessmentAndARevisedPlanTheClinicianApproves) {
  const Caller clinician = Clinician();
  apb::Assessment first;
  const ppb::Plan plan = ApprovedExtensionPlan(clinician, &first);
  // At a visit, repeated flexion in lying centralises: not the plan's direction.
  gpb::SessionRecord session;
  *session.add_movement_tests() = Test(gpb::MOVEMENT_TEST_FLEXION_LYING, gpb::SYMPTOM_RESPONSE_CENTRALISING);
  *session.add_movement_tests() = Test(gpb::MOVEMENT_TEST_EXTENSION_STANDING, gpb::SYMPTOM_RESPONSE_NO_EFFECT);
  gpb::RecordVisitResponse recorded;
  ASSERT_TRUE(Visit(clinician, session, &recorded).ok());
  EXPECT_TRUE(AnyContains(recorded.visit().session_findings(),
                          "re-assess: centralising with repeated flexion in lying; the plan follows extension"));
  EXPECT_TRUE(PlanInUseOrSuspended(clinician, patient_id_).needs_reassessment());

  // The re-assessment: flexion now centralises; ODI re-measured lower.
  apb::ReassessPatientRequest reassess;
  reassess.set_request_id(NewId("rq"));
  reassess.set_previous_assessment_id(first.assessment_id());
  reassess.mutable_examination()->set_directional_preference(apb::DIRECTIONAL_PREFERENCE_FLEXION);
  reassess.mutable_examination()->set_centralisation(true);
  for (int i = 1; i <= 10; ++i) *reassess.add_answers() = Answer(cpb::INSTRUMENT_ODI, "odi." + std::to_string(i), 0);
  reassess.set_reason("centralised with repeated flexion at visit " + recorded.visit().visit_id());
  apb::ReassessPatientResponse reassessed;
  auto status = clinician.Call(clinician.assessment.get(), &apb::AssessmentService::Stub::ReassessPatient, reassess,
                               &reassessed);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(reassessed.assessment().reassessment_of(), first.assessment_id());
  EXPECT_EQ(reassessed.assessment().classification().direction(), "flexion");
  std::map<std::string, apb::AssessmentChange> changes;
  for (const auto& change : reassessed.changes()) changes[change.field()] = change;
  ASSERT_TRUE(changes.contains("direction"));
  EXPECT_EQ(changes["direction"].before(), "extension");
  EXPECT_EQ(changes["direction"].after(), "flexion");
  EXPECT_NE(changes["direction"].reason().find("DIRECTIONAL_PREFERENCE_FLEXION with centralisation"), std::string::npos);
  ASSERT_TRUE(changes.contains("score:INSTRUMENT_ODI"));
  EXPECT_EQ(changes["score:INSTRUMENT_ODI"].after(), "0");
  // The pain answer was carried over, unchanged.
  bool nprs = false;
  for (const auto& score : reassessed.assessment().scores()) nprs |= score.instrument() == cpb::INSTRUMENT_NPRS;
  EXPECT_TRUE(nprs);
  // A retry answers the same.
  apb::ReassessPatientResponse again;
  ASSERT_TRUE(clinician.Call(clinician.assessment.get(), &apb::AssessmentService::Stub::ReassessPatient, reassess, &again).ok());
  EXPECT_EQ(again.assessment().assessment_id(), reassessed.assessment().assessment_id());

  // The revised plan, proposed against the plan in use.
  const ppb::Plan draft = Drafted(clinician, reassessed.assessment().assessment_id());
  EXPECT_EQ(draft.replaces_plan_id(), plan.plan_id());
  EXPECT_EQ(draft.direction(), "flexion");
  bool direction_change = false, added_flexion = false, removed_extension = false;
  for (const auto& change : draft.proposed_changes()) {
    direction_change |= change.kind() == ppb::PROPOSED_CHANGE_KIND_CLASSIFICATION &&
                        change.before() == "direction: extension" && change.after() == "direction: flexion";
    added_flexion |= change.kind() == ppb::PROPOSED_CHANGE_KIND_ADDED && change.item_id().starts_with("ex.dir.") &&
                     !change.reason().empty();
    removed_extension |= change.kind() == ppb::PROPOSED_CHANGE_KIND_REMOVED && change.item_id().starts_with("ex.dir.");
  }
  EXPECT_TRUE(direction_change);
  EXPECT_TRUE(added_flexion);
  EXPECT_TRUE(removed_extension);
  // Approved: it supersedes the plan in use, in the same episode.
  const ppb::Plan approved = Approved(draft);
  EXPECT_EQ(approved.status(), ppb::PLAN_STATUS_ACTIVE);
  EXPECT_EQ(approved.episode_id(), plan.episode_id());
  EXPECT_FALSE(approved.needs_reassessment());
  EXPECT_EQ(PlanInUseOrSuspended(clinician, patient_id_).plan_id(), approved.plan_id());
}

TEST_F(Sessions, AStoppedDirectionIsCarriedIntoTheRevisedPlanUnlessTheReassessmentFindsIt) {
  const Caller clinician = Clinician();
  apb::Assessment first;
  ApprovedExtensionPlan(clinician, &first);
  gpb::SessionRecord session;
  *session.add_movement_tests() = Test(gpb::MOVEMENT_TEST_EXTENSION_STANDING, gpb::SYMPTOM_RESPONSE_PERIPHERALISING);
  gpb::RecordVisitResponse recorded;
  ASSERT_TRUE(Visit(clinician, session, &recorded).ok());
  // Re-assessed with no directional preference: extension stays stopped in the revised plan.
  apb::ReassessPatientRequest reassess;
  reassess.set_request_id(NewId("rq"));
  reassess.set_previous_assessment_id(first.assessment_id());
  reassess.mutable_examination()->set_directional_preference(apb::DIRECTIONAL_PREFERENCE_NONE);
  reassess.set_reason("peripheralised with extension");
  apb::ReassessPatientResponse reassessed;
  ASSERT_TRUE(clinician.Call(clinician.assessment.get(), &apb::AssessmentService::Stub::ReassessPatient, reassess,
                             &reassessed).ok());
  const ppb::Plan kept = Drafted(clinician, reassessed.assessment().assessment_id());
  ASSERT_EQ(kept.stopped_directions_size(), 1);
  EXPECT_EQ(kept.stopped_directions(0), "extension");
  bool carried = false;
  for (const auto& change : kept.proposed_changes()) carried |= change.kind() == ppb::PROPOSED_CHANGE_KIND_CARRIED_OVER;
  EXPECT_TRUE(carried);
  // Re-assessed finding extension again (centralising): offered, and flagged for the clinician.
  reassess.set_request_id(NewId("rq"));
  reassess.mutable_examination()->set_directional_preference(apb::DIRECTIONAL_PREFERENCE_EXTENSION);
  reassess.mutable_examination()->set_centralisation(true);
  ASSERT_TRUE(clinician.Call(clinician.assessment.get(), &apb::AssessmentService::Stub::ReassessPatient, reassess,
                             &reassessed).ok());
  const ppb::Plan offered = Drafted(clinician, reassessed.assessment().assessment_id());
  EXPECT_TRUE(offered.stopped_directions().empty());
  bool flagged = false;
  for (const auto& change : offered.proposed_changes()) {
    flagged |= change.kind() == ppb::PROPOSED_CHANGE_KIND_DIRECTION_OFFERED_AGAIN;
  }
  EXPECT_TRUE(flagged);
}

TEST_F(Sessions, BadDocumentationAndReassessmentsAreRefusedNamingTheField) {
  const Caller clinician = Clinician();
  apb::Assessment first;
  ApprovedExtensionPlan(clinician, &first);
  gpb::SessionRecord session;
  auto* test = session.add_movement_tests();
  test->set_test(gpb::MOVEMENT_TEST_FLEXION_LYING);
  test->set_repetitions(10);
  gpb::RecordVisitResponse recorded;
  auto status = Visit(clinician, session, &recorded);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("session.movement_tests[0].response"), std::string::npos) << status.error_message();
  session.Clear();
  auto* given = session.add_interventions();
  given->set_item_id("ex.dir.prone_press_up");
  given->set_reps(500);
  given->set_response(gpb::SYMPTOM_RESPONSE_BETTER);
  status = Visit(clinician, session, &recorded);
  EXPECT_NE(status.error_message().find("session.interventions[0].reps"), std::string::npos) << status.error_message();

  apb::ReassessPatientRequest reassess;
  reassess.set_request_id(NewId("rq"));
  reassess.set_previous_assessment_id(first.assessment_id());
  reassess.set_reason("review");
  apb::ReassessPatientResponse reassessed;
  status = clinician.Call(clinician.assessment.get(), &apb::AssessmentService::Stub::ReassessPatient, reassess, &reassessed);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("examination"), std::string::npos);
  reassess.mutable_examination()->set_directional_preference(apb::DIRECTIONAL_PREFERENCE_NONE);
  // Another tenant's clinician does not find it; a patient may not re-assess.
  const Caller stranger = Clinician("t-other-" + NewId("x").substr(2, 6));
  status = stranger.Call(stranger.assessment.get(), &apb::AssessmentService::Stub::ReassessPatient, reassess, &reassessed);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  const Caller patient = Patient();
  status = patient.Call(patient.assessment.get(), &apb::AssessmentService::Stub::ReassessPatient, reassess, &reassessed);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
}

}  // namespace
}  // namespace physio::testing
