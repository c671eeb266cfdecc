// foundation_test: Plans: etags, revisions, the intervention library, the active-plan cache, racing edits.
#include "foundation.h"

namespace physio::testing {
namespace {

using Plans = Foundation;

TEST_F(Plans, StaleEtagIsAbortedAndChangesNothing) {
  auto assessment = CompletedAssessment();
  ppb::Plan draft;
  ASSERT_TRUE(Generate(Clinician(), assessment.assessment_id(), &draft).ok());
  EXPECT_EQ(Approve(draft.plan_id(), "v0").error_code(), StatusCode::ABORTED);
  ppb::GetPlanRequest get;
  get.set_plan_id(draft.plan_id());
  ppb::GetPlanResponse got;
  auto clinician = Clinician();
  ASSERT_TRUE(clinician.Call(clinician.planning.get(), &ppb::PlanningService::Stub::GetPlan, get, &got).ok());
  EXPECT_EQ(got.plan().status(), ppb::PLAN_STATUS_DRAFT);
  EXPECT_EQ(got.plan().etag(), draft.etag());

  ppb::Plan first;
  ASSERT_TRUE(Approve(draft.plan_id(), draft.etag(), &first).ok());
  // The etag the first approval consumed is stale now.
  EXPECT_EQ(Approve(draft.plan_id(), draft.etag()).error_code(), StatusCode::ABORTED);

  // A second approved plan supersedes the first: one active plan per patient.
  ppb::Plan second_draft, second;
  ASSERT_TRUE(Generate(Clinician(), assessment.assessment_id(), &second_draft).ok());
  ASSERT_TRUE(Approve(second_draft.plan_id(), second_draft.etag(), &second).ok());
  ppb::GetActivePlanRequest active_request;
  active_request.set_patient_id(patient_id_);
  ppb::GetActivePlanResponse active;
  ASSERT_TRUE(
      clinician.Call(clinician.planning.get(), &ppb::PlanningService::Stub::GetActivePlan, active_request, &active).ok());
  EXPECT_EQ(active.plan().plan_id(), second.plan_id());
  ASSERT_TRUE(clinician.Call(clinician.planning.get(), &ppb::PlanningService::Stub::GetPlan, get, &got).ok());
  EXPECT_EQ(got.plan().status(), ppb::PLAN_STATUS_SUPERSEDED);
  EXPECT_EQ(CountRows("SELECT count(*) FROM planning.plans WHERE tenant_id = $1 AND status = 'ACTIVE'"), 1);
}

TEST_F(Plans, HomeLogsMustMatchTheActivePlan) {
  auto patient = Patient();
  auto no_plan = LogExercise(patient, "ex.strength.glute_bridge", 3);
  EXPECT_EQ(no_plan.error_code(), StatusCode::FAILED_PRECONDITION);
  ActivePlan();
  auto not_prescribed = LogExercise(patient, "ex.strength.goblet_squat", 3);
  EXPECT_EQ(not_prescribed.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(not_prescribed.error_message().find("exercise_id"), std::string::npos);
  auto education_item = LogExercise(patient, "edu.self_management", 3);
  EXPECT_EQ(education_item.error_code(), StatusCode::INVALID_ARGUMENT);
}

TEST_F(Plans, TheInterventionLibraryIsListedPageByPage) {
  auto patient = Patient();
  ppb::ListInterventionsRequest request;
  request.set_page_size(20);
  std::set<std::string> ids;
  int exercises = 0, pages = 0;
  std::string version;
  do {
    ppb::ListInterventionsResponse page;
    ASSERT_TRUE(patient.Call(patient.planning.get(), &ppb::PlanningService::Stub::ListInterventions, request, &page).ok());
    version = page.library_version();
    for (const auto& entry : page.interventions()) {
      EXPECT_TRUE(ids.insert(entry.intervention_id()).second) << entry.intervention_id();
      if (entry.kind() == ppb::PLAN_ITEM_KIND_EXERCISE) {
        ++exercises;
        EXPECT_GT(entry.dose().sets(), 0);
        EXPECT_FALSE(entry.instructions().empty());
      }
    }
    request.set_page_token(page.next_page_token());
    ++pages;
  } while (!request.page_token().empty() && pages < 20);
  EXPECT_GE(exercises, 40);
  EXPECT_GE(pages, 4);
  EXPECT_FALSE(version.empty());

  ppb::ListInterventionsRequest advised_against;
  advised_against.set_kind(ppb::PLAN_ITEM_KIND_NOT_RECOMMENDED);
  ppb::ListInterventionsResponse listed;
  ASSERT_TRUE(patient.Call(patient.planning.get(), &ppb::PlanningService::Stub::ListInterventions, advised_against,
                           &listed).ok());
  EXPECT_EQ(listed.interventions_size(), 9);
  for (const auto& entry : listed.interventions()) EXPECT_FALSE(entry.reason().empty());
  advised_against.set_page_token("00ff");
  EXPECT_EQ(patient.Call(patient.planning.get(), &ppb::PlanningService::Stub::ListInterventions, advised_against,
                         &listed).error_code(),
            StatusCode::INVALID_ARGUMENT);
}

// Issue 32 item 5: a patient app asks for its language; the library's translation is served where
// there is one (the base language of a regional tag), English otherwise, and the caller is told which.
TEST_F(Plans, PlansAndTheLibraryAreServedInTheCallersLanguageFallingBackToEnglish) {
  auto patient = Patient();
  ppb::ListInterventionsRequest list;
  list.set_page_size(200);
  list.set_locale("es-MX");
  ppb::ListInterventionsResponse listed;
  ASSERT_TRUE(patient.Call(patient.planning.get(), &ppb::PlanningService::Stub::ListInterventions, list, &listed).ok());
  std::map<std::string, ppb::Intervention> by_id;
  for (const auto& entry : listed.interventions()) by_id[entry.intervention_id()] = entry;
  EXPECT_EQ(by_id["ex.aerobic.walking"].title(), "Caminar");
  EXPECT_EQ(by_id["ex.aerobic.walking"].locale(), "es");
  EXPECT_EQ(by_id["ex.strength.goblet_squat"].locale(), "en") << "not translated: English";
  EXPECT_EQ(by_id["ex.strength.goblet_squat"].title(), "Goblet squat");

  const ppb::Plan english = ActivePlan();
  ppb::GetActivePlanRequest get;
  get.set_patient_id(patient_id_);
  get.set_locale("es");
  ppb::GetActivePlanResponse spanish;
  ASSERT_TRUE(patient.Call(patient.planning.get(), &ppb::PlanningService::Stub::GetActivePlan, get, &spanish).ok());
  ASSERT_EQ(spanish.plan().items_size(), english.items_size());
  int translated = 0;
  for (int i = 0; i < english.items_size(); ++i) {
    const auto& item = spanish.plan().items(i);
    EXPECT_EQ(item.item_id(), english.items(i).item_id());
    EXPECT_EQ(item.dose().DebugString(), english.items(i).dose().DebugString()) << "the dose never changes";
    EXPECT_EQ(english.items(i).locale(), "") << "an English read is as it was";
    if (item.locale() == "es") {
      ++translated;
      EXPECT_NE(item.title(), english.items(i).title()) << item.item_id();
    } else {
      EXPECT_EQ(item.locale(), "en") << item.item_id();
      EXPECT_EQ(item.title(), english.items(i).title()) << item.item_id();
    }
    if (item.item_id() == "edu.self_management") {
      EXPECT_EQ(item.locale(), "es");
    }
  }
  EXPECT_GT(translated, 0);
  // GetPlan too; a malformed locale is refused naming the field.
  ppb::GetPlanRequest by_id_request;
  by_id_request.set_plan_id(english.plan_id());
  by_id_request.set_locale("es");
  ppb::GetPlanResponse by_plan_id;
  ASSERT_TRUE(patient.Call(patient.planning.get(), &ppb::PlanningService::Stub::GetPlan, by_id_request, &by_plan_id).ok());
  EXPECT_EQ(by_plan_id.plan().items_size(), spanish.plan().items_size());
  get.set_locale("spanish please");
  auto status = patient.Call(patient.planning.get(), &ppb::PlanningService::Stub::GetActivePlan, get, &spanish);
  EXPECT_EQ(status.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("locale"), std::string::npos) << status.error_message();
}

TEST_F(Plans, ABadInterventionLibraryStopsThePlanningServiceNamingTheEntry) {
  const std::string path = "/tmp/physio-bad-library-" + NewId("f").substr(2, 8) + ".json";
  std::ofstream(path) << R"({"library_version":"bad","entries":[{"id":"ex.a.one","kind":"exercise","category":"aerobic",)"
                         R"("title":"One","instructions":"x","source":"s","phases":["movement_control"],)"
                         R"("dose":{"sets":1,"reps":1,"hold_seconds":0,"sessions_per_week":99,"duration_minutes":0}}]})";
  auto config = MakeServiceConfig(planning::PlanningConfigKeys(), *keys_, redis_->port(), postgres_->port(), "physio");
  config->Set("library-file", path);
  try {
    planning::StartPlanningService(*config);
    ADD_FAILURE() << "the service started with a bad library";
  } catch (const std::exception& e) {
    EXPECT_STREQ(e.what(), "interventions: entry 'ex.a.one': dose.sessions_per_week must be 1-14, got 99");
  }
  std::remove(path.c_str());
}

TEST_F(Plans, PlanLifecycleKeepsEveryRevisionWithWhoAndWhy) {
  auto clinician = Clinician();
  auto plan = ActivePlan();  // medium intensity, movement control
  ASSERT_EQ(plan.revision(), 2);

  // A clinician's revision needs the current etag.
  ppb::RevisePlanRequest revise;
  revise.set_request_id(NewId("rq"));
  revise.set_plan_id(plan.plan_id());
  revise.set_etag("v1");
  revise.set_reason("Patient prefers cycling to walking");
  revise.add_changes()->set_remove_item_id("ex.aerobic.walking");
  revise.add_changes()->set_add_intervention_id("ex.aerobic.stationary_cycling");
  auto* dose = revise.add_changes()->mutable_set_dose();
  dose->set_item_id("ex.strength.glute_bridge");
  dose->mutable_dose()->set_sets(2);
  dose->mutable_dose()->set_reps(12);
  dose->mutable_dose()->set_sessions_per_week(3);
  ppb::RevisePlanResponse revised;
  EXPECT_EQ(clinician.Call(clinician.planning.get(), &ppb::PlanningService::Stub::RevisePlan, revise, &revised).error_code(),
            StatusCode::ABORTED);
  revise.set_etag(plan.etag());
  ASSERT_TRUE(clinician.Call(clinician.planning.get(), &ppb::PlanningService::Stub::RevisePlan, revise, &revised).ok());
  EXPECT_EQ(revised.plan().revision(), 3);
  bool cycling = false, walking = false;
  for (const auto& item : revised.plan().items()) {
    cycling |= item.item_id() == "ex.aerobic.stationary_cycling";
    walking |= item.item_id() == "ex.aerobic.walking";
    if (item.item_id() == "ex.strength.glute_bridge") {
      EXPECT_EQ(item.dose().reps(), 12);
    }
  }
  EXPECT_TRUE(cycling);
  EXPECT_FALSE(walking);

  // Manual therapy may not be left without exercise; nothing changes.
  ppb::RevisePlanRequest strip;
  strip.set_request_id(NewId("rq"));
  strip.set_plan_id(plan.plan_id());
  strip.set_etag(revised.plan().etag());
  strip.set_reason("try");
  for (const auto& item : revised.plan().items()) {
    if (item.kind() == ppb::PLAN_ITEM_KIND_EXERCISE) strip.add_changes()->set_remove_item_id(item.item_id());
  }
  ppb::RevisePlanResponse stripped;
  auto status = clinician.Call(clinician.planning.get(), &ppb::PlanningService::Stub::RevisePlan, strip, &stripped);
  EXPECT_EQ(status.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("manual therapy"), std::string::npos);

  // An exercise is progressed along its library link (as the progress service does on an
  // evaluation, there under mutual TLS with the service role); a retry changes nothing more.
  Caller service(*cluster_, MakeToken(*keys_, tenant_, "clin-adjusting", {"clinician"}));
  ppb::AdjustPlanRequest adjust;
  adjust.set_request_id("eval-1");
  adjust.set_plan_id(plan.plan_id());
  adjust.set_adjustment(ppb::ADJUSTMENT_PROGRESS);
  adjust.add_item_ids("ex.motor.abdominal_bracing");
  adjust.set_reason("dose completed, adherence good, no flare");
  ppb::AdjustPlanResponse adjusted, again;
  ASSERT_TRUE(service.Call(service.planning.get(), &ppb::PlanningService::Stub::AdjustPlan, adjust, &adjusted).ok());
  ASSERT_TRUE(service.Call(service.planning.get(), &ppb::PlanningService::Stub::AdjustPlan, adjust, &again).ok());
  EXPECT_EQ(adjusted.plan().revision(), 4);
  EXPECT_EQ(again.plan().revision(), 4);
  bool progressed = false;
  for (const auto& item : adjusted.plan().items()) {
    progressed |= item.item_id() == "ex.motor.bracing_heel_slide";
    EXPECT_NE(item.item_id(), "ex.motor.abdominal_bracing");
  }
  EXPECT_TRUE(progressed);
  adjust.set_request_id("eval-2");
  adjust.clear_item_ids();
  adjust.add_item_ids("edu.self_management");
  status = service.Call(service.planning.get(), &ppb::PlanningService::Stub::AdjustPlan, adjust, &adjusted);
  EXPECT_EQ(status.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("item_ids[0]"), std::string::npos);
  adjust.set_request_id("eval-3");
  adjust.clear_item_ids();
  adjust.set_adjustment(ppb::ADJUSTMENT_MARK_FOR_REASSESSMENT);
  adjust.set_reason("below the meaningful change at week 6");
  ASSERT_TRUE(service.Call(service.planning.get(), &ppb::PlanningService::Stub::AdjustPlan, adjust, &adjusted).ok());
  EXPECT_TRUE(adjusted.plan().needs_reassessment());

  // Completion ends the active plan.
  ppb::CompletePlanResponse completed;
  ASSERT_TRUE(CompletePlanWith(clinician, plan.plan_id(), adjusted.plan().etag(), ppb::PLAN_STATUS_DISCHARGED,
                               "referred to the spinal clinic", &completed).ok());
  EXPECT_EQ(completed.plan().status(), ppb::PLAN_STATUS_DISCHARGED);
  ppb::GetActivePlanRequest active;
  active.set_patient_id(patient_id_);
  ppb::GetActivePlanResponse got;
  EXPECT_EQ(clinician.Call(clinician.planning.get(), &ppb::PlanningService::Stub::GetActivePlan, active, &got).error_code(),
            StatusCode::NOT_FOUND);

  // The history: every change, who and why, oldest first, in pages.
  ppb::ListPlanRevisionsRequest list;
  list.set_plan_id(plan.plan_id());
  list.set_page_size(4);
  std::vector<std::string> changes;
  do {
    ppb::ListPlanRevisionsResponse page;
    ASSERT_TRUE(clinician.Call(clinician.planning.get(), &ppb::PlanningService::Stub::ListPlanRevisions, list, &page).ok());
    for (const auto& revision : page.revisions()) {
      changes.push_back(revision.change());
      EXPECT_EQ(revision.plan().revision(), revision.revision());
      EXPECT_FALSE(revision.changed_by().empty());
      EXPECT_GT(revision.change_time().seconds(), 0);
    }
    list.set_page_token(page.next_page_token());
  } while (!list.page_token().empty());
  EXPECT_EQ(changes, (std::vector<std::string>{"generated", "approved", "revised", "adjusted", "adjusted", "discharged"}));
  auto intruder = Clinician("other-tenant");
  list.set_page_token("");
  ppb::ListPlanRevisionsResponse none;
  EXPECT_EQ(intruder.Call(intruder.planning.get(), &ppb::PlanningService::Stub::ListPlanRevisions, list, &none).error_code(),
            StatusCode::NOT_FOUND);
}

TEST_F(Plans, ActivePlanComesFromTheCacheAndIsNeverStale) {
  auto clinician = Clinician();
  auto read_active = [&](ppb::Plan* out) {
    ppb::GetActivePlanRequest request;
    request.set_patient_id(patient_id_);
    ppb::GetActivePlanResponse response;
    auto status = clinician.Call(clinician.planning.get(), &ppb::PlanningService::Stub::GetActivePlan, request, &response);
    if (out) *out = response.plan();
    return status;
  };
  RedisOptions options;
  options.port = redis_->port();
  options.pool_size = 1;
  RedisPool redis(options);
  const std::string cache_key = RedisKey("plan", tenant_, {"active", patient_id_});
  auto cached = [&] {
    auto reply = redis.Command({"EXISTS", cache_key}, Clock::now() + std::chrono::seconds(2));
    return reply->integer == 1;
  };

  auto plan = ActivePlan();
  ppb::Plan seen;
  ASSERT_TRUE(read_active(&seen).ok());
  EXPECT_EQ(seen.revision(), plan.revision());
  EXPECT_TRUE(cached());  // filled by the read
  ASSERT_TRUE(read_active(&seen).ok());  // served from it
  EXPECT_EQ(seen.etag(), plan.etag());

  ppb::AdjustPlanRequest adjust;
  adjust.set_request_id(NewId("rq"));
  adjust.set_plan_id(plan.plan_id());
  adjust.set_adjustment(ppb::ADJUSTMENT_PROGRESS);
  adjust.set_reason("doing well");
  ppb::AdjustPlanResponse adjusted;
  ASSERT_TRUE(clinician.Call(clinician.planning.get(), &ppb::PlanningService::Stub::AdjustPlan, adjust, &adjusted).ok());
  EXPECT_FALSE(cached());  // invalidated by the change
  ASSERT_TRUE(read_active(&seen).ok());
  EXPECT_EQ(seen.revision(), adjusted.plan().revision());
  EXPECT_EQ(seen.etag(), adjusted.plan().etag());

  // A newly approved plan replaces the cached one at once.
  ppb::Plan second_draft, second;
  ASSERT_TRUE(Generate(clinician, plan.assessment_id(), &second_draft).ok());
  ASSERT_TRUE(Approve(second_draft.plan_id(), second_draft.etag(), &second).ok());
  ASSERT_TRUE(read_active(&seen).ok());
  EXPECT_EQ(seen.plan_id(), second.plan_id());

  ppb::CompletePlanResponse completed;
  ASSERT_TRUE(
      CompletePlanWith(clinician, second.plan_id(), second.etag(), ppb::PLAN_STATUS_COMPLETED, "goals met", &completed).ok());
  EXPECT_EQ(read_active(nullptr).error_code(), StatusCode::NOT_FOUND);
}

// Issue 33: a cached active plan is answered without a worker thread (CallPipeline::ServeFastRead,
// counted on /metrics), with the same plan as the read that filled the cache, each read with its
// own audit row; the patient themselves and a clinician read it that way, another patient and a
// clinician of another tenant still get NOT_FOUND, and every such refusal goes the ordinary way.
TEST_F(Plans, CachedActivePlanReadsNeedNoWorkerAndEachIsAudited) {
  const auto fast_reads = [&](const std::string& outcome) {
    return FastPathCount(cluster_->planning_metrics_port(), outcome);
  };
  auto read_active = [&](const Caller& caller, const std::string& patient, ppb::GetActivePlanResponse* out) {
    ppb::GetActivePlanRequest request;
    request.set_patient_id(patient);
    return caller.Call(caller.planning.get(), &ppb::PlanningService::Stub::GetActivePlan, request, out);
  };
  const auto plan = ActivePlan();
  const auto patient = Patient();
  ppb::GetActivePlanResponse first;
  ASSERT_TRUE(read_active(patient, patient_id_, &first).ok());  // fills the cache
  const long answered_before = fast_reads("answered");
  ASSERT_GE(answered_before, 0) << "physio_fast_reads_total is on planning's /metrics";
  const auto clinician = Clinician();
  for (const Caller* caller : {&patient, &patient, &clinician, &clinician, &patient}) {
    ppb::GetActivePlanResponse again;
    ASSERT_TRUE(read_active(*caller, patient_id_, &again).ok());
    EXPECT_EQ(again.plan().plan_id(), plan.plan_id());
    EXPECT_EQ(again.SerializeAsString(), first.SerializeAsString()) << "the cached read hands out the same plan";
  }
  EXPECT_GE(fast_reads("answered"), answered_before + 5) << "the cached reads were answered without a worker";
  EXPECT_EQ(CountRows("SELECT count(*) FROM planning.audit_events WHERE tenant_id = $1 AND action = 'GetActivePlan'"
                      " AND patient_id = '" + patient_id_ + "' AND outcome = 'OK'"),
            6)
      << "one audit row per read, the fast ones included";

  const long not_started_before = fast_reads("not_started");
  ppb::GetActivePlanResponse none;
  EXPECT_EQ(read_active(Patient(NewId("pat")), patient_id_, &none).error_code(), StatusCode::NOT_FOUND);
  EXPECT_EQ(read_active(Clinician("other-tenant"), patient_id_, &none).error_code(), StatusCode::NOT_FOUND);
  EXPECT_FALSE(none.has_plan());
  EXPECT_GE(fast_reads("not_started"), not_started_before + 2) << "refusals are made (and recorded) by the ordinary path";
  EXPECT_EQ(CountRows("SELECT count(*) FROM planning.audit_events WHERE tenant_id = $1 AND action = 'GetActivePlan'"
                      " AND patient_id = '" + patient_id_ + "' AND outcome = 'OK'"),
            6);
}

// Issue 33: the fast path keeps responses it made by the cached plan's exact bytes and locale
// (ServedPlanMemo). Every read, remembered or not, must give what a fresh read gives: the
// language asked for, and a revision at once. A request that does not parse is INVALID_ARGUMENT.
TEST_F(Plans, RememberedActivePlanResponsesFollowTheLocaleAndEveryChange) {
  const auto plan = ActivePlan();
  const auto patient = Patient();
  auto read = [&](const std::string& locale) {
    ppb::GetActivePlanRequest request;
    request.set_patient_id(patient_id_);
    request.set_locale(locale);
    ppb::GetActivePlanResponse response;
    const auto status = patient.Call(patient.planning.get(), &ppb::PlanningService::Stub::GetActivePlan, request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response.plan();
  };
  auto spanish_items = [](const ppb::Plan& read_plan) {
    int count = 0;
    for (const auto& item : read_plan.items()) count += item.locale() == "es" ? 1 : 0;
    return count;
  };
  // Each language read three times (the first may fill the cache; the rest are remembered).
  std::string english, spanish;
  for (int i = 0; i < 3; ++i) {
    const auto in_english = read("");
    const auto in_spanish = read("es");
    EXPECT_EQ(spanish_items(in_english), 0) << "an English read is never served the Spanish response";
    EXPECT_GT(spanish_items(in_spanish), 0) << "a Spanish read is never served the English response";
    if (i == 0) {
      english = in_english.SerializeAsString();
      spanish = in_spanish.SerializeAsString();
    }
    EXPECT_EQ(in_english.SerializeAsString(), english);
    EXPECT_EQ(in_spanish.SerializeAsString(), spanish);
    EXPECT_EQ(in_english.etag(), plan.etag());
  }
  // A revision: every following read, in either language, is the new revision.
  const auto clinician = Clinician();
  ppb::RevisePlanRequest revise;
  revise.set_request_id(NewId("rq"));
  revise.set_plan_id(plan.plan_id());
  revise.set_etag(plan.etag());
  revise.set_reason("fewer sets this week");
  auto* dose = revise.add_changes()->mutable_set_dose();
  dose->set_item_id("ex.strength.glute_bridge");
  dose->mutable_dose()->set_sets(1);
  dose->mutable_dose()->set_reps(10);
  dose->mutable_dose()->set_sessions_per_week(3);
  ppb::RevisePlanResponse revised;
  const auto status = clinician.Call(clinician.planning.get(), &ppb::PlanningService::Stub::RevisePlan, revise, &revised);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_NE(revised.plan().etag(), plan.etag());
  for (int i = 0; i < 3; ++i) {
    for (const std::string locale : {"", "es"}) {
      const auto after = read(locale);
      EXPECT_EQ(after.etag(), revised.plan().etag()) << "read " << i << " in '" << locale << "'";
      for (const auto& item : after.items()) {
        if (item.item_id() == "ex.strength.glute_bridge") {
          EXPECT_EQ(item.dose().sets(), 1);
        }
      }
    }
  }

  // Bytes that are not a GetActivePlanRequest: INVALID_ARGUMENT, after the token is checked.
  const auto channel = grpc::CreateChannel(cluster_->planning_addr(), grpc::InsecureChannelCredentials());
  auto send_raw = [&](const Caller* caller) {
    auto context = caller != nullptr ? caller->Context() : std::make_unique<grpc::ClientContext>();
    return CallWithBytes(channel, *context, "/physio.planning.v1.PlanningService/GetActivePlan", "\xff\xff\xff\xff");
  };
  const auto unparsable = send_raw(&patient);
  EXPECT_EQ(unparsable.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(unparsable.error_message().find("GetActivePlanRequest"), std::string::npos) << unparsable.error_message();
  EXPECT_EQ(send_raw(nullptr).error_code(), StatusCode::UNAUTHENTICATED);
}

TEST_F(Plans, RacingEditsLeaveOneWinnerAndOneActivePlan) {
  auto assessment = CompletedAssessment();
  auto clinician = Clinician();
  // Two drafts approved at the same moment: one active plan, the loser told to re-read.
  for (int round = 0; round < 3; ++round) {
    ppb::Plan a, b;
    ASSERT_TRUE(Generate(clinician, assessment.assessment_id(), &a).ok());
    ASSERT_TRUE(Generate(clinician, assessment.assessment_id(), &b).ok());
    grpc::Status status_a, status_b;
    std::thread ta([&] { status_a = Approve(a.plan_id(), a.etag()); });
    std::thread tb([&] { status_b = Approve(b.plan_id(), b.etag()); });
    ta.join();
    tb.join();
    // Serialised by the row lock both can succeed (the later supersedes the earlier);
    // racing on the unique index the loser gets ABORTED. Never two active plans.
    for (const auto& status : {status_a, status_b}) {
      EXPECT_TRUE(status.ok() || status.error_code() == StatusCode::ABORTED) << status.error_message();
    }
    EXPECT_TRUE(status_a.ok() || status_b.ok());
    EXPECT_EQ(CountRows("SELECT count(*) FROM planning.plans WHERE tenant_id = $1 AND status = 'ACTIVE'"), 1);
  }

  // Two revisions from the same etag: exactly one lands.
  ppb::GetActivePlanRequest get;
  get.set_patient_id(patient_id_);
  ppb::GetActivePlanResponse active;
  ASSERT_TRUE(clinician.Call(clinician.planning.get(), &ppb::PlanningService::Stub::GetActivePlan, get, &active).ok());
  std::atomic<int> ok{0}, aborted{0};
  std::vector<std::thread> editors;
  for (int i = 0; i < 4; ++i) {
    editors.emplace_back([&, i] {
      ppb::RevisePlanRequest revise;
      revise.set_request_id(NewId("rq"));
      revise.set_plan_id(active.plan().plan_id());
      revise.set_etag(active.plan().etag());
      revise.set_reason("editor " + std::to_string(i));
      auto* dose = revise.add_changes()->mutable_set_dose();
      dose->set_item_id("ex.strength.glute_bridge");
      dose->mutable_dose()->set_sets(1 + i);
      dose->mutable_dose()->set_reps(10);
      dose->mutable_dose()->set_sessions_per_week(3);
      ppb::RevisePlanResponse revised;
      auto status = clinician.Call(clinician.planning.get(), &ppb::PlanningService::Stub::RevisePlan, revise, &revised);
      if (status.ok()) ++ok;
      if (status.error_code() == StatusCode::ABORTED) ++aborted;
    });
  }
  for (auto& t : editors) t.join();
  EXPECT_EQ(ok.load(), 1);
  EXPECT_EQ(aborted.load(), 3);
  EXPECT_EQ(CountRows("SELECT count(*) FROM planning.plan_revisions WHERE tenant_id = $1 AND change = 'revised'"), 1);
}

}  // namespace
}  // namespace physio::testing
