// The gRPC adapter of the progress service and its gRPC client of the planning service.
#include "progress_server.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <cstdint>
#include <memory>

#include "physio/assessment/v1/assessment.grpc.pb.h"
#include "physio/common/bytes_memo.h"
#include "physio/planning/v1/planning.grpc.pb.h"
#include "physio/progress/v1/progress.grpc.pb.h"
#include "physio/server/grpc_context.h"
#include "physio/server/service_runtime.h"
#include "planning/active_plan_cache.h"
#include "progress_app.h"
#include "task_scheduler.h"
#include "progress_roles.h"

std::vector<physio::Migration> progress_service_migrations();

namespace physio::progress {

namespace {
namespace plan_pb = physio::planning::v1;

class GrpcPlanningClient final : public PlanningClient {
 public:
  // `plans`: planning's Redis cache of each patient's plan in use, read before asking planning.
  // `metrics`: counts where each plan read was answered (physio_plan_reads_total{kind}).
  // `memo_bytes`: memory for plans kept parsed by their cached bytes (0: none).
  GrpcPlanningClient(std::shared_ptr<grpc::Channel> channel, std::chrono::milliseconds timeout,
                     planning::ActivePlanCache& plans, Metrics& metrics, std::size_t memo_bytes)
      : stub_(plan_pb::PlanningService::NewStub(channel)), timeout_(timeout), plans_(plans), parsed_(memo_bytes) {
    // Counted on every plan read, so atomics read at scrape time (not the metrics mutex per call).
    metrics.AddCollector([reads = reads_](MetricsText& out) {
      out.Counter("physio_plan_reads_total",
                  "Reads of a patient's plan in use: from planning's cache (cache), by asking planning on a miss "
                  "(planning) or with the cache unreachable (planning_cache_unavailable).",
                  {{R"({kind="cache"})", static_cast<double>(reads->cache.load())},
                   {R"({kind="planning"})", static_cast<double>(reads->planning.load())},
                   {R"({kind="planning_cache_unavailable"})", static_cast<double>(reads->unavailable.load())}});
    });
  }

  plan_pb::Plan Adjust(const CallContext& ctx, const plan_pb::AdjustPlanRequest& request) override {
    plan_pb::AdjustPlanResponse response;
    auto client = MakeOutgoingContext(ctx, timeout_);
    auto status = stub_->AdjustPlan(client.get(), request, &response);
    if (!status.ok()) throw FromDownstream("planning service", status);
    return response.plan();
  }

  SharedPlan ActivePlan(const CallContext& ctx, const std::string& patient_id) override {
    // The plan planning cached, when it is current: accepted only under the patient's
    // generation, which every change to the plan bumps before it commits, so it is never
    // older than a committed change (active_plan_cache.h). The same access rule as
    // planning's: another patient's plan is absent. Otherwise (a miss, an unusable entry,
    // Redis down or refusing the key) planning is asked, and fills the cache.
    // Audit: this read is part of the caller's call, which progress audits (docs/architecture.md).
    if (!CanSeePatient(ctx, patient_id)) return nullptr;
    try {
      SharedPlan cached;
      const auto lookup = plans_.ReadBytes(ctx, patient_id, ctx.DeadlineCappedAt(timeout_), [&](std::string_view bytes) {
        cached = Parsed(ctx.tenant, patient_id, bytes);
        return cached != nullptr;
      });
      if (lookup && lookup->hit) {
        ++reads_->cache;
        return cached;
      }
      ++reads_->planning;
    } catch (const std::exception& e) {  // Redis unreachable, or an id no key can hold: planning answers
      spdlog::warn("active-plan cache unavailable request_id={}: {}", ctx.request_id, e.what());
      ++reads_->unavailable;
    }
    plan_pb::GetActivePlanRequest request;
    request.set_patient_id(patient_id);
    request.set_include_suspended(true);  // progress decides what a suspended plan means
    plan_pb::GetActivePlanResponse response;
    auto client = MakeOutgoingContext(ctx, timeout_);
    auto status = stub_->GetActivePlan(client.get(), request, &response);
    if (status.error_code() == grpc::StatusCode::NOT_FOUND) return nullptr;
    if (!status.ok()) throw FromDownstream("planning service", status);
    // The plan as stored, as the cache holds it: without the media references planning adds
    // for its own readers, so what progress hands on (an evaluation's plan) is the same either way.
    for (auto& item : *response.mutable_plan()->mutable_items()) item.clear_media();
    return std::make_shared<const plan_pb::Plan>(std::move(*response.mutable_plan()));
  }

 private:
  // The plan of exactly `bytes` (as cached), parsed once: a patient's plan read again unchanged
  // (the next exercise of the same session's home logs) is neither parsed nor copied again.
  // Only the bytes decide what is handed out (BytesMemo): the same bytes, the same plan. Null
  // when they do not parse.
  SharedPlan Parsed(const std::string& tenant, const std::string& patient_id, std::string_view bytes) {
    const std::string key = MemoKey({tenant, patient_id});
    if (auto found = parsed_.Find(key, bytes)) return std::move(*found);
    auto plan = std::make_shared<plan_pb::Plan>();
    if (!plan->ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) return nullptr;
    // A parsed plan takes about twice its bytes (its strings, its repeated fields' arrays).
    parsed_.Remember(key, bytes, plan, 2 * bytes.size());
    return plan;
  }

  struct Reads {
    std::atomic<std::uint64_t> cache{0}, planning{0}, unavailable{0};
  };

  std::unique_ptr<plan_pb::PlanningService::Stub> stub_;
  std::chrono::milliseconds timeout_;
  planning::ActivePlanCache& plans_;
  BytesMemo<SharedPlan> parsed_;
  // Shared with the metrics collector, which may outlive this client.
  std::shared_ptr<Reads> reads_ = std::make_shared<Reads>();
};

class GrpcAssessmentClient final : public AssessmentClient {
 public:
  GrpcAssessmentClient(std::shared_ptr<grpc::Channel> channel, std::chrono::milliseconds timeout)
      : stub_(physio::assessment::v1::AssessmentService::NewStub(channel)), timeout_(timeout) {}

  physio::common::v1::InstrumentScore Score(
      const CallContext& ctx, physio::common::v1::Instrument instrument,
      const google::protobuf::RepeatedPtrField<physio::common::v1::InstrumentAnswer>& answers) override {
    physio::assessment::v1::ScoreInstrumentRequest request;
    request.set_instrument(instrument);
    *request.mutable_answers() = answers;
    physio::assessment::v1::ScoreInstrumentResponse response;
    auto client = MakeOutgoingContext(ctx, timeout_);
    auto status = stub_->ScoreInstrument(client.get(), request, &response);
    // The scorer's field-level errors are the caller's own input: pass them through.
    if (status.error_code() == grpc::StatusCode::INVALID_ARGUMENT) throw Error(ErrorCode::kInvalidArgument, status.error_message());
    if (!status.ok()) throw FromDownstream("assessment service", status);
    return response.score();
  }

  std::optional<physio::assessment::v1::Assessment> Get(const CallContext& ctx,
                                                        const std::string& assessment_id) override {
    physio::assessment::v1::GetAssessmentRequest request;
    request.set_assessment_id(assessment_id);
    physio::assessment::v1::GetAssessmentResponse response;
    auto client = MakeOutgoingContext(ctx, timeout_);
    auto status = stub_->GetAssessment(client.get(), request, &response);
    if (status.error_code() == grpc::StatusCode::NOT_FOUND) return std::nullopt;
    if (!status.ok()) throw FromDownstream("assessment service", status);
    return response.assessment();
  }

 private:
  std::unique_ptr<physio::assessment::v1::AssessmentService::Stub> stub_;
  std::chrono::milliseconds timeout_;
};

class ProgressGrpc final : public pb::ProgressService::CallbackService {
 public:
  static constexpr const char* kServiceName = pb::ProgressService::service_full_name();
  ProgressGrpc(ProgressApp& app, ServiceRuntime& runtime) : app_(app), runtime_(runtime) {}

  PHYSIO_UNARY_RPC(RecordVisit)
  PHYSIO_UNARY_RPC(LogHomeExercise)
  PHYSIO_UNARY_RPC(ReportSymptoms)
  PHYSIO_UNARY_RPC(GetProgressSummary)
  PHYSIO_UNARY_RPC(RecordOutcome)
  PHYSIO_UNARY_RPC(EvaluateProgress)
  PHYSIO_UNARY_RPC(ListAlerts)
  PHYSIO_UNARY_RPC(StartVisitSession)
  PHYSIO_FAST_UNARY_RPC(UpdateVisitSession)  // without a worker when Redis answers in time
  PHYSIO_UNARY_RPC(GetVisitSession)
  PHYSIO_UNARY_RPC(CompleteVisitSession)
  PHYSIO_UNARY_RPC(AcknowledgeAlert)
  PHYSIO_UNARY_RPC_EMERGENCY_ACCESS(BreakGlass)
  PHYSIO_UNARY_RPC(ListDueTasks)
  PHYSIO_UNARY_RPC(ExportProgressFhir)
  PHYSIO_UNARY_RPC(SearchFhir)
  PHYSIO_UNARY_RPC(GetOutcomeReport)
  PHYSIO_UNARY_RPC(GetDischargeSummary)
  PHYSIO_WATCH_EVENTS_RPC()

 private:
  ProgressApp& app_;
  ServiceRuntime& runtime_;
};

class ProgressServer final : public RunningService {
 public:
  static EvaluationPolicy PolicyFrom(const Config& config) {
    EvaluationPolicy policy;
    policy.detectable.odi_points = config.GetInt("odi-mdc-points");
    policy.detectable.rmdq_points = config.GetInt("rmdq-mdc-points");
    policy.dose_completion_days = config.GetInt("dose-completion-days");
    policy.early_response_fraction_of_mcid = config.GetInt("early-response-percent-of-mcid") / 100.0;
    policy.pain_window_days = config.GetInt("pain-window-days");
    policy.history_days = config.GetInt("history-window-days");
    policy.history_max_rows = config.GetInt("history-max-rows");
    if (policy.history_days < 1 || policy.history_max_rows < 1) {
      throw std::invalid_argument("--history-window-days and --history-max-rows are at least 1");
    }
    return policy;
  }

  explicit ProgressServer(const Config& config)
      : config_(config),
        runtime_(config_, kSchema, progress_service_migrations(), {"physio.progress.v1.ProgressService"}, kProgressRoles,
                 kProgressIndexes),
        planning_plans_(runtime_.redis(), std::chrono::seconds(0)),  // read only: planning fills it
        planning_(MakePeerChannel(config_.Get("planning-addr"), PeerTlsFrom(config_)), PeerTimeoutFrom(config_),
                  planning_plans_, runtime_.metrics(),
                  static_cast<std::size_t>(std::max(0, config_.GetInt("parsed-plan-memo-mib"))) << 20),
        assessment_(MakePeerChannel(config_.Get("assessment-addr"), PeerTlsFrom(config_)), PeerTimeoutFrom(config_)),
        session_idempotency_(runtime_.redis()),
        visit_sessions_(runtime_.redis(), std::chrono::seconds(config_.GetInt("visit-session-ttl-seconds")),
                        std::chrono::hours(24), runtime_.async_redis()),
        records_(runtime_.pg()),
        tasks_(runtime_.pg()),
        reports_(runtime_.pg()),
        app_({session_idempotency_, visit_sessions_, records_, &tasks_, &reports_}, planning_, assessment_, PolicyFrom(config_),
             physio::assessment::RedFlagPolicy{config_.GetInt("ces-new-bilateral-leg-pain-days"),
                                               config_.GetInt("fracture-risk-age"),
                                               config_.GetInt("fracture-new-episode-days"),
                                               {config_.GetInt("neuro-severe-motor-grade"),
                                                config_.GetInt("neuro-new-deficit-days")}}),
        grpc_(app_, runtime_) {
    app_.SetFhirPatientIdentifierSystem(config_.Get("fhir-patient-identifier-system"));
    app_.OnAlertRaised([this](pb::AlertKind kind) {
      runtime_.metrics().CountEvent("physio_alerts_raised_total", "Clinical alerts raised, by kind.",
                                    pb::AlertKind_Name(kind));
    });
    app_.set_task_policy(TaskPolicyFrom(config_));
    if (config_.GetInt("report-min-group-size") < 1) throw std::invalid_argument("--report-min-group-size is at least 1");
    app_.set_report_min_group_size(config_.GetInt("report-min-group-size"));
    runtime_.Serve(&grpc_);
    export_worker_ = std::make_unique<BulkExportWorker>(runtime_.pg(), kSchema, export_source_,
                                                        BulkExportSettingsFrom(config_));
    if (config_.GetInt("outcome-task-scan-interval-s") > 0) {
      scheduler_ = std::make_unique<TaskScheduler>(
          tasks_, TaskSchedulerSettings{std::chrono::seconds(config_.GetInt("outcome-task-scan-interval-s")),
                                        std::chrono::hours(24 * config_.GetInt("outcome-task-notify-within-days")),
                                        TaskPolicyFrom(config_)});
    }
    if (config_.GetInt("report-refresh-interval-ms") > 0) {
      refresher_ = std::make_unique<EpisodeRefresher>(
          reports_, records_, PolicyFrom(config_),
          EpisodeRefresherSettings{std::chrono::milliseconds(config_.GetInt("report-refresh-interval-ms")),
                                   std::chrono::seconds(3600LL * std::max(1, config_.GetInt("report-stale-hours"))),
                                   200, 60});
      runtime_.metrics().AddCollector([caught_up = refresher_->caught_up()](MetricsText& out) {
        const auto since = Clock::now() - Clock::time_point(Clock::duration(caught_up->load(std::memory_order_relaxed)));
        out.Gauge("physio_outcome_figures_behind_seconds",
                  "Seconds since the episode refresher last caught up with every change (about the refresh "
                  "interval while it keeps up; grows while its passes fail or fall behind).",
                  {{"", std::chrono::duration<double>(since).count()}});
      });
    }
  }
  ~ProgressServer() override {
    refresher_.reset();
    export_worker_.reset();
    scheduler_.reset();
    runtime_.Shutdown();
  }
  int port() const override { return runtime_.port(); }
  int http_port() const override { return runtime_.http_port(); }
  int metrics_port() const override { return runtime_.metrics_port(); }
  void AnnounceShutdown() override { runtime_.AnnounceShutdown(); }
  void Shutdown() override {
    refresher_.reset();
    export_worker_.reset();
    scheduler_.reset();
    runtime_.Shutdown();
  }

 private:
  static TaskPolicy TaskPolicyFrom(const Config& config) {
    TaskPolicy policy;
    policy.lead_days = std::max(0, config.GetInt("outcome-task-lead-days"));
    policy.grace_days = std::max(0, config.GetInt("outcome-task-grace-days"));
    return policy;
  }
  Config config_;
  ServiceRuntime runtime_;
  planning::RedisActivePlanCache planning_plans_;
  GrpcPlanningClient planning_;
  GrpcAssessmentClient assessment_;
  RedisIdempotency session_idempotency_;
  RedisVisitSessionStore visit_sessions_;
  PgProgressRecords records_;
  PgTaskRecords tasks_;
  PgOutcomeReports reports_;
  ProgressApp app_;
  ProgressGrpc grpc_;
  std::unique_ptr<TaskScheduler> scheduler_;
  PgProgressExportSource export_source_{config_.Get("fhir-patient-identifier-system")};
  std::unique_ptr<BulkExportWorker> export_worker_;
  std::unique_ptr<EpisodeRefresher> refresher_;
};
}  // namespace

std::vector<ConfigKey> ProgressConfigKeys() {
  auto keys = CommonConfigKeys("127.0.0.1:50053");
  keys.push_back({"planning-addr", "127.0.0.1:50052", "address of the planning service", SettingKind::kPeerAddress});
  keys.push_back({"assessment-addr", "127.0.0.1:50051", "address of the assessment service (outcome scoring)", SettingKind::kPeerAddress});
  keys.push_back({"visit-session-ttl-seconds", "14400", "idle time after which an open live visit session expires"});
  keys.push_back({"parsed-plan-memo-mib", "4",
                  "memory for patients' plans kept parsed by their cached bytes, for home logs and reports (0: none)"});
  keys.push_back({"outcome-task-lead-days", "1",
                  "a scheduled outcome questionnaire opens (is due, and an answer counts) this many days before its day"});
  keys.push_back({"outcome-task-grace-days", "3", "and is overdue this many days after it"});
  keys.push_back({"outcome-task-scan-interval-s", "60",
                  "how often this replica looks for questionnaires falling due or overdue (0: it does not)"});
  keys.push_back({"outcome-task-notify-within-days", "14",
                  "questionnaires due longer ago than this get no due or overdue event (a back-dated import)"});
  keys.push_back({"fhir-patient-identifier-system", "https://physio-backend.org/fhir/patient-id",
                  "identifier system of patient references in FHIR exports"});
  keys.push_back({"odi-mdc-points", "10",
                  "ODI minimal detectable change: a 30% improvement counts only beyond it (Davidson & Keating 2002)"});
  keys.push_back({"ces-new-bilateral-leg-pain-days", "42",
                  "the check-in re-screen's setting, as assessment's: pain below the knee in both legs in an episode "
                  "at most this many days old is suspected cauda equina"});
  keys.push_back({"fracture-risk-age", "70", "the check-in re-screen's setting, as assessment's"});
  keys.push_back({"fracture-new-episode-days", "42", "the check-in re-screen's setting, as assessment's"});
  keys.push_back({"neuro-severe-motor-grade", "3", "a visit's neurological re-examination: as assessment's"});
  keys.push_back({"neuro-new-deficit-days", "84", "a visit's neurological re-examination: as assessment's"});
  keys.push_back({"pain-window-days", "7",
                  "pain change and responder status are judged on the mean of this many days' readings"});
  keys.push_back({"early-response-percent-of-mcid", "50",
                  "early response is on track once any outcome moved this percent of its meaningful change (design default)"});
  keys.push_back({"dose-completion-days", "7",
                  "days every prescribed exercise must be logged at its dose before a progression (design default)"});
  keys.push_back({"history-window-days", "365",
                  "summaries and evaluations read this many days of visits, home logs and re-measures"});
  keys.push_back({"history-max-rows", "2000",
                  "and at most this many of the newest rows of each kind (bounds the read and the response)"});
  keys.push_back({"report-min-group-size", "5",
                  "outcome reports suppress groups of fewer episodes, and figures computed from fewer (docs/reports.md)"});
  keys.push_back({"report-refresh-interval-ms", "1000",
                  "how often this replica brings changed episodes' report figures up to date (0: it does not)"});
  keys.push_back({"report-stale-hours", "24",
                  "open episodes' report figures (adherence, expected course) are recomputed at least this often"});
  keys.push_back({"rmdq-mdc-points", "4",
                  "RMDQ minimal detectable change: a 30% improvement counts only beyond it (Davidson & Keating 2002: 4-5)"});
  return keys;
}

std::unique_ptr<RunningService> StartProgressService(const Config& config) {
  return std::make_unique<ProgressServer>(config);
}

}  // namespace physio::progress
