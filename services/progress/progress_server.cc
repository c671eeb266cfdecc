// The gRPC adapter of the progress service and its gRPC client of the planning service.
#include "progress_server.h"

#include "physio/planning/v1/planning.grpc.pb.h"
#include "physio/progress/v1/progress.grpc.pb.h"
#include "physio/server/grpc_context.h"
#include "physio/server/service_runtime.h"
#include "progress_app.h"

std::vector<physio::Migration> progress_service_migrations();

namespace physio::progress {

namespace {
namespace plan_pb = physio::planning::v1;

class GrpcPlanReader final : public PlanReader {
 public:
  GrpcPlanReader(std::shared_ptr<grpc::Channel> channel, std::chrono::milliseconds timeout)
      : stub_(plan_pb::PlanningService::NewStub(channel)), timeout_(timeout) {}

  std::optional<plan_pb::Plan> ActivePlan(const CallContext& ctx, const std::string& patient_id) override {
    plan_pb::GetActivePlanRequest request;
    request.set_patient_id(patient_id);
    plan_pb::GetActivePlanResponse response;
    auto client = MakeOutgoingContext(ctx, timeout_);
    auto status = stub_->GetActivePlan(client.get(), request, &response);
    if (status.error_code() == grpc::StatusCode::NOT_FOUND) return std::nullopt;
    if (!status.ok()) throw FromDownstream("planning service", status);
    return response.plan();
  }

 private:
  std::unique_ptr<plan_pb::PlanningService::Stub> stub_;
  std::chrono::milliseconds timeout_;
};

class ProgressGrpc final : public pb::ProgressService::Service {
 public:
  ProgressGrpc(ProgressApp& app, ServiceRuntime& runtime) : app_(app), runtime_(runtime) {}

  PHYSIO_UNARY_RPC(RecordVisit)
  PHYSIO_UNARY_RPC(LogHomeExercise)
  PHYSIO_UNARY_RPC(GetProgressSummary)

 private:
  ProgressApp& app_;
  ServiceRuntime& runtime_;
};

class ProgressServer final : public RunningService {
 public:
  explicit ProgressServer(const Config& config)
      : config_(config),
        runtime_(config_, kSchema, progress_service_migrations(), {"physio.progress.v1.ProgressService"}),
        plans_(MakePeerChannel(config_.Get("planning-addr")), PeerTimeoutFrom(config_)),
        app_(runtime_.pg(), plans_),
        grpc_(app_, runtime_) {
    runtime_.Serve(&grpc_);
  }
  ~ProgressServer() override { runtime_.Shutdown(); }
  int port() const override { return runtime_.port(); }
  void Shutdown() override { runtime_.Shutdown(); }

 private:
  Config config_;
  ServiceRuntime runtime_;
  GrpcPlanReader plans_;
  ProgressApp app_;
  ProgressGrpc grpc_;
};
}  // namespace

std::vector<ConfigKey> ProgressConfigKeys() {
  auto keys = CommonConfigKeys("127.0.0.1:50053");
  keys.push_back({"planning-addr", "127.0.0.1:50052", "address of the planning service"});
  return keys;
}

std::unique_ptr<RunningService> StartProgressService(const Config& config) {
  return std::make_unique<ProgressServer>(config);
}

}  // namespace physio::progress
