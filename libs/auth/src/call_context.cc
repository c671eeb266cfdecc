#include "physio/auth/call_context.h"

#include <algorithm>
#include <cctype>
#include <string_view>

#include "physio/common/error.h"
#include "physio/common/validation.h"

namespace physio {

std::string RoleName(Role role) {
  switch (role) {
    case Role::kIntegrator: return "integrator";
    case Role::kClinician: return "clinician";
    case Role::kPatient: return "patient";
    case Role::kService: return "service";
    case Role::kAuditor: return "auditor";
    case Role::kAnalyst: return "analyst";
  }
  return "unknown";
}

bool ParseRole(const std::string& name, Role* role) {
  for (Role candidate :
       {Role::kIntegrator, Role::kClinician, Role::kPatient, Role::kService, Role::kAuditor, Role::kAnalyst}) {
    if (RoleName(candidate) == name) {
      *role = candidate;
      return true;
    }
  }
  return false;
}

std::chrono::milliseconds CallContext::Remaining() const {
  if (deadline == Clock::time_point::max()) return std::chrono::hours(24);
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() > 0 ? left : std::chrono::milliseconds(0);
}

Clock::time_point CallContext::DeadlineCappedAt(std::chrono::milliseconds cap) const {
  auto capped = Clock::now() + cap;
  return capped < deadline ? capped : deadline;
}

void RequireAnyRole(const CallContext& ctx, const std::set<Role>& allowed) {
  for (Role role : allowed) {
    if (ctx.HasRole(role)) return;
  }
  std::string names;
  for (Role role : allowed) names += (names.empty() ? "" : ", ") + RoleName(role);
  throw Error(ErrorCode::kPermissionDenied, "this call needs one of the roles: " + names);
}

bool IsStaff(const CallContext& ctx) {
  return ctx.HasRole(Role::kClinician) || ctx.HasRole(Role::kIntegrator) || ctx.HasRole(Role::kService);
}

bool IsClinicId(const std::string& clinic) { return IsOpaqueId(clinic) && clinic.size() <= 64; }

void ForgetPatientReach(const CallContext& ctx, const std::string& patient_id) {
  if (ctx.patient_clinics != nullptr) ctx.patient_clinics->Forget(ctx.tenant, patient_id);
}

namespace {
PatientReach ReachOf(const CallContext& ctx, const std::string& patient_id) {
  return ctx.patient_clinics->ReachOf(ctx.tenant, patient_id, ctx.DeadlineCappedAt(std::chrono::seconds(2)));
}

bool SharingConsented(const CallContext& ctx, const PatientReach& reach) {
  if (ctx.platform.empty()) return true;
  auto consent = reach.sharing.find(ctx.platform);
  return consent != reach.sharing.end() ? consent->second : !ctx.platform_consent_required;
}
}  // namespace

namespace {
// The parts of a SMART resource scope: type and access, or false when it is not one.
bool SplitSmartScope(const std::string& scope, std::string* type, std::string* access) {
  const auto slash = scope.find('/');
  if (slash == std::string::npos) return false;
  const std::string context = scope.substr(0, slash);
  if (context != "patient" && context != "user" && context != "system") return false;
  const std::string rest = scope.substr(slash + 1);
  const auto dot = rest.find('.');
  if (dot == std::string::npos || dot == 0) return false;
  *type = rest.substr(0, dot);
  *access = rest.substr(dot + 1);
  const auto query = access->find('?');  // SMART 2.0 finer-grained scopes: the part before '?'
  if (query != std::string::npos) access->resize(query);
  if (*type != "*" && !std::all_of(type->begin(), type->end(), [](char c) { return std::isalpha(static_cast<unsigned char>(c)); })) {
    return false;
  }
  if (*access == "read" || *access == "write" || *access == "*") return true;
  // SMART 2.0: c, r, u, d, s in that order, each at most once.
  if (access->empty()) return false;
  std::size_t next = 0;
  for (char c : *access) {
    const auto at = std::string_view("cruds").find(c, next);
    if (at == std::string_view::npos) return false;
    next = at + 1;
  }
  return true;
}
}  // namespace

std::string SearchedPatient(const CallContext& ctx, const std::string& requested, std::string_view field) {
  std::string patient = requested;
  if (patient.empty() && ctx.HasRole(Role::kPatient)) patient = ctx.patient_id;
  if (patient.empty()) ThrowInvalidArgument(field, "is required (the patient whose records are searched)");
  ValidateOpaqueId(field, patient);
  RequirePatientAccess(ctx, patient);
  return patient;
}

bool IsSmartResourceScope(const std::string& scope) {
  std::string type, access;
  return SplitSmartScope(scope, &type, &access);
}

bool SmartScopesAllow(const CallContext& ctx, const std::string& type, bool write) {
  if (ctx.smart_scopes.empty()) return true;
  for (const auto& scope : ctx.smart_scopes) {
    std::string scope_type, access;
    if (!SplitSmartScope(scope, &scope_type, &access) || (scope_type != "*" && scope_type != type)) continue;
    if (access == "*") return true;
    if (write ? (access == "write" || access.find('c') != std::string::npos)
              : (access == "read" || access.find('r') != std::string::npos || access.find('s') != std::string::npos)) {
      return true;
    }
  }
  return false;
}

void RequireSmartScope(const CallContext& ctx, const std::string& type, bool write) {
  if (!SmartScopesAllow(ctx, type, write)) {
    throw Error(ErrorCode::kPermissionDenied,
                std::string("the token's SMART scopes do not grant ") + (write ? "creating " : "reading ") + type);
  }
}

bool PlatformMayReach(const CallContext& ctx, const std::string& patient_id) {
  if (ctx.platform.empty() || ctx.patient_clinics == nullptr) return true;
  return SharingConsented(ctx, ReachOf(ctx, patient_id));
}

bool SharesClinicWith(const CallContext& ctx, const std::string& patient_id) {
  if (ctx.patient_clinics == nullptr || (ctx.all_clinics && ctx.platform.empty())) return true;
  if (!ctx.reach_checked_patient.empty() && ctx.reach_checked_patient == patient_id) return ctx.reach_checked_result;
  const PatientReach reach = ReachOf(ctx, patient_id);
  // Enrolled nowhere yet: the tenant's staff (a tenant without clinics is one clinic).
  bool shares = ctx.all_clinics || reach.clinics.empty();
  for (const auto& clinic : reach.clinics) shares = shares || ctx.clinics.contains(clinic);
  if (!shares) {
    auto grant = reach.emergency_until.find(ctx.principal);
    shares = grant != reach.emergency_until.end() && std::chrono::system_clock::now() < grant->second;
  }
  // A platform's staff also need the patient's consent to sharing with it (an emergency grant does not lift it).
  shares = shares && SharingConsented(ctx, reach);
  ctx.reach_checked_patient = patient_id;
  ctx.reach_checked_result = shares;
  return shares;
}

bool CanSeePatient(const CallContext& ctx, const std::string& patient_id) {
  if (IsStaff(ctx)) return SharesClinicWith(ctx, patient_id);
  if (!ctx.HasRole(Role::kPatient) || ctx.patient_id.empty() || ctx.patient_id != patient_id) return false;
  // The patient themself, through a platform: only while they consent to sharing with it (or to record that consent).
  return ctx.consent_call || PlatformMayReach(ctx, patient_id);
}

void RequirePatientAccess(const CallContext& ctx, const std::string& patient_id) {
  if (IsStaff(ctx)) {
    if (!SharesClinicWith(ctx, patient_id)) throw Error(ErrorCode::kNotFound, "patient not found");
    return;
  }
  if (!CanSeePatient(ctx, patient_id)) {
    if (ctx.HasRole(Role::kPatient) && ctx.patient_id == patient_id) {
      throw Error(ErrorCode::kPermissionDenied, "the patient has not consented to sharing their record with the platform " +
                                                    ctx.platform + " (RecordConsent: CONSENT_KIND_DATA_SHARING)");
    }
    throw Error(ErrorCode::kPermissionDenied, "patient_id: a patient may only act on their own record");
  }
}

}  // namespace physio
