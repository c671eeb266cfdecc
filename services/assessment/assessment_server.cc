// The gRPC adapter: identity, audit and status mapping via the CallPipeline; the
// use cases live in AssessmentApp.
#include "assessment_server.h"

#include "assessment_app.h"
#include "assessment_roles.h"
#include "physio/assessment/v1/assessment.grpc.pb.h"
#include "physio/server/grpc_context.h"
#include "physio/server/service_config.h"
#include "physio/server/service_runtime.h"
#include "webhook_dispatcher.h"

std::vector<physio::Migration> assessment_service_migrations();

namespace physio::assessment {

namespace {
// GetAssessment is a raw method: its fast path sends a cached assessment's bytes without parsing them.
class AssessmentGrpc final
    : public pb::AssessmentService::WithRawCallbackMethod_GetAssessment<pb::AssessmentService::CallbackService> {
 public:
  static constexpr const char* kServiceName = pb::AssessmentService::service_full_name();
  AssessmentGrpc(AssessmentApp& app, ServiceRuntime& runtime) : app_(app), runtime_(runtime) {}

  PHYSIO_UNARY_RPC(StartIntake)
  PHYSIO_FAST_UNARY_RPC(SubmitIntakeAnswers)  // without a worker when Redis answers in time
  PHYSIO_UNARY_RPC(GetIntake)
  PHYSIO_UNARY_RPC(CompleteIntake)
  // A hot read: answered from the Redis cache without a worker when it can, the cached bytes sent
  // as they are; otherwise the stored record parsed onto the call's arena.
  PHYSIO_RAW_FAST_READ_RPC(GetAssessment)
  PHYSIO_UNARY_RPC_NO_PATIENT_DATA(ScoreInstrument)
  PHYSIO_UNARY_RPC(CreateAssessment)
  PHYSIO_UNARY_RPC(ListAssessments)
  PHYSIO_UNARY_RPC(RecordRedFlagJudgement)
  PHYSIO_UNARY_RPC(ReassessPatient)
  PHYSIO_UNARY_RPC(ExportAssessmentFhir)
  PHYSIO_UNARY_RPC(ImportFhirQuestionnaireResponse)
  PHYSIO_UNARY_RPC(EnrolPatient)
  PHYSIO_UNARY_RPC(TransferPatient)
  PHYSIO_UNARY_RPC(GetPatientClinics)
  PHYSIO_UNARY_RPC_CONSENT(RecordConsent)
  PHYSIO_UNARY_RPC(ListConsents)
  PHYSIO_UNARY_RPC_AUDIT_TRAIL(ListAuditEvents)
  PHYSIO_UNARY_RPC_AUDIT_TRAIL(ExportAuditEvents)
  PHYSIO_UNARY_RPC(SearchFhir)
  PHYSIO_UNARY_RPC_AUDIT_TRAIL(SearchFhirAuditEvents)
  PHYSIO_UNARY_RPC(CreateFhirResource)
  PHYSIO_UNARY_RPC(StartBulkExport)
  PHYSIO_UNARY_RPC(GetBulkExportStatus)
  PHYSIO_UNARY_RPC(GetBulkExportFile)
  PHYSIO_UNARY_RPC(CancelBulkExport)
  PHYSIO_UNARY_RPC(CreateWebhookSubscription)
  PHYSIO_UNARY_RPC(ListWebhookSubscriptions)
  PHYSIO_UNARY_RPC(UpdateWebhookSubscription)
  PHYSIO_UNARY_RPC(DeleteWebhookSubscription)
  PHYSIO_UNARY_RPC(RotateWebhookSecret)
  PHYSIO_UNARY_RPC(ListWebhookDeliveries)
  PHYSIO_UNARY_RPC(ReplayWebhookDeliveries)
  PHYSIO_WATCH_EVENTS_RPC()

 private:
  AssessmentApp& app_;
  ServiceRuntime& runtime_;
};

class AssessmentServer final : public RunningService {
 public:
  explicit AssessmentServer(const Config& config)
      : config_(config),
        runtime_(config_, kSchema, assessment_service_migrations(), {"physio.assessment.v1.AssessmentService"},
                 kAssessmentRoles, kAssessmentIndexes),
        settings_(SettingsFrom(config_)),
        session_idempotency_(runtime_.redis()),
        intakes_(runtime_.redis(), settings_.intake_ttl, settings_.completed_intake_ttl, std::chrono::hours(24),
                 runtime_.async_redis()),
        records_(runtime_.pg()),
        audit_log_(runtime_.pg()),
        webhooks_(runtime_.pg(), kSchema),
        bulk_exports_(runtime_.pg()),
        export_source_(settings_.fhir_patient_identifier_system),
        cache_(runtime_.redis(), std::chrono::seconds(config_.GetInt("assessment-cache-ttl-seconds")),
               runtime_.async_redis()),
        app_({session_idempotency_, intakes_, records_, &audit_log_, &webhooks_, &bulk_exports_,
              config_.GetInt("assessment-cache-ttl-seconds") > 0 ? &cache_ : nullptr},
             settings_),
        grpc_(app_, runtime_) {
    runtime_.EnableFhirRest(FhirRestFrom(config_));
    runtime_.Serve(&grpc_);
    export_worker_ = std::make_unique<BulkExportWorker>(runtime_.pg(), kSchema, export_source_,
                                                        BulkExportSettingsFrom(config_));
    // Sending starts once the schema is migrated and the server is up.
    dispatcher_ = std::make_unique<WebhookDispatcher>(webhooks_, DispatchSettingsFrom(config_), runtime_.metrics());
  }
  ~AssessmentServer() override {
    export_worker_.reset();
    dispatcher_.reset();
    runtime_.Shutdown();
  }
  int port() const override { return runtime_.port(); }
  int http_port() const override { return runtime_.http_port(); }
  int metrics_port() const override { return runtime_.metrics_port(); }
  void AnnounceShutdown() override { runtime_.AnnounceShutdown(); }
  void Shutdown() override {
    export_worker_.reset();
    dispatcher_.reset();
    runtime_.Shutdown();
  }

 private:
  // The FHIR REST API (docs/fhir.md) on this service's HTTP port: its own resources in process,
  // the plans' and the visits' from the planning and progress services with the caller's token.
  static FhirRestSettings FhirRestFrom(const Config& config) {
    const std::string own = "/physio.assessment.v1.AssessmentService/";
    const auto planning = MakePeerChannel(config.Get("planning-addr"), PeerTlsFrom(config));
    const auto progress = MakePeerChannel(config.Get("progress-addr"), PeerTlsFrom(config));
    const FhirRestRoute search{nullptr, own + "SearchFhir"};
    const FhirRestRoute plans{planning, "/physio.planning.v1.PlanningService/SearchFhir"};
    const FhirRestRoute visits{progress, "/physio.progress.v1.ProgressService/SearchFhir"};
    FhirRestSettings fhir;
    fhir.search = {{"QuestionnaireResponse", {search}}, {"Observation", {search, visits}}, {"Consent", {search}},
                   {"AuditEvent", {{nullptr, own + "SearchFhirAuditEvents"}}},
                   {"CarePlan", {plans}}, {"Goal", {plans}}, {"Encounter", {visits}}, {"Flag", {visits}}};
    fhir.create = {{"QuestionnaireResponse", {nullptr, own + "CreateFhirResource"}}};
    fhir.search_request = &pb::SearchFhirRequest::default_instance();
    fhir.search_response = &pb::SearchFhirResponse::default_instance();
    fhir.create_request = &pb::CreateFhirResourceRequest::default_instance();
    fhir.create_response = &pb::CreateFhirResourceResponse::default_instance();
    fhir.bulk = FhirRestSettings::BulkExport{own + "StartBulkExport", own + "GetBulkExportStatus", own + "GetBulkExportFile",
                                             own + "CancelBulkExport"};
    fhir.base_url = config.Get("fhir-base-url");
    return fhir;
  }
  static WebhookDestinationPolicy DestinationsFrom(const Config& config) {
    WebhookDestinationPolicy policy;
    const std::string allow_http = config.Get("webhook-allow-http");
    if (allow_http != "true" && allow_http != "false") throw std::invalid_argument("--webhook-allow-http is true or false");
    policy.allow_http = allow_http == "true";
    try {
      policy.allowed_networks = ParseIpNetworks(config.Get("webhook-allowed-networks"));
    } catch (const std::invalid_argument& error) {
      throw std::invalid_argument(std::string("webhook-allowed-networks: ") + error.what());
    }
    return policy;
  }
  static WebhookDispatchSettings DispatchSettingsFrom(const Config& config) {
    WebhookDispatchSettings settings;
    settings.senders = config.GetInt("webhook-senders");
    settings.per_subscription = std::max(1, config.GetInt("webhook-per-subscription-in-flight"));
    settings.poll = std::chrono::milliseconds(std::max(10, config.GetInt("webhook-poll-ms")));
    settings.retry_base = std::chrono::milliseconds(std::max(10, config.GetInt("webhook-retry-base-ms")));
    settings.retry_max = std::chrono::milliseconds(std::max(10, config.GetInt("webhook-retry-max-ms")));
    settings.give_up_after = std::chrono::seconds(config.GetInt("webhook-give-up-after-s"));
    settings.connect_timeout = std::chrono::milliseconds(config.GetInt("webhook-connect-timeout-ms"));
    settings.total_timeout = std::chrono::milliseconds(config.GetInt("webhook-timeout-ms"));
    settings.lease = std::chrono::seconds(config.GetInt("webhook-lease-s"));
    if (settings.lease < std::chrono::duration_cast<std::chrono::seconds>(settings.total_timeout) + std::chrono::seconds(2)) {
      throw std::invalid_argument("webhook-lease-s must exceed webhook-timeout-ms by 2 s at least (a send outlasting its "
                                  "lease would be sent twice)");
    }
    settings.ca_file = config.Get("webhook-ca-file");
    settings.destinations = DestinationsFrom(config);
    return settings;
  }
  static AssessmentSettings SettingsFrom(const Config& config) {
    AssessmentSettings settings;
    settings.intake_ttl = std::chrono::seconds(config.GetInt("intake-ttl-seconds"));
    settings.scoring.odi_max_unanswered = config.GetInt("odi-max-unanswered-sections");
    settings.red_flags.new_bilateral_leg_pain_days = config.GetInt("ces-new-bilateral-leg-pain-days");
    settings.red_flags.fracture_risk_age = config.GetInt("fracture-risk-age");
    settings.red_flags.new_fracture_episode_days = config.GetInt("fracture-new-episode-days");
    settings.red_flags.neuro.severe_motor_grade = config.GetInt("neuro-severe-motor-grade");
    settings.red_flags.neuro.new_deficit_days = config.GetInt("neuro-new-deficit-days");
    settings.fhir_patient_identifier_system = config.Get("fhir-patient-identifier-system");
    settings.webhook_destinations = DestinationsFrom(config);
    settings.webhook_max_subscriptions = config.GetInt("webhook-max-subscriptions");
    settings.webhook_secret_overlap = std::chrono::seconds(config.GetInt("webhook-secret-overlap-s"));
    settings.webhook_replay_max_events = config.GetInt("webhook-replay-max-events");
    settings.bulk_export_retention = std::chrono::seconds(std::max(60, config.GetInt("bulk-export-retention-s")));
    settings.bulk_export_max_jobs = std::max(1, config.GetInt("bulk-export-max-jobs"));
    settings.scoring.fabq_work_elevated_above = config.GetInt("fabq-work-elevated-above");
    settings.classification.modulation_min_nprs = config.GetInt("phase-modulation-min-nprs");
    settings.classification.modulation_above_odi = config.GetInt("phase-modulation-above-odi");
    settings.classification.optimisation_max_nprs = config.GetInt("phase-optimisation-max-nprs");
    settings.classification.optimisation_max_odi = config.GetInt("phase-optimisation-max-odi");
    settings.classification.stabilisation_min_criteria = config.GetInt("stabilisation-min-criteria");
    auto& irritability = settings.classification.irritability;
    irritability.high_after_minimal_above_minutes = config.GetInt("irritability-high-after-minimal-above-minutes");
    irritability.high_above_minutes = config.GetInt("irritability-high-above-minutes");
    irritability.low_within_minutes = config.GetInt("irritability-low-within-minutes");
    return settings;
  }
  Config config_;
  ServiceRuntime runtime_;
  AssessmentSettings settings_;
  RedisIdempotency session_idempotency_;
  RedisIntakeStore intakes_;
  PgAssessmentRecords records_;
  PgAuditLog audit_log_;
  PgWebhookRecords webhooks_;
  PgBulkExportJobs bulk_exports_;
  PgAssessmentExportSource export_source_;
  AssessmentCache cache_;
  AssessmentApp app_;
  AssessmentGrpc grpc_;
  std::unique_ptr<WebhookDispatcher> dispatcher_;
  std::unique_ptr<BulkExportWorker> export_worker_;
};
}  // namespace

std::vector<ConfigKey> AssessmentConfigKeys() {
  auto keys = CommonConfigKeys("127.0.0.1:50051");
  keys.push_back({"intake-ttl-seconds", "86400", "idle time after which an unfinished intake session expires"});
  keys.push_back({"assessment-cache-ttl-seconds", "60",
                  "how long an assessment may stay in the Redis cache GetAssessment reads (0: no cache, every read "
                  "from PostgreSQL)"});
  keys.push_back({"planning-addr", "127.0.0.1:50052",
                  "address of the planning service (the FHIR REST API's CarePlan and Goal)", SettingKind::kPeerAddress});
  keys.push_back({"progress-addr", "127.0.0.1:50053",
                  "address of the progress service (the FHIR REST API's Encounter, Flag and visit Observations)",
                  SettingKind::kPeerAddress});
  keys.push_back({"bulk-export-retention-s", "3600",
                  "how long a FHIR bulk export's files are kept after it starts (at least 60); then deleted"});
  keys.push_back({"bulk-export-max-jobs", "5", "FHIR bulk exports a tenant may have open at once"});
  keys.push_back({"fhir-base-url", "",
                  "the FHIR REST API's base URL in links and Location headers (behind a proxy); empty: from the "
                  "request's Host, http(s)://<host>/fhir/R4"});
  keys.push_back({"fhir-patient-identifier-system", "https://physio-backend.org/fhir/patient-id",
                  "identifier system of patient references in FHIR exports and imports"});
  keys.push_back({"ces-new-bilateral-leg-pain-days", "42",
                  "pain below the knee in both legs in an episode at most this many days old (or of unknown length) "
                  "is suspected cauda equina, an emergency (GIRFT 2023; design default: the acute phase)"});
  keys.push_back({"fracture-risk-age", "70",
                  "age over this counts as a fracture risk factor in the red-flag screen (NICE CKS; Finucane 2020)"});
  keys.push_back({"fracture-new-episode-days", "42",
                  "two fracture risk factors without trauma or a sudden onset are urgent in an episode at most this "
                  "many days old (or of unknown length), monitored after it (design default; Royal Osteoporosis "
                  "Society 2022)"});
  keys.push_back({"neuro-severe-motor-grade", "3",
                  "an MRC grade at or below this is a severe motor deficit (at L4 or L5 a foot drop); new, it is an "
                  "urgent spinal surgical opinion (docs/clinical-rules.md)"});
  keys.push_back({"neuro-new-deficit-days", "84",
                  "a severe motor deficit on a side whose leg symptoms began at most this many days ago (or at an "
                  "unknown time) is new (design default, the safer side of the usual 6-12 weeks)"});
  keys.push_back({"odi-max-unanswered-sections", "2",
                  "ODI validity policy: most sections that may be declined (UNVERIFIED in the literature)"});
  keys.push_back({"phase-modulation-min-nprs", "7", "pain at or above which the phase is symptom modulation (UNVERIFIED default)"});
  keys.push_back({"phase-modulation-above-odi", "40", "ODI percent above which the phase is symptom modulation (UNVERIFIED default)"});
  keys.push_back({"phase-optimisation-max-nprs", "3", "pain at or below which (with low ODI) the phase is function optimisation (UNVERIFIED default)"});
  keys.push_back({"phase-optimisation-max-odi", "20", "ODI percent at or below which (with low pain) the phase is function optimisation (UNVERIFIED default)"});
  keys.push_back({"stabilisation-min-criteria", "3", "stabilisation subgroup: criteria of 4 needed (UNVERIFIED default)"});
  keys.push_back({"irritability-high-after-minimal-above-minutes", "30",
                  "irritability is high when minimal activity provokes pain that takes longer than this to settle (design default)"});
  keys.push_back({"irritability-high-above-minutes", "120",
                  "irritability is high when pain takes longer than this to settle, whatever provoked it (design default)"});
  keys.push_back({"irritability-low-within-minutes", "10",
                  "irritability is low when only substantial activity provokes pain that settles within this (design default)"});
  keys.push_back({"fabq-work-elevated-above", "29",
                  "FABQ work subscale above which beliefs are flagged elevated (29 or 34 in the literature)"});
  // Webhooks (docs/integration.md).
  keys.push_back({"webhook-senders", "4", "webhook sender threads of this replica (0: it queues deliveries, others send)"});
  keys.push_back({"webhook-per-subscription-in-flight", "2", "deliveries of one subscription sent at once by one replica"});
  keys.push_back({"webhook-poll-ms", "200", "how often new events are looked for, and an idle sender looks for due deliveries (the others wait to be woken)"});
  keys.push_back({"webhook-retry-base-ms", "5000", "first retry delay; doubled each failure, with up to 20% jitter"});
  keys.push_back({"webhook-retry-max-ms", "3600000", "longest delay between two retries"});
  keys.push_back({"webhook-give-up-after-s", "86400",
                  "a delivery failing this long is given up and its subscription disabled (at least a day: receivers "
                  "down overnight lose nothing)"});
  keys.push_back({"webhook-connect-timeout-ms", "5000", "connecting to a receiver"});
  keys.push_back({"webhook-timeout-ms", "10000", "a whole delivery, however slowly the receiver answers"});
  keys.push_back({"webhook-lease-s", "60", "a delivery's lease; another replica sends it after this if this one died"});
  keys.push_back({"webhook-allow-http", "false", "allow plain http:// receiver URLs (development and tests only)"});
  keys.push_back({"webhook-allowed-networks", "",
                  "private, loopback or link-local networks receivers may be in (comma-separated CIDRs); none by "
                  "default: server-side request forgery"});
  keys.push_back({"webhook-ca-file", "", "CA bundle receivers' certificates are verified with; empty: the system's"});
  keys.push_back({"webhook-max-subscriptions", "50", "webhook subscriptions one tenant may have"});
  keys.push_back({"webhook-secret-overlap-s", "86400", "how long a rotated-out secret still signs deliveries by default"});
  keys.push_back({"webhook-replay-max-events", "10000", "the most events one ReplayWebhookDeliveries may queue"});
  return keys;
}

std::unique_ptr<RunningService> StartAssessmentService(const Config& config) {
  return std::make_unique<AssessmentServer>(config);
}

}  // namespace physio::assessment
