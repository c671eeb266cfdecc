#pragma once
// FHIR R4 export of a patient's course of care: an Encounter per visit (with an
// Observation per pain reading taken at it), an Observation per outcome
// re-measure, and a Flag per alert. The codes are the assessment export's
// (LOINC where one exists). Deterministic for the same records.
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "physio/progress/v1/progress.pb.h"

namespace physio::progress {

nlohmann::json ProgressFhirBundle(const std::string& patient_id, const std::vector<v1::Visit>& visits,
                                  const std::vector<v1::OutcomeMeasure>& measures, const std::vector<v1::Alert>& alerts,
                                  const std::string& identifier_system);
// The same bundle as JSON text.
std::string ProgressToFhirBundle(const std::string& patient_id, const std::vector<v1::Visit>& visits,
                                 const std::vector<v1::OutcomeMeasure>& measures, const std::vector<v1::Alert>& alerts,
                                 const std::string& identifier_system);
// The same records in their REST form, each record's resources with its own time as
// meta.lastUpdated (a visit's and a re-measure's own time, an alert's last finding).
std::vector<nlohmann::json> ProgressRestResources(const std::string& patient_id, const std::vector<v1::Visit>& visits,
                                                  const std::vector<v1::OutcomeMeasure>& measures,
                                                  const std::vector<v1::Alert>& alerts,
                                                  const std::string& identifier_system);

}  // namespace physio::progress
