#include "assessment_app.h"

#include <google/protobuf/util/time_util.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>

#include "physio/common/error.h"
#include "physio/common/ids.h"
#include "physio/common/no_blocking.h"
#include "physio/common/stored_message.h"
#include "physio/common/validation.h"
#include "fhir_audit.h"
#include "fhir_export.h"
#include "fhir_import.h"
#include "intake_sections.h"

namespace physio::assessment {

namespace cpb = physio::common::v1;
using google::protobuf::util::TimeUtil;

namespace {
constexpr auto kStoreBudget = std::chrono::seconds(5);

void ValidateClinicId(std::string_view field, const std::string& clinic) {
  if (!IsClinicId(clinic)) ThrowInvalidArgument(field, "must be 1-64 characters of [A-Za-z0-9._:-]");
}

// The caller may place patients at `clinic`: an organisation-wide grant, or one of their clinics.
void RequireWorksAt(const CallContext& ctx, std::string_view field, const std::string& clinic) {
  if (ctx.all_clinics || ctx.clinics.contains(clinic)) return;
  throw Error(ErrorCode::kPermissionDenied, std::string(field) + ": not a clinic you work at");
}

// Where a patient seen for the first time is enrolled: the clinic the request names (one the
// caller works at), else the caller's only clinic; "" when neither (an organisation-wide caller
// naming none, a patient starting their own intake): the patient stays unassigned.
std::string ClinicForNewPatient(const CallContext& ctx, const std::string& requested) {
  if (!requested.empty()) {
    ValidateClinicId("clinic_id", requested);
    if (!IsStaff(ctx)) ThrowInvalidArgument("clinic_id", "is set by staff only");
    RequireWorksAt(ctx, "clinic_id", requested);
    return requested;
  }
  if (IsStaff(ctx) && !ctx.all_clinics && ctx.clinics.size() == 1) return *ctx.clinics.begin();
  return "";
}

void ValidateReasonText(std::string_view field, const std::string& reason, bool required) {
  if (required && reason.empty()) ThrowInvalidArgument(field, "is required (1-500 characters)");
  if (required && IsBlank(reason)) ThrowInvalidArgument(field, "must not be blank (it holds only white space)");
  if (reason.size() > 500) ThrowInvalidArgument(field, "must be at most 500 characters");
}

std::optional<InstrumentKind> KindOf(cpb::Instrument instrument) {
  switch (instrument) {
    case cpb::INSTRUMENT_NPRS: return InstrumentKind::kNprs;
    case cpb::INSTRUMENT_ODI: return InstrumentKind::kOdi;
    case cpb::INSTRUMENT_RMDQ: return InstrumentKind::kRmdq;
    case cpb::INSTRUMENT_START_BACK: return InstrumentKind::kStartBack;
    case cpb::INSTRUMENT_FABQ: return InstrumentKind::kFabq;
    case cpb::INSTRUMENT_PSFS: return InstrumentKind::kPsfs;
    default: return std::nullopt;
  }
}

InstrumentKind ValidatedKind(const std::string& field, int instrument) {
  auto kind = cpb::Instrument_IsValid(instrument) ? KindOf(static_cast<cpb::Instrument>(instrument)) : std::nullopt;
  if (!kind) ThrowInvalidArgument(field, "must be a known instrument (not INSTRUMENT_UNSPECIFIED)");
  return *kind;
}

ItemAnswer ValidatedAnswer(const std::string& field, const cpb::InstrumentAnswer& answer) {
  ItemAnswer item{ValidatedKind(field + ".instrument", answer.instrument()), answer.item_id(), answer.value(),
                  answer.declined(), answer.text()};
  ValidateAnswer(field, item);
  return item;
}

std::vector<ItemAnswer> DomainAnswers(const google::protobuf::RepeatedPtrField<cpb::InstrumentAnswer>& answers) {
  std::vector<ItemAnswer> result;
  for (const auto& answer : answers) {
    if (auto kind = KindOf(answer.instrument())) {
      result.push_back({*kind, answer.item_id(), answer.value(), answer.declined(), answer.text()});
    }
  }
  return result;
}

cpb::InstrumentScore ToProto(const InstrumentResult& result) {
  cpb::InstrumentScore score;
  score.set_instrument(ProtoOf(result.instrument));
  score.set_score(result.score);
  score.set_raw_sum(result.raw_sum);
  score.set_answered_items(result.answered_items);
  score.set_declined_items(result.declined_items);
  score.set_band(result.band);
  score.set_mcid(result.mcid);
  for (const auto& subscore : result.subscores) {
    auto* out = score.add_subscores();
    out->set_name(subscore.name);
    out->set_value(subscore.value);
  }
  for (const auto& flag : result.flags) score.add_flags(flag);
  return score;
}

}  // namespace

pb::IntakeSession AssessmentApp::WithProgress(pb::IntakeSession session) const {
  const auto domain_answers = DomainAnswers(session.answers());
  for (auto instrument : session.instruments()) {
    const InstrumentKind kind = *KindOf(static_cast<cpb::Instrument>(instrument));
    auto completeness = CompletenessOf(kind, domain_answers, settings_.scoring);
    auto* progress = session.add_progress();
    progress->set_instrument(ProtoOf(kind));
    progress->set_answered_items(completeness.answered_items);
    progress->set_total_items(completeness.total_items);
    progress->set_complete(completeness.complete);
  }
  return session;
}

namespace {
// Clinic scoping: a session of another clinic's patient is not found (checked before any change).
void RequireIntakePatientInScope(const CallContext& ctx, const std::string& patient_id) {
  if (IsStaff(ctx) && !SharesClinicWith(ctx, patient_id)) {
    throw Error(ErrorCode::kNotFound, "intake session not found or expired");
  }
}
}  // namespace

pb::IntakeSession AssessmentApp::ReadIntakeInScope(const CallContext& ctx, const std::string& session_id) {
  pb::IntakeSession session = intakes_.Read(ctx, session_id, ctx.DeadlineCappedAt(kStoreBudget));
  intake_patients_.Remember(ctx.tenant, session_id, session.patient_id());
  RequireIntakePatientInScope(ctx, session.patient_id());
  return session;
}

void AssessmentApp::CheckIntakeInScope(const CallContext& ctx, const std::string& session_id) {
  const auto known = intake_patients_.Find(ctx.tenant, session_id);
  if (!known) {
    ReadIntakeInScope(ctx, session_id);
    return;
  }
  // The store's own checks (expired, completed, never existed) come with the change itself.
  RequireIntakePatientInScope(ctx, *known);
}

pb::IntakeSession AssessmentApp::LoadIntake(const CallContext& ctx, const std::string& session_id) {
  return WithProgress(ReadIntakeInScope(ctx, session_id));
}

void AssessmentApp::EnrolIfUnassigned(const CallContext& ctx, const std::string& patient_id, const std::string& clinic,
                                      const std::string& request_id, Clock::time_point deadline) {
  pb::EnrolPatientRequest as_request;  // what the idempotency record fingerprints
  as_request.set_patient_id(patient_id);
  as_request.set_clinic_id(clinic);
  IdempotentWrite<pb::EnrolPatientResponse>(
      records_, deadline, {kSchema, ctx.tenant, ctx.principal, "EnrolOnFirstVisit", request_id}, as_request,
      [&](AssessmentWriter& writer) {
        if (writer.LockClinics(ctx.tenant, patient_id).empty()) {
          writer.AddClinic(ctx.tenant, patient_id, clinic, ctx.principal, "first seen at this clinic");
        }
        return pb::EnrolPatientResponse();
      });
  ForgetPatientReach(ctx, patient_id);
}

pb::EnrolPatientResponse AssessmentApp::EnrolPatient(const CallContext& ctx, const pb::EnrolPatientRequest& request,
                                                     AuditTarget& audit) {
  ValidateRequestId("request_id", request.request_id());
  ValidateOpaqueId("patient_id", request.patient_id());
  ValidateClinicId("clinic_id", request.clinic_id());
  ValidateReasonText("reason", request.reason(), false);
  audit.patient_id = request.patient_id();
  RequireWorksAt(ctx, "clinic_id", request.clinic_id());
  // The call pipeline has checked that the caller reaches the patient (shares a clinic, or none yet).
  IdempotentWrite<pb::EnrolPatientResponse>(
      records_, ctx.DeadlineCappedAt(kStoreBudget), {kSchema, ctx.tenant, ctx.principal, "EnrolPatient", request.request_id()},
      request, [&](AssessmentWriter& writer) {
        if (!writer.LockClinics(ctx.tenant, request.patient_id()).contains(request.clinic_id())) {
          writer.AddClinic(ctx.tenant, request.patient_id(), request.clinic_id(), ctx.principal, request.reason());
        }
        return pb::EnrolPatientResponse();
      });
  ForgetPatientReach(ctx, request.patient_id());
  pb::EnrolPatientResponse response;
  *response.mutable_clinics() =
      records_.PatientClinics(ctx.tenant, request.patient_id(), ctx.DeadlineCappedAt(kStoreBudget));
  return response;
}

pb::TransferPatientResponse AssessmentApp::TransferPatient(const CallContext& ctx,
                                                           const pb::TransferPatientRequest& request, AuditTarget& audit) {
  ValidateRequestId("request_id", request.request_id());
  ValidateOpaqueId("patient_id", request.patient_id());
  ValidateClinicId("from_clinic_id", request.from_clinic_id());
  ValidateClinicId("to_clinic_id", request.to_clinic_id());
  if (request.from_clinic_id() == request.to_clinic_id()) ThrowInvalidArgument("to_clinic_id", "must differ from from_clinic_id");
  ValidateReasonText("reason", request.reason(), true);
  audit.patient_id = request.patient_id();
  // The clinic that lets the patient go decides (or an organisation-wide caller).
  RequireWorksAt(ctx, "from_clinic_id", request.from_clinic_id());
  IdempotentWrite<pb::TransferPatientResponse>(
      records_, ctx.DeadlineCappedAt(kStoreBudget),
      {kSchema, ctx.tenant, ctx.principal, "TransferPatient", request.request_id()}, request,
      [&](AssessmentWriter& writer) {
        const auto clinics = writer.LockClinics(ctx.tenant, request.patient_id());
        if (!clinics.contains(request.from_clinic_id())) {
          throw Error(ErrorCode::kFailedPrecondition, "from_clinic_id: the patient is not enrolled there");
        }
        writer.RemoveClinic(ctx.tenant, request.patient_id(), request.from_clinic_id(), ctx.principal, request.reason());
        if (!clinics.contains(request.to_clinic_id())) {
          writer.AddClinic(ctx.tenant, request.patient_id(), request.to_clinic_id(), ctx.principal, request.reason());
        }
        return pb::TransferPatientResponse();
      });
  ForgetPatientReach(ctx, request.patient_id());
  pb::TransferPatientResponse response;
  *response.mutable_clinics() =
      records_.PatientClinics(ctx.tenant, request.patient_id(), ctx.DeadlineCappedAt(kStoreBudget));
  return response;
}

pb::GetPatientClinicsResponse AssessmentApp::GetPatientClinics(const CallContext& ctx,
                                                               const pb::GetPatientClinicsRequest& request,
                                                               AuditTarget& audit) {
  ValidateOpaqueId("patient_id", request.patient_id());
  RequirePatientAccess(ctx, request.patient_id());
  audit.patient_id = request.patient_id();
  pb::GetPatientClinicsResponse response;
  *response.mutable_clinics() =
      records_.PatientClinics(ctx.tenant, request.patient_id(), ctx.DeadlineCappedAt(kStoreBudget));
  return response;
}

namespace {
// The latest record of each kind (and platform), sorted by kind then platform.
std::vector<pb::ConsentRecord> CurrentConsents(const std::vector<pb::ConsentRecord>& history) {
  std::map<std::pair<int, std::string>, pb::ConsentRecord> latest;
  for (const auto& record : history) latest[{record.kind(), record.platform()}] = record;
  std::vector<pb::ConsentRecord> out;
  for (auto& [key, record] : latest) out.push_back(std::move(record));
  return out;
}

std::string PrimaryRole(const CallContext& ctx) {
  for (Role role : {Role::kPatient, Role::kClinician, Role::kIntegrator, Role::kService}) {
    if (ctx.HasRole(role)) return RoleName(role);
  }
  return "unknown";
}
}  // namespace

pb::RecordConsentResponse AssessmentApp::RecordConsent(const CallContext& ctx, const pb::RecordConsentRequest& request,
                                                       AuditTarget& audit) {
  ValidateRequestId("request_id", request.request_id());
  ValidateOpaqueId("patient_id", request.patient_id());
  if (request.kind() != pb::CONSENT_KIND_TREATMENT && request.kind() != pb::CONSENT_KIND_MANIPULATION &&
      request.kind() != pb::CONSENT_KIND_DATA_SHARING) {
    ThrowInvalidArgument("kind", "must be CONSENT_KIND_TREATMENT, CONSENT_KIND_MANIPULATION or CONSENT_KIND_DATA_SHARING");
  }
  if (request.decision() != pb::CONSENT_DECISION_GRANTED && request.decision() != pb::CONSENT_DECISION_WITHDRAWN) {
    ThrowInvalidArgument("decision", "must be CONSENT_DECISION_GRANTED or CONSENT_DECISION_WITHDRAWN");
  }
  if (request.kind() == pb::CONSENT_KIND_DATA_SHARING) {
    if (!IsClinicId(request.platform())) {
      ThrowInvalidArgument("platform", "names the platform shared with: 1-64 characters of [A-Za-z0-9._:-]");
    }
  } else if (!request.platform().empty()) {
    ThrowInvalidArgument("platform", "is for CONSENT_KIND_DATA_SHARING only");
  }
  ValidateReasonText("note", request.note(), false);
  audit.patient_id = request.patient_id();
  RequirePatientAccess(ctx, request.patient_id());
  const bool granting = request.decision() == pb::CONSENT_DECISION_GRANTED;
  if (ctx.HasRole(Role::kPatient) && granting && request.kind() != pb::CONSENT_KIND_DATA_SHARING) {
    // Informed consent to treatment or manipulation is obtained by a clinician, who records it;
    // a patient may grant or withdraw sharing, and withdraw any consent, themselves.
    throw Error(ErrorCode::kPermissionDenied,
                "kind: consent to treatment or manipulation is recorded by the clinician who obtained it; a "
                "patient may withdraw it, or grant or withdraw sharing");
  }
  if (granting && request.kind() == pb::CONSENT_KIND_DATA_SHARING && !ctx.HasRole(Role::kPatient) &&
      request.platform() == ctx.platform) {
    throw Error(ErrorCode::kPermissionDenied,
                "platform: a platform's staff cannot record the patient's consent to sharing with their own platform; "
                "the patient or the patient's clinic records it");
  }
  pb::RecordConsentResponse response = IdempotentWrite<pb::RecordConsentResponse>(
      records_, ctx.DeadlineCappedAt(kStoreBudget),
      {kSchema, ctx.tenant, ctx.principal, "RecordConsent", request.request_id()}, request,
      [&](AssessmentWriter& writer) {
        pb::ConsentRecord record;
        record.set_patient_id(request.patient_id());
        record.set_kind(request.kind());
        record.set_platform(request.platform());
        record.set_decision(request.decision());
        record.set_recorded_by(ctx.principal);
        record.set_recorded_by_role(PrimaryRole(ctx));
        record.set_recorded_through_platform(ctx.platform);
        record.set_note(request.note());
        pb::RecordConsentResponse stored;
        *stored.mutable_consent() = writer.AddConsent(ctx.tenant, record);
        writer.AppendEvent(ctx.tenant, granting ? "EVENT_KIND_CONSENT_RECORDED" : "EVENT_KIND_CONSENT_WITHDRAWN",
                           request.patient_id(), stored.consent().consent_id());
        return stored;
      });
  // A sharing decision changes who reaches the patient: this process asks again (others within their cache time).
  ForgetPatientReach(ctx, request.patient_id());
  ctx.reach_checked_patient.clear();
  audit.resource_id = response.consent().consent_id();
  for (auto& record : CurrentConsents(records_.Consents(ctx.tenant, request.patient_id(), ctx.DeadlineCappedAt(kStoreBudget)))) {
    *response.add_current() = std::move(record);
  }
  return response;
}

pb::ListConsentsResponse AssessmentApp::ListConsents(const CallContext& ctx, const pb::ListConsentsRequest& request,
                                                     AuditTarget& audit) {
  ValidateOpaqueId("patient_id", request.patient_id());
  RequirePatientAccess(ctx, request.patient_id());
  audit.patient_id = request.patient_id();
  const auto history = records_.Consents(ctx.tenant, request.patient_id(), ctx.DeadlineCappedAt(kStoreBudget));
  pb::ListConsentsResponse response;
  for (auto& record : CurrentConsents(history)) *response.add_current() = std::move(record);
  for (const auto& record : history) *response.add_history() = record;
  return response;
}

AuditPage AssessmentApp::ReadAuditTrail(const CallContext& ctx, const pb::AuditQuery& query, int page_size,
                                        const std::string& page_token, AuditTarget& audit,
                                        std::string* next_page_token) {
  ValidateRange("page_size", page_size, 0, 500);
  if (page_size == 0) page_size = 100;
  AuditFilter filter;
  if (!query.patient_id().empty()) {
    ValidateOpaqueId("query.patient_id", query.patient_id());
    filter.patient_id = query.patient_id();
    audit.patient_id = query.patient_id();  // reading a patient's audit trail is an access of its own, recorded as such
  }
  if (!query.actor().empty()) {
    if (query.actor().size() > 255) ThrowInvalidArgument("query.actor", "must be at most 255 characters");
    filter.actor = query.actor();
  }
  if (!query.outcome().empty()) {
    static const std::set<std::string> kOutcomes = {
        "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
        "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
        "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"};
    if (!kOutcomes.contains(query.outcome())) ThrowInvalidArgument("query.outcome", "must be OK or a status code name such as NOT_FOUND");
    filter.outcome = query.outcome();
  }
  if (!query.service().empty()) {
    if (std::find(kAuditedSchemas.begin(), kAuditedSchemas.end(), query.service()) == kAuditedSchemas.end()) {
      ThrowInvalidArgument("query.service", "must be assessment, planning or progress");
    }
    filter.service = query.service();
  }
  auto time_of = [](const char* field, const google::protobuf::Timestamp& time) -> std::string {
    if (time.seconds() == 0 && time.nanos() == 0) return "";
    // Any time a Timestamp may hold (0001-01-01 to 9999-12-31): one before the trail began
    // matches nothing, or narrows nothing, as it would for any other record.
    if (time.seconds() < TimeUtil::kTimestampMinSeconds || time.seconds() > TimeUtil::kTimestampMaxSeconds ||
        time.nanos() < 0 || time.nanos() > 999999999) {
      ThrowInvalidArgument(field, "is not a valid time");
    }
    return TimeUtil::ToString(time);
  };
  filter.from_time = time_of("query.from_time", query.from_time());
  filter.to_time = time_of("query.to_time", query.to_time());
  if (!query.clinic_id().empty()) {
    ValidateClinicId("query.clinic_id", query.clinic_id());
    filter.clinics = {query.clinic_id()};
  }
  // An auditor whose token names clinics reads the records of those clinics' patients only; one
  // without (the tenant's compliance office) reads the whole tenant's trail.
  if (!ctx.all_clinics && !ctx.clinics.empty()) {
    if (!query.clinic_id().empty() && !ctx.clinics.contains(query.clinic_id())) {
      throw Error(ErrorCode::kPermissionDenied, "query.clinic_id: not a clinic your audit role covers");
    }
    if (query.clinic_id().empty()) filter.clinics = ctx.clinics;
  }
  if (audit_log_ == nullptr) throw Error(ErrorCode::kUnavailable, "the audit trail is not readable by this service");
  // The page token is bound to the tenant and the whole query: it cannot be replayed against another.
  std::string bound_to = ctx.tenant + "|" + query.SerializeAsString() + "|" + std::to_string(filter.clinics.size());
  for (const auto& clinic : filter.clinics) bound_to += "|" + clinic;
  const std::string scope = Sha256Hex(bound_to).substr(0, 32);
  const KeysetPosition after = DecodePageToken(page_token, scope);
  AuditPage page = audit_log_->List(ctx.tenant, filter, after, page_size, ctx.DeadlineCappedAt(kStoreBudget));
  if (page.next) *next_page_token = EncodePageToken(scope, *page.next->created_at, *page.next->id);
  return page;
}

pb::ListAuditEventsResponse AssessmentApp::ListAuditEvents(const CallContext& ctx,
                                                           const pb::ListAuditEventsRequest& request,
                                                           AuditTarget& audit) {
  pb::ListAuditEventsResponse response;
  AuditPage page = ReadAuditTrail(ctx, request.query(), request.page_size(), request.page_token(), audit,
                                  response.mutable_next_page_token());
  for (auto& event : page.events) *response.add_events() = std::move(event);
  return response;
}

pb::ExportAuditEventsResponse AssessmentApp::ExportAuditEvents(const CallContext& ctx,
                                                               const pb::ExportAuditEventsRequest& request,
                                                               AuditTarget& audit) {
  pb::ExportAuditEventsResponse response;
  AuditPage page = ReadAuditTrail(ctx, request.query(), request.page_size(), request.page_token(), audit,
                                  response.mutable_next_page_token());
  response.set_fhir_json(AuditEventBundle(page.events, settings_.fhir_patient_identifier_system));
  return response;
}

pb::StartIntakeResponse AssessmentApp::StartIntake(const CallContext& ctx, const pb::StartIntakeRequest& request,
                                                   AuditTarget& audit) {
  ValidateRequestId("request_id", request.request_id());
  ValidateOpaqueId("patient_id", request.patient_id());
  RequirePatientAccess(ctx, request.patient_id());
  audit.patient_id = request.patient_id();
  std::vector<InstrumentKind> instruments;
  for (int i = 0; i < request.instruments_size(); ++i) {
    const std::string field = "instruments[" + std::to_string(i) + "]";
    const InstrumentKind kind = ValidatedKind(field, request.instruments(i));
    if (std::find(instruments.begin(), instruments.end(), kind) != instruments.end()) {
      ThrowInvalidArgument(field, "listed twice");
    }
    instruments.push_back(kind);
  }
  if (instruments.empty()) instruments = kDefaultIntakeInstruments;
  const std::string clinic = ClinicForNewPatient(ctx, request.clinic_id());
  auto deadline = ctx.DeadlineCappedAt(kStoreBudget);
  if (!clinic.empty()) EnrolIfUnassigned(ctx, request.patient_id(), clinic, request.request_id(), deadline);
  auto response = IdempotentSessionWrite<pb::StartIntakeResponse>(
      session_idempotency_, {"asmt", ctx.tenant, ctx.principal, "StartIntake", request.request_id()}, request, deadline, [&] {
        const std::string session_id = NewId("intake");
        intakes_.Create(ctx, session_id, request.patient_id(), instruments, deadline);
        pb::StartIntakeResponse started;
        *started.mutable_session() = LoadIntake(ctx, session_id);
        return started;
      });
  audit.resource_id = response.session().session_id();
  return response;
}

AssessmentApp::PreparedSubmission AssessmentApp::PrepareSubmission(const CallContext& ctx,
                                                                   const pb::SubmitIntakeAnswersRequest& request,
                                                                   AuditTarget& audit) {
  ValidateRequestId("request_id", request.request_id());
  ValidateOpaqueId("session_id", request.session_id());
  audit.resource_id = request.session_id();
  if (request.answers().empty() && !request.has_history() && !request.has_examination() &&
      !request.has_red_flag_screen()) {
    ThrowInvalidArgument("answers", "at least one answer or section is required");
  }
  if (request.answers_size() > 200) ThrowInvalidArgument("answers", "at most 200 answers per submission");
  PreparedSubmission prepared;
  IntakeChanges& changes = prepared.changes;
  if (request.has_history()) {
    ValidateHistory("history", request.history());
    changes.history = &request.history();
  }
  if (request.has_examination()) {
    if (!ctx.HasRole(Role::kClinician) && !ctx.HasRole(Role::kIntegrator)) {
      throw Error(ErrorCode::kPermissionDenied, "examination: only clinicians record examination findings");
    }
    ValidateExamination("examination", request.examination());
    changes.examination = &request.examination();
  }
  if (request.has_red_flag_screen()) changes.red_flag_screen = &request.red_flag_screen();
  for (int i = 0; i < request.answers_size(); ++i) {
    changes.answers.push_back(ValidatedAnswer("answers[" + std::to_string(i) + "]", request.answers(i)));
  }
  if (IsClinicScoped(ctx)) CheckIntakeInScope(ctx, request.session_id());  // another clinic's session: NOT_FOUND, unchanged
  // Once per request id: the store records the outcome with the change, in the same script.
  prepared.submission = {{"asmt", ctx.tenant, ctx.principal, "SubmitIntakeAnswers", request.request_id()},
                         RequestFingerprint(request)};
  return prepared;
}

pb::SubmitIntakeAnswersResponse AssessmentApp::SubmitIntakeAnswers(const CallContext& ctx,
                                                                   const pb::SubmitIntakeAnswersRequest& request,
                                                                   AuditTarget& audit) {
  const PreparedSubmission prepared = PrepareSubmission(ctx, request, audit);
  pb::SubmitIntakeAnswersResponse response;
  *response.mutable_session() = WithProgress(intakes_.Submit(ctx, request.session_id(), prepared.changes,
                                                             prepared.submission, ctx.DeadlineCappedAt(kStoreBudget)));
  audit.patient_id = response.session().patient_id();
  return response;
}

bool AssessmentApp::StartSubmitIntakeAnswers(const CallContext& ctx, const pb::SubmitIntakeAnswersRequest& request,
                                             AuditTarget& audit,
                                             std::function<void(std::optional<pb::SubmitIntakeAnswersResponse>)> finish) {
  const PreparedSubmission prepared = PrepareSubmission(ctx, request, audit);
  return intakes_.SubmitAsync(
      ctx, request.session_id(), prepared.changes, prepared.submission, ctx.DeadlineCappedAt(kStoreBudget),
      [this, &audit, finish = std::move(finish)](std::optional<pb::IntakeSession> session) {
        std::optional<pb::SubmitIntakeAnswersResponse> response;
        if (session) {
          try {
            response.emplace();
            *response->mutable_session() = WithProgress(std::move(*session));
            audit.patient_id = response->session().patient_id();
          } catch (const std::exception&) {
            response.reset();  // the ordinary path replays it and reports what went wrong
          }
        }
        finish(std::move(response));
      });
}

pb::GetIntakeResponse AssessmentApp::GetIntake(const CallContext& ctx, const pb::GetIntakeRequest& request,
                                               AuditTarget& audit) {
  ValidateOpaqueId("session_id", request.session_id());
  audit.resource_id = request.session_id();
  pb::GetIntakeResponse response;
  *response.mutable_session() = LoadIntake(ctx, request.session_id());
  audit.patient_id = response.session().patient_id();
  return response;
}

pb::CompleteIntakeResponse AssessmentApp::CompleteIntake(const CallContext& ctx,
                                                         const pb::CompleteIntakeRequest& request, AuditTarget& audit) {
  ValidateRequestId("request_id", request.request_id());
  ValidateOpaqueId("session_id", request.session_id());
  audit.resource_id = request.session_id();
  if (IsClinicScoped(ctx)) CheckIntakeInScope(ctx, request.session_id());  // checked before the transaction holds a connection
  auto deadline = ctx.DeadlineCappedAt(kStoreBudget);
  auto response = IdempotentWrite<pb::CompleteIntakeResponse>(
      records_, deadline, {kSchema, ctx.tenant, ctx.principal, "CompleteIntake", request.request_id()}, request,
      [&](AssessmentWriter& writer) {
        pb::IntakeSession session = LoadIntake(ctx, request.session_id());
        if (session.status() != pb::INTAKE_STATUS_OPEN) {
          throw Error(ErrorCode::kFailedPrecondition,
                      "session_id: intake already completed as assessment " + session.assessment_id());
        }
        std::vector<InstrumentKind> instruments;
        for (auto instrument : session.instruments()) {
          instruments.push_back(*KindOf(static_cast<cpb::Instrument>(instrument)));
        }
        pb::Assessment draft;
        draft.set_patient_id(session.patient_id());
        draft.set_intake_session_id(session.session_id());
        *draft.mutable_answers() = session.answers();
        if (session.has_history()) *draft.mutable_history() = session.history();
        if (session.has_examination()) *draft.mutable_examination() = session.examination();
        if (session.has_red_flag_screen()) *draft.mutable_red_flag_screen() = session.red_flag_screen();
        pb::CompleteIntakeResponse completed;
        *completed.mutable_assessment() = StoreScoredAssessment(writer, ctx, std::move(draft), instruments);
        writer.AppendEvent(ctx.tenant, "EVENT_KIND_INTAKE_COMPLETED", completed.assessment().patient_id(),
                           completed.assessment().assessment_id());
        return completed;
      },
      [&](const pb::CompleteIntakeResponse& completed) { audit.patient_id = completed.assessment().patient_id(); });
  try {
    // The record is committed; closing the session is bookkeeping, and the unique
    // index keeps a second completion out even if this step fails.
    intakes_.MarkCompleted(ctx, request.session_id(), response.assessment().assessment_id(),
                           ctx.DeadlineCappedAt(kStoreBudget));
  } catch (const Error& e) {
    spdlog::warn("could not close intake session request_id={}: {}", ctx.request_id, e.what());
  }
  return response;
}

pb::GetAssessmentResponse AssessmentApp::GetAssessment(const CallContext& ctx,
                                                       const pb::GetAssessmentRequest& request, AuditTarget& audit) {
  pb::GetAssessmentResponse response;
  GetAssessment(ctx, request, audit, response);
  return response;
}

void AssessmentApp::GetAssessment(const CallContext& ctx, const pb::GetAssessmentRequest& request, AuditTarget& audit,
                                  pb::GetAssessmentResponse& response) {
  ValidateOpaqueId("assessment_id", request.assessment_id());
  audit.resource_id = request.assessment_id();
  response.Clear();
  const auto deadline = ctx.DeadlineCappedAt(kStoreBudget);
  std::optional<std::string> generation;
  bool cached = false;
  if (cache_ != nullptr) {
    try {
      if (auto lookup = cache_->Read(ctx, request.assessment_id(), deadline, response.mutable_assessment())) {
        generation = lookup->generation;
        cached = lookup->hit;
      }
    } catch (const Error& e) {
      // The cache is an optimisation: without Redis the record is read from PostgreSQL.
      spdlog::warn("assessment cache unavailable request_id={}: {}", ctx.request_id, e.what());
    }
  }
  if (!cached) {
    if (!records_.FindInto(ctx.tenant, request.assessment_id(), deadline, response.mutable_assessment())) {
      ThrowNotFound("assessment");
    }
    if (generation) {
      try {
        cache_->Fill(ctx, *generation, response.assessment(), deadline);
      } catch (const Error& e) {
        spdlog::warn("assessment cache fill failed request_id={}: {}", ctx.request_id, e.what());
      }
    }
  }
  if (!CanSeePatient(ctx, response.assessment().patient_id())) {
    response.Clear();  // never handed out: the call fails, and nothing of it stays in the response
    ThrowNotFound("assessment");
  }
  audit.patient_id = response.assessment().patient_id();
}

bool AssessmentApp::StartGetAssessment(const CallContext& ctx, const pb::GetAssessmentRequest& request,
                                       AuditTarget& audit, std::function<void(ServedBytes)> finish) {
  if (cache_ == nullptr) return false;
  ValidateOpaqueId("assessment_id", request.assessment_id());
  audit.resource_id = request.assessment_id();
  return cache_->ReadAsync(
      ctx, request.assessment_id(), ctx.DeadlineCappedAt(kStoreBudget),
      [&ctx, &audit, finish = std::move(finish)](std::optional<std::optional<AssessmentCache::Cached>> entry) {
        ServedBytes answer;
        if (entry && *entry) {
          try {
            NoBlockingScope no_blocking;  // a clinic not in memory is looked up by GetAssessment
            std::string patient_id((*entry)->patient_id);
            // Another patient's assessment reads as absent: GetAssessment says NOT_FOUND.
            if (CanSeePatient(ctx, patient_id)) {
              answer = std::make_shared<const std::string>(
                  WrapAsMessageField(pb::GetAssessmentResponse::kAssessmentFieldNumber, (*entry)->assessment));
              audit.patient_id = std::move(patient_id);
            }
          } catch (const std::exception&) {
            answer = nullptr;
          }
        }
        finish(std::move(answer));
      });
}

pb::Assessment AssessmentApp::StoreScoredAssessment(AssessmentWriter& writer, const CallContext& ctx, pb::Assessment draft,
                                                    const std::vector<InstrumentKind>& instruments) {
  pb::Assessment assessment = std::move(draft);
  assessment.set_assessment_id(NewId("asm"));
  const auto domain_answers = DomainAnswers(assessment.answers());
  std::vector<InstrumentResult> results;
  for (InstrumentKind kind : instruments) {
    results.push_back(Score(kind, domain_answers, settings_.scoring));
    *assessment.add_scores() = ToProto(results.back());
  }
  ClinicalFindings findings = FindingsOf(assessment.history(), assessment.examination());
  // The neurological examination's findings count in the screen: a new foot drop or a progressing
  // deficit is urgent even when the red-flag questions were not answered.
  const NeuroFindings neuro = AnalyseNeuro(NeuroExamOf(assessment.examination().neurological()), settings_.red_flags.neuro);
  if (assessment.has_red_flag_screen() || NeuroCallsForScreen(neuro)) {
    RedFlagAnswers answers = RedFlagAnswersWithHistory(assessment.red_flag_screen(), assessment.history());
    AddNeurologicalFindings(answers, neuro);
    *assessment.mutable_red_flags() =
        ProtoOf(ScreenRedFlags(answers, findings.age_years, findings.episode_duration_days, settings_.red_flags));
  } else {
    assessment.mutable_red_flags()->set_action(pb::RED_FLAG_ACTION_NOT_SCREENED);
  }
  *assessment.mutable_classification() = ProtoOf(Classify(findings, results, settings_.classification));
  *assessment.mutable_create_time() = TimeUtil::GetCurrentTime();
  assessment.set_created_by(ctx.principal);
  assessment.set_etag("v1");
  writer.Insert(ctx.tenant, assessment);
  writer.AppendEvent(ctx.tenant, "EVENT_KIND_ASSESSMENT_STORED", assessment.patient_id(), assessment.assessment_id());
  if (CallsForReferral(assessment.red_flags().action())) {
    writer.AppendEvent(ctx.tenant, "EVENT_KIND_RED_FLAG_RAISED", assessment.patient_id(), assessment.assessment_id());
  }
  return assessment;
}

pb::CreateAssessmentResponse AssessmentApp::CreateAssessment(const CallContext& ctx,
                                                             const pb::CreateAssessmentRequest& request,
                                                             AuditTarget& audit) {
  ValidateRequestId("request_id", request.request_id());
  ValidateOpaqueId("patient_id", request.patient_id());
  audit.patient_id = request.patient_id();
  if (request.answers().empty()) ThrowInvalidArgument("answers", "at least one answer is required");
  if (request.answers_size() > 500) ThrowInvalidArgument("answers", "at most 500 answers");
  // Instruments in order of first appearance; each must be complete, which Score enforces.
  std::vector<InstrumentKind> instruments;
  for (int i = 0; i < request.answers_size(); ++i) {
    ItemAnswer answer = ValidatedAnswer("answers[" + std::to_string(i) + "]", request.answers(i));
    if (std::find(instruments.begin(), instruments.end(), answer.instrument) == instruments.end()) {
      instruments.push_back(answer.instrument);
    }
  }
  if (request.has_history()) ValidateHistory("history", request.history());
  if (request.has_examination()) ValidateExamination("examination", request.examination());
  const std::string clinic = ClinicForNewPatient(ctx, request.clinic_id());
  auto response = IdempotentWrite<pb::CreateAssessmentResponse>(
      records_, ctx.DeadlineCappedAt(kStoreBudget),
      {kSchema, ctx.tenant, ctx.principal, "CreateAssessment", request.request_id()}, request,
      [&](AssessmentWriter& writer) {
        // A patient seen for the first time is enrolled at the clinic seeing them, with the assessment.
        if (!clinic.empty() && writer.LockClinics(ctx.tenant, request.patient_id()).empty()) {
          writer.AddClinic(ctx.tenant, request.patient_id(), clinic, ctx.principal, "first seen at this clinic");
        }
        pb::Assessment draft;
        draft.set_patient_id(request.patient_id());
        *draft.mutable_answers() = request.answers();
        if (request.has_history()) *draft.mutable_history() = request.history();
        if (request.has_examination()) *draft.mutable_examination() = request.examination();
        if (request.has_red_flag_screen()) *draft.mutable_red_flag_screen() = request.red_flag_screen();
        pb::CreateAssessmentResponse created;
        *created.mutable_assessment() = StoreScoredAssessment(writer, ctx, std::move(draft), instruments);
        return created;
      },
      [&](const pb::CreateAssessmentResponse& response) { audit.resource_id = response.assessment().assessment_id(); });
  if (!clinic.empty()) ForgetPatientReach(ctx, request.patient_id());
  return response;
}

pb::ListAssessmentsResponse AssessmentApp::ListAssessments(const CallContext& ctx,
                                                           const pb::ListAssessmentsRequest& request,
                                                           AuditTarget& audit) {
  ValidateOpaqueId("patient_id", request.patient_id());
  RequirePatientAccess(ctx, request.patient_id());
  audit.patient_id = request.patient_id();
  ValidateRange("page_size", request.page_size(), 0, 100);
  const int page_size = request.page_size() == 0 ? 20 : request.page_size();
  const KeysetPosition after = DecodePageToken(request.page_token(), request.patient_id());
  auto page = records_.ListForPatient(ctx.tenant, request.patient_id(), after, page_size,
                                     ctx.DeadlineCappedAt(kStoreBudget));
  pb::ListAssessmentsResponse response;
  for (auto& assessment : page.assessments) *response.add_assessments() = std::move(assessment);
  if (page.next) response.set_next_page_token(EncodePageToken(request.patient_id(), *page.next->created_at, *page.next->id));
  return response;
}

pb::ExportAssessmentFhirResponse AssessmentApp::ExportAssessmentFhir(const CallContext& ctx,
                                                                     const pb::ExportAssessmentFhirRequest& request,
                                                                     AuditTarget& audit) {
  pb::GetAssessmentRequest get;
  get.set_assessment_id(request.assessment_id());
  // Same roles, tenant scoping and patient rule as reading the assessment.
  auto assessment = GetAssessment(ctx, get, audit).assessment();
  pb::ExportAssessmentFhirResponse response;
  response.set_bundle_json(AssessmentToFhirBundle(assessment, settings_.fhir_patient_identifier_system));
  return response;
}

pb::ImportFhirQuestionnaireResponseResponse AssessmentApp::ImportFhirQuestionnaireResponse(
    const CallContext& ctx, const pb::ImportFhirQuestionnaireResponseRequest& request, AuditTarget& audit) {
  pb::ImportFhirQuestionnaireResponseResponse response;
  *response.mutable_assessment() = CreateAssessment(ctx, CreateRequestOfImport(request), audit).assessment();
  return response;
}

pb::CreateAssessmentRequest AssessmentApp::CreateRequestOfImport(const pb::ImportFhirQuestionnaireResponseRequest& request) const {
  ValidateRequestId("request_id", request.request_id());
  ValidateOpaqueId("patient_id", request.patient_id());
  if (request.resource_json().empty()) ThrowInvalidArgument("resource_json", "is required");
  pb::CreateAssessmentRequest create;
  // Its own idempotency ids: a CreateAssessment with the same request_id is another request.
  create.set_request_id("fhir." + Sha256Hex(request.request_id()).substr(0, 40));
  create.set_patient_id(request.patient_id());
  for (auto& answer : AnswersFromFhir(request.resource_json(), request.patient_id(),
                                      settings_.fhir_patient_identifier_system)) {
    *create.add_answers() = std::move(answer);
  }
  if (request.has_red_flag_screen()) *create.mutable_red_flag_screen() = request.red_flag_screen();
  return create;
}

bool AssessmentApp::AlreadyCreated(const CallContext& ctx, const pb::CreateAssessmentRequest& request) {
  return IdempotentReplay<pb::CreateAssessmentResponse>(
             records_, ctx.DeadlineCappedAt(kStoreBudget),
             {kSchema, ctx.tenant, ctx.principal, "CreateAssessment", request.request_id()}, request)
      .has_value();
}

pb::RecordRedFlagJudgementResponse AssessmentApp::RecordRedFlagJudgement(
    const CallContext& ctx, const pb::RecordRedFlagJudgementRequest& request, AuditTarget& audit) {
  ValidateRequestId("request_id", request.request_id());
  ValidateOpaqueId("assessment_id", request.assessment_id());
  audit.resource_id = request.assessment_id();
  if (request.etag().empty()) ThrowInvalidArgument("etag", "is required (the etag of the assessment as last read)");
  if (!pb::RedFlagAction_IsValid(request.action()) || request.action() == pb::RED_FLAG_ACTION_UNSPECIFIED ||
      request.action() == pb::RED_FLAG_ACTION_NOT_SCREENED) {
    ThrowInvalidArgument("action", "must be NONE, MONITOR, ROUTINE_REFERRAL, URGENT_REFERRAL or EMERGENCY_REFERRAL");
  }
  ValidateRequiredText("rationale", request.rationale(), 500);
  if (IsClinicScoped(ctx)) {
    // Another clinic's patient's assessment: not found, and unchanged (checked before the write).
    auto found = records_.Find(ctx.tenant, request.assessment_id(), ctx.DeadlineCappedAt(kStoreBudget));
    if (found && !SharesClinicWith(ctx, found->patient_id())) ThrowNotFound("assessment");
  }
  auto response = IdempotentWrite<pb::RecordRedFlagJudgementResponse>(
      records_, ctx.DeadlineCappedAt(kStoreBudget),
      {kSchema, ctx.tenant, ctx.principal, "RecordRedFlagJudgement", request.request_id()}, request,
      [&](AssessmentWriter& writer) {
        auto found = writer.FindForUpdate(ctx.tenant, request.assessment_id());
        if (!found) ThrowNotFound("assessment");
        pb::RecordRedFlagJudgementResponse recorded;
        pb::Assessment& assessment = *recorded.mutable_assessment();
        assessment = std::move(found->assessment);
        const long version = found->version;
        if (request.etag() != "v" + std::to_string(version)) {
          throw Error(ErrorCode::kAborted, "etag: the assessment changed since it was read; read it again");
        }
        // Lowering a computed emergency (e.g. suspected cauda equina) stays possible,
        // but only as an explicit, acknowledged decision.
        if (assessment.red_flags().action() == pb::RED_FLAG_ACTION_EMERGENCY_REFERRAL &&
            request.action() < pb::RED_FLAG_ACTION_EMERGENCY_REFERRAL && !request.acknowledge_computed_emergency()) {
          std::string concerns;
          for (const auto& line : ConcernSummaries(assessment.red_flags())) concerns += (concerns.empty() ? "" : "; ") + line;
          ThrowInvalidArgument("acknowledge_computed_emergency",
                               "must be true to lower the computed emergency referral (" + concerns + ")");
        }
        auto* judgement = assessment.mutable_clinician_red_flag_judgement();
        judgement->set_action(request.action());
        judgement->set_rationale(request.rationale());
        judgement->set_clinician(ctx.principal);
        *judgement->mutable_decide_time() = TimeUtil::GetCurrentTime();
        assessment.set_etag("v" + std::to_string(version + 1));
        writer.Replace(ctx.tenant, assessment, version + 1);
        if (cache_ != nullptr) {
          cache_->BumpGenerationBeforeCommit(ctx, request.assessment_id(), ctx.DeadlineCappedAt(kStoreBudget));
        }
        return recorded;
      },
      [&](const pb::RecordRedFlagJudgementResponse& response) { audit.patient_id = response.assessment().patient_id(); });
  // Also on a replayed retry: that is how a failed invalidation gets another chance.
  if (cache_ != nullptr) {
    cache_->InvalidateAfterCommit(ctx, request.assessment_id(), ctx.DeadlineCappedAt(kStoreBudget));
  }
  return response;
}

pb::ReassessPatientResponse AssessmentApp::ReassessPatient(const CallContext& ctx,
                                                           const pb::ReassessPatientRequest& request,
                                                           AuditTarget& audit) {
  ValidateRequestId("request_id", request.request_id());
  ValidateOpaqueId("previous_assessment_id", request.previous_assessment_id());
  if (!request.has_examination()) ThrowInvalidArgument("examination", "is required: the re-assessment's findings");
  ValidateExamination("examination", request.examination());
  ValidateRequiredText("reason", request.reason(), 500);
  if (request.answers_size() > 500) ThrowInvalidArgument("answers", "at most 500 answers");
  std::vector<InstrumentKind> remeasured;
  for (int i = 0; i < request.answers_size(); ++i) {
    const ItemAnswer answer = ValidatedAnswer("answers[" + std::to_string(i) + "]", request.answers(i));
    if (std::find(remeasured.begin(), remeasured.end(), answer.instrument) == remeasured.end()) {
      remeasured.push_back(answer.instrument);
    }
  }
  const auto deadline = ctx.DeadlineCappedAt(kStoreBudget);
  const PgIdempotencyKey key{kSchema, ctx.tenant, ctx.principal, "ReassessPatient", request.request_id()};
  if (auto replay = IdempotentReplay<pb::ReassessPatientResponse>(records_, deadline, key, request)) {
    audit.patient_id = replay->assessment().patient_id();
    audit.resource_id = replay->assessment().assessment_id();
    return *replay;
  }
  audit.resource_id = request.previous_assessment_id();
  // Another clinic's (or tenant's) patient's assessment reads as absent.
  auto previous = records_.Find(ctx.tenant, request.previous_assessment_id(), deadline);
  if (!previous || !CanSeePatient(ctx, previous->patient_id())) ThrowNotFound("assessment");
  audit.patient_id = previous->patient_id();

  pb::Assessment draft;
  draft.set_patient_id(previous->patient_id());
  draft.set_reassessment_of(previous->assessment_id());
  draft.set_reassessment_reason(request.reason());
  *draft.mutable_history() = previous->history();
  *draft.mutable_examination() = request.examination();
  // The earlier instruments in their order, a re-measured one with its new answers; then new ones.
  std::vector<InstrumentKind> instruments;
  for (const auto& answer : previous->answers()) {
    const InstrumentKind kind = ValidatedAnswer("previous answers", answer).instrument;
    if (std::find(instruments.begin(), instruments.end(), kind) == instruments.end()) instruments.push_back(kind);
    if (std::find(remeasured.begin(), remeasured.end(), kind) == remeasured.end()) *draft.add_answers() = answer;
  }
  for (const auto& answer : request.answers()) *draft.add_answers() = answer;
  for (const InstrumentKind kind : remeasured) {
    if (std::find(instruments.begin(), instruments.end(), kind) == instruments.end()) instruments.push_back(kind);
  }
  // A "yes" of either screen stays "yes" (proto3 merge keeps set booleans); the clinician's earlier
  // judgement is not carried: the screen is judged again on what is known now.
  if (previous->has_red_flag_screen() || request.has_red_flag_screen()) {
    *draft.mutable_red_flag_screen() = previous->red_flag_screen();
    draft.mutable_red_flag_screen()->MergeFrom(request.red_flag_screen());
  }
  auto response = IdempotentWrite<pb::ReassessPatientResponse>(
      records_, deadline, key, request,
      [&](AssessmentWriter& writer) {
        pb::ReassessPatientResponse reassessed;
        *reassessed.mutable_assessment() = StoreScoredAssessment(writer, ctx, draft, instruments);
        for (auto& change : ReassessmentChanges(*previous, reassessed.assessment())) {
          *reassessed.add_changes() = std::move(change);
        }
        return reassessed;
      },
      [&](const pb::ReassessPatientResponse& response) { audit.resource_id = response.assessment().assessment_id(); });
  audit.resource_id = response.assessment().assessment_id();
  return response;
}

pb::ScoreInstrumentResponse AssessmentApp::ScoreInstrument(const CallContext& /*ctx: scoring is the same for everyone*/,
                                                           const pb::ScoreInstrumentRequest& request,
                                                           AuditTarget& /*audit: no stored record is touched*/) {
  // Patients too: the progress service forwards a patient's own re-measure. Nothing is stored.
  const InstrumentKind kind = ValidatedKind("instrument", request.instrument());
  if (request.answers_size() > 200) ThrowInvalidArgument("answers", "at most 200 answers");
  std::vector<ItemAnswer> answers;
  for (int i = 0; i < request.answers_size(); ++i) {
    const std::string field = "answers[" + std::to_string(i) + "]";
    ItemAnswer answer = ValidatedAnswer(field, request.answers(i));
    if (answer.instrument != kind) ThrowInvalidArgument(field + ".instrument", "must match the request's instrument");
    answers.push_back(answer);
  }
  pb::ScoreInstrumentResponse response;
  *response.mutable_score() = ToProto(Score(kind, answers, settings_.scoring));
  return response;
}

}  // namespace physio::assessment
