#pragma once
// Who may call each assessment RPC: checked by the call pipeline before the use
// case runs; the README's RPC table is checked against it (unit test). A patient
// acts only on their own record and the examination section is for staff: those
// rules need the request's fields and stay in assessment_app.cc.
#include "physio/auth/method_roles.h"

namespace physio::assessment {

inline const MethodRoles kAssessmentRoles = {
    {"StartIntake", {Role::kPatient, Role::kClinician, Role::kIntegrator}},
    {"SubmitIntakeAnswers", {Role::kPatient, Role::kClinician, Role::kIntegrator}},
    {"GetIntake", {Role::kPatient, Role::kClinician, Role::kIntegrator}},
    {"CompleteIntake", {Role::kPatient, Role::kClinician, Role::kIntegrator}},
    {"GetAssessment", {Role::kPatient, Role::kClinician, Role::kIntegrator, Role::kService}},
    {"ListAssessments", {Role::kPatient, Role::kClinician, Role::kIntegrator, Role::kService}},
    {"ExportAssessmentFhir", {Role::kPatient, Role::kClinician, Role::kIntegrator, Role::kService}},
    {"CreateAssessment", {Role::kClinician, Role::kIntegrator}},
    {"ImportFhirQuestionnaireResponse", {Role::kClinician, Role::kIntegrator}},
    {"RecordRedFlagJudgement", {Role::kClinician}},
    {"ReassessPatient", {Role::kClinician}},
    {"ScoreInstrument", kEveryRole},
    {"WatchEvents", {Role::kClinician, Role::kIntegrator, Role::kService}},
    {"EnrolPatient", {Role::kClinician, Role::kIntegrator}},
    {"TransferPatient", {Role::kClinician, Role::kIntegrator}},
    {"GetPatientClinics", {Role::kClinician, Role::kIntegrator}},
    {"RecordConsent", {Role::kPatient, Role::kClinician, Role::kIntegrator}},
    {"ListConsents", {Role::kPatient, Role::kClinician, Role::kIntegrator, Role::kService}},
    // The audit trail: auditors only, who have no clinical access of their own.
    {"ListAuditEvents", {Role::kAuditor}},
    {"ExportAuditEvents", {Role::kAuditor}},
    // The FHIR REST API (docs/fhir.md): reads and searches as the records' own reads; the audit
    // trail's AuditEvents for auditors; the create as the import.
    {"SearchFhir", {Role::kPatient, Role::kClinician, Role::kIntegrator}},
    {"SearchFhirAuditEvents", {Role::kAuditor}},
    {"CreateFhirResource", {Role::kClinician, Role::kIntegrator}},
    // FHIR bulk export: the tenant's integrations (system-to-system, as the specification intends).
    {"StartBulkExport", {Role::kIntegrator}},
    {"GetBulkExportStatus", {Role::kIntegrator}},
    {"GetBulkExportFile", {Role::kIntegrator}},
    {"CancelBulkExport", {Role::kIntegrator}},
    // Webhooks: the tenant's integrations.
    {"CreateWebhookSubscription", {Role::kIntegrator}},
    {"ListWebhookSubscriptions", {Role::kIntegrator}},
    {"UpdateWebhookSubscription", {Role::kIntegrator}},
    {"DeleteWebhookSubscription", {Role::kIntegrator}},
    {"RotateWebhookSecret", {Role::kIntegrator}},
    {"ListWebhookDeliveries", {Role::kIntegrator}},
    {"ReplayWebhookDeliveries", {Role::kIntegrator}},
};

}  // namespace physio::assessment
