// The planning use cases' successful paths over in-memory stores
// (tests/support/fake_stores.h), from an assessment the assessment use cases
// scored: a plan is generated once per request, approved, served from the
// active-plan cache only while no write moved it, superseded by the next
// approval, and suspended by the patient. Milliseconds; the integration suites
// run the same paths over PostgreSQL and Redis.
#include <gtest/gtest.h>

#include <fstream>
#include <functional>

#include <nlohmann/json.hpp>

#include "assessment_app.h"
#include "clients.h"
#include "fake_peers.h"
#include "fake_stores.h"
#include "served_plan_memo.h"
#include "physio/common/error.h"
#include "use_case_support.h"
#include "planning_app.h"

namespace physio::testing {
namespace {

class PlanningWorkflow : public ::testing::Test {
 protected:
  void SetUp() override { assessments.stored = ScoredAssessment("rq-asm-1"); }

  // Pain 6, ODI 40%, screened with no red flag: a treatment plan (scored by the assessment use cases).
  apb::Assessment ScoredAssessment(const std::string& request_id) {
    apb::CreateAssessmentRequest create;
    create.set_request_id(request_id);
    create.set_patient_id("pt-1");
    *create.add_answers() = Answer(cpb::INSTRUMENT_NPRS, "nprs", 6);
    for (int i = 1; i <= 10; ++i) *create.add_answers() = Answer(cpb::INSTRUMENT_ODI, "odi." + std::to_string(i), 2);
    create.mutable_red_flag_screen();
    return assessment_app.CreateAssessment(clinician, create, audit).assessment();
  }
  ppb::Plan Generate(const std::string& request_id) {
    ppb::GeneratePlanRequest generate;
    generate.set_request_id(request_id);
    generate.set_assessment_id(assessments.stored->assessment_id());
    return app.GeneratePlan(clinician, generate, audit).plan();
  }
  ppb::Plan Approve(const ppb::Plan& plan, const std::string& request_id) {
    ppb::ApprovePlanRequest approve;
    approve.set_request_id(request_id);
    approve.set_plan_id(plan.plan_id());
    approve.set_etag(plan.etag());
    approve.set_manipulation_consent(true);
    return app.ApprovePlan(clinician, approve, audit).plan();
  }
  ppb::Plan ActivePlan(bool include_suspended = false) {
    ppb::GetActivePlanRequest get;
    get.set_patient_id("pt-1");
    get.set_include_suspended(include_suspended);
    return app.GetActivePlan(patient, get, audit).plan();
  }

  const CallContext clinician = CallerAs(Role::kClinician);
  const CallContext patient = CallerAs(Role::kPatient, "pt-1");
  AuditTarget audit;
  FakeSessionIdempotency session_idempotency;
  FakeIntakeStore intakes;
  FakeAssessmentRecords assessment_records;
  assessment::AssessmentApp assessment_app{{session_idempotency, intakes, assessment_records},
                                           assessment::AssessmentSettings{}};
  FakeAssessmentReader assessments;
  FakePlanRecords records;
  FakeActivePlanCache active_plans;
  planning::PlanningApp app{records, active_plans, assessments, SourceLibrary()};
};

TEST_F(PlanningWorkflow, APlanIsGeneratedOncePerRequestAndApprovedAgainstItsEtag) {
  const auto draft = Generate("rq-gen");
  EXPECT_EQ(draft.status(), ppb::PLAN_STATUS_DRAFT);
  EXPECT_EQ(draft.patient_id(), "pt-1");
  EXPECT_EQ(draft.etag(), "v1");
  EXPECT_GT(draft.items_size(), 0);
  // A retry replays the stored plan without asking the assessment service again.
  EXPECT_EQ(Generate("rq-gen").plan_id(), draft.plan_id());
  EXPECT_EQ(assessments.calls, 1);
  EXPECT_EQ(records.state.plans.size(), 1u);

  auto stale = draft;
  stale.set_etag("v7");
  EXPECT_EQ(CodeOf([&] { Approve(stale, "rq-approve-stale"); }), ErrorCode::kAborted);
  const auto active = Approve(draft, "rq-approve");
  EXPECT_EQ(active.status(), ppb::PLAN_STATUS_ACTIVE);
  EXPECT_EQ(active.etag(), "v2");
  EXPECT_EQ(active.approved_by(), "staff-1");
  ASSERT_EQ(records.state.events.size(), 2u);  // drafted (awaiting approval), then approved
  EXPECT_EQ(records.state.events[0].kind, "EVENT_KIND_PLAN_DRAFTED");
  EXPECT_EQ(records.state.events[1].kind, "EVENT_KIND_PLAN_APPROVED");
  // Approving it again is refused: it is no longer a draft.
  EXPECT_EQ(CodeOf([&] { Approve(active, "rq-approve-again"); }), ErrorCode::kFailedPrecondition);
}

TEST_F(PlanningWorkflow, TheActivePlanComesFromTheCacheUntilAWriteMovesIt) {
  const auto first = Approve(Generate("rq-gen-1"), "rq-approve-1");
  const int reads_before = records.reads;
  EXPECT_EQ(ActivePlan().plan_id(), first.plan_id());  // a miss: read from the records, then cached
  EXPECT_EQ(ActivePlan().plan_id(), first.plan_id());  // a hit
  EXPECT_EQ(records.reads, reads_before + 1);
  EXPECT_EQ(active_plans.hits, 1);

  // A second approved plan supersedes the first; the cache never serves the old one.
  assessments.stored = ScoredAssessment("rq-asm-2");
  const auto second = Approve(Generate("rq-gen-2"), "rq-approve-2");
  EXPECT_EQ(ActivePlan().plan_id(), second.plan_id());
  EXPECT_EQ(records.state.plans.at({"t-1", first.plan_id()}).plan.status(), ppb::PLAN_STATUS_SUPERSEDED);

  ppb::ListPlanRevisionsRequest list;
  list.set_plan_id(first.plan_id());
  list.set_page_size(2);
  auto page = app.ListPlanRevisions(clinician, list, audit);
  ASSERT_EQ(page.revisions_size(), 2);
  EXPECT_EQ(page.revisions(0).change(), "generated");
  EXPECT_EQ(page.revisions(1).change(), "approved");
  ASSERT_FALSE(page.next_page_token().empty());
  list.set_page_token(page.next_page_token());
  page = app.ListPlanRevisions(clinician, list, audit);
  ASSERT_EQ(page.revisions_size(), 1);
  EXPECT_EQ(page.revisions(0).change(), "superseded");
  EXPECT_TRUE(page.next_page_token().empty());
}

TEST_F(PlanningWorkflow, APatientSuspendsTheirPlanAndItIsNoLongerServedAsAProgramme) {
  const auto active = Approve(Generate("rq-gen"), "rq-approve");
  ActivePlan();  // cached
  ppb::AdjustPlanRequest suspend;
  suspend.set_request_id("rq-suspend");
  suspend.set_plan_id(active.plan_id());
  suspend.set_adjustment(ppb::ADJUSTMENT_SUSPEND);
  suspend.set_reason("new numbness in the saddle area reported in the home log");
  EXPECT_EQ(app.AdjustPlan(patient, suspend, audit).plan().status(), ppb::PLAN_STATUS_SUSPENDED);
  EXPECT_EQ(records.state.events.back().kind, "EVENT_KIND_PLAN_SUSPENDED");
  EXPECT_EQ(CodeOf([&] { ActivePlan(); }), ErrorCode::kFailedPrecondition);
  EXPECT_EQ(ActivePlan(/*include_suspended=*/true).status(), ppb::PLAN_STATUS_SUSPENDED);
  // Another patient's plan reads as absent.
  ppb::GetPlanRequest get;
  get.set_plan_id(active.plan_id());
  EXPECT_EQ(CodeOf([&] { app.GetPlan(CallerAs(Role::kPatient, "pt-2"), get, audit); }), ErrorCode::kNotFound);
}

}  // namespace
}  // namespace physio::testing

namespace physio::testing {
namespace {

// Issue 32 item 5: a library entry's media (hosted elsewhere) reach the plan's items, in the
// language the caller reads the plan in; the dose and the plan's own record never change.
TEST_F(PlanningWorkflow, PlanItemsCarryTheirLibraryMediaInTheLanguageServed) {
  static const planning::InterventionLibrary library = [] {
    std::ifstream in(PHYSIO_SOURCE_DIR "/services/planning/library/interventions.json");
    nlohmann::json root = nlohmann::json::parse(in);
    for (auto& entry : root["entries"]) {
      if (entry["id"] != "ex.aerobic.walking") continue;
      entry["media"] = nlohmann::json::parse(R"([
        {"uri":"https://media.example.org/walking-en.mp4","kind":"video","duration_seconds":40,"licence":"CC BY 4.0","attribution":"North Clinic","locale":"en"},
        {"uri":"https://media.example.org/walking-es.mp4","kind":"video","duration_seconds":42,"licence":"CC BY 4.0","attribution":"North Clinic","locale":"es"},
        {"uri":"https://media.example.org/walking.png","kind":"image","licence":"CC0"}])");
    }
    return planning::InterventionLibrary::Parse(root.dump());
  }();
  planning::PlanningApp with_media{records, active_plans, assessments, library};
  ppb::GeneratePlanRequest generate;
  generate.set_request_id("rq-media");
  generate.set_assessment_id(assessments.stored->assessment_id());
  const ppb::Plan draft = with_media.GeneratePlan(clinician, generate, audit).plan();
  ppb::ApprovePlanRequest approve;
  approve.set_request_id("rq-media-a");
  approve.set_plan_id(draft.plan_id());
  approve.set_etag(draft.etag());
  with_media.ApprovePlan(clinician, approve, audit);
  auto walking_in = [&](const std::string& locale) {
    ppb::GetActivePlanRequest get;
    get.set_patient_id("pt-1");
    get.set_locale(locale);
    const ppb::GetActivePlanResponse response = with_media.GetActivePlan(patient, get, audit);
    for (const auto& item : response.plan().items()) {
      if (item.item_id() == "ex.aerobic.walking") return item;
    }
    ADD_FAILURE() << "no walking item";
    return ppb::PlanItem{};
  };
  const ppb::PlanItem spanish = walking_in("es-ES");
  EXPECT_EQ(spanish.title(), "Caminar");
  EXPECT_EQ(spanish.locale(), "es");
  ASSERT_EQ(spanish.media_size(), 2);
  EXPECT_EQ(spanish.media(0).uri(), "https://media.example.org/walking-es.mp4");
  EXPECT_EQ(spanish.media(0).kind(), ppb::MEDIA_KIND_VIDEO);
  EXPECT_EQ(spanish.media(0).duration_seconds(), 42);
  EXPECT_EQ(spanish.media(0).attribution(), "North Clinic");
  EXPECT_EQ(spanish.media(1).kind(), ppb::MEDIA_KIND_IMAGE);
  const ppb::PlanItem german = walking_in("de");
  EXPECT_EQ(german.title(), "Walking");
  EXPECT_EQ(german.locale(), "en");
  ASSERT_EQ(german.media_size(), 2);
  EXPECT_EQ(german.media(0).uri(), "https://media.example.org/walking-en.mp4");
  EXPECT_EQ(walking_in("").locale(), "") << "an English read says nothing of languages";
  EXPECT_EQ(spanish.dose().DebugString(), german.dose().DebugString());
  // What is stored stays English, without media: the languages are a way of reading it.
  for (const auto& [key, stored] : records.state.plans) {
    for (const auto& item : stored.plan.items()) {
      EXPECT_EQ(item.media_size(), 0) << key.second;
      EXPECT_TRUE(item.locale().empty()) << key.second;
    }
  }
}

}  // namespace
}  // namespace physio::testing

namespace physio::testing {
namespace {

// Issue 32 item 6: a tenant library version the shipped library no longer validates (an entry it
// linked to is gone) stops what would guess with it, never a safety action.
TEST_F(PlanningWorkflow, ABrokenTenantLibraryHoldsProgressionButNeverASafetyAction) {
  const auto active = Approve(Generate("rq-gen"), "rq-approve");
  planning::StoredTenantLibrary broken;
  broken.version = 1;
  broken.document = R"({"entries": [{"id": "tenant.ex.x", "kind": "exercise", "category": "functional",
    "title": "X", "instructions": "Do x.", "reason": "ours", "source": "s", "phases": ["movement_control"],
    "dose": {"sets": 1, "reps": 5, "hold_seconds": 0, "sessions_per_week": 3, "duration_minutes": 0},
    "contraindications": [], "progression": "ex.gone.from_the_shipped_library"}]})";
  records.state.tenant_libraries[{"t-1", 1}] = broken;
  ppb::AdjustPlanRequest progress;
  progress.set_request_id("rq-progress");
  progress.set_plan_id(active.plan_id());
  progress.set_adjustment(ppb::ADJUSTMENT_PROGRESS);
  progress.set_reason("dose completed");
  EXPECT_EQ(CodeOf([&] { app.AdjustPlan(clinician, progress, audit); }), ErrorCode::kFailedPrecondition);
  ppb::AdjustPlanRequest stop;
  stop.set_request_id("rq-stop");
  stop.set_plan_id(active.plan_id());
  stop.set_adjustment(ppb::ADJUSTMENT_STOP_DIRECTION);
  stop.add_directions("flexion");
  stop.set_reason("peripheralising with repeated flexion");
  const auto stopped = app.AdjustPlan(clinician, stop, audit).plan();
  ASSERT_EQ(stopped.stopped_directions_size(), 1);
  EXPECT_EQ(stopped.stopped_directions(0), "flexion");
  ppb::AdjustPlanRequest suspend;
  suspend.set_request_id("rq-suspend");
  suspend.set_plan_id(active.plan_id());
  suspend.set_adjustment(ppb::ADJUSTMENT_SUSPEND);
  suspend.set_reason("red flag at a check-in");
  EXPECT_EQ(app.AdjustPlan(clinician, suspend, audit).plan().status(), ppb::PLAN_STATUS_SUSPENDED);
}

}  // namespace
}  // namespace physio::testing

// GetActivePlan's remembered responses (ServedPlanMemo): found only for the very bytes they were
// made from, under their own key, and bounded in bytes with the least recently used out first.
namespace physio::testing {
namespace {
using planning::ServedPlanMemo;

ServedPlanMemo::Served Response(const std::string& body, const std::string& plan_id) {
  ServedPlanMemo::Served served;
  served.response = std::make_shared<const std::string>(body);
  served.plan_id = plan_id;
  return served;
}

TEST(ServedPlanMemo, AnEntryServesOnlyTheExactBytesItWasMadeFromUnderItsKey) {
  ServedPlanMemo memo(1 << 20);
  const std::string key = ServedPlanMemo::Key("t-1", "pat-1", "es");
  const std::string plan(3000, 'a');
  memo.Remember(key, plan, Response("spanish", "plan-1"));
  const auto found = memo.Find(key, plan);
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(*found->response, "spanish");
  EXPECT_EQ(found->plan_id, "plan-1");
  std::string changed = plan;
  changed[2999] = 'b';  // one byte different at the very end
  EXPECT_FALSE(memo.Find(key, changed).has_value());
  EXPECT_FALSE(memo.Find(key, plan.substr(0, 2999)).has_value());
  EXPECT_FALSE(memo.Find(ServedPlanMemo::Key("t-1", "pat-1", ""), plan).has_value()) << "another locale";
  EXPECT_FALSE(memo.Find(ServedPlanMemo::Key("t-2", "pat-1", "es"), plan).has_value()) << "another tenant";
  EXPECT_FALSE(memo.Find(ServedPlanMemo::Key("t-1", "pat-2", "es"), plan).has_value()) << "another patient";
  // The parts of a key cannot run into each other.
  EXPECT_NE(ServedPlanMemo::Key("t-1", "pat-1", "es"), ServedPlanMemo::Key("t-1p", "at-1", "es"));
  // A new revision replaces the entry: the old bytes find nothing.
  memo.Remember(key, changed, Response("revised", "plan-1"));
  EXPECT_FALSE(memo.Find(key, plan).has_value());
  EXPECT_EQ(*memo.Find(key, changed)->response, "revised");
  EXPECT_EQ(memo.entries(), 1U);
}

TEST(ServedPlanMemo, StaysWithinItsBoundDroppingTheLeastRecentlyUsed) {
  const std::string plan(10'000, 'p');
  ServedPlanMemo memo(50'000);  // room for four entries of about 12 KB
  for (int i = 0; i < 4; ++i) {
    memo.Remember(ServedPlanMemo::Key("t", "pat-" + std::to_string(i), ""), plan, Response(std::string(2000, 'r'), "x"));
  }
  EXPECT_EQ(memo.entries(), 4U);
  ASSERT_TRUE(memo.Find(ServedPlanMemo::Key("t", "pat-0", ""), plan).has_value());  // now the most recent
  memo.Remember(ServedPlanMemo::Key("t", "pat-4", ""), plan, Response(std::string(2000, 'r'), "x"));
  EXPECT_LE(memo.bytes(), 50'000U);
  EXPECT_EQ(memo.entries(), 4U);
  EXPECT_TRUE(memo.Find(ServedPlanMemo::Key("t", "pat-0", ""), plan).has_value());
  EXPECT_FALSE(memo.Find(ServedPlanMemo::Key("t", "pat-1", ""), plan).has_value()) << "the least recently used went";
  EXPECT_TRUE(memo.Find(ServedPlanMemo::Key("t", "pat-4", ""), plan).has_value());
  // Bound 0: nothing is kept.
  ServedPlanMemo off(0);
  off.Remember(ServedPlanMemo::Key("t", "pat-0", ""), plan, Response("r", "x"));
  EXPECT_EQ(off.entries(), 0U);
  EXPECT_FALSE(off.Find(ServedPlanMemo::Key("t", "pat-0", ""), plan).has_value());
}

}  // namespace
}  // namespace physio::testing

namespace physio::testing {
namespace {
// The library a remembered response was localised with is recognised by ownership: the same
// object is, a later one (even at the same address) never is, and none matches none.
TEST(ServedPlanMemo, ALibraryIsTheSameOnlyWhileItIsTheVeryOneUsed) {
  using planning::ServedPlanMemo;
  auto first = std::make_shared<const std::string>("library v1");
  const std::weak_ptr<const void> then = first;
  EXPECT_TRUE(ServedPlanMemo::SameLibrary(then, first));
  EXPECT_FALSE(ServedPlanMemo::SameLibrary(then, std::make_shared<const std::string>("library v1")));
  EXPECT_FALSE(ServedPlanMemo::SameLibrary(then, nullptr));
  EXPECT_TRUE(ServedPlanMemo::SameLibrary(std::weak_ptr<const void>(), nullptr));
  EXPECT_FALSE(ServedPlanMemo::SameLibrary(std::weak_ptr<const void>(), first));
  first.reset();  // freed: nothing later matches, nor does "no library"
  EXPECT_FALSE(ServedPlanMemo::SameLibrary(then, std::make_shared<const std::string>("library v2")));
  EXPECT_FALSE(ServedPlanMemo::SameLibrary(then, nullptr));
}
}  // namespace
}  // namespace physio::testing
