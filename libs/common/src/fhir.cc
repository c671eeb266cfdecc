#include "physio/common/fhir.h"

#include "physio/common/ids.h"

namespace physio {

std::string FhirUrnUuid(const std::string& seed) {
  std::string hex = Sha256Hex(seed).substr(0, 32);
  hex[12] = '5';  // name-based version nibble
  return "urn:uuid:" + hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) + "-" + hex.substr(16, 4) +
         "-" + hex.substr(20, 12);
}

nlohmann::json FhirConcept(const std::string& system, const std::string& code, const std::string& display) {
  return {{"coding", nlohmann::json::array({{{"system", system}, {"code", code}, {"display", display}}})},
          {"text", display}};
}

std::string FhirString(const nlohmann::json& object, const char* name) {
  if (!object.is_object()) return "";
  const auto member = object.find(name);
  return member != object.end() && member->is_string() ? member->get<std::string>() : "";
}

}  // namespace physio
