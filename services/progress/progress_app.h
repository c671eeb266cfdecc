#pragma once
// The progress service's use cases. Reads the active plan through PlanReader
// (gRPC in progress_server.cc).
#include <optional>

#include "domain/pain_trend.h"
#include "physio/auth/call_context.h"
#include "physio/db/audit.h"
#include "physio/db/pg.h"
#include "physio/planning/v1/planning.pb.h"
#include "physio/progress/v1/progress.pb.h"

namespace physio::progress {

namespace pb = physio::progress::v1;
inline constexpr const char* kSchema = "progress";

class PlanReader {
 public:
  virtual ~PlanReader() = default;
  // nullopt when the patient has no active plan; throws Error on other failures.
  virtual std::optional<physio::planning::v1::Plan> ActivePlan(const CallContext& ctx, const std::string& patient_id) = 0;
};

class ProgressApp {
 public:
  ProgressApp(PgPool& pg, PlanReader& plans) : pg_(pg), plans_(plans) {}

  pb::RecordVisitResponse RecordVisit(const CallContext& ctx, const pb::RecordVisitRequest& request, AuditTarget& audit);
  pb::LogHomeExerciseResponse LogHomeExercise(const CallContext& ctx, const pb::LogHomeExerciseRequest& request,
                                              AuditTarget& audit);
  pb::GetProgressSummaryResponse GetProgressSummary(const CallContext& ctx,
                                                    const pb::GetProgressSummaryRequest& request, AuditTarget& audit);

 private:
  PgPool& pg_;
  PlanReader& plans_;
};

}  // namespace physio::progress
