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

}  // namespace physio
