// foundation_test: FHIR R4 out (checked by an independent validator) and in.
#include "foundation.h"

namespace physio::testing {
namespace {

using Fhir = Foundation;

// An assessment with all six instruments (an ODI item declined, PSFS activities
// named), history, examination and a red-flag screen, stored through CreateAssessment.
apb::Assessment StoreFullAssessment(const Caller& integrator, const std::string& patient_id) {
  apb::CreateAssessmentRequest create;
  create.set_request_id(NewId("rq"));
  create.set_patient_id(patient_id);
  *create.add_answers() = Answer(cpb::INSTRUMENT_NPRS, "nprs", 7);
  for (int i = 1; i <= 10; ++i) *create.add_answers() = Answer(cpb::INSTRUMENT_ODI, "odi." + std::to_string(i), 3, i == 8);
  for (int i = 1; i <= 9; ++i) *create.add_answers() = Answer(cpb::INSTRUMENT_START_BACK, "sbt." + std::to_string(i), i == 9 ? 4 : 1);
  for (int i = 1; i <= 16; ++i) *create.add_answers() = Answer(cpb::INSTRUMENT_FABQ, "fabq." + std::to_string(i), 5);
  for (int i = 1; i <= 24; ++i) *create.add_answers() = Answer(cpb::INSTRUMENT_RMDQ, "rmdq." + std::to_string(i), i % 2);
  for (int i = 1; i <= 3; ++i) {
    auto activity = Answer(cpb::INSTRUMENT_PSFS, "psfs." + std::to_string(i), 2 + i);
    activity.set_text("Activity \"" + std::to_string(i) + "\"");
    *create.add_answers() = activity;
  }
  create.mutable_history()->set_age_years(45);
  create.mutable_history()->set_episode_duration_days(8);
  create.mutable_history()->set_symptom_extent(apb::SYMPTOM_EXTENT_BUTTOCK);
  create.mutable_red_flag_screen()->set_osteoporosis(true);
  create.mutable_examination()->set_lumbar_hypomobility(true);
  apb::CreateAssessmentResponse created;
  EXPECT_TRUE(integrator.Call(integrator.assessment.get(), &apb::AssessmentService::Stub::CreateAssessment, create,
                              &created).ok());
  return created.assessment();
}

TEST_F(Fhir, FhirExportPassesAnIndependentValidator) {
  auto integrator = Integrator();
  apb::CreateAssessmentResponse created;
  *created.mutable_assessment() = StoreFullAssessment(integrator, patient_id_);

  apb::ExportAssessmentFhirRequest request;
  request.set_assessment_id(created.assessment().assessment_id());
  apb::ExportAssessmentFhirResponse exported;
  ASSERT_TRUE(integrator.Call(integrator.assessment.get(), &apb::AssessmentService::Stub::ExportAssessmentFhir, request,
                              &exported).ok());
  const std::string& bundle = exported.bundle_json();
  EXPECT_NE(bundle.find("\"resourceType\":\"Bundle\""), std::string::npos);
  EXPECT_NE(bundle.find("\"QuestionnaireResponse\""), std::string::npos);
  EXPECT_NE(bundle.find("72514-3"), std::string::npos);   // pain, LOINC
  EXPECT_NE(bundle.find("97909-6"), std::string::npos);   // ODI score, LOINC
  EXPECT_NE(bundle.find("91351-7"), std::string::npos);   // STarT Back total, LOINC
  EXPECT_NE(bundle.find("LA9193-9"), std::string::npos);  // high risk answer code
  EXPECT_NE(bundle.find("fabq_work_elevated"), std::string::npos);
  EXPECT_NE(bundle.find("Patient/" + patient_id_), std::string::npos);
  EXPECT_TRUE(FhirValid(bundle, "assessment"));

  // Same assessment, same bundle.
  apb::ExportAssessmentFhirResponse again;
  ASSERT_TRUE(integrator.Call(integrator.assessment.get(), &apb::AssessmentService::Stub::ExportAssessmentFhir, request,
                              &again).ok());
  EXPECT_EQ(again.bundle_json(), bundle);

  // The check can fail: an Observation without its required status is rejected.
  std::string broken = bundle;
  const auto at = broken.find("\"status\":\"final\",");
  ASSERT_NE(at, std::string::npos);
  broken.erase(at, std::string("\"status\":\"final\",").size());
  EXPECT_FALSE(FhirValid(broken, "broken"));

  // Another tenant cannot export it.
  auto intruder = Clinician("other-tenant");
  EXPECT_EQ(intruder.Call(intruder.assessment.get(), &apb::AssessmentService::Stub::ExportAssessmentFhir, request,
                          &exported).error_code(),
            StatusCode::NOT_FOUND);
}

// FHIR in as well as out: the exported bundle, imported for the same patient,
// gives an assessment with the same scores; one QuestionnaireResponse alone
// imports too; a resource about another patient, an unknown questionnaire or
// item, and a patient caller are refused.
TEST_F(Fhir, FhirExportThenImportGivesTheSameScores) {
  auto integrator = Integrator();
  const apb::Assessment original = StoreFullAssessment(integrator, patient_id_);
  apb::ExportAssessmentFhirRequest export_request;
  export_request.set_assessment_id(original.assessment_id());
  apb::ExportAssessmentFhirResponse exported;
  ASSERT_TRUE(integrator.Call(integrator.assessment.get(), &apb::AssessmentService::Stub::ExportAssessmentFhir,
                              export_request, &exported).ok());
  const std::string& bundle = exported.bundle_json();
  EXPECT_NE(bundle.find(R"("identifier":{"system":"https://physio-backend.org/fhir/patient-id","value":")" + patient_id_),
            std::string::npos)
      << "patients referenced by identifier too";

  apb::ImportFhirQuestionnaireResponseRequest import;
  import.set_request_id(NewId("rq"));
  import.set_patient_id(patient_id_);
  import.set_resource_json(bundle);
  apb::ImportFhirQuestionnaireResponseResponse imported;
  auto status = integrator.Call(integrator.assessment.get(),
                                &apb::AssessmentService::Stub::ImportFhirQuestionnaireResponse, import, &imported);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_NE(imported.assessment().assessment_id(), original.assessment_id());
  ASSERT_EQ(imported.assessment().scores_size(), original.scores_size());
  std::map<int, const cpb::InstrumentScore*> before;
  for (const auto& score : original.scores()) before[score.instrument()] = &score;
  for (const auto& score : imported.assessment().scores()) {
    ASSERT_TRUE(before.contains(score.instrument())) << cpb::Instrument_Name(score.instrument());
    EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(score, *before[score.instrument()]))
        << score.DebugString() << " vs " << before[score.instrument()]->DebugString();
  }
  // The same request_id again: the same assessment, nothing new.
  apb::ImportFhirQuestionnaireResponseResponse replayed;
  ASSERT_TRUE(integrator.Call(integrator.assessment.get(), &apb::AssessmentService::Stub::ImportFhirQuestionnaireResponse,
                              import, &replayed).ok());
  EXPECT_EQ(replayed.assessment().assessment_id(), imported.assessment().assessment_id());

  // One QuestionnaireResponse on its own, its subject by identifier only.
  import.set_request_id(NewId("rq"));
  import.set_resource_json(R"({"resourceType":"QuestionnaireResponse","status":"completed",
      "questionnaire":"https://physio-backend.org/fhir/Questionnaire/nprs",
      "subject":{"identifier":{"system":"https://physio-backend.org/fhir/patient-id","value":")" + patient_id_ + R"("}},
      "item":[{"linkId":"nprs","answer":[{"valueInteger":4}]}]})");
  status = integrator.Call(integrator.assessment.get(), &apb::AssessmentService::Stub::ImportFhirQuestionnaireResponse,
                           import, &imported);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(imported.assessment().scores_size(), 1);
  EXPECT_EQ(imported.assessment().scores(0).score(), 4);

  auto refused = [&](const std::string& resource, const std::string& patient, const Caller& caller) {
    apb::ImportFhirQuestionnaireResponseRequest bad;
    bad.set_request_id(NewId("rq"));
    bad.set_patient_id(patient);
    bad.set_resource_json(resource);
    apb::ImportFhirQuestionnaireResponseResponse ignored;
    return caller.Call(caller.assessment.get(), &apb::AssessmentService::Stub::ImportFhirQuestionnaireResponse, bad,
                       &ignored);
  };
  status = refused(bundle, "pt-someone-else", integrator);
  EXPECT_EQ(status.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("subject"), std::string::npos) << status.error_message();
  std::string unknown_item = bundle;
  unknown_item.replace(unknown_item.find(R"("linkId":"odi.3")"), std::string(R"("linkId":"odi.3")").size(),
                       R"("linkId":"odi.33")");
  status = refused(unknown_item, patient_id_, integrator);
  EXPECT_EQ(status.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("'odi.33' is not an item of odi"), std::string::npos) << status.error_message();
  status = refused(R"({"resourceType":"QuestionnaireResponse","status":"completed","questionnaire":"http://example.org/q/1",
      "subject":{"reference":"Patient/)" + patient_id_ + R"("},"item":[]})", patient_id_, integrator);
  EXPECT_EQ(status.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("unknown questionnaire"), std::string::npos) << status.error_message();
  EXPECT_EQ(refused("{not json", patient_id_, integrator).error_code(), StatusCode::INVALID_ARGUMENT);
  // FHIR's strings hold no control character (but tab and line breaks), in a member the import
  // reads or one it passes over; a refusal names where, and echoes no line break back.
  const std::string nprs = R"({"resourceType":"QuestionnaireResponse","status":"completed",)"
                           R"("questionnaire":"https://physio-backend.org/fhir/Questionnaire/nprs",)"
                           R"("subject":{"reference":"Patient/)" + patient_id_ + R"("},)";
  status = refused(nprs + R"("text":{"div":"a\u001b[2J"},"item":[{"linkId":"nprs","answer":[{"valueInteger":4}]}]})",
                   patient_id_, integrator);
  EXPECT_EQ(status.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("text.div: must not contain a control character (U+001B)"), std::string::npos)
      << status.error_message();
  status = refused(nprs + R"("item":[{"linkId":"nprs\nx","answer":[{"valueInteger":4}]}]})", patient_id_, integrator);
  EXPECT_EQ(status.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("is not an item of nprs"), std::string::npos) << status.error_message();
  EXPECT_EQ(status.error_message().find('\n'), std::string::npos) << status.error_message();
  status = refused(nprs + R"("authored":"yesterday","item":[{"linkId":"nprs","answer":[{"valueInteger":4}]}]})",
                   patient_id_, integrator);
  EXPECT_NE(status.error_message().find("authored: must be a FHIR dateTime"), std::string::npos) << status.error_message();
  status = refused(R"({"resourceType":5})", patient_id_, integrator);
  EXPECT_EQ(status.error_code(), StatusCode::INVALID_ARGUMENT) << status.error_message();
  EXPECT_EQ(status.error_message().find("json.exception"), std::string::npos) << status.error_message();
  EXPECT_EQ(refused(bundle, patient_id_, Patient()).error_code(), StatusCode::PERMISSION_DENIED);
}

// The course of care in FHIR: visits as Encounters (with their pain readings),
// re-measures as Observations, alerts as Flags, checked by the same validator.
TEST_F(Fhir, ProgressFhirExportPassesAnIndependentValidator) {
  auto clinician = Clinician();
  ApprovedPlanFor(clinician, patient_id_);
  gpb::RecordVisitRequest visit;
  visit.set_request_id(NewId("rq"));
  visit.set_patient_id(patient_id_);
  visit.set_kind(gpb::VISIT_KIND_TELEHEALTH);
  visit.set_clinic_id("clinic-fhir");
  visit.set_pain_before(6);
  visit.set_pain_after(4);
  visit.mutable_red_flag_screen()->set_bladder_or_bowel_disturbance(true);  // raises a red-flag alert
  gpb::RecordVisitResponse recorded;
  auto status = clinician.Call(clinician.progress.get(), &gpb::ProgressService::Stub::RecordVisit, visit, &recorded);
  ASSERT_TRUE(status.ok()) << status.error_message();
  gpb::RecordOutcomeResponse measured;
  status = RecordOdiFor(clinician, patient_id_, 1, &measured);
  ASSERT_TRUE(status.ok()) << status.error_message();

  gpb::ExportProgressFhirRequest request;
  request.set_patient_id(patient_id_);
  gpb::ExportProgressFhirResponse exported;
  status = clinician.Call(clinician.progress.get(), &gpb::ProgressService::Stub::ExportProgressFhir, request, &exported);
  ASSERT_TRUE(status.ok()) << status.error_message();
  const std::string& bundle = exported.bundle_json();
  EXPECT_NE(bundle.find(R"("resourceType":"Encounter")"), std::string::npos) << bundle;
  EXPECT_NE(bundle.find(R"("code":"VR")"), std::string::npos) << "a telehealth visit is a virtual encounter";
  EXPECT_NE(bundle.find(R"("resourceType":"Flag")"), std::string::npos);
  EXPECT_NE(bundle.find(R"("status":"active")"), std::string::npos) << "the open alert is an active flag";
  EXPECT_NE(bundle.find("97909-6"), std::string::npos) << "the ODI re-measure, LOINC";
  EXPECT_NE(bundle.find("72514-3"), std::string::npos) << "the visit's pain readings, LOINC";
  EXPECT_NE(bundle.find(recorded.visit().visit_id()), std::string::npos);
  EXPECT_TRUE(FhirValid(bundle, "progress"));

  // The patient may export their own course; another patient may not.
  EXPECT_TRUE(Patient(patient_id_).Call(Patient(patient_id_).progress.get(),
                                        &gpb::ProgressService::Stub::ExportProgressFhir, request, &exported).ok());
  auto stranger = Patient("pt-stranger");
  EXPECT_EQ(stranger.Call(stranger.progress.get(), &gpb::ProgressService::Stub::ExportProgressFhir, request, &exported)
                .error_code(),
            StatusCode::PERMISSION_DENIED);
}

TEST_F(Fhir, PlanFhirExportPassesAnIndependentValidator) {
  // A plan with every kind of item: high risk, traction candidate (not-recommended traction), PSFS goals.
  auto integrator = Integrator();
  apb::CreateAssessmentRequest create;
  create.set_request_id(NewId("rq"));
  create.set_patient_id(patient_id_);
  *create.add_answers() = Answer(cpb::INSTRUMENT_NPRS, "nprs", 6);
  for (int i = 1; i <= 10; ++i) *create.add_answers() = Answer(cpb::INSTRUMENT_ODI, "odi." + std::to_string(i), 2);
  for (int i = 1; i <= 9; ++i) *create.add_answers() = Answer(cpb::INSTRUMENT_START_BACK, "sbt." + std::to_string(i), 1);
  for (int i = 1; i <= 3; ++i) {
    auto activity = Answer(cpb::INSTRUMENT_PSFS, "psfs." + std::to_string(i), 3);
    activity.set_text("Activity " + std::to_string(i));
    *create.add_answers() = activity;
  }
  create.mutable_history()->set_episode_duration_days(120);
  create.mutable_history()->set_symptom_extent(apb::SYMPTOM_EXTENT_BELOW_KNEE);
  create.mutable_examination()->set_nerve_root_signs(true);
  create.mutable_red_flag_screen();  // screened, nothing found
  apb::CreateAssessmentResponse created;
  ASSERT_TRUE(integrator.Call(integrator.assessment.get(), &apb::AssessmentService::Stub::CreateAssessment, create,
                              &created).ok());
  ppb::Plan draft, active;
  ASSERT_TRUE(Generate(Clinician(), created.assessment().assessment_id(), &draft).ok());
  EXPECT_EQ(draft.intensity(), ppb::INTENSITY_PSYCHOLOGICALLY_INFORMED);
  ASSERT_TRUE(Approve(draft.plan_id(), draft.etag(), &active).ok());

  ppb::ExportPlanFhirRequest request;
  request.set_plan_id(active.plan_id());
  ppb::ExportPlanFhirResponse exported;
  ASSERT_TRUE(integrator.Call(integrator.planning.get(), &ppb::PlanningService::Stub::ExportPlanFhir, request, &exported).ok());
  const std::string& bundle = exported.bundle_json();
  EXPECT_NE(bundle.find("\"CarePlan\""), std::string::npos);
  EXPECT_NE(bundle.find("\"Goal\""), std::string::npos);
  EXPECT_NE(bundle.find("229065009"), std::string::npos);         // exercise therapy
  EXPECT_NE(bundle.find("\"doNotPerform\":true"), std::string::npos);  // traction, advised against
  EXPECT_NE(bundle.find("Activity 1"), std::string::npos);        // a PSFS goal
  EXPECT_TRUE(FhirValid(bundle, "careplan"));
  std::string broken = bundle;
  const auto at = broken.find("\"intent\":\"plan\",");
  ASSERT_NE(at, std::string::npos);
  broken.erase(at, std::string("\"intent\":\"plan\",").size());
  EXPECT_FALSE(FhirValid(broken, "careplan-broken"));  // CarePlan.intent is required
}

}  // namespace
}  // namespace physio::testing
