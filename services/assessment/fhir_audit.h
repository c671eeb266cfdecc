#pragma once
// Audit records as FHIR R4 AuditEvent resources, following the IHE Basic Audit
// Log Patterns (BALP) where they fit: a RESTful operation (type rest) with the
// FHIR interaction it resembles as subtype, the user, client and server agents,
// the service as the observing source, the patient and the record as entities
// and the request id as a BALP XrequestId entity. Successful calls name the BALP
// profile they follow (PatientRead, PatientQuery, PatientCreate, PatientUpdate,
// or Read/Query/Create/Update without a patient); failed calls have no BALP profile.
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "physio/assessment/v1/assessment.pb.h"

namespace physio::assessment {

// One record as an AuditEvent. `patient_system`: the identifier system of patient references.
nlohmann::json AuditEventResource(const v1::AuditRecord& record, const std::string& patient_system);
// A Bundle of type "collection" holding them, in order.
std::string AuditEventBundle(const std::vector<v1::AuditRecord>& records, const std::string& patient_system);

}  // namespace physio::assessment
