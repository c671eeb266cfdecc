#pragma once
// The per-call identity every handler works with. Built once per call from
// verified credentials only (see libs/server Authenticate); plain C++ so
// domain code and its tests need no gRPC.
#include <chrono>
#include <map>
#include <set>
#include <string>
#include <string_view>

#include "physio/common/clock.h"

namespace physio {

// kAuditor: reads the audit trail (ListAuditEvents, ExportAuditEvents) and nothing clinical.
// kAnalyst: reads aggregate outcome reports (GetOutcomeReport) of their clinics and no patient record.
enum class Role { kIntegrator, kClinician, kPatient, kService, kAuditor, kAnalyst };

// Who may reach a patient beyond the tenant: the clinics the patient is enrolled
// at (the directory the assessment service keeps) and the emergency ("break the
// glass") grants open for the patient, by principal (the progress service records
// them); PgPatientClinics in libs/server reads both. No clinics: the patient
// belongs to no clinic yet, and every member of staff of the tenant may reach them.
// The patient's consents to sharing with telehealth platforms: platform -> granted (true) or
// withdrawn (false), the latest record of each (the assessment service keeps them).
struct PatientReach {
  std::set<std::string> clinics;
  std::map<std::string, std::chrono::system_clock::time_point> emergency_until;  // principal -> grant's end
  std::map<std::string, bool> sharing;
};

class PatientClinicsSource {
 public:
  virtual ~PatientClinicsSource() = default;
  // Throws Error(kUnavailable) when the directory cannot be read.
  virtual PatientReach ReachOf(const std::string& tenant, const std::string& patient_id,
                               Clock::time_point deadline) const = 0;
  // The patient's clinics or grants changed through this process: read them again next time.
  virtual void Forget(const std::string& tenant, const std::string& patient_id) const = 0;
};

std::string RoleName(Role role);
bool ParseRole(const std::string& name, Role* role);

struct CallContext {
  std::string tenant;       // from the token (the issuer's tenant, or its tenant claim)
  std::string principal;    // the token's subject
  std::set<Role> roles;     // the token's roles, as the issuer's claim mapping reads them
  std::string patient_id;   // the token's patient (the issuer's patient claim); set for the patient role
  std::set<std::string> clinics;  // staff: the clinics the caller works at (the issuer's clinics claim)
  bool all_clinics = false;       // an organisation-wide grant: integrators, services, configured roles
  std::string issuer;             // who vouched for the caller (the token's iss)
  std::string client_id;          // the OAuth client the token was issued to, when it names one
  // The telehealth platform the caller acts through (the issuer's platform mapping), or empty.
  // Such a caller reaches a patient only with the patient's consent to sharing with that platform:
  // granted and not withdrawn, or (platform_consent_required false) not withdrawn.
  std::string platform;
  bool platform_consent_required = true;
  // Set by the call pipeline for consent calls: the patient may record (grant or withdraw) their own
  // consent through a platform they have not consented to yet, or no longer do.
  bool consent_call = false;
  // Set by the call pipeline: where a patient's clinics are looked up. Null (unit tests, tools):
  // clinic scoping is off and staff reach every patient of their tenant.
  const PatientClinicsSource* patient_clinics = nullptr;
  // The last SharesClinicWith answer of this call (the pipeline and the use case ask about the same patient).
  mutable std::string reach_checked_patient;
  mutable bool reach_checked_result = false;
  // The token's SMART on FHIR resource scopes (e.g. "system/CarePlan.read"); empty when it has none.
  std::set<std::string> smart_scopes;
  std::string request_id;   // x-request-id from the caller, or generated
  std::string bearer_token; // forwarded on downstream calls so identity propagates
  std::string peer;         // the caller's address as gRPC reports it (for the audit trail)
  std::string trace_id;     // W3C trace context: the caller's trace (32 hex), when it sent a traceparent
  std::string trace_flags;  // and its flags (2 hex), forwarded with a new parent id
  Clock::time_point deadline = Clock::time_point::max();

  bool HasRole(Role role) const { return roles.contains(role); }
  // Time left before the caller's deadline, never negative.
  std::chrono::milliseconds Remaining() const;
  // A deadline for one wait: the call's own, capped at `cap` from now.
  Clock::time_point DeadlineCappedAt(std::chrono::milliseconds cap) const;
};

// PERMISSION_DENIED unless the caller holds one of `allowed`.
void RequireAnyRole(const CallContext& ctx, const std::set<Role>& allowed);
// Staff: a clinician, an integrator or another service. Staff reach the patients of
// their tenant (tenant scoping is done by the stores) who share a clinic with them
// or belong to none yet, every patient with an organisation-wide grant; a patient
// only their own record.
bool IsStaff(const CallContext& ctx);
// For requests that name a patient: a patient may only act on their own record
// (PERMISSION_DENIED); staff of other clinics are told NOT_FOUND, as for another tenant.
void RequirePatientAccess(const CallContext& ctx, const std::string& patient_id);
// The patient a search is about: `requested`, or a patient caller's own when it names none
// (INVALID_ARGUMENT naming `field` for staff naming none, or a malformed id); access checked as
// RequirePatientAccess does.
std::string SearchedPatient(const CallContext& ctx, const std::string& requested, std::string_view field);
// For records read by id: another patient's record, or a patient of clinics the
// caller does not work at, is reported as NOT_FOUND, so nobody can probe for records.
bool CanSeePatient(const CallContext& ctx, const std::string& patient_id);
// Staff only: the caller shares a clinic with the patient (or either side is unscoped), or holds
// an emergency grant for the patient that has not ended.
bool SharesClinicWith(const CallContext& ctx, const std::string& patient_id);
// Staff whose reach depends on the patient's clinics: a use case that changes a record found by
// its id checks the record's patient before it writes (IsClinicScoped: worth the read).
// A clinic id, as staff tokens carry it and requests name it: 1-64 characters of [A-Za-z0-9._:-].
bool IsClinicId(const std::string& clinic);
// After a change of the patient's clinics or grants made by this call: this process reads them again.
void ForgetPatientReach(const CallContext& ctx, const std::string& patient_id);
inline bool IsClinicScoped(const CallContext& ctx) {
  return IsStaff(ctx) && (!ctx.all_clinics || !ctx.platform.empty()) && ctx.patient_clinics != nullptr;
}
// SMART on FHIR resource scopes (App Launch 1.0 "<context>/<Type|*>.<read|write|*>" and 2.0
// "<context>/<Type|*>.<cruds>"), where <context> is patient, user or system.
bool IsSmartResourceScope(const std::string& scope);
// Whether the caller's SMART scopes let it read (or, `write`, create) resources of `type`. A token
// without any SMART resource scope is judged by its roles alone (true); one with them must hold a
// scope for the type (or *) with the access.
bool SmartScopesAllow(const CallContext& ctx, const std::string& type, bool write);
// PERMISSION_DENIED unless SmartScopesAllow.
void RequireSmartScope(const CallContext& ctx, const std::string& type, bool write);
// A caller acting through a telehealth platform: the patient's sharing consent for that platform
// (true without a platform, or without a directory to ask).
bool PlatformMayReach(const CallContext& ctx, const std::string& patient_id);

}  // namespace physio
