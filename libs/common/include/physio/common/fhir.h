#pragma once
// Small FHIR R4 JSON building blocks shared by the assessment and plan exports.
#include <nlohmann/json.hpp>

#include <string>

namespace physio {

// The project's own code system, for concepts LOINC and SNOMED CT do not cover.
inline constexpr const char* kPhysioCodeSystem = "https://physio-backend.org/fhir/CodeSystem/physio";

// A stable "urn:uuid:" for a bundle entry: a UUID-shaped SHA-256 prefix of `seed`,
// so the same record always exports the same fullUrl.
std::string FhirUrnUuid(const std::string& seed);

// A CodeableConcept with one coding and the display as text.
nlohmann::json FhirConcept(const std::string& system, const std::string& code, const std::string& display);

// The text of `object`'s member `name` in a document a caller sent, or "" when `object` is not an
// object or the member is absent or not a string. (nlohmann's value() throws for a member of
// another type, which a caller's `"resourceType": 5` must not turn into an internal error.)
std::string FhirString(const nlohmann::json& object, const char* name);

}  // namespace physio
