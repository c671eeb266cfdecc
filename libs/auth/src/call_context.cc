#include "physio/auth/call_context.h"

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
  }
  return "unknown";
}

bool ParseRole(const std::string& name, Role* role) {
  for (Role candidate : {Role::kIntegrator, Role::kClinician, Role::kPatient, Role::kService, Role::kAuditor}) {
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
