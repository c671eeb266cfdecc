#pragma once
#include <chrono>
#include <mutex>
#include <memory>
#include <map>
// The planning service's use cases. Reads assessments through AssessmentReader
// (implemented over gRPC in planning_server.cc, by fakes in unit tests), keeps
// plans in PlanRecords (PostgreSQL) and the active plan in ActivePlanCache (Redis).
#include "active_plan_cache.h"
#include "domain/library.h"
#include "domain/plan_rules.h"
#include "physio/assessment/v1/assessment.pb.h"
#include "physio/auth/call_context.h"
#include "physio/db/audit.h"
#include "physio/planning/v1/planning.pb.h"
#include "plan_records.h"
#include "served_plan_memo.h"

namespace physio::planning {

namespace pb = physio::planning::v1;


class AssessmentReader {
 public:
  virtual ~AssessmentReader() = default;
  // Throws Error (NOT_FOUND, UNAVAILABLE ...) as the assessment service answered.
  virtual physio::assessment::v1::Assessment Get(const CallContext& ctx, const std::string& assessment_id) = 0;
  // Records the patient's consent to spinal manipulation, as the clinician confirmed it at approval
  // (the patient's consent records are the assessment service's); idempotent by `request_id`.
  virtual void RecordManipulationConsent(const CallContext& ctx, const std::string& patient_id,
                                         const std::string& request_id) = 0;
};

// Pure conversions (exposed for tests): the assessment to the rules' input, and
// the rules' draft to the API's plan.
PlanInput PlanInputFrom(const physio::assessment::v1::Assessment& assessment);
pb::Plan PlanFromDraft(const PlanDraft& draft);

class PlanningApp {
 public:
  // The stores and the peer outlive the app.
  // `served_plan_memo_bytes`: the bound on GetActivePlan's remembered responses (0: none kept).
  PlanningApp(PlanRecords& records, ActivePlanCache& active_plans, AssessmentReader& assessments,
              const InterventionLibrary& library, PlanPolicy policy = {},
              std::size_t served_plan_memo_bytes = kDefaultServedPlanMemoBytes)
      : records_(records),
        active_plans_(active_plans),
        assessments_(assessments),
        library_(library),
        policy_(policy),
        served_plans_(served_plan_memo_bytes) {}
  static constexpr std::size_t kDefaultServedPlanMemoBytes = std::size_t{8} << 20;

  pb::GeneratePlanResponse GeneratePlan(const CallContext& ctx, const pb::GeneratePlanRequest& request,
                                        AuditTarget& audit);
  pb::GetPlanResponse GetPlan(const CallContext& ctx, const pb::GetPlanRequest& request, AuditTarget& audit);
  pb::ApprovePlanResponse ApprovePlan(const CallContext& ctx, const pb::ApprovePlanRequest& request,
                                      AuditTarget& audit);
  pb::GetActivePlanResponse GetActivePlan(const CallContext& ctx, const pb::GetActivePlanRequest& request,
                                          AuditTarget& audit);
  // The same, built in place in `response` (PHYSIO_RAW_FAST_READ_RPC's ordinary path: RawCallMessages' arena).
  void GetActivePlan(const CallContext& ctx, const pb::GetActivePlanRequest& request, AuditTarget& audit,
                     pb::GetActivePlanResponse& response);
  // The same answered from the cache without a thread waiting (CallPipeline::ServeFastRead,
  // PHYSIO_RAW_FAST_READ_RPC): false when it cannot start; else `finish` runs once, with the
  // serialised GetActivePlanResponse for the cached, in-use plan, localised from memory, or with
  // null for everything else (a miss, Redis without an answer, a suspended plan's refusal, a
  // tenant library not loaded yet), which GetActivePlan then serves. Responses are remembered by
  // the plan's exact bytes (ServedPlanMemo), so a plan read again unchanged is neither parsed,
  // localised nor serialised again. The arguments outlive `finish`.
  using ServedBytes = std::shared_ptr<const std::string>;
  bool StartGetActivePlan(const CallContext& ctx, const pb::GetActivePlanRequest& request, AuditTarget& audit,
                          std::function<void(ServedBytes)> finish);
  pb::RevisePlanResponse RevisePlan(const CallContext& ctx, const pb::RevisePlanRequest& request, AuditTarget& audit);
  pb::AdjustPlanResponse AdjustPlan(const CallContext& ctx, const pb::AdjustPlanRequest& request, AuditTarget& audit);
  pb::CompletePlanResponse CompletePlan(const CallContext& ctx, const pb::CompletePlanRequest& request,
                                        AuditTarget& audit);
  pb::ListPlanRevisionsResponse ListPlanRevisions(const CallContext& ctx, const pb::ListPlanRevisionsRequest& request,
                                                  AuditTarget& audit);
  // The FHIR REST API's reads and searches of CarePlan and Goal (docs/fhir.md).
  pb::SearchFhirResponse SearchFhir(const CallContext& ctx, const pb::SearchFhirRequest& request, AuditTarget& audit);
  pb::ExportPlanFhirResponse ExportPlanFhir(const CallContext& ctx, const pb::ExportPlanFhirRequest& request,
                                            AuditTarget& audit);
  pb::ListInterventionsResponse ListInterventions(const CallContext& ctx, const pb::ListInterventionsRequest& request,
                                                  AuditTarget& audit);
  pb::PublishTenantLibraryResponse PublishTenantLibrary(const CallContext& ctx,
                                                        const pb::PublishTenantLibraryRequest& request,
                                                        AuditTarget& audit);
  pb::GetTenantLibraryResponse GetTenantLibrary(const CallContext& ctx, const pb::GetTenantLibraryRequest& request,
                                                AuditTarget& audit);
  pb::ListPlanTemplatesResponse ListPlanTemplates(const CallContext& ctx, const pb::ListPlanTemplatesRequest& request,
                                                  AuditTarget& audit);

 private:
  // The items' titles and instructions in `locale` where the library has them (falling back to
  // English), with their library media; text a clinician changed stays as written.
  // A plan holding the tenant's own entries is read with the tenant's library: their translations
  // and media, in English too (TenantLibraryForReads).
  void LocalisePlan(const CallContext& ctx, pb::Plan& plan, const std::string& locale);
  // Its two halves: which tenant library it uses now (null: none, or none readable), and the
  // localisation itself, a pure function of the plan, the locale and that library.
  std::shared_ptr<const TenantLibrary> TenantLibraryForLocalising(const CallContext& ctx, bool plan_has_tenant_entries);
  void LocalisePlanWith(const std::shared_ptr<const TenantLibrary>& tenant, pb::Plan& plan,
                        const std::string& locale) const;
  // StartGetActivePlan's answer for the cached plan `plan_bytes` (null: not served this way).
  ServedBytes ServedActivePlan(const CallContext& ctx, const pb::GetActivePlanRequest& request,
                               std::string_view plan_bytes, AuditTarget& audit);
  // Clinic scoping of a change by plan id: NOT_FOUND for a plan of a patient outside the caller's clinics.
  void RequireClinicOfPlan(const CallContext& ctx, const std::string& plan_id);
  // A clinician confirmed the patient's consent to manipulation for a plan that has it: the consent record.
  void RecordConsentConfirmed(const CallContext& ctx, bool confirmed, const pb::Plan& plan, const std::string& request_id);
  // The one path every change to an existing plan takes: lock the row, check the
  // etag (when given) and status, mutate, save as a new revision with who and why.
  template <typename Response>
  Response ChangePlan(const CallContext& ctx, const char* method, const google::protobuf::Message& request,
                      const std::string& request_id, const std::string& plan_id, const std::string& etag,
                      std::initializer_list<pb::PlanStatus> allowed, const std::string& change,
                      const std::string& reason, AuditTarget& audit, const std::function<void(pb::Plan&)>& mutate,
                      const std::string* detail = nullptr);

  // Saves a changed plan as its next revision (new etag, history row, feed event).
  void SaveChange(PlanWriter& writer, const CallContext& ctx, pb::Plan& plan, long version, const std::string& change,
                  const std::string& reason);

  // The caller's tenant's own library in force (nullptr: none published), parsed once per version
  // (versions are immutable) and kept in a small cache; one indexed read says which is current.
  std::shared_ptr<const TenantLibrary> TenantLibraryOf(const CallContext& ctx, Clock::time_point deadline);
  // The same for reads of a plan (titles, translations, media): which version is current is
  // remembered for kTenantVersionForReads, so such a read costs no PostgreSQL round trip; a version
  // published through another replica reaches this one's readers within that time. Changes to
  // plans (TenantLibraryOf) always read which version is current.
  std::shared_ptr<const TenantLibrary> TenantLibraryForReads(const CallContext& ctx, Clock::time_point deadline);
  static constexpr auto kTenantVersionForReads = std::chrono::seconds(5);
  // One version, parsed once and kept.
  std::shared_ptr<const TenantLibrary> TenantLibraryAt(const CallContext& ctx, int version, Clock::time_point deadline);
  // The library plan changes use: the shipped one with the tenant's entries, when it has any.
  const InterventionLibrary& LibraryWith(const std::shared_ptr<const TenantLibrary>& tenant) const {
    return tenant ? tenant->merged : library_;
  }

  PlanRecords& records_;
  ActivePlanCache& active_plans_;
  AssessmentReader& assessments_;
  const InterventionLibrary& library_;
  PlanPolicy policy_;
  ServedPlanMemo served_plans_;
  std::mutex tenant_mu_;
  std::map<std::pair<std::string, int>, std::shared_ptr<const TenantLibrary>> tenant_libraries_;
  // Tenant -> its current version, and when that was read (TenantLibraryForReads).
  std::map<std::string, std::pair<int, Clock::time_point>> current_versions_;
};

}  // namespace physio::planning
