#include "plan_records.h"

#include "fhir_careplan.h"

#include <google/protobuf/util/time_util.h>

#include <algorithm>

#include "physio/db/events.h"
#include "physio/db/proto_json.h"

namespace physio::planning {

namespace {
using google::protobuf::util::TimeUtil;

// The status column: the enum's name without its prefix (ACTIVE, SUSPENDED ...).
std::string StatusName(v1::PlanStatus status) { return v1::PlanStatus_Name(status).substr(sizeof("PLAN_STATUS_") - 1); }

v1::Plan PlanAt(const PgResult& rows, int row, int column) {
  v1::Plan plan;
  FromJson(rows.Get(row, column), &plan);
  return plan;
}

std::vector<VersionedPlan> VersionedPlans(const PgResult& rows) {
  std::vector<VersionedPlan> plans;
  for (int i = 0; i < rows.rows(); ++i) plans.push_back({PlanAt(rows, i, 0), rows.GetLong(i, 1)});
  return plans;
}
}  // namespace

namespace {
// The plan's outcome schedule for the progress service (planning.plan_schedules), in the same transaction.
void WriteSchedule(PgConnection& conn, const std::string& tenant, const v1::Plan& plan) {
  std::string schedule = "[";
  for (const auto& entry : plan.outcome_schedule()) {
    std::string purpose;
    for (const char c : entry.purpose()) {
      if (c == '"' || c == '\\') purpose += '\\';
      if (static_cast<unsigned char>(c) >= 0x20) purpose += c;
    }
    if (schedule.size() > 1) schedule += ",";
    schedule += "{\"instrument\":\"" + common::v1::Instrument_Name(entry.instrument()) + "\",\"day\":" +
                std::to_string(entry.day()) + ",\"purpose\":\"" + purpose + "\"}";
  }
  schedule += "]";
  conn.Exec("INSERT INTO planning.plan_schedules (tenant_id, plan_id, patient_id, status, activate_at,"
            " home_sessions_per_week, schedule) VALUES ($1, $2, $3, $4, $5::timestamptz, $6::int, $7::jsonb)"
            " ON CONFLICT (tenant_id, plan_id) DO UPDATE SET status = EXCLUDED.status, activate_at = EXCLUDED.activate_at,"
            " home_sessions_per_week = EXCLUDED.home_sessions_per_week, schedule = EXCLUDED.schedule, updated_at = now()",
            {tenant, plan.plan_id(), plan.patient_id(), StatusName(plan.status()),
             plan.has_activate_time() ? PgParam(TimeUtil::ToString(plan.activate_time())) : PgParam(),
             std::to_string(plan.home_sessions_per_week()), schedule});
}

// The text of an enum name after its prefix, or `otherwise` when empty or unspecified.
std::string Unprefixed(const std::string& name, const std::string& prefix, const std::string& otherwise) {
  if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) return otherwise;
  const std::string rest = name.substr(prefix.size());
  return rest == "UNSPECIFIED" ? otherwise : rest;
}

// The plan's episode of care for the outcome reports (planning.episodes, docs/reports.md), in the
// same transaction: a plan taking effect opens the patient's episode or carries on the open one,
// a plan ending ends it. Drafts and superseded plans change nothing (the superseding plan carries on).
void WriteEpisode(PgConnection& conn, const std::string& tenant, const v1::Plan& plan) {
  const std::string status = StatusName(plan.status());
  const bool referral = plan.type() == v1::PLAN_TYPE_REFERRAL;
  const bool referred = referral || plan.referral_recommended();
  if (plan.status() == v1::PLAN_STATUS_ACTIVE || plan.status() == v1::PLAN_STATUS_SUSPENDED) {
    std::string risk = Unprefixed(plan.start_back_risk(), "START_BACK_RISK_", "");
    if (risk.empty()) {
      // Plans made before the risk group was recorded: the intensity STarT Back set.
      switch (plan.intensity()) {
        case v1::INTENSITY_ADVICE_AND_SELF_MANAGEMENT: risk = "LOW"; break;
        case v1::INTENSITY_PHYSIOTHERAPY_PACKAGE: risk = "MEDIUM"; break;
        case v1::INTENSITY_PSYCHOLOGICALLY_INFORMED: risk = "HIGH"; break;
        default: risk = "UNKNOWN"; break;
      }
    }
    PgParam baseline[3];
    for (const auto& score : plan.baseline_scores()) {
      const int at = score.instrument() == common::v1::INSTRUMENT_NPRS  ? 0
                     : score.instrument() == common::v1::INSTRUMENT_ODI ? 1
                     : score.instrument() == common::v1::INSTRUMENT_RMDQ ? 2
                                                                          : -1;
      if (at >= 0) baseline[at] = PgParam(std::to_string(score.score()));
    }
    const std::string started =
        plan.has_activate_time() ? TimeUtil::ToString(plan.activate_time()) : TimeUtil::ToString(TimeUtil::GetCurrentTime());
    // The plan's episode (set by the use case when the plan took effect; the plan's own id for
    // plans that took effect before episodes were recorded): carried on, or taken up again by a
    // relapse (its end cleared, the relapse counted), else started.
    const std::string episode = plan.episode_id().empty() ? plan.plan_id() : plan.episode_id();
    const std::string practitioner = plan.approved_by().empty() ? plan.created_by() : plan.approved_by();
    const std::string subgroup = Unprefixed(plan.subgroup(), "SUBGROUP_", "UNKNOWN");
    const std::string phase = Unprefixed(common::v1::Phase_Name(plan.phase()), "PHASE_", "UNKNOWN");
    // Plans without an episode id carry on the patient's open episode, whatever its id.
    const std::string which = plan.episode_id().empty() ? "patient_id = $3 AND ended_at IS NULL" : "episode_id = $2";
    auto updated = conn.Exec(
        "UPDATE planning.episodes SET plan_id = $4, practitioner = $5, risk_group = $6, subgroup = $7, phase = $8,"
        " status = $9, referred = referred OR $10::boolean, intake_red_flag = intake_red_flag OR $11::boolean,"
        " baseline_nprs = $12::float8, baseline_odi = $13::float8, baseline_rmdq = $14::float8, plan = $15::jsonb,"
        " relapses = relapses + CASE WHEN ended_at IS NULL THEN 0 ELSE 1 END, ended_at = NULL,"
        " discharge_reason = NULL, updated_at = now() WHERE tenant_id = $1 AND patient_id = $3 AND " + which,
        {tenant, episode, plan.patient_id(), plan.plan_id(), practitioner, risk, subgroup, phase, status,
         referred ? "true" : "false", referral ? "true" : "false", baseline[0], baseline[1], baseline[2],
         ToJson(plan)});
    if (updated.affected_rows() > 0) return;
    conn.Exec(
        "INSERT INTO planning.episodes (tenant_id, episode_id, patient_id, plan_id, clinic_id, practitioner, risk_group,"
        " subgroup, phase, status, referred, intake_red_flag, started_at, baseline_nprs, baseline_odi, baseline_rmdq, plan)"
        " VALUES ($1, $2, $3, $4, COALESCE((SELECT c.clinic_id FROM assessment.patient_clinics c WHERE c.tenant_id = $1"
        " AND c.patient_id = $3 ORDER BY c.enrolled_at DESC, c.clinic_id LIMIT 1), 'unassigned'), $5, $6, $7, $8, $9,"
        " $10::boolean, $11::boolean, $12::timestamptz, $13::float8, $14::float8, $15::float8, $16::jsonb)",
        {tenant, episode, plan.patient_id(), plan.plan_id(), practitioner, risk, subgroup, phase, status,
         referred ? "true" : "false", referral ? "true" : "false", started, baseline[0], baseline[1], baseline[2],
         ToJson(plan)});
  } else if (plan.status() == v1::PLAN_STATUS_COMPLETED || plan.status() == v1::PLAN_STATUS_DISCHARGED) {
    const bool referred_on = referred || plan.discharge_reason() == v1::DISCHARGE_REASON_REFERRED;
    conn.Exec("UPDATE planning.episodes SET status = $3, ended_at = now(), referred = referred OR $4::boolean,"
              " discharge_reason = $6, plan = $5::jsonb, updated_at = now()"
              " WHERE tenant_id = $1 AND plan_id = $2 AND ended_at IS NULL",
              {tenant, plan.plan_id(), status, referred_on ? "true" : "false", ToJson(plan),
               plan.discharge_reason() == v1::DISCHARGE_REASON_UNSPECIFIED
                   ? PgParam()
                   : PgParam(Unprefixed(v1::DischargeReason_Name(plan.discharge_reason()), "DISCHARGE_REASON_", ""))});
  }
}
}  // namespace

void PgPlanWriter::Insert(const std::string& tenant, const v1::Plan& plan) {
  WriteSchedule(conn_, tenant, plan);
  WriteEpisode(conn_, tenant, plan);
  conn_.Defer({"INSERT INTO planning.plans (tenant_id, plan_id, patient_id, assessment_id, status, version, body)"
             " VALUES ($1,$2,$3,$4,$5,1,$6::jsonb)",
             {tenant, plan.plan_id(), plan.patient_id(), plan.assessment_id(), StatusName(plan.status()),
              ToJson(plan)}});
}

std::optional<VersionedPlan> PgPlanWriter::FindForUpdate(const std::string& tenant, const std::string& plan_id) {
  auto plans = VersionedPlans(conn_.Exec(
      "SELECT body, version FROM planning.plans WHERE tenant_id = $1 AND plan_id = $2 FOR UPDATE", {tenant, plan_id}));
  if (plans.empty()) return std::nullopt;
  return std::move(plans.front());
}

std::vector<VersionedPlan> PgPlanWriter::InUseForUpdate(const std::string& tenant, const std::string& patient_id) {
  return VersionedPlans(conn_.Exec("SELECT body, version FROM planning.plans WHERE tenant_id = $1 AND patient_id = $2"
                                   " AND status IN ('ACTIVE', 'SUSPENDED') FOR UPDATE",
                                   {tenant, patient_id}));
}

void PgPlanWriter::Update(const std::string& tenant, const v1::Plan& plan, long version) {
  WriteSchedule(conn_, tenant, plan);
  try {
    conn_.Exec("UPDATE planning.plans SET status = $3, version = $4, body = $5::jsonb, updated_at = now()"
               " WHERE tenant_id = $1 AND plan_id = $2",
               {tenant, plan.plan_id(), StatusName(plan.status()), std::to_string(version), ToJson(plan)});
  } catch (const PgUniqueViolation& violation) {
    if (violation.constraint() != "plans_one_active") throw;
    throw Error(ErrorCode::kAborted, "another plan of this patient was approved at the same time; read and retry");
  }
  WriteEpisode(conn_, tenant, plan);
}

void PgPlanWriter::AddRevision(const std::string& tenant, const v1::Plan& plan, const std::string& change,
                               const std::string& reason, const std::string& changed_by) {
  conn_.Defer({"INSERT INTO planning.plan_revisions (tenant_id, plan_id, revision, change, reason, changed_by, body)"
             " VALUES ($1,$2,$3,$4,$5,$6,$7::jsonb)",
             {tenant, plan.plan_id(), std::to_string(plan.revision()), change, reason, changed_by, ToJson(plan)}});
}

void PgPlanWriter::AppendEvent(const std::string& tenant, const std::string& kind, const std::string& patient_id,
                               const std::string& resource_id) {
  physio::AppendEvent(conn_, kSchema, tenant, kind, patient_id, resource_id);
}

std::optional<LatestEpisode> PgPlanWriter::LatestEpisodeForUpdate(const std::string& tenant,
                                                                  const std::string& patient_id) {
  auto rows = conn_.Exec("SELECT episode_id, ended_at IS NULL, COALESCE(extract(epoch FROM ended_at)::bigint, 0)"
                         " FROM planning.episodes WHERE tenant_id = $1 AND patient_id = $2"
                         " ORDER BY (ended_at IS NULL) DESC, ended_at DESC LIMIT 1 FOR UPDATE",
                         {tenant, patient_id});
  if (rows.rows() == 0) return std::nullopt;
  return LatestEpisode{rows.Get(0, 0), rows.Get(0, 1) == "t", rows.GetLong(0, 2)};
}

std::optional<v1::Plan> PgPlanRecords::Find(const std::string& tenant, const std::string& plan_id,
                                            Clock::time_point deadline) {
  auto rows = QueryOnce(pool_, deadline,
                        {"SELECT body FROM planning.plans WHERE tenant_id = $1 AND plan_id = $2", {tenant, plan_id}});
  if (rows.rows() == 0) return std::nullopt;
  return PlanAt(rows, 0, 0);
}

std::vector<v1::Plan> PgPlanRecords::ListForPatient(const std::string& tenant, const std::string& patient_id, int limit,
                                                   Clock::time_point deadline) {
  auto rows = QueryOnce(pool_, deadline,
                        {"SELECT body FROM planning.plans WHERE tenant_id = $1 AND patient_id = $2"
                         " ORDER BY created_at DESC, plan_id DESC LIMIT $3",
                         {tenant, patient_id, std::to_string(limit)}});
  std::vector<v1::Plan> plans;
  for (int i = 0; i < rows.rows(); ++i) plans.push_back(PlanAt(rows, i, 0));
  return plans;
}

std::optional<v1::Plan> PgPlanRecords::FindInUse(const std::string& tenant, const std::string& patient_id,
                                                 Clock::time_point deadline) {
  auto rows = QueryOnce(pool_, deadline,
                        {"SELECT body FROM planning.plans WHERE tenant_id = $1 AND patient_id = $2"
                         " AND status IN ('ACTIVE', 'SUSPENDED')",
                         {tenant, patient_id}});
  if (rows.rows() == 0) return std::nullopt;
  return PlanAt(rows, 0, 0);
}

RevisionPage PgPlanRecords::ListRevisions(const std::string& tenant, const std::string& plan_id, int after_revision,
                                          int page_size, Clock::time_point deadline) {
  RevisionPage page;
  WithTransaction(pool_, deadline, [&](PgConnection& conn) {
    auto owner = conn.Exec("SELECT patient_id FROM planning.plans WHERE tenant_id = $1 AND plan_id = $2",
                           {tenant, plan_id});
    if (owner.rows() == 0) return;
    page.patient_id = owner.Get(0, 0);
    // One more than the page: whether another page follows.
    auto rows = conn.Exec("SELECT revision, change, reason, changed_by, to_char(changed_at AT TIME ZONE 'UTC',"
                          " 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), body FROM planning.plan_revisions"
                          " WHERE tenant_id = $1 AND plan_id = $2 AND revision > $3 ORDER BY revision LIMIT $4",
                          {tenant, plan_id, std::to_string(after_revision), std::to_string(page_size + 1)});
    const int returned = std::min(rows.rows(), page_size);
    for (int i = 0; i < returned; ++i) {
      auto& revision = page.revisions.emplace_back();
      revision.set_revision(static_cast<int>(rows.GetLong(i, 0)));
      revision.set_change(rows.Get(i, 1));
      revision.set_reason(rows.Get(i, 2));
      revision.set_changed_by(rows.Get(i, 3));
      TimeUtil::FromString(rows.Get(i, 4), revision.mutable_change_time());
      FromJson(rows.Get(i, 5), revision.mutable_plan());
    }
    page.more = rows.rows() > page_size;
  });
  return page;
}

BulkExportSource::Batch PgPlanExportSource::Next(PgConnection& conn, const BulkExportJob& job,
                                                 const std::string& checkpoint, int limit) {
  Batch batch;
  auto rows = conn.Exec("SELECT r.body, r.plan_id FROM planning.plans r WHERE " + BulkExportScopeSql() +
                            " AND r.plan_id > $3 ORDER BY r.plan_id LIMIT $4",
                        {job.tenant, job.group_id, checkpoint, std::to_string(limit)});
  for (int i = 0; i < rows.rows(); ++i) {
    for (auto& resource : PlanRestResources(PlanAt(rows, i, 0))) batch.resources.push_back(std::move(resource));
  }
  batch.checkpoint = rows.rows() == 0 ? checkpoint : rows.Get(rows.rows() - 1, 1);
  batch.done = rows.rows() < limit;
  return batch;
}

namespace {
constexpr const char* kTenantLibraryColumns =
    "SELECT version, document, published_by, extract(epoch FROM published_at)::bigint, reason"
    " FROM planning.tenant_libraries WHERE tenant_id = $1";

template <typename Rows>
StoredTenantLibrary TenantLibraryAt(const Rows& rows) {
  StoredTenantLibrary library;
  library.version = std::stoi(rows.Get(0, 0));
  library.document = rows.Get(0, 1);
  library.published_by = rows.Get(0, 2);
  library.publish_seconds = std::stoll(rows.Get(0, 3));
  library.reason = rows.Get(0, 4);
  return library;
}
}  // namespace

std::optional<StoredTenantLibrary> PgPlanWriter::LatestTenantLibrary(const std::string& tenant) {
  auto rows = conn_.Exec(std::string(kTenantLibraryColumns) + " ORDER BY version DESC LIMIT 1", {tenant});
  if (rows.rows() == 0) return std::nullopt;
  return TenantLibraryAt(rows);
}

void PgPlanWriter::InsertTenantLibrary(const std::string& tenant, const StoredTenantLibrary& library) {
  auto rows = conn_.Exec(
      "INSERT INTO planning.tenant_libraries (tenant_id, version, document, published_by, reason)"
      " VALUES ($1, $2::integer, $3, $4, $5) ON CONFLICT (tenant_id, version) DO NOTHING RETURNING version",
      {tenant, std::to_string(library.version), library.document, library.published_by, library.reason});
  if (rows.rows() == 0) {
    throw Error(ErrorCode::kAborted,
                "expected_version: another version of the library was published at the same time; read it again");
  }
}

int PgPlanRecords::TenantLibraryVersion(const std::string& tenant, Clock::time_point deadline) {
  auto rows = QueryOnce(pool_, deadline,
                        {"SELECT coalesce(max(version), 0) FROM planning.tenant_libraries WHERE tenant_id = $1", {tenant}});
  return std::stoi(rows.Get(0, 0));
}

std::optional<StoredTenantLibrary> PgPlanRecords::FindTenantLibrary(const std::string& tenant, int version,
                                                                    Clock::time_point deadline) {
  auto rows = version == 0 ? QueryOnce(pool_, deadline,
                                       {std::string(kTenantLibraryColumns) + " ORDER BY version DESC LIMIT 1", {tenant}})
                           : QueryOnce(pool_, deadline,
                                       {std::string(kTenantLibraryColumns) + " AND version = $2::integer",
                                        {tenant, std::to_string(version)}});
  if (rows.rows() == 0) return std::nullopt;
  return TenantLibraryAt(rows);
}

}  // namespace physio::planning
