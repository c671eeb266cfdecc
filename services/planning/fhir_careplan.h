#pragma once
// FHIR R4 export of a plan: a Bundle (type "collection") with one CarePlan and a
// Goal per plan goal. Exercises are coded with SNOMED CT 229065009 (exercise
// therapy); other items with the project's local code system. Advised-against
// modalities are activities with doNotPerform = true; a referral is a
// ServiceRequest-kind activity. Deterministic for the same plan revision.
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "physio/planning/v1/planning.pb.h"

namespace physio::planning {

nlohmann::json PlanFhirBundle(const v1::Plan& plan);
// The same bundle as JSON text.
std::string PlanToFhirBundle(const v1::Plan& plan);
// The plan's CarePlan and Goals in their REST form (ids, meta.lastUpdated: the plan's last change).
std::vector<nlohmann::json> PlanRestResources(const v1::Plan& plan);

}  // namespace physio::planning
