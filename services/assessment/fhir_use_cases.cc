// The FHIR REST use cases of AssessmentApp (docs/fhir.md): read and search of the
// QuestionnaireResponses, Observations and Consents this service holds, search of the audit
// trail as AuditEvents, and the create (POST QuestionnaireResponse) integrations need. The
// resources are the exports' (fhir_export.cc, fhir_audit.cc) in their REST form; the search
// itself is libs/common's FhirSearch.
#include <google/protobuf/util/time_util.h>

#include <nlohmann/json.hpp>

#include <algorithm>

#include "assessment_app.h"
#include "fhir_audit.h"
#include "fhir_export.h"
#include "physio/common/error.h"
#include "physio/common/fhir.h"
#include "physio/common/fhir_search.h"
#include "physio/common/ids.h"
#include "physio/common/validation.h"

namespace physio::assessment {

using google::protobuf::util::TimeUtil;
using nlohmann::json;

namespace {
constexpr auto kStoreBudget = std::chrono::seconds(5);
// A search reads at most this many of the patient's assessments (newest first); older ones are
// reached by bulk export. docs/fhir.md says so.
constexpr int kMaxAssessmentsSearched = 1000;

}  // namespace

pb::SearchFhirResponse AssessmentApp::SearchFhir(const CallContext& ctx, const pb::SearchFhirRequest& request,
                                                 AuditTarget& audit) {
  PreparedFhirSearch prepared = PrepareFhirSearch(request, {"QuestionnaireResponse", "Observation", "Consent"});
  RequireSmartScope(ctx, request.resource_type(), false);
  const bool consents = request.resource_type() == "Consent";
  // Each store read has its own budget within the call's deadline: mapping a page of assessments to
  // FHIR takes CPU time between the reads (seconds under the sanitizers for 1,000 of them), which
  // must not leave a later read with nothing.
  const auto deadline = [&ctx] { return ctx.DeadlineCappedAt(kStoreBudget); };
  std::vector<json> candidates;
  std::string patient;
  if (!prepared.record_id.empty()) {
    // A read: the record behind the id, then its patient's access rules.
    std::optional<pb::Assessment> assessment;
    if (consents) {
      if (auto owner = records_.PatientOfConsent(ctx.tenant, prepared.record_id, deadline())) patient = *owner;
    } else if (prepared.record_id.rfind("asm_", 0) == 0) {
      assessment = records_.Find(ctx.tenant, prepared.record_id, deadline());
      if (assessment) patient = assessment->patient_id();
    }
    if (patient.empty() || !CanSeePatient(ctx, patient)) ThrowNotFound(request.resource_type() + "/" + request.id());
    audit.patient_id = patient;
    if (assessment) {
      audit.resource_id = assessment->assessment_id();
      candidates = AssessmentRestResources(*assessment, settings_.fhir_patient_identifier_system);
    }
  } else {
    patient = SearchedPatient(ctx, request.patient_id(), "patient_id");
    audit.patient_id = patient;
    if (!consents) {
      KeysetPosition after;
      for (int read = 0; read < kMaxAssessmentsSearched;) {
        auto page = records_.ListForPatient(ctx.tenant, patient, after, 100, deadline());
        for (const auto& assessment : page.assessments) {
          for (auto& resource : AssessmentRestResources(assessment, settings_.fhir_patient_identifier_system)) {
            candidates.push_back(std::move(resource));
          }
        }
        read += static_cast<int>(page.assessments.size());
        if (!page.next) break;
        after = *page.next;
      }
    }
  }
  if (consents) {
    for (const auto& record : records_.Consents(ctx.tenant, patient, deadline())) {
      candidates.push_back(ConsentToFhir(record, settings_.fhir_patient_identifier_system));
    }
  }
  return AnswerFhirSearch<pb::SearchFhirResponse>(prepared, request, std::move(candidates),
                                                  ctx.tenant + "|" + patient);
}

pb::SearchFhirAuditEventsResponse AssessmentApp::SearchFhirAuditEvents(
    const CallContext& ctx, const pb::SearchFhirAuditEventsRequest& request, AuditTarget& audit) {
  if (!request.id().empty()) {
    ThrowInvalidArgument("id", "AuditEvent is searched, not read by id (GET AuditEvent?patient=...)");
  }
  PreparedFhirSearch prepared = PrepareFhirSearch(request, {"AuditEvent"});
  RequireSmartScope(ctx, "AuditEvent", false);
  pb::AuditQuery query;
  if (!request.patient_id().empty()) query.set_patient_id(request.patient_id());
  // The date parameter narrows the query the store runs (so pages are full); the search then
  // applies every parameter to what comes back.
  for (const auto& parameter : request.parameters()) {
    if (parameter.name() != "date" || parameter.value().find(',') != std::string::npos) continue;
    std::string prefix = "eq", value = parameter.value();
    if (value.size() > 2 && std::isalpha(static_cast<unsigned char>(value[0]))) {
      prefix = value.substr(0, 2);
      value = value.substr(2);
    }
    const auto range = ParseFhirDate(value);
    if (!range) continue;  // FhirSearch refused it already
    // The trail's query takes the times a Timestamp holds: a bound past either end (a date of year
    // 1 in a zone east of UTC, of 9999 in one west) is that end, and the epoch itself (which would
    // read as no bound) is a microsecond before it. So a date before the trail began answers an empty
    // page at once, not page after empty page of the whole trail. The search still applies the
    // exact date to what comes back.
    auto set = [](google::protobuf::Timestamp* time, std::int64_t micros) {
      constexpr std::int64_t kFirst = TimeUtil::kTimestampMinSeconds * 1'000'000;
      constexpr std::int64_t kLast = TimeUtil::kTimestampMaxSeconds * 1'000'000;
      micros = std::clamp(micros, kFirst, kLast);
      *time = TimeUtil::MicrosecondsToTimestamp(micros == 0 ? -1 : micros);
    };
    if (prefix == "eq" || prefix == "ge") set(query.mutable_from_time(), range->begin);
    if (prefix == "gt" || prefix == "sa") set(query.mutable_from_time(), range->end);
    if (prefix == "eq" || prefix == "le") set(query.mutable_to_time(), range->end);
    if (prefix == "lt" || prefix == "eb") set(query.mutable_to_time(), range->begin);
  }
  std::string next;
  AuditPage page = ReadAuditTrail(ctx, query, prepared.count, request.cursor(), audit, &next);
  pb::SearchFhirAuditEventsResponse response;
  for (const auto& record : page.events) {
    json resource = AuditEventResource(record, settings_.fhir_patient_identifier_system);
    resource["meta"]["lastUpdated"] = resource.value("recorded", "");
    if (prepared.search.Matches(resource)) response.add_resources_json(resource.dump());
  }
  response.set_next_cursor(next);
  for (const auto& name : prepared.search.ignored()) response.add_ignored_parameters(name);
  return response;
}

pb::CreateFhirResourceResponse AssessmentApp::CreateFhirResource(const CallContext& ctx,
                                                                 const pb::CreateFhirResourceRequest& request,
                                                                 AuditTarget& audit) {
  if (request.resource_type() != "QuestionnaireResponse") {
    ThrowInvalidArgument("resource_type", "only QuestionnaireResponse can be created here");
  }
  RequireSmartScope(ctx, "QuestionnaireResponse", true);
  if (request.resource_json().empty()) ThrowInvalidArgument("resource_json", "is required");
  if (request.if_none_exist().size() > 512) ThrowInvalidArgument("if_none_exist", "at most 512 characters");
  // The patient its subject names (the import checks the subject against it again).
  const json resource = json::parse(request.resource_json(), nullptr, false);
  if (FhirString(resource, "resourceType") != "QuestionnaireResponse") {
    ThrowInvalidArgument("resource_json", "must be a FHIR QuestionnaireResponse (JSON)");
  }
  std::string patient;
  if (resource.contains("subject") && resource["subject"].is_object()) {
    const json& subject = resource["subject"];
    const std::string reference = FhirString(subject, "reference");
    if (reference.rfind("Patient/", 0) == 0) {
      patient = reference.substr(8);
    } else if (subject.contains("identifier") &&
               FhirString(subject["identifier"], "system") == settings_.fhir_patient_identifier_system) {
      patient = FhirString(subject["identifier"], "value");
    }
  }
  if (patient.empty() || !IsOpaqueId(patient)) {
    ThrowInvalidArgument("subject", "must reference the patient (Patient/<id>, or an identifier in " +
                                        settings_.fhir_patient_identifier_system + ")");
  }
  // Before anything is written: another clinic's patient is not found, another patient refused.
  RequirePatientAccess(ctx, patient);
  pb::ImportFhirQuestionnaireResponseRequest import;
  // If-None-Exist: the same query gives the same request id, so the import's idempotency answers
  // a repeat with the first result. Without it every POST is a new resource.
  import.set_request_id(request.if_none_exist().empty()
                            ? NewId("fhirpost")
                            : "fhir-ine." + Sha256Hex(ctx.tenant + "\n" + request.if_none_exist()).substr(0, 40));
  import.set_patient_id(patient);
  import.set_resource_json(request.resource_json());
  // Created by this call, or a repeat answered with the first result (two identical requests at
  // the same moment may both be told "created"; one resource is stored).
  const pb::CreateAssessmentRequest create = CreateRequestOfImport(import);
  bool repeat = false;
  pb::Assessment assessment;
  try {
    repeat = AlreadyCreated(ctx, create);
    assessment = CreateAssessment(ctx, create, audit).assessment();
  } catch (const Error& error) {
    // The request id derived from If-None-Exist was used for another resource.
    if (error.code() != ErrorCode::kInvalidArgument || request.if_none_exist().empty() ||
        std::string_view(error.what()).substr(0, 11) != "request_id:") {
      throw;
    }
    throw Error(ErrorCode::kFailedPrecondition,
                "if_none_exist: an earlier create with this condition stored a different resource");
  }
  pb::CreateFhirResourceResponse response;
  response.set_patient_id(patient);
  response.set_created(!repeat);
  for (auto& stored : AssessmentRestResources(assessment, settings_.fhir_patient_identifier_system)) {
    if (stored["resourceType"] == "QuestionnaireResponse") {
      response.set_resource_json(stored.dump());
      break;
    }
  }
  return response;
}

namespace {
// What each service writes of a bulk export (their BulkExportSource types), in manifest order.
const std::vector<std::pair<std::string, std::vector<std::string>>>& BulkExportTypes() {
  static const std::vector<std::pair<std::string, std::vector<std::string>>> kTypes = {
      {"assessment", {"QuestionnaireResponse", "Observation", "Consent"}},
      {"planning", {"CarePlan", "Goal"}},
      {"progress", {"Encounter", "Observation", "Flag"}}};
  return kTypes;
}
}  // namespace

BulkExportJobRecord AssessmentApp::OwnBulkExport(const CallContext& ctx, const std::string& job_id) {
  if (bulk_exports_ == nullptr) throw Error(ErrorCode::kUnavailable, "bulk export is not available on this service");
  ValidateOpaqueId("job_id", job_id);
  auto job = bulk_exports_->Find(ctx.tenant, job_id, ctx.DeadlineCappedAt(kStoreBudget));
  // Only whoever started it (the Bulk Data specification's rule); another caller learns nothing.
  if (!job || job->requested_by != ctx.principal) ThrowNotFound("bulk export " + job_id);
  if (job->status != "active" || job->expired) ThrowNotFound("bulk export " + job_id + " (expired or cancelled)");
  return *job;
}

pb::StartBulkExportResponse AssessmentApp::StartBulkExport(const CallContext& ctx,
                                                           const pb::StartBulkExportRequest& request,
                                                           AuditTarget& audit) {
  if (bulk_exports_ == nullptr) throw Error(ErrorCode::kUnavailable, "bulk export is not available on this service");
  std::vector<std::string> served;
  for (const auto& [service, types] : BulkExportTypes()) {
    for (const auto& type : types) {
      if (std::find(served.begin(), served.end(), type) == served.end()) served.push_back(type);
    }
  }
  BulkExportJobRecord job;
  for (const auto& type : request.types()) {
    if (std::find(served.begin(), served.end(), type) == served.end()) {
      std::string names;
      for (const auto& name : served) names += (names.empty() ? "" : ", ") + name;
      ThrowInvalidArgument("types", type.substr(0, 64) + " is not exported here (one of " + names + ")");
    }
    if (std::find(job.types.begin(), job.types.end(), type) == job.types.end()) job.types.push_back(type);
  }
  if (job.types.empty()) job.types = served;
  for (const auto& type : job.types) RequireSmartScope(ctx, type, false);
  if (!request.group_id().empty() && !IsClinicId(request.group_id())) {
    ThrowInvalidArgument("group_id", "must be a clinic id: 1-64 characters of [A-Za-z0-9._:-]");
  }
  // An integrator bound to clinics exports one of its clinics, never the tenant.
  if (!ctx.all_clinics && (request.group_id().empty() || !ctx.clinics.contains(request.group_id()))) {
    throw Error(ErrorCode::kPermissionDenied, "group_id: export one of the clinics your token names");
  }
  if (!request.since().empty()) {
    const auto since = ParseFhirDate(request.since());
    if (!since) ThrowInvalidArgument("since", "must be a FHIR instant such as 2026-01-01T00:00:00Z");
    // A date of year 1 in a zone east of UTC begins in year 0, and one of 9999 west of UTC ends in
    // 10000: outside what a Timestamp holds, so the first or last second it can hold stands in
    // (everything, or nothing, changed since).
    constexpr std::int64_t kFirst = TimeUtil::kTimestampMinSeconds * 1'000'000;
    constexpr std::int64_t kLast = TimeUtil::kTimestampMaxSeconds * 1'000'000;
    job.since = TimeUtil::ToString(TimeUtil::MicrosecondsToTimestamp(std::clamp(since->begin, kFirst, kLast)));
  }
  if (request.request_url().size() > 2048) ThrowInvalidArgument("request_url", "at most 2048 characters");
  // The manifest's `request` is the kick-off URL a client can match (FHIR Bulk Data): an absolute
  // http(s) URL, one token (no white space), or nothing.
  if (const std::string& url = request.request_url(); !url.empty()) {
    const bool absolute = url.starts_with("https://") || url.starts_with("http://");
    const bool one_token = std::none_of(url.begin(), url.end(), [](char c) { return static_cast<unsigned char>(c) <= 0x20; });
    if (!absolute || !one_token) {
      ThrowInvalidArgument("request_url", "must be the kick-off request's absolute http(s) URL, without white space");
    }
  }
  const auto deadline = ctx.DeadlineCappedAt(kStoreBudget);
  if (bulk_exports_->ActiveJobs(ctx.tenant, deadline) >= settings_.bulk_export_max_jobs) {
    throw Error(ErrorCode::kResourceExhausted, "at most " + std::to_string(settings_.bulk_export_max_jobs) +
                                                   " bulk exports at a time; cancel one or wait for one to expire");
  }
  job.job_id = NewId("export");
  job.tenant = ctx.tenant;
  job.requested_by = ctx.principal;
  job.group_id = request.group_id();
  job.request_url = request.request_url();
  bulk_exports_->Create(job, settings_.bulk_export_retention, deadline);
  audit.resource_id = job.job_id;
  pb::StartBulkExportResponse response;
  response.set_job_id(job.job_id);
  return response;
}

pb::GetBulkExportStatusResponse AssessmentApp::GetBulkExportStatus(const CallContext& ctx,
                                                                   const pb::GetBulkExportStatusRequest& request,
                                                                   AuditTarget& audit) {
  const BulkExportJobRecord job = OwnBulkExport(ctx, request.job_id());
  audit.resource_id = job.job_id;
  const auto deadline = ctx.DeadlineCappedAt(kStoreBudget);
  const auto progress = bulk_exports_->Progress(job.job_id, deadline);
  pb::GetBulkExportStatusResponse response;
  bool complete = true;
  for (const auto& service_types : BulkExportTypes()) {
    const std::string& service = service_types.first;
    const auto& types = service_types.second;
    const bool needed = std::any_of(types.begin(), types.end(), [&](const std::string& type) {
      return std::find(job.types.begin(), job.types.end(), type) != job.types.end();
    });
    const auto done = std::find_if(progress.begin(), progress.end(),
                                   [&](const BulkExportProgress& p) { return p.service == service && p.done; });
    if (needed && done == progress.end()) complete = false;
  }
  for (const auto& service : progress) {
    response.set_written(response.written() + service.written);
    if (!service.error.empty()) response.add_errors(service.service + ": " + service.error);
  }
  response.set_complete(complete);
  *response.mutable_transaction_time() = TimeUtil::MicrosecondsToTimestamp(job.created_micros);
  *response.mutable_expire_time() = TimeUtil::MicrosecondsToTimestamp(job.expires_micros);
  response.set_request_url(job.request_url);
  if (complete) {
    for (const auto& file : bulk_exports_->Files(job.job_id, deadline)) {
      auto& output = *response.add_outputs();
      output.set_service(file.service);
      output.set_type(file.type);
      output.set_part(file.part);
      output.set_count(file.count);
    }
  }
  return response;
}

pb::GetBulkExportFileResponse AssessmentApp::GetBulkExportFile(const CallContext& ctx,
                                                               const pb::GetBulkExportFileRequest& request,
                                                               AuditTarget& audit) {
  const BulkExportJobRecord job = OwnBulkExport(ctx, request.job_id());
  audit.resource_id = job.job_id;
  if (request.part() < 1) ThrowInvalidArgument("part", "must be 1 or more");
  auto body = bulk_exports_->FileBody(job.job_id, request.service(), request.type(), request.part(),
                                      ctx.DeadlineCappedAt(kStoreBudget));
  if (!body) ThrowNotFound("bulk export file");
  pb::GetBulkExportFileResponse response;
  response.set_ndjson(std::move(*body));
  return response;
}

pb::CancelBulkExportResponse AssessmentApp::CancelBulkExport(const CallContext& ctx,
                                                             const pb::CancelBulkExportRequest& request,
                                                             AuditTarget& audit) {
  const BulkExportJobRecord job = OwnBulkExport(ctx, request.job_id());
  audit.resource_id = job.job_id;
  bulk_exports_->Cancel(ctx.tenant, job.job_id, ctx.DeadlineCappedAt(kStoreBudget));
  return {};
}

}  // namespace physio::assessment
