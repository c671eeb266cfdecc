#include "fhir_progress.h"

#include <google/protobuf/util/time_util.h>

#include <nlohmann/json.hpp>

#include "assessment/fhir_export.h"
#include "physio/common/fhir.h"
#include "physio/common/fhir_search.h"

namespace physio::progress {

namespace {
using google::protobuf::util::TimeUtil;
using nlohmann::json;
namespace cpb = physio::common::v1;

json Identifier(const std::string& kind, const std::string& value) {
  return json::array({{{"system", std::string(kPhysioCodeSystem) + "/" + kind}, {"value", value}}});
}

json SurveyCategory() {
  return json::array(
      {{{"coding", json::array({{{"system", "http://terminology.hl7.org/CodeSystem/observation-category"},
                                 {"code", "survey"},
                                 {"display", "Survey"}}})}}});
}
}  // namespace

std::vector<json> ProgressRestResources(const std::string& patient_id, const std::vector<v1::Visit>& visits,
                                       const std::vector<v1::OutcomeMeasure>& measures,
                                       const std::vector<v1::Alert>& alerts, const std::string& identifier_system) {
  std::vector<json> resources;
  auto add = [&](json bundle, const google::protobuf::Timestamp& changed) {
    for (auto& resource : FhirRestResources(std::move(bundle), TimeUtil::ToString(changed))) {
      resources.push_back(std::move(resource));
    }
  };
  for (const auto& visit : visits) add(ProgressFhirBundle(patient_id, {visit}, {}, {}, identifier_system), visit.visit_time());
  for (const auto& measure : measures) {
    add(ProgressFhirBundle(patient_id, {}, {measure}, {}, identifier_system), measure.measure_time());
  }
  for (const auto& alert : alerts) {
    add(ProgressFhirBundle(patient_id, {}, {}, {alert}, identifier_system),
        alert.has_last_raise_time() ? alert.last_raise_time() : alert.create_time());
  }
  return resources;
}

std::string ProgressToFhirBundle(const std::string& patient_id, const std::vector<v1::Visit>& visits,
                                 const std::vector<v1::OutcomeMeasure>& measures, const std::vector<v1::Alert>& alerts,
                                 const std::string& identifier_system) {
  return ProgressFhirBundle(patient_id, visits, measures, alerts, identifier_system).dump();
}

json ProgressFhirBundle(const std::string& patient_id, const std::vector<v1::Visit>& visits,
                        const std::vector<v1::OutcomeMeasure>& measures, const std::vector<v1::Alert>& alerts,
                        const std::string& identifier_system) {
  const json subject = assessment::FhirPatientReference(patient_id, identifier_system);
  json entries = json::array();
  auto add = [&](const std::string& full_url, json resource) {
    entries.push_back({{"fullUrl", full_url}, {"resource", std::move(resource)}});
  };

  for (const auto& visit : visits) {
    const std::string encounter_url = FhirUrnUuid(visit.visit_id() + "/encounter");
    const std::string when = TimeUtil::ToString(visit.visit_time());
    const bool telehealth = visit.kind() == v1::VISIT_KIND_TELEHEALTH;
    add(encounter_url,
        {{"resourceType", "Encounter"},
         {"id", FhirIdOf(visit.visit_id())},
         {"identifier", Identifier("visit", visit.visit_id())},
         {"status", "finished"},
         {"class", {{"system", "http://terminology.hl7.org/CodeSystem/v3-ActCode"},
                    {"code", telehealth ? "VR" : "AMB"},
                    {"display", telehealth ? "virtual" : "ambulatory"}}},
         {"subject", subject},
         {"period", {{"start", when}}}});
    // The pain the patient arrived and left with, each an Observation of this encounter.
    for (const auto& [present, value, moment] :
         {std::tuple{visit.has_pain_before(), visit.pain_before(), "before"},
          std::tuple{visit.has_pain_after(), visit.pain_after(), "after"}}) {
      if (!present) continue;
      json observation = {{"resourceType", "Observation"},
                          {"id", FhirIdOf(visit.visit_id()) + ".pain-" + moment},
                          {"status", "final"},
                          {"category", SurveyCategory()},
                          {"code", assessment::FhirScoreCodingOf(cpb::INSTRUMENT_NPRS).code},
                          {"subject", subject},
                          {"encounter", {{"reference", encounter_url}}},
                          {"effectiveDateTime", when},
                          {"note", json::array({{{"text", std::string("pain ") + moment + " the visit"}}})}};
      assessment::SetFhirScoreValue(observation, cpb::INSTRUMENT_NPRS, value);
      add(FhirUrnUuid(visit.visit_id() + "/pain-" + moment), observation);
    }
  }

  for (const auto& measure : measures) {
    json observation = {{"resourceType", "Observation"},
                        {"id", FhirIdOf(measure.measure_id())},
                        {"identifier", Identifier("outcome-measure", measure.measure_id())},
                        {"status", "final"},
                        {"category", SurveyCategory()},
                        {"code", assessment::FhirScoreCodingOf(measure.score().instrument()).code},
                        {"subject", subject},
                        {"effectiveDateTime", TimeUtil::ToString(measure.measure_time())}};
    assessment::SetFhirScoreValue(observation, measure.score().instrument(), measure.score().score());
    add(FhirUrnUuid(measure.measure_id() + "/observation"), observation);
  }

  for (const auto& alert : alerts) {
    std::string reasons;
    for (const auto& reason : alert.reasons()) reasons += (reasons.empty() ? "" : "; ") + reason;
    const std::string kind = v1::AlertKind_Name(alert.kind());
    json code = FhirConcept(kPhysioCodeSystem, "alert-" + kind, kind);
    if (!reasons.empty()) code["text"] = reasons;
    add(FhirUrnUuid(alert.alert_id() + "/flag"),
        {{"resourceType", "Flag"},
         {"id", FhirIdOf(alert.alert_id())},
         {"identifier", Identifier("alert", alert.alert_id())},
         {"status", alert.status() == v1::ALERT_STATUS_OPEN ? "active" : "inactive"},
         {"category", json::array({{{"coding", json::array({{{"system", "http://terminology.hl7.org/CodeSystem/flag-category"},
                                                              {"code", "clinical"},
                                                              {"display", "Clinical"}}})}}})},
         {"code", code},
         {"subject", subject},
         {"period", {{"start", TimeUtil::ToString(alert.create_time())}}}});
  }

  return {{"resourceType", "Bundle"}, {"type", "collection"}, {"entry", std::move(entries)}};
}

}  // namespace physio::progress
