// The gRPC adapter: identity, audit and status mapping via the CallPipeline; the
// use cases live in AssessmentApp.
#include "assessment_server.h"

#include "assessment_app.h"
#include "assessment_roles.h"
#include "physio/assessment/v1/assessment.grpc.pb.h"
#include "physio/server/grpc_context.h"
#include "physio/server/service_runtime.h"

std::vector<physio::Migration> assessment_service_migrations();

namespace physio::assessment {

namespace {
class AssessmentGrpc final : public pb::AssessmentService::CallbackService {
 public:
  AssessmentGrpc(AssessmentApp& app, ServiceRuntime& runtime) : app_(app), runtime_(runtime) {}

  PHYSIO_UNARY_RPC(StartIntake)
  PHYSIO_UNARY_RPC(SubmitIntakeAnswers)
  PHYSIO_UNARY_RPC(GetIntake)
  PHYSIO_UNARY_RPC(CompleteIntake)
  PHYSIO_UNARY_RPC(GetAssessment)
  PHYSIO_UNARY_RPC_NO_PATIENT_DATA(ScoreInstrument)
  PHYSIO_UNARY_RPC(CreateAssessment)
  PHYSIO_UNARY_RPC(ListAssessments)
  PHYSIO_UNARY_RPC(RecordRedFlagJudgement)
  PHYSIO_UNARY_RPC(ExportAssessmentFhir)
  PHYSIO_UNARY_RPC(ImportFhirQuestionnaireResponse)
  PHYSIO_UNARY_RPC(EnrolPatient)
  PHYSIO_UNARY_RPC(TransferPatient)
  PHYSIO_UNARY_RPC(GetPatientClinics)
  PHYSIO_UNARY_RPC_CONSENT(RecordConsent)
  PHYSIO_UNARY_RPC(ListConsents)
  PHYSIO_UNARY_RPC_AUDIT_TRAIL(ListAuditEvents)
  PHYSIO_UNARY_RPC_AUDIT_TRAIL(ExportAuditEvents)
  PHYSIO_WATCH_EVENTS_RPC()

 private:
  AssessmentApp& app_;
  ServiceRuntime& runtime_;
};

class AssessmentServer final : public RunningService {
 public:
  explicit AssessmentServer(const Config& config)
      : config_(config),
        runtime_(config_, kSchema, assessment_service_migrations(), {"physio.assessment.v1.AssessmentService"}, kAssessmentRoles),
        settings_(SettingsFrom(config_)),
        session_idempotency_(runtime_.redis()),
        intakes_(runtime_.redis(), settings_.intake_ttl, settings_.completed_intake_ttl),
        records_(runtime_.pg()),
        audit_log_(runtime_.pg()),
        app_({session_idempotency_, intakes_, records_, &audit_log_}, settings_),
        grpc_(app_, runtime_) {
    runtime_.Serve(&grpc_);
  }
  ~AssessmentServer() override { runtime_.Shutdown(); }
  int port() const override { return runtime_.port(); }
  int http_port() const override { return runtime_.http_port(); }
  int metrics_port() const override { return runtime_.metrics_port(); }
  void AnnounceShutdown() override { runtime_.AnnounceShutdown(); }
  void Shutdown() override { runtime_.Shutdown(); }

 private:
  static AssessmentSettings SettingsFrom(const Config& config) {
    AssessmentSettings settings;
    settings.intake_ttl = std::chrono::seconds(config.GetInt("intake-ttl-seconds"));
    settings.scoring.odi_max_unanswered = config.GetInt("odi-max-unanswered-sections");
    settings.red_flags.new_bilateral_leg_pain_days = config.GetInt("ces-new-bilateral-leg-pain-days");
    settings.red_flags.fracture_risk_age = config.GetInt("fracture-risk-age");
    settings.red_flags.new_fracture_episode_days = config.GetInt("fracture-new-episode-days");
    settings.fhir_patient_identifier_system = config.Get("fhir-patient-identifier-system");
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
  AssessmentApp app_;
  AssessmentGrpc grpc_;
};
}  // namespace

std::vector<ConfigKey> AssessmentConfigKeys() {
  auto keys = CommonConfigKeys("127.0.0.1:50051");
  keys.push_back({"intake-ttl-seconds", "86400", "idle time after which an unfinished intake session expires"});
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
  return keys;
}

std::unique_ptr<RunningService> StartAssessmentService(const Config& config) {
  return std::make_unique<AssessmentServer>(config);
}

}  // namespace physio::assessment
