#include "library.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>

#include "physio/common/error.h"
#include "physio/common/validation.h"

namespace physio::planning {

namespace {
using nlohmann::json;

const std::map<std::string, InterventionKind>& Kinds() {
  static const std::map<std::string, InterventionKind> kKinds = {
      {"exercise", InterventionKind::kExercise},
      {"manual_therapy", InterventionKind::kManualTherapy},
      {"education", InterventionKind::kEducation},
      {"lifestyle", InterventionKind::kLifestyle},
      {"pain_management", InterventionKind::kPainManagement},
      {"psychological", InterventionKind::kPsychological},
      {"not_recommended", InterventionKind::kNotRecommended},
  };
  return kKinds;
}

const std::set<std::string>& Categories() {
  static const std::set<std::string> kCategories = {"trunk_activation",      "trunk_strength", "flexibility",
                                                    "directional_extension", "directional_flexion",
                                                    "lateral_shift",         "aerobic",        "functional",
                                                    "posture",               "supervised",
                                                    "pelvic_girdle",         "neural_mobilisation"};
  return kCategories;
}

[[noreturn]] void Fail(const std::string& entry, const std::string& problem) {
  throw LibraryError("interventions: entry '" + entry + "': " + problem);
}

// A text of the library ends up in plans, stored as PostgreSQL jsonb, which holds no NUL
// character: one ("\u0000" in the document) would fail every plan drawing on the entry.
// What a request's text may not hold (CheckRequestBounds), a library's text may not either: it is
// shown to clinicians and patients in every plan that draws on it.
std::string WithoutControlCharacters(std::string text, const std::string& entry, const char* key) {
  if (const std::string why = ControlCharacterRefusal(text); !why.empty()) Fail(entry, std::string("'") + key + "' " + why);
  return text;
}

std::string RequiredString(const json& node, const std::string& entry, const char* key) {
  if (!node.contains(key) || !node[key].is_string() || IsBlank(node[key].get<std::string>())) {
    Fail(entry, std::string("'") + key + "' must be a non-empty string");
  }
  return WithoutControlCharacters(node[key].get<std::string>(), entry, key);
}

std::string OptionalString(const json& node, const std::string& entry, const char* key) {
  if (!node.contains(key)) return "";
  if (!node[key].is_string()) Fail(entry, std::string("'") + key + "' must be a string");
  return WithoutControlCharacters(node[key].get<std::string>(), entry, key);
}

int DoseField(const json& dose, const std::string& entry, const char* key, int min, int max) {
  if (!dose.contains(key) || !dose[key].is_number_integer()) Fail(entry, std::string("dose.") + key + " must be an integer");
  // Compared before it is narrowed to an int: 4294967301 is not 5, nor 2^63 zero (a number past
  // int64 is past every range).
  const json& number = dose[key];
  const bool past_int64 =
      number.is_number_unsigned() &&
      number.get<std::uint64_t>() > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
  const std::int64_t value = past_int64 ? std::numeric_limits<std::int64_t>::max() : number.get<std::int64_t>();
  if (value < min || value > max) {
    Fail(entry, std::string("dose.") + key + " must be " + std::to_string(min) + "-" + std::to_string(max) + ", got " +
                    number.dump());
  }
  return static_cast<int>(value);
}

Phase ParsePhase(const std::string& entry, const std::string& name) {
  if (name == "symptom_modulation") return Phase::kSymptomModulation;
  if (name == "movement_control") return Phase::kMovementControl;
  if (name == "function_optimisation") return Phase::kFunctionOptimisation;
  Fail(entry, "unknown phase '" + name + "'");
}
}  // namespace

ItemKind PlanItemKindOf(InterventionKind kind) {
  switch (kind) {
    case InterventionKind::kExercise: return ItemKind::kExercise;
    case InterventionKind::kManualTherapy: return ItemKind::kManualTherapy;
    case InterventionKind::kEducation: return ItemKind::kEducation;
    case InterventionKind::kLifestyle: return ItemKind::kLifestyle;
    case InterventionKind::kPainManagement: return ItemKind::kPainManagement;
    case InterventionKind::kPsychological: return ItemKind::kPsychological;
    case InterventionKind::kNotRecommended: return ItemKind::kNotRecommended;
  }
  return ItemKind::kEducation;
}

const std::vector<std::string>& KnownContraindications() {
  // flexion_loading: loaded or end-range spinal flexion, limited with a fracture or
  // osteoporosis concern (Sinaki & Mikkelsen 1984; Royal Osteoporosis Society 2022).
  // prone_position: lying face down, not offered in pregnancy (design default).
  // supine_position: lying on the back, not offered from pregnancy_supine_from_week (ACOG 2020).
  // abdominal_loading: curl-ups and knees-to-chest, not offered in pregnancy (design default).
  // lateral_shift_intolerant (and extension_/flexion_intolerant): a direction stopped after
  // symptoms spread down the leg with it, or opposite to the patient's preference.
  static const std::vector<std::string> kTokens = {"loading_contraindicated", "manipulation_contraindicated",
                                                   "extension_intolerant",    "flexion_intolerant",
                                                   "flexion_loading",         "prone_position",
                                                   "lateral_shift_intolerant", "supine_position",
                                                   "abdominal_loading"};
  return kTokens;
}

const Intervention* InterventionLibrary::Find(const std::string& id) const {
  auto it = index_.find(id);
  return it == index_.end() ? nullptr : &entries_[it->second];
}

namespace {
bool LocaleTag(const std::string& tag) {
  static const std::regex kTag("[a-z]{2,3}(-[A-Z]{2})?");
  return std::regex_match(tag, kTag);
}

MediaReference ParseMedia(const std::string& id, const json& node) {
  if (!node.is_object()) Fail(id, "each media reference must be an object");
  MediaReference media;
  media.uri = RequiredString(node, id, "uri");
  if (!media.uri.starts_with("https://") || media.uri.size() > 2048 ||
      std::any_of(media.uri.begin(), media.uri.end(), [](unsigned char c) { return c <= 0x20 || c == 0x7f; })) {
    Fail(id, "media 'uri' must be an https URL of at most 2048 characters without spaces");
  }
  media.kind = RequiredString(node, id, "kind");
  if (media.kind != "video" && media.kind != "image" && media.kind != "animation") {
    Fail(id, "media 'kind' must be video, image or animation");
  }
  if (node.contains("duration_seconds")) {
    if (!node["duration_seconds"].is_number_integer()) Fail(id, "media 'duration_seconds' must be a whole number");
    media.duration_seconds = node["duration_seconds"].get<int>();
  }
  if (media.duration_seconds < 0 || media.duration_seconds > 3600 ||
      ((media.kind == "video" || media.kind == "animation") && media.duration_seconds == 0)) {
    Fail(id, "media 'duration_seconds' must be 1-3600 for a video or animation (0-3600 otherwise)");
  }
  media.licence = RequiredString(node, id, "licence");
  media.attribution = OptionalString(node, id, "attribution");
  if (media.licence.size() > 128 || media.attribution.size() > 256) {
    Fail(id, "media 'licence' at most 128 characters, 'attribution' at most 256");
  }
  media.locale = OptionalString(node, id, "locale");
  if (!media.locale.empty() && !LocaleTag(media.locale)) Fail(id, "media 'locale' must be a language tag, e.g. 'en'");
  return media;
}

std::string BaseLanguage(const std::string& tag) { return tag.substr(0, tag.find('-')); }
}  // namespace

LocalisedText Localised(const Intervention& entry, const std::string& locale, std::string* served) {
  for (const std::string& tag : {locale, BaseLanguage(locale)}) {
    if (tag.empty()) continue;
    auto found = entry.translations.find(tag);
    if (found != entry.translations.end()) {
      if (served) *served = tag;
      return found->second;
    }
  }
  if (served) *served = "en";
  return {entry.title, entry.instructions};
}

std::vector<MediaReference> MediaFor(const Intervention& entry, const std::string& served) {
  auto in = [&](const std::string& language) {
    std::vector<MediaReference> chosen;
    for (const auto& media : entry.media) {
      if (!media.locale.empty() && BaseLanguage(media.locale) == language) chosen.push_back(media);
    }
    return chosen;
  };
  std::vector<MediaReference> chosen = in(BaseLanguage(served));
  if (chosen.empty()) chosen = in("en");
  for (const auto& media : entry.media) {
    if (media.locale.empty()) chosen.push_back(media);
  }
  return chosen;
}

void ValidateLocale(const std::string& field, const std::string& locale) {
  if (!locale.empty() && !LocaleTag(locale)) {
    ThrowInvalidArgument(field, "must be a language tag such as 'es' or 'pt-BR'");
  }
}

namespace {
// An entry's progression and regression name other exercises of `library`.
void CheckLinks(const InterventionLibrary& library, const Intervention& entry) {
  for (const auto* link : {&entry.progression, &entry.regression}) {
    if (link->empty()) continue;
    const Intervention* target = library.Find(*link);
    if (target == nullptr) Fail(entry.id, "links to unknown exercise '" + *link + "'");
    if (target->kind != InterventionKind::kExercise) Fail(entry.id, "links to '" + *link + "', which is not an exercise");
    if (*link == entry.id) Fail(entry.id, "links to itself");
  }
}

// One entry, validated on its own (ids and links are checked by the caller, against the whole library).
Intervention ParseEntry(const json& node, const std::string& position) {
  static const std::regex kIdPattern("[a-z]+(\\.[a-z0-9_]+)+");
  if (!node.is_object()) Fail(position, "must be an object");
  Intervention entry;
  entry.id = RequiredString(node, position, "id");
  const std::string& id = entry.id;
  if (!std::regex_match(id, kIdPattern)) Fail(id, "id must look like 'ex.motor.bird_dog'");
  const std::string kind = RequiredString(node, id, "kind");
  if (!Kinds().contains(kind)) Fail(id, "unknown kind '" + kind + "'");
  entry.kind = Kinds().at(kind);
  entry.title = RequiredString(node, id, "title");
  entry.source = RequiredString(node, id, "source");
  entry.reason = OptionalString(node, id, "reason");
  entry.instructions = OptionalString(node, id, "instructions");
  if (entry.kind != InterventionKind::kNotRecommended && entry.instructions.empty()) {
    Fail(id, "'instructions' are required");
  }
  if (entry.kind == InterventionKind::kNotRecommended && IsBlank(entry.reason)) {
    Fail(id, "a not-recommended entry needs the 'reason' it is advised against");
  }
  if (!node.contains("phases") || !node["phases"].is_array() || node["phases"].empty()) {
    Fail(id, "'phases' must be a non-empty array");
  }
  for (const auto& phase : node["phases"]) {
    if (!phase.is_string()) Fail(id, "phases must be strings");
    entry.phases.push_back(ParsePhase(id, phase.get<std::string>()));
  }
  if (node.contains("contraindications")) {
    if (!node["contraindications"].is_array()) Fail(id, "'contraindications' must be an array");
    for (const auto& token : node["contraindications"]) {
      const auto& known = KnownContraindications();
      if (!token.is_string() || std::find(known.begin(), known.end(), token.get<std::string>()) == known.end()) {
        Fail(id, "unknown contraindication " + token.dump());
      }
      entry.contraindications.push_back(token.get<std::string>());
    }
  }
  if (node.contains("clinician_added_only")) {
    if (!node["clinician_added_only"].is_boolean()) Fail(id, "'clinician_added_only' must be true or false");
    entry.clinician_added_only = node["clinician_added_only"].get<bool>();
    if (entry.clinician_added_only && entry.kind == InterventionKind::kNotRecommended) {
      Fail(id, "a not-recommended entry cannot be a clinician-added option");
    }
  }
  if (entry.kind == InterventionKind::kExercise) {
    entry.category = RequiredString(node, id, "category");
    if (!Categories().contains(entry.category)) Fail(id, "unknown category '" + entry.category + "'");
    if (!node.contains("dose") || !node["dose"].is_object()) Fail(id, "an exercise needs a 'dose'");
    const json& dose = node["dose"];
    entry.dose.sets = DoseField(dose, id, "sets", 1, 10);
    entry.dose.reps = DoseField(dose, id, "reps", 1, 50);
    entry.dose.hold_seconds = DoseField(dose, id, "hold_seconds", 0, 300);
    entry.dose.sessions_per_week = DoseField(dose, id, "sessions_per_week", 1, 14);
    entry.dose.duration_minutes = DoseField(dose, id, "duration_minutes", 0, 120);
    entry.progression = OptionalString(node, id, "progression");
    entry.regression = OptionalString(node, id, "regression");
  } else if (node.contains("dose") || node.contains("progression") || node.contains("regression")) {
    Fail(id, "only exercises have a dose, progression or regression");
  }
  if (node.contains("media")) {
    if (!node["media"].is_array() || node["media"].size() > 10) Fail(id, "'media' must be an array of at most 10");
    for (const auto& media : node["media"]) entry.media.push_back(ParseMedia(id, media));
  }
  if (node.contains("translations")) {
    if (!node["translations"].is_object()) Fail(id, "'translations' must be an object keyed by language tag");
    for (const auto& [locale, text] : node["translations"].items()) {
      if (!LocaleTag(locale) || locale == "en" || locale.starts_with("en-")) {
        Fail(id, "translation '" + locale + "': not a language tag other than English (e.g. 'es', 'pt-BR')");
      }
      if (!text.is_object()) Fail(id, "translation '" + locale + "' must be an object");
      LocalisedText localised;
      localised.title = RequiredString(text, id + " (" + locale + ")", "title");
      localised.instructions = OptionalString(text, id + " (" + locale + ")", "instructions");
      if (!entry.instructions.empty() && localised.instructions.empty()) {
        Fail(id, "translation '" + locale + "' needs the 'instructions' too");
      }
      entry.translations[locale] = std::move(localised);
    }
  }
  return entry;
}
}  // namespace

InterventionLibrary InterventionLibrary::Parse(const std::string& json_text) {
  json root;
  try {
    root = json::parse(json_text);
  } catch (const json::parse_error& e) {
    throw LibraryError(std::string("interventions: not valid JSON: ") + e.what());
  }
  InterventionLibrary library;
  if (!root.is_object()) throw LibraryError("interventions: the file must hold a JSON object");
  library.version_ = RequiredString(root, "(file)", "library_version");
  if (!root.contains("entries") || !root["entries"].is_array()) Fail("(file)", "'entries' must be an array");
  for (size_t i = 0; i < root["entries"].size(); ++i) {
    const json& node = root["entries"][i];
    Intervention entry = ParseEntry(node, "#" + std::to_string(i));
    const std::string id = entry.id;
    if (library.index_.contains(id)) Fail(id, "id used twice");
    library.index_[id] = library.entries_.size();
    library.entries_.push_back(std::move(entry));
  }
  // Links are checked once every entry is known.
  for (const auto& entry : library.entries_) CheckLinks(library, entry);
  if (library.entries_.empty()) throw LibraryError("interventions: the library is empty");
  return library;
}

std::vector<std::string> TenantEntryIds(const std::string& json_text) {
  std::vector<std::string> ids;
  const json root = json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (!root.is_object() || !root.contains("entries") || !root["entries"].is_array()) return ids;
  for (const auto& entry : root["entries"]) {
    if (entry.is_object() && entry.contains("id") && entry["id"].is_string()) ids.push_back(entry["id"].get<std::string>());
  }
  return ids;
}

const PlanTemplate* TenantLibrary::FindTemplate(const std::string& id) const {
  for (const auto& found : templates) {
    if (found.id == id) return &found;
  }
  return nullptr;
}

TenantLibrary ParseTenantLibrary(const InterventionLibrary& shipped, const std::string& json_text, int version) {
  json root;
  try {
    root = json::parse(json_text);
  } catch (const json::parse_error& e) {
    throw LibraryError(std::string("document: not valid JSON: ") + e.what());
  }
  if (!root.is_object()) throw LibraryError("document: must be a JSON object with 'entries' and 'templates'");
  for (const auto& [key, value] : root.items()) {
    if (key != "entries" && key != "templates" && key != "description") {
      throw LibraryError("document: unknown key '" + key + "' (entries, templates, description)");
    }
  }
  TenantLibrary tenant;
  tenant.version = version;
  tenant.merged = shipped;
  InterventionLibrary& merged = tenant.merged;
  // The tokens every shipped exercise of a category carries: a tenant exercise of it carries them too.
  std::map<std::string, std::set<std::string>> floor;
  for (const auto& entry : shipped.entries()) {
    if (entry.kind != InterventionKind::kExercise) continue;
    std::set<std::string> tokens(entry.contraindications.begin(), entry.contraindications.end());
    auto [at, first] = floor.try_emplace(entry.category, tokens);
    if (first) continue;
    std::set<std::string> common;
    std::set_intersection(at->second.begin(), at->second.end(), tokens.begin(), tokens.end(),
                          std::inserter(common, common.begin()));
    at->second = std::move(common);
  }
  const json empty = json::array();
  const json& entries = root.contains("entries") ? root["entries"] : empty;
  if (!entries.is_array() || entries.size() > 500) throw LibraryError("document: 'entries' must be an array of at most 500");
  std::vector<size_t> added;
  for (size_t i = 0; i < entries.size(); ++i) {
    Intervention entry = ParseEntry(entries[i], "#" + std::to_string(i));
    const std::string id = entry.id;
    if (!id.starts_with("tenant.")) Fail(id, "a tenant's own entry's id starts with 'tenant.' (e.g. 'tenant.ex.hip_hinge')");
    if (merged.index_.contains(id)) Fail(id, "id used twice");
    if (IsBlank(entry.reason)) Fail(id, "'reason' is required: why the clinic uses it");
    if (entry.kind == InterventionKind::kExercise) {
      // Stated, never defaulted: an empty list is the clinic's statement that nothing excludes it.
      if (!entries[i].contains("contraindications")) {
        Fail(id, "an exercise must state its 'contraindications' (an empty list if none), e.g. "
                 "'loading_contraindicated' for a loaded one");
      }
      if (const auto required = floor.find(entry.category); required != floor.end()) {
        for (const auto& token : required->second) {
          if (std::find(entry.contraindications.begin(), entry.contraindications.end(), token) ==
              entry.contraindications.end()) {
            Fail(id, "an exercise of category '" + entry.category + "' must carry the contraindication '" + token +
                         "' every shipped one carries");
          }
        }
      }
    }
    if (entries[i].contains("retired")) {
      if (!entries[i]["retired"].is_boolean()) Fail(id, "'retired' must be true or false");
      entry.retired = entries[i]["retired"].get<bool>();
    }
    entry.tenant = true;
    merged.index_[id] = merged.entries_.size();
    added.push_back(merged.entries_.size());
    merged.entries_.push_back(std::move(entry));
  }
  tenant.entry_count = static_cast<int>(added.size());
  for (const size_t at : added) CheckLinks(merged, merged.entries_[at]);
  const json& templates = root.contains("templates") ? root["templates"] : empty;
  if (!templates.is_array() || templates.size() > 100) {
    throw LibraryError("document: 'templates' must be an array of at most 100");
  }
  static const std::regex kTemplateId("tenant\\.tpl(\\.[a-z0-9_]+)+");
  for (size_t i = 0; i < templates.size(); ++i) {
    const json& node = templates[i];
    const std::string position = "template #" + std::to_string(i);
    if (!node.is_object()) throw LibraryError("templates: " + position + " must be an object");
    PlanTemplate made;
    made.id = RequiredString(node, position, "id");
    auto fail = [&](const std::string& problem) -> void {
      throw LibraryError("templates: template '" + made.id + "': " + problem);
    };
    if (!std::regex_match(made.id, kTemplateId)) fail("id must look like 'tenant.tpl.desk_workers'");
    if (tenant.FindTemplate(made.id) != nullptr) fail("id used twice");
    made.name = RequiredString(node, made.id, "name");
    if (made.name.size() > 100) fail("'name' must be at most 100 characters");
    made.description = OptionalString(node, made.id, "description");
    if (!node.contains("items") || !node["items"].is_array() || node["items"].empty() || node["items"].size() > 30) {
      fail("'items' must be an array of 1-30");
    }
    for (const auto& item : node["items"]) {
      if (!item.is_object()) fail("each item must be an object");
      TemplateItem entry_item;
      entry_item.intervention_id = RequiredString(item, made.id, "intervention_id");
      const Intervention* entry = merged.Find(entry_item.intervention_id);
      if (entry == nullptr) fail("unknown intervention '" + entry_item.intervention_id + "'");
      if (entry->retired) fail("'" + entry->id + "' is retired");
      if (entry->kind == InterventionKind::kNotRecommended) fail("'" + entry->id + "' is advised against");
      for (const auto& other : made.items) {
        if (other.intervention_id == entry->id) fail("'" + entry->id + "' is listed twice");
      }
      if (item.contains("dose")) {
        if (entry->kind != InterventionKind::kExercise) fail("only exercises have a dose ('" + entry->id + "')");
        if (!item["dose"].is_object()) fail("'dose' must be an object");
        const std::string where = made.id + " (" + entry->id + ")";
        Dose dose;
        dose.sets = DoseField(item["dose"], where, "sets", 1, 10);
        dose.reps = DoseField(item["dose"], where, "reps", 1, 50);
        dose.hold_seconds = DoseField(item["dose"], where, "hold_seconds", 0, 300);
        dose.sessions_per_week = DoseField(item["dose"], where, "sessions_per_week", 1, 14);
        dose.duration_minutes = DoseField(item["dose"], where, "duration_minutes", 0, 120);
        entry_item.dose = dose;
      }
      made.items.push_back(std::move(entry_item));
    }
    tenant.templates.push_back(std::move(made));
  }
  return tenant;
}

}  // namespace physio::planning
