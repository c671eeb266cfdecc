#include "assessment_records.h"

#include <algorithm>

#include "fhir_export.h"
#include "physio/db/events.h"
#include "physio/db/proto_json.h"

namespace physio::assessment {

void PgAssessmentWriter::Insert(const std::string& tenant, const v1::Assessment& assessment) {
  // Sent with the transaction's next statement (its COMMIT, for a new assessment).
  conn_.Defer({"INSERT INTO assessment.assessments (tenant_id, assessment_id, patient_id, intake_session_id,"
               " created_by, body) VALUES ($1,$2,$3,$4,$5,$6::jsonb)",
               {tenant, assessment.assessment_id(), assessment.patient_id(),
                assessment.intake_session_id().empty() ? PgParam() : PgParam(assessment.intake_session_id()),
                assessment.created_by(), ToJson(assessment)}},
              [](const PgUniqueViolation& violation) {
                if (violation.constraint() != "assessments_one_per_intake") return;
                throw Error(ErrorCode::kFailedPrecondition, "session_id: intake already completed by another request");
              });
}

std::optional<VersionedAssessment> PgAssessmentWriter::FindForUpdate(const std::string& tenant,
                                                                     const std::string& assessment_id) {
  auto rows = conn_.Exec("SELECT body, version FROM assessment.assessments"
                         " WHERE tenant_id = $1 AND assessment_id = $2 FOR UPDATE",
                         {tenant, assessment_id});
  if (rows.rows() == 0) return std::nullopt;
  VersionedAssessment found;
  FromJson(rows.Get(0, 0), &found.assessment);
  found.version = rows.GetLong(0, 1);
  return found;
}

void PgAssessmentWriter::Replace(const std::string& tenant, const v1::Assessment& assessment, long version) {
  conn_.Exec("UPDATE assessment.assessments SET body = $3::jsonb, version = $4"
             " WHERE tenant_id = $1 AND assessment_id = $2",
             {tenant, assessment.assessment_id(), ToJson(assessment), std::to_string(version)});
}

void PgAssessmentWriter::AppendEvent(const std::string& tenant, const std::string& kind,
                                     const std::string& patient_id, const std::string& resource_id) {
  physio::AppendEvent(conn_, kSchema, tenant, kind, patient_id, resource_id);
}

std::set<std::string> PgAssessmentWriter::LockClinics(const std::string& tenant, const std::string& patient_id) {
  // One writer of a patient's clinics at a time (rows may not exist yet: an advisory lock, not FOR UPDATE).
  conn_.Exec("SELECT pg_advisory_xact_lock(hashtext($1))", {"physio.clinics." + tenant + "/" + patient_id});
  auto rows = conn_.Exec("SELECT clinic_id FROM assessment.patient_clinics WHERE tenant_id = $1 AND patient_id = $2",
                         {tenant, patient_id});
  std::set<std::string> clinics;
  for (int i = 0; i < rows.rows(); ++i) clinics.insert(rows.Get(i, 0));
  return clinics;
}

void PgAssessmentWriter::AddClinic(const std::string& tenant, const std::string& patient_id,
                                   const std::string& clinic_id, const std::string& by, const std::string& reason) {
  conn_.Defer({"INSERT INTO assessment.patient_clinics (tenant_id, patient_id, clinic_id, enrolled_by)"
             " VALUES ($1,$2,$3,$4) ON CONFLICT DO NOTHING",
             {tenant, patient_id, clinic_id, by}});
  conn_.Defer({"INSERT INTO assessment.patient_clinic_history (tenant_id, patient_id, clinic_id, change, changed_by,"
             " reason) VALUES ($1,$2,$3,'enrolled',$4,$5)",
             {tenant, patient_id, clinic_id, by, reason}});
}

void PgAssessmentWriter::RemoveClinic(const std::string& tenant, const std::string& patient_id,
                                      const std::string& clinic_id, const std::string& by, const std::string& reason) {
  conn_.Exec("DELETE FROM assessment.patient_clinics WHERE tenant_id = $1 AND patient_id = $2 AND clinic_id = $3",
             {tenant, patient_id, clinic_id});
  conn_.Exec("INSERT INTO assessment.patient_clinic_history (tenant_id, patient_id, clinic_id, change, changed_by,"
             " reason) VALUES ($1,$2,$3,'left',$4,$5)",
             {tenant, patient_id, clinic_id, by, reason});
}

v1::PatientClinics PgAssessmentRecords::PatientClinics(const std::string& tenant, const std::string& patient_id,
                                                       Clock::time_point deadline) {
  v1::PatientClinics out;
  out.set_patient_id(patient_id);
  auto now = QueryOnce(pool_, deadline,
                       {"SELECT clinic_id FROM assessment.patient_clinics WHERE tenant_id = $1 AND patient_id = $2"
                        " ORDER BY clinic_id",
                        {tenant, patient_id}});
  for (int i = 0; i < now.rows(); ++i) out.add_clinic_ids(now.Get(i, 0));
  auto history = QueryOnce(pool_, deadline,
                           {"SELECT clinic_id, change, extract(epoch FROM changed_at)::bigint, changed_by, reason"
                            " FROM assessment.patient_clinic_history WHERE tenant_id = $1 AND patient_id = $2"
                            " ORDER BY entry_id LIMIT 1000",
                            {tenant, patient_id}});
  for (int i = 0; i < history.rows(); ++i) {
    auto* change = out.add_history();
    change->set_clinic_id(history.Get(i, 0));
    change->set_change(history.Get(i, 1) == "enrolled" ? v1::CLINIC_CHANGE_KIND_ENROLLED : v1::CLINIC_CHANGE_KIND_LEFT);
    change->mutable_change_time()->set_seconds(history.GetLong(i, 2));
    change->set_changed_by(history.Get(i, 3));
    change->set_reason(history.Get(i, 4));
  }
  return out;
}

namespace {
const char* ConsentKindText(v1::ConsentKind kind) {
  switch (kind) {
    case v1::CONSENT_KIND_TREATMENT: return "treatment";
    case v1::CONSENT_KIND_MANIPULATION: return "manipulation";
    case v1::CONSENT_KIND_DATA_SHARING: return "data_sharing";
    default: throw Error(ErrorCode::kInvalidArgument, "kind: not a consent kind");
  }
}
v1::ConsentKind ConsentKindOf(const std::string& text) {
  if (text == "treatment") return v1::CONSENT_KIND_TREATMENT;
  if (text == "manipulation") return v1::CONSENT_KIND_MANIPULATION;
  return v1::CONSENT_KIND_DATA_SHARING;
}
constexpr const char* kConsentColumns =
    "consent_id::text, patient_id, kind, platform, decision, floor(extract(epoch FROM recorded_at))::bigint,"
    " recorded_by, recorded_by_role, recorded_through, note";
v1::ConsentRecord ConsentFromRow(const PgResult& rows, int i) {
  v1::ConsentRecord record;
  record.set_consent_id("consent-" + rows.Get(i, 0));
  record.set_patient_id(rows.Get(i, 1));
  record.set_kind(ConsentKindOf(rows.Get(i, 2)));
  record.set_platform(rows.Get(i, 3));
  record.set_decision(rows.Get(i, 4) == "granted" ? v1::CONSENT_DECISION_GRANTED : v1::CONSENT_DECISION_WITHDRAWN);
  record.mutable_record_time()->set_seconds(rows.GetLong(i, 5));
  record.set_recorded_by(rows.Get(i, 6));
  record.set_recorded_by_role(rows.Get(i, 7));
  record.set_recorded_through_platform(rows.Get(i, 8));
  record.set_note(rows.Get(i, 9));
  return record;
}
}  // namespace

v1::ConsentRecord PgAssessmentWriter::AddConsent(const std::string& tenant, const v1::ConsentRecord& record) {
  auto rows = conn_.Exec(std::string("INSERT INTO assessment.consents (tenant_id, patient_id, kind, platform, decision,"
                                     " recorded_by, recorded_by_role, recorded_through, note)"
                                     " VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9) RETURNING ") +
                             kConsentColumns,
                         {tenant, record.patient_id(), ConsentKindText(record.kind()), record.platform(),
                          record.decision() == v1::CONSENT_DECISION_GRANTED ? "granted" : "withdrawn",
                          record.recorded_by(), record.recorded_by_role(), record.recorded_through_platform(),
                          record.note()});
  return ConsentFromRow(rows, 0);
}

std::optional<std::string> PgAssessmentRecords::PatientOfConsent(const std::string& tenant,
                                                                 const std::string& consent_id,
                                                                 Clock::time_point deadline) {
  constexpr std::string_view kPrefix = "consent-";
  const std::string number = consent_id.substr(std::min(consent_id.size(), kPrefix.size()));
  if (consent_id.rfind(kPrefix, 0) != 0 || number.empty() || number.size() > 18 ||
      !std::all_of(number.begin(), number.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  auto rows = QueryOnce(pool_, deadline,
                        {"SELECT patient_id FROM assessment.consents WHERE tenant_id = $1 AND consent_id = $2::bigint",
                         {tenant, number}});
  if (rows.rows() == 0) return std::nullopt;
  return rows.Get(0, 0);
}

std::vector<v1::ConsentRecord> PgAssessmentRecords::Consents(const std::string& tenant, const std::string& patient_id,
                                                             Clock::time_point deadline) {
  // The newest 1,000, oldest first (the last of each kind is the current decision). The order is
  // the numeric id's: a bare "consent_id" in ORDER BY would name the text output column, and by
  // text "10" comes before "9", so a withdrawal could be listed before the grant it withdrew.
  auto rows = QueryOnce(pool_, deadline,
                        {std::string("SELECT * FROM (SELECT ") + kConsentColumns +
                             ", consents.consent_id AS position FROM assessment.consents WHERE tenant_id = $1"
                             " AND patient_id = $2 ORDER BY consents.consent_id DESC LIMIT 1000) newest ORDER BY position",
                         {tenant, patient_id}});
  std::vector<v1::ConsentRecord> out;
  for (int i = 0; i < rows.rows(); ++i) out.push_back(ConsentFromRow(rows, i));
  return out;
}

std::optional<v1::Assessment> PgAssessmentRecords::Find(const std::string& tenant, const std::string& assessment_id,
                                                        Clock::time_point deadline) {
  v1::Assessment assessment;
  if (!FindInto(tenant, assessment_id, deadline, &assessment)) return std::nullopt;
  return assessment;
}

bool PgAssessmentRecords::FindInto(const std::string& tenant, const std::string& assessment_id,
                                   Clock::time_point deadline, v1::Assessment* into) {
  auto rows = QueryOnce(pool_, deadline,
                        {"SELECT body FROM assessment.assessments WHERE tenant_id = $1 AND assessment_id = $2",
                         {tenant, assessment_id}});
  if (rows.rows() == 0) return false;
  FromJson(rows.Get(0, 0), into);
  return true;
}

AssessmentPage PgAssessmentRecords::ListForPatient(const std::string& tenant, const std::string& patient_id,
                                                   const KeysetPosition& after, int page_size,
                                                   Clock::time_point deadline) {
  // One more than the page: whether another page follows. The first page and the next ones are
  // separate statements, each one range scan of assessments_by_patient_keyset (an "IS NULL OR"
  // would leave the row comparison out of the index condition).
  const std::string select = "SELECT body, created_at::text AS page_at, assessment_id FROM assessment.assessments"
                             " WHERE tenant_id = $1 AND patient_id = $2";
  const std::string order = " ORDER BY created_at DESC, assessment_id DESC LIMIT ";
  auto rows = !after.created_at
                  ? QueryOnce(pool_, deadline, {select + order + "$3", {tenant, patient_id, std::to_string(page_size + 1)}})
                  : QueryOnce(pool_, deadline,
                              {select + " AND (created_at, assessment_id) < ($3::timestamptz, $4)" + order + "$5",
                               {tenant, patient_id, after.created_at, after.id, std::to_string(page_size + 1)}});
  AssessmentPage page;
  const int returned = std::min(rows.rows(), page_size);
  for (int i = 0; i < returned; ++i) FromJson(rows.Get(i, 0), &page.assessments.emplace_back());
  if (rows.rows() > page_size) page.next = KeysetPosition{rows.Get(returned - 1, 1), rows.Get(returned - 1, 2)};
  return page;
}

BulkExportSource::Batch PgAssessmentExportSource::Next(PgConnection& conn, const BulkExportJob& job,
                                                       const std::string& checkpoint, int limit) {
  Batch batch;
  const bool consents_phase = checkpoint.rfind("c:", 0) == 0;
  const std::string after = checkpoint.size() > 2 ? checkpoint.substr(2) : "";
  if (!consents_phase && (job.types.contains("QuestionnaireResponse") || job.types.contains("Observation"))) {
    auto rows = conn.Exec("SELECT r.body, r.assessment_id FROM assessment.assessments r WHERE " + BulkExportScopeSql() +
                              " AND r.assessment_id > $3 ORDER BY r.assessment_id LIMIT $4",
                          {job.tenant, job.group_id, after, std::to_string(limit)});
    for (int i = 0; i < rows.rows(); ++i) {
      v1::Assessment assessment;
      FromJson(rows.Get(i, 0), &assessment);
      for (auto& resource : AssessmentRestResources(assessment, identifier_system_)) batch.resources.push_back(std::move(resource));
    }
    if (rows.rows() == limit) {
      batch.checkpoint = "a:" + rows.Get(rows.rows() - 1, 1);
      return batch;
    }
  }
  if (!consents_phase && !batch.resources.empty()) {
    batch.checkpoint = "c:";  // the consents in the next batch
    return batch;
  }
  if (job.types.contains("Consent")) {
    auto rows = conn.Exec(std::string("SELECT ") + kConsentColumns + " FROM assessment.consents r WHERE " +
                              BulkExportScopeSql() + " AND r.consent_id > $3::bigint ORDER BY r.consent_id LIMIT $4",
                          {job.tenant, job.group_id, consents_phase && !after.empty() ? after : "0", std::to_string(limit)});
    for (int i = 0; i < rows.rows(); ++i) batch.resources.push_back(ConsentToFhir(ConsentFromRow(rows, i), identifier_system_));
    if (rows.rows() == limit) {
      batch.checkpoint = "c:" + rows.Get(rows.rows() - 1, 0);
      return batch;
    }
  }
  batch.checkpoint = "c:end";
  batch.done = true;
  return batch;
}

}  // namespace physio::assessment
