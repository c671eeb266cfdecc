// The gRPC adapter of the planning service and its gRPC client of the assessment service.
#include "planning_server.h"

#include "physio/assessment/v1/assessment.grpc.pb.h"
#include "physio/planning/v1/planning.grpc.pb.h"
#include "physio/server/grpc_context.h"
#include "physio/server/service_runtime.h"
#include "physio/server/startup.h"
#include "planning_app.h"
#include "planning_roles.h"

std::vector<physio::Migration> planning_service_migrations();
extern const char* const kEmbeddedInterventionLibrary;

namespace physio::planning {

namespace {
namespace apb = physio::assessment::v1;

class GrpcAssessmentReader final : public AssessmentReader {
 public:
  GrpcAssessmentReader(std::shared_ptr<grpc::Channel> channel, std::chrono::milliseconds timeout)
      : stub_(apb::AssessmentService::NewStub(channel)), timeout_(timeout) {}

  apb::Assessment Get(const CallContext& ctx, const std::string& assessment_id) override {
    apb::GetAssessmentRequest request;
    request.set_assessment_id(assessment_id);
    apb::GetAssessmentResponse response;
    auto client = MakeOutgoingContext(ctx, timeout_);
    auto status = stub_->GetAssessment(client.get(), request, &response);
    if (!status.ok()) throw FromDownstream("assessment service", status);
    return response.assessment();
  }

  void RecordManipulationConsent(const CallContext& ctx, const std::string& patient_id,
                                 const std::string& request_id) override {
    apb::RecordConsentRequest request;
    request.set_request_id(request_id);
    request.set_patient_id(patient_id);
    request.set_kind(apb::CONSENT_KIND_MANIPULATION);
    request.set_decision(apb::CONSENT_DECISION_GRANTED);
    request.set_note("confirmed by the approving clinician (manipulation_consent)");
    apb::RecordConsentResponse response;
    auto client = MakeOutgoingContext(ctx, timeout_);
    auto status = stub_->RecordConsent(client.get(), request, &response);
    if (!status.ok()) throw FromDownstream("assessment service", status);
  }

 private:
  std::unique_ptr<apb::AssessmentService::Stub> stub_;
  std::chrono::milliseconds timeout_;
};

// GetActivePlan is a raw method: its fast path sends a response serialised once for many reads.
class PlanningGrpc final
    : public pb::PlanningService::WithRawCallbackMethod_GetActivePlan<pb::PlanningService::CallbackService> {
 public:
  static constexpr const char* kServiceName = pb::PlanningService::service_full_name();
  PlanningGrpc(PlanningApp& app, ServiceRuntime& runtime) : app_(app), runtime_(runtime) {}

  PHYSIO_UNARY_RPC(GeneratePlan)
  PHYSIO_UNARY_RPC(GetPlan)
  PHYSIO_UNARY_RPC(ApprovePlan)
  // The hottest read: answered from the cache without a worker when it can, with a response made
  // once for the plan's exact bytes (ServedPlanMemo); otherwise built on the call's arena.
  PHYSIO_RAW_FAST_READ_RPC(GetActivePlan)
  PHYSIO_UNARY_RPC_NO_PATIENT_DATA(ListInterventions)
  // The tenant library: audited as any write (who published which version, why), though no patient data.
  PHYSIO_UNARY_RPC(PublishTenantLibrary)
  PHYSIO_UNARY_RPC(GetTenantLibrary)
  PHYSIO_UNARY_RPC_NO_PATIENT_DATA(ListPlanTemplates)
  PHYSIO_UNARY_RPC(RevisePlan)
  PHYSIO_UNARY_RPC(AdjustPlan)
  PHYSIO_UNARY_RPC(CompletePlan)
  PHYSIO_UNARY_RPC(ListPlanRevisions)
  PHYSIO_UNARY_RPC(ExportPlanFhir)
  PHYSIO_UNARY_RPC(SearchFhir)
  PHYSIO_WATCH_EVENTS_RPC()

 private:
  PlanningApp& app_;
  ServiceRuntime& runtime_;
};

class PlanningServer final : public RunningService {
 public:
  explicit PlanningServer(const Config& config)
      : config_(config),
        runtime_(config_, kSchema, planning_service_migrations(), {"physio.planning.v1.PlanningService"}, kPlanningRoles,
                 kPlanningIndexes),
        library_(LoadLibrary(config_)),
        assessments_(MakePeerChannel(config_.Get("assessment-addr"), PeerTlsFrom(config_)), PeerTimeoutFrom(config_)),
        records_(runtime_.pg()),
        active_plans_(runtime_.redis(), std::chrono::seconds(config_.GetInt("active-plan-cache-ttl-seconds")),
                      runtime_.async_redis()),
        app_(records_, active_plans_, assessments_, library_, PolicyFrom(config_),
             static_cast<std::size_t>(std::max(0, config_.GetInt("served-plan-memo-mib"))) << 20),
        grpc_(app_, runtime_) {
    runtime_.Serve(&grpc_);
    export_worker_ = std::make_unique<BulkExportWorker>(runtime_.pg(), kSchema, export_source_,
                                                        BulkExportSettingsFrom(config_));
  }
  ~PlanningServer() override {
    export_worker_.reset();
    runtime_.Shutdown();
  }
  int port() const override { return runtime_.port(); }
  int http_port() const override { return runtime_.http_port(); }
  int metrics_port() const override { return runtime_.metrics_port(); }
  void AnnounceShutdown() override { runtime_.AnnounceShutdown(); }
  void Shutdown() override {
    export_worker_.reset();
    runtime_.Shutdown();
  }

 private:
  static PlanPolicy PolicyFrom(const Config& config) {
    PlanPolicy policy;
    policy.progression_days_high_irritability = config.GetInt("progression-days-high-irritability");
    policy.progression_days = config.GetInt("progression-days");
    policy.progression_days_low_irritability = config.GetInt("progression-days-low-irritability");
    policy.odi_mdc_points = config.GetInt("odi-mdc-points");
    policy.pregnancy_supine_from_week = config.GetInt("pregnancy-supine-from-week");
    policy.relapse_window_days = std::max(0, config.GetInt("relapse-window-days"));
    policy.rmdq_mdc_points = config.GetInt("rmdq-mdc-points");
    policy.outcome_nprs_every_days = config.GetInt("outcome-nprs-every-days");
    return policy;
  }
  // A file given by configuration replaces the library built into the binary.
  static InterventionLibrary LoadLibrary(const Config& config) {
    StartupPhase("loading the intervention library");
    const std::string path = config.Get("library-file");
    return InterventionLibrary::Parse(path.empty() ? std::string(kEmbeddedInterventionLibrary) : ReadFileOrThrow(path));
  }
  Config config_;
  ServiceRuntime runtime_;
  InterventionLibrary library_;
  GrpcAssessmentReader assessments_;
  PgPlanRecords records_;
  RedisActivePlanCache active_plans_;
  PlanningApp app_;
  PlanningGrpc grpc_;
  PgPlanExportSource export_source_;
  std::unique_ptr<BulkExportWorker> export_worker_;
};
}  // namespace

std::vector<ConfigKey> PlanningConfigKeys() {
  auto keys = CommonConfigKeys("127.0.0.1:50052");
  keys.push_back({"assessment-addr", "127.0.0.1:50051", "address of the assessment service", SettingKind::kPeerAddress});
  keys.push_back({"active-plan-cache-ttl-seconds", "60", "how long an active plan may stay in the Redis cache"});
  keys.push_back({"served-plan-memo-mib", "8",
                  "memory for GetActivePlan responses kept ready by the cached plan's exact bytes (0: none)"});
  keys.push_back({"progression-days-high-irritability", "14",
                  "days a dose is held, completed, before progressing when irritability is high (design default)"});
  keys.push_back({"progression-days", "7", "days a dose is held, completed, before progressing (design default)"});
  keys.push_back({"progression-days-low-irritability", "5",
                  "days a dose is held, completed, before progressing when irritability is low (design default)"});
  keys.push_back({"odi-mdc-points", "10",
                  "ODI minimal detectable change, as the progress service's: goals are the smallest drop its "
                  "responder rule counts (set both alike)"});
  keys.push_back({"outcome-nprs-every-days", "7",
                  "the outcome schedule's pain questionnaire (NPRS) every this many days; disability and function "
                  "measures come at the plan's review points and its end (0: pain only at those)"});
  keys.push_back({"rmdq-mdc-points", "4",
                  "RMDQ minimal detectable change, as the progress service's (set both alike)"});
  keys.push_back({"relapse-window-days", "90",
                  "a plan taking effect within this many days of the end of the patient's last episode of care is a "
                  "relapse of that episode, not a new one (0: never; design default)"});
  keys.push_back({"pregnancy-supine-from-week", "16",
                  "in pregnancy, exercises lying on the back are left out from this week (ACOG 2020; RCOG; design "
                  "default)"});
  keys.push_back({"library-file", "", "intervention library JSON; empty uses the one built in (services/planning/library)"});
  return keys;
}

std::unique_ptr<RunningService> StartPlanningService(const Config& config) {
  return std::make_unique<PlanningServer>(config);
}

}  // namespace physio::planning
