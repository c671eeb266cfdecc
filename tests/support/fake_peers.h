#pragma once
// Fakes of the peer-service seams (the interfaces the apps call other services
// through), for use-case tests that run in milliseconds without servers. Each
// counts its calls, so a test can say a peer was never asked.
#include <optional>
#include <string>

#include "physio/common/error.h"
#include "planning_app.h"
#include "progress_app.h"

namespace physio::testing {

// The assessment service as planning reads it: one stored assessment, or NOT_FOUND.
class FakeAssessmentReader : public planning::AssessmentReader {
 public:
  assessment::v1::Assessment Get(const CallContext&, const std::string& assessment_id) override {
    ++calls;
    if (!stored || stored->assessment_id() != assessment_id) throw Error(ErrorCode::kNotFound, "assessment not found");
    return *stored;
  }
  void RecordManipulationConsent(const CallContext&, const std::string& patient_id, const std::string& request_id) override {
    consents.push_back({patient_id, request_id});
  }
  std::optional<assessment::v1::Assessment> stored;
  int calls = 0;
  std::vector<std::pair<std::string, std::string>> consents;  // (patient, request id) of each consent recorded
};

// The planning service as progress calls it: the patient's plan (or none) and adjustments.
class FakePlanningClient : public progress::PlanningClient {
 public:
  progress::SharedPlan ActivePlan(const CallContext&, const std::string&) override {
    ++active_plan_calls;
    if (unreachable) throw Error(ErrorCode::kUnavailable, "fake: planning is unreachable");
    return active ? std::make_shared<const planning::v1::Plan>(*active) : nullptr;
  }
  planning::v1::Plan Adjust(const CallContext&, const planning::v1::AdjustPlanRequest& request) override {
    ++adjust_calls;
    if (unreachable) throw Error(ErrorCode::kUnavailable, "fake: planning is unreachable");
    last_adjustment = request;
    return active.value_or(planning::v1::Plan{});
  }
  std::optional<planning::v1::Plan> active;
  bool unreachable = false;  // every call fails UNAVAILABLE
  std::optional<planning::v1::AdjustPlanRequest> last_adjustment;
  int active_plan_calls = 0;
  int adjust_calls = 0;
};

// The assessment service as progress calls it: scoring (refused here) and stored assessments (none).
class FakeAssessmentClient : public progress::AssessmentClient {
 public:
  common::v1::InstrumentScore Score(const CallContext&, common::v1::Instrument,
                                    const google::protobuf::RepeatedPtrField<common::v1::InstrumentAnswer>&) override {
    ++score_calls;
    throw Error(ErrorCode::kUnavailable, "fake: scoring not configured");
  }
  std::optional<assessment::v1::Assessment> Get(const CallContext&, const std::string&) override {
    ++get_calls;
    return std::nullopt;
  }
  int score_calls = 0;
  int get_calls = 0;
};

}  // namespace physio::testing
