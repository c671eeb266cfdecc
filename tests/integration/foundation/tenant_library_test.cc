// Tenant libraries and templates (issue 32 item 6) through the public API: a chain's integration
// publishes its own exercises and plan templates (validated like the shipped library, versioned,
// audited, scoped to the tenant); clinicians list them, start a plan from a template under the
// guideline guard, and the tenant's exercises are held to the same safety rules as the shipped ones.
#include "foundation.h"

namespace physio::testing {
namespace {

// A banded hip hinge (loaded) and a tenant extension exercise, and a template using both.
std::string Document(bool retire_hinge = false) {
  return std::string(R"({"entries": [
    {"id": "tenant.ex.hip_hinge_band", "kind": "exercise", "category": "functional",
     "title": "Banded hip hinge", "instructions": "Hinge at the hips against the band.",
     "reason": "Our clinics' lifting programme", "source": "Clinic protocol 2026",
     "dose": {"sets": 2, "reps": 10, "hold_seconds": 0, "sessions_per_week": 3, "duration_minutes": 0},
     "phases": ["movement_control", "function_optimisation"], "contraindications": ["loading_contraindicated", "flexion_loading"])") +
         (retire_hinge ? R"(, "retired": true)" : "") + R"(},
    {"id": "tenant.ex.wall_extension", "kind": "exercise", "category": "directional_extension",
     "title": "Standing wall extension", "instructions": "Hands on the wall, arch back gently; stop if pain spreads down the leg.",
     "reason": "Our extension series", "source": "Clinic protocol 2026",
     "dose": {"sets": 1, "reps": 10, "hold_seconds": 0, "sessions_per_week": 7, "duration_minutes": 0},
     "phases": ["symptom_modulation", "movement_control"], "contraindications": ["extension_intolerant"],
     "translations": {"es": {"title": "Extensión de pie contra la pared",
                             "instructions": "Manos en la pared, arquee la espalda con suavidad."}}}],
   "templates": [{"id": "tenant.tpl.extension_start", "name": "Extension start", "description": "Our usual start",
     "items": [{"intervention_id": "tenant.ex.wall_extension"},
               {"intervention_id": "tenant.ex.hip_hinge_band", "dose": {"sets": 3, "reps": 8, "hold_seconds": 0,
                "sessions_per_week": 3, "duration_minutes": 0}},
               {"intervention_id": "edu.self_management"}]}]})";
}

class TenantLibraries : public Foundation {
 protected:
  grpc::Status Publish(const Caller& caller, const std::string& document, int expected,
                       ppb::PublishTenantLibraryResponse* out = nullptr) const {
    ppb::PublishTenantLibraryRequest request;
    request.set_request_id(NewId("rq"));
    request.set_document(document);
    request.set_expected_version(expected);
    request.set_reason("our protocols, December");
    ppb::PublishTenantLibraryResponse response;
    auto status = caller.Call(caller.planning.get(), &ppb::PlanningService::Stub::PublishTenantLibrary, request, &response);
    if (out) *out = response;
    return status;
  }

  // Pain 6, ODI 10/50, extension centralising; the red-flag screen answered (a fracture concern when asked).
  apb::Assessment Assess(const Caller& clinician, bool fracture_concern = false) const {
    apb::CreateAssessmentRequest create;
    create.set_request_id(NewId("rq"));
    create.set_patient_id(patient_id_);
    *create.add_answers() = Answer(cpb::INSTRUMENT_NPRS, "nprs", 6);
    for (int i = 1; i <= 10; ++i) *create.add_answers() = Answer(cpb::INSTRUMENT_ODI, "odi." + std::to_string(i), 1);
    create.mutable_red_flag_screen();
    if (fracture_concern) {
      create.mutable_red_flag_screen()->set_osteoporosis(true);  // a monitored fracture concern: no loaded flexion
    }
    create.mutable_history()->set_episode_duration_days(14);
    create.mutable_examination()->set_directional_preference(apb::DIRECTIONAL_PREFERENCE_EXTENSION);
    create.mutable_examination()->set_centralisation(true);
    apb::CreateAssessmentResponse created;
    auto status = clinician.Call(clinician.assessment.get(), &apb::AssessmentService::Stub::CreateAssessment, create, &created);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return created.assessment();
  }

  static std::set<std::string> ItemIds(const ppb::Plan& plan) {
    std::set<std::string> ids;
    for (const auto& item : plan.items()) ids.insert(item.item_id());
    return ids;
  }
};

TEST_F(TenantLibraries, PublishedEntriesAndTemplatesAreTheTenantsOwnAndVersioned) {
  const Caller integrator = Integrator();
  const Caller clinician = Clinician();
  ppb::PublishTenantLibraryResponse published;
  auto status = Publish(integrator, Document(), 0, &published);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(published.library().version(), 1);
  EXPECT_EQ(published.library().entry_count(), 2);
  EXPECT_EQ(published.library().template_count(), 1);
  EXPECT_EQ(published.library().published_by(), "ehr-1");
  // Clinicians see them; ListInterventions names the versions.
  ppb::ListInterventionsRequest list;
  list.set_page_size(200);
  ppb::ListInterventionsResponse listed;
  ASSERT_TRUE(clinician.Call(clinician.planning.get(), &ppb::PlanningService::Stub::ListInterventions, list, &listed).ok());
  std::set<std::string> ids;
  for (const auto& entry : listed.interventions()) ids.insert(entry.intervention_id());
  while (!listed.next_page_token().empty()) {
    list.set_page_token(listed.next_page_token());
    ASSERT_TRUE(clinician.Call(clinician.planning.get(), &ppb::PlanningService::Stub::ListInterventions, list, &listed).ok());
    for (const auto& entry : listed.interventions()) ids.insert(entry.intervention_id());
  }
  EXPECT_TRUE(ids.contains("tenant.ex.hip_hinge_band"));
  EXPECT_NE(listed.library_version().find("+tenant.1"), std::string::npos) << listed.library_version();
  ppb::ListPlanTemplatesResponse templates;
  ASSERT_TRUE(clinician.Call(clinician.planning.get(), &ppb::PlanningService::Stub::ListPlanTemplates,
                             ppb::ListPlanTemplatesRequest(), &templates).ok());
  ASSERT_EQ(templates.templates_size(), 1);
  EXPECT_EQ(templates.templates(0).template_id(), "tenant.tpl.extension_start");
  EXPECT_EQ(templates.templates(0).items(1).dose().sets(), 3);

  // Another tenant sees none of it.
  const Caller stranger = Clinician("t-other-" + NewId("x").substr(2, 6));
  ppb::ListPlanTemplatesResponse none;
  ASSERT_TRUE(stranger.Call(stranger.planning.get(), &ppb::PlanningService::Stub::ListPlanTemplates,
                            ppb::ListPlanTemplatesRequest(), &none).ok());
  EXPECT_EQ(none.templates_size(), 0);
  ppb::GetTenantLibraryResponse read;
  EXPECT_EQ(stranger.Call(stranger.planning.get(), &ppb::PlanningService::Stub::GetTenantLibrary,
                          ppb::GetTenantLibraryRequest(), &read).error_code(),
            grpc::StatusCode::NOT_FOUND);

  // Versions: a stale expected_version is ABORTED; an entry may be retired, never dropped.
  EXPECT_EQ(Publish(integrator, Document(), 0).error_code(), grpc::StatusCode::ABORTED);
  const std::string dropped = R"({"entries": [], "templates": []})";
  status = Publish(integrator, dropped, 1);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("tenant.ex.hip_hinge_band"), std::string::npos) << status.error_message();
  status = Publish(integrator, Document(/*retire_hinge=*/true), 1);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << "the template still uses the retired entry";
  std::string retired = Document(true);
  retired = retired.substr(0, retired.find(R"(   "templates")")) + R"(   "templates": []})";
  status = Publish(integrator, retired, 1, &published);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(published.library().version(), 2);
  ppb::GetTenantLibraryRequest first;
  first.set_version(1);
  ASSERT_TRUE(clinician.Call(clinician.planning.get(), &ppb::PlanningService::Stub::GetTenantLibrary, first, &read).ok());
  EXPECT_EQ(read.library().document(), Document()) << "a version is kept as published";
  // Only the integration publishes.
  EXPECT_EQ(Publish(clinician, Document(), 2).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  // A bad document is refused naming the entry.
  status = Publish(integrator, R"({"entries": [{"id": "ex.mine", "kind": "exercise"}]})", 2);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("document"), std::string::npos);
  // A problem of the document as a whole names the field once.
  status = Publish(integrator, "{not json", 2);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message().rfind("document: not valid JSON", 0), 0u) << status.error_message();
}

TEST_F(TenantLibraries, APlanStartsFromATemplateUnderTheGuidelineGuard) {
  const Caller integrator = Integrator();
  const Caller clinician = Clinician();
  ASSERT_TRUE(Publish(integrator, Document(), 0).ok());
  ppb::Plan plan;
  auto status = Generate(clinician, Assess(clinician).assessment_id(), &plan, "", "tenant.tpl.extension_start");
  ASSERT_TRUE(status.ok()) << status.error_message();
  const auto ids = ItemIds(plan);
  EXPECT_TRUE(ids.contains("tenant.ex.wall_extension"));
  EXPECT_TRUE(ids.contains("tenant.ex.hip_hinge_band"));
  EXPECT_TRUE(ids.contains("safety.cauda_equina")) << "the safety net stays";
  EXPECT_EQ(plan.template_id(), "tenant.tpl.extension_start");
  EXPECT_EQ(plan.tenant_library_version(), 1);
  EXPECT_FALSE(plan.library_version().empty());
  for (const auto& item : plan.items()) {
    if (item.item_id() == "tenant.ex.hip_hinge_band") {
      EXPECT_EQ(item.dose().sets(), 3);
    }
  }
  // Read in Spanish: the tenant's own translation; an entry without one falls back to English.
  ppb::GetPlanRequest read;
  read.set_plan_id(plan.plan_id());
  read.set_locale("es");
  ppb::GetPlanResponse in_spanish;
  ASSERT_TRUE(clinician.Call(clinician.planning.get(), &ppb::PlanningService::Stub::GetPlan, read, &in_spanish).ok());
  for (const auto& item : in_spanish.plan().items()) {
    if (item.item_id() == "tenant.ex.wall_extension") {
      EXPECT_EQ(item.title(), "Extensión de pie contra la pared");
      EXPECT_EQ(item.locale(), "es");
    }
    if (item.item_id() == "tenant.ex.hip_hinge_band") {
      EXPECT_EQ(item.title(), "Banded hip hinge");
      EXPECT_EQ(item.locale(), "en");
    }
  }
  // A patient with a fracture concern: the tenant's loaded flexion exercise is left out, and said.
  ppb::Plan guarded;
  ASSERT_TRUE(Generate(clinician, Assess(clinician, true).assessment_id(), &guarded, "", "tenant.tpl.extension_start").ok());
  EXPECT_FALSE(ItemIds(guarded).contains("tenant.ex.hip_hinge_band"));
  ASSERT_EQ(guarded.template_notes_size(), 1);
  EXPECT_NE(guarded.template_notes(0).find("contraindicated for this patient (flexion_loading)"), std::string::npos)
      << guarded.template_notes(0);
  // An unknown template is NOT_FOUND.
  EXPECT_EQ(Generate(clinician, Assess(clinician).assessment_id(), nullptr, "", "tenant.tpl.none").error_code(),
            grpc::StatusCode::NOT_FOUND);

  // In use, the tenant's extension exercise is stopped with extension like any shipped one.
  ASSERT_TRUE(Approve(plan.plan_id(), plan.etag()).ok());
  ppb::AdjustPlanRequest stop;
  stop.set_request_id(NewId("rq"));
  stop.set_plan_id(plan.plan_id());
  stop.set_adjustment(ppb::ADJUSTMENT_STOP_DIRECTION);
  stop.add_directions("extension");
  stop.set_reason("peripheralising with repeated extension");
  ppb::AdjustPlanResponse stopped;
  status = clinician.Call(clinician.planning.get(), &ppb::PlanningService::Stub::AdjustPlan, stop, &stopped);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_FALSE(ItemIds(stopped.plan()).contains("tenant.ex.wall_extension"));
  // A clinician adding the loaded tenant exercise to the fracture-concern patient must say why.
  ppb::RevisePlanRequest revise;
  revise.set_request_id(NewId("rq"));
  revise.set_plan_id(guarded.plan_id());
  revise.set_etag(guarded.etag());
  revise.set_reason("wants lifting");
  revise.add_changes()->set_add_intervention_id("tenant.ex.hip_hinge_band");
  ppb::RevisePlanResponse revised;
  status = clinician.Call(clinician.planning.get(), &ppb::PlanningService::Stub::RevisePlan, revise, &revised);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("contraindication_override"), std::string::npos) << status.error_message();
}

// Issue 33: progress hands on the plan as stored, whether it read the plan from planning's
// cache or asked planning, which adds library media for its own readers. A tenant exercise
// with a video makes the difference visible; the audit trail says which path each read took.
TEST_F(TenantLibraries, ProgressHandsOnThePlanAsStoredWhetherCachedOrAsked) {
  const Caller integrator = Integrator();
  const Caller clinician = Clinician();
  std::string document = Document();
  const std::string anchor = R"("contraindications": ["extension_intolerant"],)";
  ASSERT_NE(document.find(anchor), std::string::npos);
  document.replace(document.find(anchor), anchor.size(),
                   anchor + R"( "media": [{"uri": "https://media.example.org/wall-extension.mp4", "kind": "video",
                                          "duration_seconds": 40, "licence": "CC-BY-4.0"}],)");
  auto status = Publish(integrator, document, 0);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ppb::Plan plan;
  ASSERT_TRUE(Generate(clinician, Assess(clinician).assessment_id(), &plan, "", "tenant.tpl.extension_start").ok());
  ASSERT_TRUE(Approve(plan.plan_id(), plan.etag()).ok());

  auto media = [](const ppb::Plan& read) {
    int count = 0;
    for (const auto& item : read.items()) count += item.media_size();
    return count;
  };
  auto planning_reads = [&] {
    return std::stoi(postgres_->Execute("SELECT count(*) FROM planning.audit_events WHERE tenant_id = '" + tenant_ +
                                            "' AND patient_id = '" + patient_id_ + "' AND action = 'GetActivePlan'",
                                        "physio"));
  };
  auto evaluate = [&] {
    gpb::EvaluateProgressRequest request;
    request.set_request_id(NewId("rq"));
    request.set_patient_id(patient_id_);
    gpb::EvaluateProgressResponse response;
    const auto called = clinician.Call(clinician.progress.get(), &gpb::ProgressService::Stub::EvaluateProgress, request,
                                       &response);
    EXPECT_TRUE(called.ok()) << called.error_message();
    EXPECT_FALSE(response.evaluation().plan_adjusted()) << "nothing measured yet: the plan stays as it is";
    return response.evaluation().plan();
  };

  // Nothing cached since the approval: progress asks planning, and drops the media it adds.
  const int before = planning_reads();
  const ppb::Plan asked = evaluate();
  ASSERT_EQ(planning_reads(), before + 1) << "the first read after the approval asks planning";
  EXPECT_EQ(media(asked), 0) << asked.DebugString();
  EXPECT_EQ(asked.plan_id(), plan.plan_id());
  // Planning cached it on that read: the next evaluation reads the cache, and sees the same plan.
  const ppb::Plan cached = evaluate();
  ASSERT_EQ(planning_reads(), before + 1) << "the second read is answered by planning's cache";
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(asked, cached))
      << "asked:\n" << asked.DebugString() << "cached:\n" << cached.DebugString();
  // Planning's own readers still get the video.
  ppb::GetActivePlanRequest read;
  read.set_patient_id(patient_id_);
  ppb::GetActivePlanResponse active;
  for (int i = 0; i < 3; ++i) {  // the later reads are answered with the response planning remembered
    ASSERT_TRUE(clinician.Call(clinician.planning.get(), &ppb::PlanningService::Stub::GetActivePlan, read, &active).ok());
    EXPECT_EQ(media(active.plan()), 1) << "a tenant's media are served in English too, not only when a language is asked";
  }
  // A new version with a second picture: read at once through the replica that published it.
  const std::string video = R"("licence": "CC-BY-4.0"})";
  std::string second = document;
  second.replace(second.find(video), video.size(),
                 video + R"(, {"uri": "https://media.example.org/wall-extension.png", "kind": "image",
                               "licence": "CC-BY-4.0"})");
  status = Publish(integrator, second, 1);
  ASSERT_TRUE(status.ok()) << status.error_message();
  // The cached plan is the same, the library is not: no remembered response is reused.
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(clinician.Call(clinician.planning.get(), &ppb::PlanningService::Stub::GetActivePlan, read, &active).ok());
    EXPECT_EQ(media(active.plan()), 2);
  }
  EXPECT_EQ(media(evaluate()), 0);
}

}  // namespace
}  // namespace physio::testing
