#pragma once
// The planning service's use cases. Reads assessments through AssessmentReader
// (implemented over gRPC in planning_server.cc, by fakes in unit tests).
#include "domain/library.h"
#include "domain/plan_rules.h"
#include "physio/assessment/v1/assessment.pb.h"
#include "physio/auth/call_context.h"
#include "physio/db/audit.h"
#include "physio/db/pg.h"
#include "physio/planning/v1/planning.pb.h"

namespace physio::planning {

namespace pb = physio::planning::v1;

inline constexpr const char* kSchema = "planning";

class AssessmentReader {
 public:
  virtual ~AssessmentReader() = default;
  // Throws Error (NOT_FOUND, UNAVAILABLE ...) as the assessment service answered.
  virtual physio::assessment::v1::Assessment Get(const CallContext& ctx, const std::string& assessment_id) = 0;
};

// Pure conversions (exposed for tests): the assessment to the rules' input, and
// the rules' draft to the API's plan.
PlanInput PlanInputFrom(const physio::assessment::v1::Assessment& assessment);
pb::Plan PlanFromDraft(const PlanDraft& draft);

class PlanningApp {
 public:
  PlanningApp(PgPool& pg, AssessmentReader& assessments, const InterventionLibrary& library)
      : pg_(pg), assessments_(assessments), library_(library) {}

  pb::GeneratePlanResponse GeneratePlan(const CallContext& ctx, const pb::GeneratePlanRequest& request,
                                        AuditTarget& audit);
  pb::GetPlanResponse GetPlan(const CallContext& ctx, const pb::GetPlanRequest& request, AuditTarget& audit);
  pb::ApprovePlanResponse ApprovePlan(const CallContext& ctx, const pb::ApprovePlanRequest& request,
                                      AuditTarget& audit);
  pb::GetActivePlanResponse GetActivePlan(const CallContext& ctx, const pb::GetActivePlanRequest& request,
                                          AuditTarget& audit);
  pb::ListInterventionsResponse ListInterventions(const CallContext& ctx, const pb::ListInterventionsRequest& request,
                                                  AuditTarget& audit);

 private:
  PgPool& pg_;
  AssessmentReader& assessments_;
  const InterventionLibrary& library_;
};

}  // namespace physio::planning
