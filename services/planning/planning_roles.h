#pragma once
// Who may call each planning RPC: checked by the call pipeline before the use
// case runs; the README's RPC table is checked against it (unit test). What a
// patient may do with AdjustPlan (suspend or regress their own plan) and that
// only a clinician resumes a suspended plan depend on the request's fields and
// stay in planning_app.cc.
#include "physio/auth/method_roles.h"

namespace physio::planning {

inline const MethodRoles kPlanningRoles = {
    {"GeneratePlan", {Role::kClinician, Role::kIntegrator}},
    {"GetPlan", {Role::kPatient, Role::kClinician, Role::kIntegrator, Role::kService}},
    {"GetActivePlan", {Role::kPatient, Role::kClinician, Role::kIntegrator, Role::kService}},
    {"ListPlanRevisions", {Role::kPatient, Role::kClinician, Role::kIntegrator, Role::kService}},
    {"ExportPlanFhir", {Role::kPatient, Role::kClinician, Role::kIntegrator, Role::kService}},
    {"SearchFhir", {Role::kPatient, Role::kClinician, Role::kIntegrator}},
    {"ApprovePlan", {Role::kClinician}},
    {"RevisePlan", {Role::kClinician}},
    {"CompletePlan", {Role::kClinician}},
    {"AdjustPlan", {Role::kService, Role::kClinician, Role::kIntegrator, Role::kPatient}},
    {"ListInterventions", kEveryRole},
    // The tenant's own library: its integration publishes it; clinicians read it and its templates.
    {"PublishTenantLibrary", {Role::kIntegrator}},
    {"GetTenantLibrary", {Role::kClinician, Role::kIntegrator}},
    {"ListPlanTemplates", {Role::kClinician, Role::kIntegrator}},
    {"WatchEvents", {Role::kClinician, Role::kIntegrator, Role::kService}},
};

}  // namespace physio::planning
