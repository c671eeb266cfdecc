#pragma once
// Who may call each progress RPC: checked by the call pipeline before the use
// case runs; the README's RPC table is checked against it (unit test). A patient
// acts only on their own record: that rule needs the request's patient and
// stays in progress_app.cc.
#include "physio/auth/method_roles.h"

namespace physio::progress {

inline const MethodRoles kProgressRoles = {
    {"RecordVisit", {Role::kClinician, Role::kIntegrator}},
    {"StartVisitSession", {Role::kClinician, Role::kIntegrator}},
    {"UpdateVisitSession", {Role::kClinician, Role::kIntegrator}},
    {"GetVisitSession", {Role::kClinician, Role::kIntegrator}},
    {"CompleteVisitSession", {Role::kClinician, Role::kIntegrator}},
    {"LogHomeExercise", {Role::kPatient, Role::kClinician, Role::kIntegrator}},
    {"ReportSymptoms", {Role::kPatient, Role::kClinician, Role::kIntegrator}},
    {"RecordOutcome", {Role::kPatient, Role::kClinician, Role::kIntegrator}},
    {"GetProgressSummary", {Role::kPatient, Role::kClinician, Role::kIntegrator}},
    {"ExportProgressFhir", {Role::kPatient, Role::kClinician, Role::kIntegrator}},
    {"SearchFhir", {Role::kPatient, Role::kClinician, Role::kIntegrator}},
    {"EvaluateProgress", {Role::kClinician, Role::kIntegrator, Role::kService}},
    {"ListAlerts", {Role::kClinician, Role::kIntegrator}},
    {"AcknowledgeAlert", {Role::kClinician}},
    {"BreakGlass", {Role::kClinician}},
    {"ListDueTasks", {Role::kPatient, Role::kClinician, Role::kIntegrator, Role::kService}},
    {"GetDischargeSummary", {Role::kPatient, Role::kClinician, Role::kIntegrator}},
    {"GetOutcomeReport", {Role::kAnalyst, Role::kClinician, Role::kIntegrator}},
    {"WatchEvents", {Role::kClinician, Role::kIntegrator, Role::kService}},
};

}  // namespace physio::progress
