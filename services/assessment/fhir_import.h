#pragma once
// FHIR R4 import: a QuestionnaireResponse (or a Bundle of them, as the export
// writes) becomes the answers of an assessment. The inverse of fhir_export for
// the answers: questionnaire canonical URL -> instrument, linkId -> item id,
// valueInteger -> answer code, nested "<item>.activity" valueString -> PSFS
// activity; an absent item of a declinable question is declined. Plain C++:
// no store, no gRPC.
#include <string>
#include <vector>

#include "physio/common/v1/common.pb.h"

namespace physio::assessment {

// Throws Error(kInvalidArgument) naming where in `resource_json` the problem is
// (e.g. "resource_json: entry[2].resource.item[4].answer[0]: valueInteger is required").
// The subject of every QuestionnaireResponse must be "Patient/<patient_id>" or an
// identifier {system: identifier_system, value: patient_id}.
std::vector<common::v1::InstrumentAnswer> AnswersFromFhir(const std::string& resource_json,
                                                          const std::string& patient_id,
                                                          const std::string& identifier_system);

}  // namespace physio::assessment
