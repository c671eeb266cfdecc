#include "fhir_export.h"

#include <google/protobuf/util/time_util.h>

#include <nlohmann/json.hpp>

#include "domain/instruments.h"
#include "physio/common/fhir.h"
#include "physio/common/fhir_search.h"

namespace physio::assessment {

namespace {
using nlohmann::json;
namespace cpb = physio::common::v1;

json Local(const std::string& code, const std::string& display) { return FhirConcept(kPhysioCodeSystem, code, display); }

struct InstrumentCodes {
  std::string code;        // instrument code in our API ("odi")
  std::string questionnaire;
  json score_code;
  std::string unit;        // UCUM for valueQuantity
};

InstrumentCodes CodesFor(cpb::Instrument instrument) {
  switch (instrument) {
    case cpb::INSTRUMENT_NPRS:
      return {"nprs", std::string(kLocalQuestionnaireBase) + "nprs",
              FhirConcept("http://loinc.org", "72514-3", "Pain severity - 0-10 verbal numeric rating [Score] - Reported"),
              "{score}"};
    case cpb::INSTRUMENT_ODI:
      return {"odi", "http://loinc.org/q/97908-8", FhirConcept("http://loinc.org", "97909-6", "Oswestry Disability Index score"), "%"};
    case cpb::INSTRUMENT_RMDQ:
      return {"rmdq", std::string(kLocalQuestionnaireBase) + "rmdq", Local("rmdq-score", "Roland-Morris Disability Questionnaire score"), "{score}"};
    case cpb::INSTRUMENT_START_BACK:
      return {"sbt", "http://loinc.org/q/91349-1", FhirConcept("http://loinc.org", "91351-7", "STarT Back total score"), "{score}"};
    case cpb::INSTRUMENT_FABQ:
      return {"fabq", std::string(kLocalQuestionnaireBase) + "fabq", Local("fabq-work", "FABQ work subscale"), "{score}"};
    case cpb::INSTRUMENT_PSFS:
      return {"psfs", std::string(kLocalQuestionnaireBase) + "psfs", Local("psfs-mean", "Patient-Specific Functional Scale mean"), "{score}"};
    default:
      return {"unknown", std::string(kLocalQuestionnaireBase) + "unknown", Local("unknown", "unknown"), "{score}"};
  }
}

json Quantity(double value, const std::string& unit) {
  return {{"value", value}, {"unit", unit}, {"system", "http://unitsofmeasure.org"}, {"code", unit}};
}

json StartBackRiskConcept(const std::string& band) {
  // LOINC answer list for 91352-5.
  if (band == "low") return FhirConcept("http://loinc.org", "LA9194-7", "Low risk");
  if (band == "medium") return FhirConcept("http://loinc.org", "LA8982-6", "Medium risk");
  return FhirConcept("http://loinc.org", "LA9193-9", "High risk");
}
}  // namespace

FhirScoreCoding FhirScoreCodingOf(cpb::Instrument instrument) {
  const InstrumentCodes codes = CodesFor(instrument);
  const bool integer = instrument == cpb::INSTRUMENT_NPRS || instrument == cpb::INSTRUMENT_RMDQ ||
                       instrument == cpb::INSTRUMENT_START_BACK;
  return {codes.score_code, integer, codes.unit};
}

void SetFhirScoreValue(json& observation, cpb::Instrument instrument, double score) {
  const FhirScoreCoding coding = FhirScoreCodingOf(instrument);
  if (coding.integer_value) {
    observation["valueInteger"] = static_cast<int>(score);
  } else {
    observation["valueQuantity"] = Quantity(score, coding.unit);
  }
}

json FhirPatientReference(const std::string& patient_id, const std::string& identifier_system) {
  return {{"reference", "Patient/" + patient_id}, {"identifier", {{"system", identifier_system}, {"value", patient_id}}}};
}

std::vector<json> AssessmentRestResources(const v1::Assessment& a, const std::string& identifier_system) {
  using google::protobuf::util::TimeUtil;
  // An assessment changes after it is stored only by the clinician's red-flag judgement.
  const auto& judged = a.clinician_red_flag_judgement();
  const bool judged_later = a.has_clinician_red_flag_judgement() && judged.has_decide_time() &&
                            judged.decide_time().seconds() > a.create_time().seconds();
  return FhirRestResources(AssessmentFhirBundle(a, identifier_system),
                           TimeUtil::ToString(judged_later ? judged.decide_time() : a.create_time()));
}

json ConsentToFhir(const v1::ConsentRecord& record, const std::string& identifier_system) {
  using google::protobuf::util::TimeUtil;
  const bool granted = record.decision() == v1::CONSENT_DECISION_GRANTED;
  const bool sharing = record.kind() == v1::CONSENT_KIND_DATA_SHARING;
  const std::string kind = record.kind() == v1::CONSENT_KIND_TREATMENT      ? "treatment"
                           : record.kind() == v1::CONSENT_KIND_MANIPULATION ? "manipulation"
                                                                            : "data-sharing";
  json provision = {{"type", granted ? "permit" : "deny"}};
  if (sharing && !record.platform().empty()) {
    provision["actor"] = json::array(
        {{{"role", FhirConcept("http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "IRCP", "information recipient")},
          {"reference", {{"identifier", {{"system", std::string(kPhysioCodeSystem) + "/platform"}, {"value", record.platform()}}},
                         {"display", record.platform()}}}}});
  }
  json consent = {
      {"resourceType", "Consent"},
      {"id", record.consent_id()},
      {"identifier", json::array({{{"system", std::string(kPhysioCodeSystem) + "/consent"}, {"value", record.consent_id()}}})},
      {"status", granted ? "active" : "inactive"},
      {"scope", sharing ? FhirConcept("http://terminology.hl7.org/CodeSystem/consentscope", "patient-privacy", "Privacy Consent")
                        : FhirConcept("http://terminology.hl7.org/CodeSystem/consentscope", "treatment", "Treatment")},
      {"category", json::array({FhirConcept("http://loinc.org", "59284-0", "Patient Consent"), Local("consent-" + kind, kind)})},
      {"patient", FhirPatientReference(record.patient_id(), identifier_system)},
      {"dateTime", TimeUtil::ToString(record.record_time())},
      {"policyRule", FhirConcept("http://terminology.hl7.org/CodeSystem/v3-ActCode", granted ? "OPTIN" : "OPTOUT",
                                 granted ? "opt-in" : "opt-out")},
      {"provision", provision},
      {"meta", {{"lastUpdated", TimeUtil::ToString(record.record_time())}}}};
  return consent;
}

std::string AssessmentToFhirBundle(const v1::Assessment& a, const std::string& identifier_system) {
  return AssessmentFhirBundle(a, identifier_system).dump();
}

json AssessmentFhirBundle(const v1::Assessment& a, const std::string& identifier_system) {
  using google::protobuf::util::TimeUtil;
  const std::string when = TimeUtil::ToString(a.create_time());
  const json subject = FhirPatientReference(a.patient_id(), identifier_system);
  const json survey = json::array({FhirConcept("http://terminology.hl7.org/CodeSystem/observation-category", "survey", "Survey")});
  json entries = json::array();
  auto add = [&](const std::string& full_url, json resource) {
    json entry = json::object();
    entry["fullUrl"] = full_url;
    entry["resource"] = std::move(resource);
    entries.push_back(std::move(entry));
  };

  for (const auto& score : a.scores()) {
    const InstrumentCodes codes = CodesFor(score.instrument());
    // The questionnaire response: item ids and answer codes only, never the licensed wording.
    json items = json::array();
    for (const auto& answer : a.answers()) {
      if (answer.instrument() != score.instrument() || answer.declined()) continue;
      json answer_json = {{"valueInteger", answer.value()}};
      if (!answer.text().empty()) {
        answer_json["item"] = json::array(
            {{{"linkId", answer.item_id() + ".activity"}, {"answer", json::array({{{"valueString", answer.text()}}})}}});
      }
      items.push_back({{"linkId", answer.item_id()}, {"answer", json::array({answer_json})}});
    }
    const std::string response_url = FhirUrnUuid(a.assessment_id() + "/" + "qr/" + codes.code);
    const std::string fhir_id = FhirIdOf(a.assessment_id());
    add(response_url, {{"resourceType", "QuestionnaireResponse"},
                       {"id", fhir_id + ".qr-" + codes.code},
                       {"identifier", {{"system", std::string(kPhysioCodeSystem) + "/assessment"},
                                       {"value", a.assessment_id() + "/" + codes.code}}},
                       {"questionnaire", codes.questionnaire},
                       {"status", "completed"},
                       {"subject", subject},
                       {"authored", when},
                       {"item", std::move(items)}});

    json observation = {{"resourceType", "Observation"},
                        {"id", fhir_id + ".obs-" + codes.code},
                        {"status", "final"},
                        {"category", survey},
                        {"code", codes.score_code},
                        {"subject", subject},
                        {"effectiveDateTime", when},
                        {"derivedFrom", json::array({{{"reference", response_url}}})}};
    SetFhirScoreValue(observation, score.instrument(), score.score());
    json components = json::array();
    for (const auto& sub : score.subscores()) {
      json code = sub.name() == "psychosocial" ? FhirConcept("http://loinc.org", "91350-9", "STarT Back distress subscore")
                                               : Local(codes.code + "-" + sub.name(), sub.name());
      components.push_back({{"code", code}, {"valueQuantity", Quantity(sub.value(), "{score}")}});
    }
    if (score.instrument() == cpb::INSTRUMENT_START_BACK && !score.band().empty()) {
      components.push_back({{"code", FhirConcept("http://loinc.org", "91352-5", "STarT Back risk group")},
                            {"valueCodeableConcept", StartBackRiskConcept(score.band())}});
    } else if (!score.band().empty()) {
      components.push_back({{"code", Local(codes.code + "-band", "severity band")},
                            {"valueCodeableConcept", Local(codes.code + "-band-" + score.band(), score.band())}});
    }
    for (const auto& flag : score.flags()) {
      components.push_back({{"code", Local("finding", "finding")}, {"valueCodeableConcept", Local(flag, flag)}});
    }
    if (!components.empty()) observation["component"] = std::move(components);
    add(FhirUrnUuid(a.assessment_id() + "/" + "obs/" + codes.code), std::move(observation));
  }

  // The red-flag screen: the computed action, each condition's concern, and the clinician's judgement.
  if (a.has_red_flags()) {
    const std::string action = v1::RedFlagAction_Name(a.red_flags().action());
    json observation = {{"resourceType", "Observation"},
                        {"id", FhirIdOf(a.assessment_id()) + ".obs-red-flags"},
                        {"status", "final"},
                        {"category", survey},
                        {"code", Local("red-flag-screen", "Low back pain red-flag screen")},
                        {"subject", subject},
                        {"effectiveDateTime", when},
                        {"valueCodeableConcept", Local(action, action)}};
    json components = json::array();
    for (const auto& concern : a.red_flags().concerns()) {
      std::string reasons;
      for (const auto& reason : concern.reasons()) reasons += (reasons.empty() ? "" : "; ") + reason;
      components.push_back({{"code", Local("red-flag-" + concern.condition(), concern.condition())},
                            {"valueString", v1::RedFlagAction_Name(concern.action()) + ": " + reasons}});
    }
    if (a.has_clinician_red_flag_judgement()) {
      const std::string judged = v1::RedFlagAction_Name(a.clinician_red_flag_judgement().action());
      components.push_back({{"code", Local("red-flag-clinician-judgement", "clinician judgement")},
                            {"valueCodeableConcept", Local(judged, judged)}});
    }
    if (!components.empty()) observation["component"] = std::move(components);
    add(FhirUrnUuid(a.assessment_id() + "/" + "obs/red-flags"), std::move(observation));
  }

  // Classification.
  if (a.has_classification()) {
    const auto& c = a.classification();
    json components = json::array();
    if (c.phase() != cpb::PHASE_UNSPECIFIED) {
      const std::string phase = cpb::Phase_Name(c.phase());
      components.push_back({{"code", Local("phase", "status-based treatment phase")},
                            {"valueCodeableConcept", Local(phase, phase)}});
    }
    if (c.start_back_risk() != v1::START_BACK_RISK_UNSPECIFIED) {
      const std::string band = c.start_back_risk() == v1::START_BACK_RISK_LOW      ? "low"
                               : c.start_back_risk() == v1::START_BACK_RISK_MEDIUM ? "medium"
                                                                                  : "high";
      components.push_back({{"code", FhirConcept("http://loinc.org", "91352-5", "STarT Back risk group")},
                            {"valueCodeableConcept", StartBackRiskConcept(band)}});
    }
    const std::string subgroup = v1::Subgroup_Name(c.subgroup());
    json observation = {{"resourceType", "Observation"},
                        {"id", FhirIdOf(a.assessment_id()) + ".obs-classification"},
                        {"status", "final"},
                        {"category", json::array({FhirConcept("http://terminology.hl7.org/CodeSystem/observation-category",
                                                          "exam", "Exam")})},
                        {"code", Local("treatment-based-classification", "Treatment-based classification")},
                        {"subject", subject},
                        {"effectiveDateTime", when},
                        {"valueCodeableConcept", Local(subgroup, subgroup)}};
    if (!components.empty()) observation["component"] = std::move(components);
    add(FhirUrnUuid(a.assessment_id() + "/" + "obs/classification"), std::move(observation));
  }

  json bundle = {{"resourceType", "Bundle"},
                 {"id", a.assessment_id()},
                 {"type", "collection"},
                 {"timestamp", when},
                 {"entry", std::move(entries)}};
  return bundle;
}

}  // namespace physio::assessment
