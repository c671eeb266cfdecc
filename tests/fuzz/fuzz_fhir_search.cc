// libFuzzer: whatever a FHIR client puts in a search (parameter names and values, dates, a
// cursor), FhirSearch answers a page or INVALID_ARGUMENT naming the parameter; never a crash.
// Input: lines "name=value"; the first line is the cursor.
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "physio/common/error.h"
#include "physio/common/fhir_search.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string raw(reinterpret_cast<const char*>(data), size);
  std::istringstream lines(raw);
  std::string cursor, line;
  std::getline(lines, cursor);
  std::vector<physio::FhirSearchParameter> parameters;
  while (std::getline(lines, line) && parameters.size() < 16) {
    const auto equals = line.find('=');
    parameters.push_back({line.substr(0, equals), equals == std::string::npos ? "" : line.substr(equals + 1)});
    physio::ParseFhirDate(parameters.back().value);
  }
  const nlohmann::json observation = {
      {"resourceType", "Observation"},
      {"id", "asm-1.obs-odi"},
      {"code", {{"coding", nlohmann::json::array({{{"system", "http://loinc.org"}, {"code", "97909-6"}}})}}},
      {"effectiveDateTime", "2026-01-01T10:00:00Z"},
      {"meta", {{"lastUpdated", "2026-01-01T10:00:00.123Z"}}}};
  for (const char* type : {"Observation", "Encounter", "AuditEvent"}) {
    for (bool strict : {false, true}) {
      try {
        physio::FhirSearch search(type, parameters, strict);
        search.Select({observation, observation}, 1, cursor, "tenant|patient");
      } catch (const physio::Error& e) {
        if (e.code() != physio::ErrorCode::kInvalidArgument) __builtin_trap();
      }
    }
  }
  return 0;
}
