#include "fhir_import.h"

#include <nlohmann/json.hpp>

#include <map>
#include <set>

#include "domain/instruments.h"
#include "fhir_export.h"
#include "intake_sections.h"
#include "physio/common/error.h"
#include "physio/common/fhir.h"
#include "physio/common/fhir_search.h"
#include "physio/common/validation.h"

namespace physio::assessment {

namespace {
using nlohmann::json;
namespace cpb = physio::common::v1;

constexpr const char* kField = "resource_json";

std::optional<InstrumentKind> InstrumentOfQuestionnaire(std::string url) {
  if (const auto bar = url.find('|'); bar != std::string::npos) url.resize(bar);  // canonical|version
  if (url == "http://loinc.org/q/97908-8") return InstrumentKind::kOdi;
  if (url == "http://loinc.org/q/91349-1") return InstrumentKind::kStartBack;
  const std::string local = kLocalQuestionnaireBase;
  if (url.rfind(local, 0) == 0) return KindOfCode(url.substr(local.size()));
  return std::nullopt;
}

[[noreturn]] void Refuse(const std::string& where, const std::string& why) {
  ThrowInvalidArgument(kField, where.empty() ? why : where + ": " + why);
}

// A value of the document named in a refusal: quoted when it is one short line, else only
// described (a line break or a page of text does not belong in an error message or a log).
std::string Shown(const std::string& value) {
  if (value.size() > 120 || ControlCharacterIn(value, LineBreaks::kOneLine) >= 0) {
    return "(a value of " + std::to_string(value.size()) + " bytes that is not one short line)";
  }
  return "'" + value + "'";
}

// Nesting deeper than any QuestionnaireResponse (or Bundle of them) goes is refused before the
// document is walked.
constexpr int kMaxDepth = 32;

// FHIR's strings hold no control character but tab, line feed and carriage return (R4 datatypes,
// `string`; DEL and C1 are refused as in every text of this project): every text of the document,
// those the import reads and those it ignores, and every member's name (one line), before anything
// is read.
void CheckTexts(const json& node, const std::string& where, int depth) {
  if (depth > kMaxDepth) Refuse(where, "nested deeper than " + std::to_string(kMaxDepth) + " levels");
  if (node.is_string()) {
    const std::string why = ControlCharacterRefusal(node.get_ref<const std::string&>());
    if (!why.empty()) Refuse(where, why);
  } else if (node.is_object()) {
    for (const auto& [key, value] : node.items()) {
      const std::string why = ControlCharacterRefusal(key, LineBreaks::kOneLine);
      if (!why.empty()) Refuse(where, "a member's name " + why);
      CheckTexts(value, where.empty() ? key : where + "." + key, depth + 1);
    }
  } else if (node.is_array()) {
    for (std::size_t i = 0; i < node.size(); ++i) CheckTexts(node[i], where + "[" + std::to_string(i) + "]", depth + 1);
  }
}

const json& Member(const json& object, const char* name, const std::string& where) {
  if (!object.is_object() || !object.contains(name)) Refuse(where, std::string(name) + " is required");
  return object.at(name);
}

std::string Text(const json& object, const char* name, const std::string& where) {
  const json& value = Member(object, name, where);
  if (!value.is_string()) Refuse(where + "." + name, "must be a string");
  return value.get<std::string>();
}

void CheckSubject(const json& response, const std::string& where, const std::string& patient_id,
                  const std::string& identifier_system) {
  const json& subject = Member(response, "subject", where);
  const std::string at = where + ".subject";
  if (subject.is_object() && subject.contains("reference")) {
    if (subject["reference"] != "Patient/" + patient_id) Refuse(at, "does not name patient_id");
    return;
  }
  if (subject.is_object() && subject.contains("identifier")) {
    const json& identifier = subject["identifier"];
    if (!identifier.is_object() || identifier.value("system", "") != identifier_system ||
        identifier.value("value", "") != patient_id) {
      Refuse(at, "identifier must be {system: " + identifier_system + ", value: patient_id}");
    }
    return;
  }
  Refuse(at, "needs a reference (Patient/<id>) or an identifier");
}

void ReadResponse(const json& response, const std::string& where, const std::string& patient_id,
                  const std::string& identifier_system, std::set<InstrumentKind>& seen,
                  std::vector<cpb::InstrumentAnswer>& out) {
  const std::string status = Text(response, "status", where);
  if (status != "completed" && status != "amended") Refuse(where + ".status", "must be completed or amended");
  CheckSubject(response, where, patient_id, identifier_system);
  // Not stored (the assessment is dated when it is stored), but a malformed date is refused as a
  // FHIR server refuses one, not passed over.
  if (response.contains("authored") &&
      (!response["authored"].is_string() || !ParseFhirDate(response["authored"].get<std::string>()))) {
    Refuse(where + ".authored", "must be a FHIR dateTime (2026-03-10T09:30:00Z)");
  }
  const std::string questionnaire = Text(response, "questionnaire", where);
  const auto kind = InstrumentOfQuestionnaire(questionnaire);
  if (!kind) Refuse(where + ".questionnaire", "unknown questionnaire " + Shown(questionnaire));
  if (!seen.insert(*kind).second) Refuse(where + ".questionnaire", "a second response to " + Shown(questionnaire));
  const InstrumentSpec& spec = SpecFor(*kind);
  std::map<std::string, const ItemSpec*> items;
  for (const auto& item : spec.items) items[item.id] = &item;

  std::set<std::string> answered;
  const json& list = response.contains("item") ? response["item"] : json::array();
  if (!list.is_array()) Refuse(where + ".item", "must be an array");
  for (std::size_t i = 0; i < list.size(); ++i) {
    const std::string at = where + ".item[" + std::to_string(i) + "]";
    const std::string link_id = Text(list[i], "linkId", at);
    if (!items.contains(link_id)) Refuse(at + ".linkId", Shown(link_id) + " is not an item of " + spec.code);
    if (!answered.insert(link_id).second) Refuse(at + ".linkId", Shown(link_id) + " answered twice");
    const json& answers = Member(list[i], "answer", at);
    if (!answers.is_array() || answers.size() != 1) Refuse(at + ".answer", "exactly one answer");
    const json& answer = answers[0];
    const std::string answer_at = at + ".answer[0]";
    if (!answer.is_object() || !answer.contains("valueInteger") || !answer["valueInteger"].is_number_integer()) {
      Refuse(answer_at, "valueInteger is required");
    }
    const auto value = answer["valueInteger"].get<long long>();
    if (value < -1000 || value > 1000) Refuse(answer_at + ".valueInteger", "out of range");
    cpb::InstrumentAnswer parsed;
    parsed.set_instrument(ProtoOf(*kind));
    parsed.set_item_id(link_id);
    parsed.set_value(static_cast<int>(value));
    if (answer.contains("item")) {
      const json& nested = answer["item"];
      if (!nested.is_array() || nested.size() != 1 || Text(nested[0], "linkId", answer_at + ".item[0]") != link_id + ".activity") {
        Refuse(answer_at + ".item", "only a " + link_id + ".activity item may be nested");
      }
      const json& activity = Member(nested[0], "answer", answer_at + ".item[0]");
      if (!activity.is_array() || activity.size() != 1 || !activity[0].contains("valueString") ||
          !activity[0]["valueString"].is_string()) {
        Refuse(answer_at + ".item[0].answer", "one valueString (the activity)");
      }
      parsed.set_text(activity[0]["valueString"].get<std::string>());
    }
    out.push_back(std::move(parsed));
  }
  // The export leaves declined items out; an absent declinable item is declined.
  for (const auto& item : spec.items) {
    if (answered.contains(item.id) || !item.may_decline) continue;
    cpb::InstrumentAnswer declined;
    declined.set_instrument(ProtoOf(*kind));
    declined.set_item_id(item.id);
    declined.set_declined(true);
    out.push_back(std::move(declined));
  }
}
std::vector<cpb::InstrumentAnswer> ReadResource(const std::string& resource_json, const std::string& patient_id,
                                                const std::string& identifier_system);
}  // namespace

std::vector<cpb::InstrumentAnswer> AnswersFromFhir(const std::string& resource_json, const std::string& patient_id,
                                                   const std::string& identifier_system) {
  try {
    return ReadResource(resource_json, patient_id, identifier_system);
  } catch (const json::exception&) {
    // A member of an unexpected JSON type deep in the resource (each read checks its type first;
    // this is the net under them, and names no parser internals).
    ThrowInvalidArgument(kField, "a member has an unexpected JSON type");
  }
}

namespace {
std::vector<cpb::InstrumentAnswer> ReadResource(const std::string& resource_json, const std::string& patient_id,
                                                const std::string& identifier_system) {
  const json resource = json::parse(resource_json, nullptr, /*allow_exceptions=*/false);
  if (resource.is_discarded() || !resource.is_object()) Refuse("", "not a JSON object");
  CheckTexts(resource, "", 0);
  const std::string type = Text(resource, "resourceType", "");
  std::vector<cpb::InstrumentAnswer> answers;
  std::set<InstrumentKind> seen;
  if (type == "QuestionnaireResponse") {
    ReadResponse(resource, "", patient_id, identifier_system, seen, answers);
  } else if (type == "Bundle") {
    const json& entries = Member(resource, "entry", "");
    if (!entries.is_array()) Refuse("entry", "must be an array");
    for (std::size_t i = 0; i < entries.size(); ++i) {
      const std::string at = "entry[" + std::to_string(i) + "].resource";
      const json& entry = Member(entries[i], "resource", "entry[" + std::to_string(i) + "]");
      if (FhirString(entry, "resourceType") == "QuestionnaireResponse") {
        ReadResponse(entry, at, patient_id, identifier_system, seen, answers);
      }
    }
  } else {
    Refuse("resourceType", "a QuestionnaireResponse or a Bundle, not " + Shown(type));
  }
  if (seen.empty()) Refuse("", "no QuestionnaireResponse");
  return answers;
}

}  // namespace

}  // namespace physio::assessment
