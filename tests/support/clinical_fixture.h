#pragma once
// A cluster fixture for clinical tests through the public API: one patient per
// test in a fresh tenant, with helpers to import an assessment, judge its red
// flags, and generate and approve a plan.
#include <algorithm>
#include <string>

#include "clients.h"
#include "cluster_fixture.h"
#include "physio/common/ids.h"

namespace physio::testing {

class ClinicalFixture : public ClusterFixture {
 protected:
  void SetUp() override {
    tenant_ = NewId("t");
    patient_id_ = "pt-" + NewId("x").substr(2, 10);
  }
  Caller Clinician() const { return Caller(*cluster_, MakeToken(*keys_, tenant_, "clin-1", {"clinician"})); }
  Caller Patient() const { return Caller(*cluster_, MakeToken(*keys_, tenant_, patient_id_, {"patient"}, patient_id_)); }

  // Pain 6 and ODI 2 in every section (40%): movement control.
  apb::CreateAssessmentRequest Import() const {
    apb::CreateAssessmentRequest create;
    create.set_request_id(NewId("rq"));
    create.set_patient_id(patient_id_);
    *create.add_answers() = Answer(cpb::INSTRUMENT_NPRS, "nprs", 6);
    for (int i = 1; i <= 10; ++i) *create.add_answers() = Answer(cpb::INSTRUMENT_ODI, "odi." + std::to_string(i), 2);
    return create;
  }

  // Screened, Flynn-positive (recent, not below the knee, hypomobile, hip rotation > 35):
  // the manipulation subgroup.
  apb::CreateAssessmentRequest FlynnPositive() const {
    auto create = Import();
    create.mutable_red_flag_screen();
    create.mutable_history()->set_episode_duration_days(10);
    create.mutable_history()->set_symptom_extent(apb::SYMPTOM_EXTENT_BUTTOCK);
    create.mutable_examination()->set_lumbar_hypomobility(true);
    create.mutable_examination()->set_hip_internal_rotation_deg(40);
    return create;
  }

  // A clinic check-in whose red-flag re-screen reports a new fall (minor trauma).
  gpb::RecordVisitRequest FallAtCheckIn() const {
    gpb::RecordVisitRequest visit;
    visit.set_request_id(NewId("rq"));
    visit.set_patient_id(patient_id_);
    visit.set_kind(gpb::VISIT_KIND_CLINIC);
    visit.mutable_red_flag_screen()->set_minor_trauma(true);
    return visit;
  }

  // The patient's plan in use or suspended, as a clinician reads it.
  ppb::Plan Current() const { return PlanInUseOrSuspended(Clinician(), patient_id_); }

  apb::Assessment Create(const apb::CreateAssessmentRequest& create) {
    auto clinician = Clinician();
    apb::CreateAssessmentResponse created;
    auto status =
        clinician.Call(clinician.assessment.get(), &apb::AssessmentService::Stub::CreateAssessment, create, &created);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return created.assessment();
  }

  grpc::Status Generate(const std::string& assessment_id, ppb::Plan* plan) {
    auto clinician = Clinician();
    ppb::GeneratePlanRequest generate;
    generate.set_request_id(NewId("rq"));
    generate.set_assessment_id(assessment_id);
    ppb::GeneratePlanResponse generated;
    auto status = clinician.Call(clinician.planning.get(), &ppb::PlanningService::Stub::GeneratePlan, generate, &generated);
    if (plan != nullptr) *plan = generated.plan();
    return status;
  }

  // The clinician's red-flag judgement on `assessment`; returns the call's status.
  grpc::Status Judge(const apb::Assessment& assessment, apb::RedFlagAction action, const std::string& rationale,
                     bool acknowledge_emergency = false) {
    auto clinician = Clinician();
    apb::RecordRedFlagJudgementRequest judge;
    judge.set_request_id(NewId("rq"));
    judge.set_assessment_id(assessment.assessment_id());
    judge.set_etag(assessment.etag());
    judge.set_action(action);
    judge.set_rationale(rationale);
    judge.set_acknowledge_computed_emergency(acknowledge_emergency);
    apb::RecordRedFlagJudgementResponse judged;
    return clinician.Call(clinician.assessment.get(), &apb::AssessmentService::Stub::RecordRedFlagJudgement, judge,
                          &judged);
  }

  // `manipulation_consent`: the clinician records the patient's consent to spinal manipulation.
  ppb::Plan Approve(const ppb::Plan& draft, bool manipulation_consent = false) {
    auto clinician = Clinician();
    ppb::ApprovePlanRequest approve;
    approve.set_request_id(NewId("rq"));
    approve.set_plan_id(draft.plan_id());
    approve.set_etag(draft.etag());
    approve.set_manipulation_consent(manipulation_consent);
    ppb::ApprovePlanResponse approved;
    auto status = clinician.Call(clinician.planning.get(), &ppb::PlanningService::Stub::ApprovePlan, approve, &approved);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return approved.plan();
  }

  // An approved treatment plan from a screened import (pain 6, ODI 40%).
  ppb::Plan ActivePlan() {
    auto create = Import();
    create.mutable_red_flag_screen();
    ppb::Plan draft;
    EXPECT_TRUE(Generate(Create(create).assessment_id(), &draft).ok());
    return Approve(draft);
  }

  static bool Has(const ppb::Plan& plan, const std::string& item_id) {
    return std::any_of(plan.items().begin(), plan.items().end(), [&](const auto& i) { return i.item_id() == item_id; });
  }

  std::string tenant_;
  std::string patient_id_;
};

}  // namespace physio::testing
