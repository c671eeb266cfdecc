#pragma once
// FHIR R4 export of an assessment: a Bundle (type "collection") holding one
// QuestionnaireResponse per instrument and one Observation per score, plus the
// red-flag result and the classification. LOINC codes where they exist
// (pain 72514-3, ODI 97909-6, STarT Back 91351-7/91350-9/91352-5), a local code
// system otherwise. Deterministic: the same assessment gives the same bundle.
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "physio/assessment/v1/assessment.pb.h"

namespace physio::assessment {

inline constexpr const char* kLocalQuestionnaireBase = "https://physio-backend.org/fhir/Questionnaire/";

// How a score of `instrument` is coded in an Observation (LOINC where one exists, our
// code system otherwise), with its value: valueInteger, or valueQuantity in these units.
struct FhirScoreCoding {
  nlohmann::json code;
  bool integer_value;
  std::string unit;  // UCUM, for valueQuantity
};
FhirScoreCoding FhirScoreCodingOf(common::v1::Instrument instrument);
// The FHIR value member of an Observation for `score` ("valueInteger": 6 or "valueQuantity": {...}).
void SetFhirScoreValue(nlohmann::json& observation, common::v1::Instrument instrument, double score);
// The subject of every resource about `patient_id`.
nlohmann::json FhirPatientReference(const std::string& patient_id, const std::string& identifier_system);

// One consent record as a FHIR R4 Consent (id "consent-<n>"): active when granted, inactive when
// withdrawn; a treatment consent is scope "treatment", a data-sharing consent "patient-privacy"
// with the platform as the provision's actor (by identifier). Only the latest record of each kind
// (and platform) is the patient's current decision; earlier ones are history.
nlohmann::json ConsentToFhir(const v1::ConsentRecord& record, const std::string& identifier_system);

// The assessment's resources in their REST form (ids, meta.lastUpdated: when it was stored, or the
// clinician's red-flag judgement if later).
std::vector<nlohmann::json> AssessmentRestResources(const v1::Assessment& assessment,
                                                    const std::string& identifier_system);

// Patients are referenced as Patient/<id>, with an identifier {system: identifier_system, value: id}.
nlohmann::json AssessmentFhirBundle(const v1::Assessment& assessment, const std::string& identifier_system);
// The same bundle as JSON text.
std::string AssessmentToFhirBundle(const v1::Assessment& assessment, const std::string& identifier_system);

}  // namespace physio::assessment
