// The intervention library file: the real one loads and covers what the plans
// need; a defective one is refused with the entry and the problem named.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "domain/library.h"

namespace physio::planning {
namespace {

std::string RealLibraryText() {
  std::ifstream in(PHYSIO_SOURCE_DIR "/services/planning/library/interventions.json");
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// Issue 26 item 2: every exercise with a direction carries the peripheralisation stop rule.
TEST(InterventionLibrary, EveryDirectionalExerciseSaysStopIfPainSpreadsDownTheLeg) {
  auto library = InterventionLibrary::Parse(RealLibraryText());
  int directional = 0;
  for (const auto& entry : library.entries()) {
    const bool has_direction = entry.category == "directional_extension" || entry.category == "directional_flexion" ||
                               entry.category == "lateral_shift" ||
                               entry.id.find("knee_to_chest") != std::string::npos ||
                               entry.id.find("knees_to_chest") != std::string::npos ||
                               entry.title.find("nees to chest") != std::string::npos;
    if (!has_direction) continue;
    ++directional;
    EXPECT_NE(entry.instructions.find("Stop if pain spreads further down the leg"), std::string::npos) << entry.id;
  }
  EXPECT_GE(directional, 9);
}

TEST(InterventionLibrary, TheShippedFileLoadsAndCoversEveryCategory) {
  auto library = InterventionLibrary::Parse(RealLibraryText());
  EXPECT_FALSE(library.version().empty());
  std::map<std::string, int> per_category;
  std::set<InterventionKind> kinds;
  int exercises = 0;
  for (const auto& entry : library.entries()) {
    kinds.insert(entry.kind);
    if (entry.kind == InterventionKind::kExercise) {
      ++exercises;
      ++per_category[entry.category];
      EXPECT_GT(entry.dose.sets, 0) << entry.id;
    }
    EXPECT_FALSE(entry.source.empty()) << entry.id;
  }
  EXPECT_GE(exercises, 40);
  for (const char* category : {"trunk_activation", "trunk_strength", "flexibility", "directional_extension",
                               "directional_flexion", "lateral_shift", "aerobic", "functional", "posture"}) {
    EXPECT_GE(per_category[category], 1) << category;
  }
  EXPECT_EQ(kinds.size(), 7u);  // every kind, including not-recommended modalities
  for (const char* id : {"notrec.traction", "notrec.tens", "notrec.belts_corsets", "notrec.ultrasound",
                         "notrec.acupuncture", "notrec.interferential", "notrec.pens", "notrec.foot_orthotics",
                         "notrec.rocker_sole_shoes"}) {
    const auto* entry = library.Find(id);
    ASSERT_NE(entry, nullptr) << id;
    EXPECT_EQ(entry->kind, InterventionKind::kNotRecommended);
    EXPECT_FALSE(entry->reason.empty());
  }
  // Progression chains lead somewhere real, both ways.
  const auto* bracing = library.Find("ex.motor.abdominal_bracing");
  ASSERT_NE(bracing, nullptr);
  EXPECT_EQ(bracing->progression, "ex.motor.bracing_heel_slide");
  EXPECT_EQ(library.Find(bracing->progression)->regression, "ex.motor.abdominal_bracing");
}

std::string WithEntry(const std::string& entry_json) {
  return R"({"library_version":"t","entries":[)"
         R"({"id":"ex.a.one","kind":"exercise","category":"aerobic","title":"One","instructions":"Do it.","source":"s",)"
         R"("dose":{"sets":1,"reps":1,"hold_seconds":0,"sessions_per_week":3,"duration_minutes":10},"phases":["movement_control"]},)" +
         entry_json + "]}";
}

std::string Refusal(const std::string& text) {
  try {
    InterventionLibrary::Parse(text);
  } catch (const LibraryError& e) {
    return e.what();
  }
  return "accepted";
}

TEST(InterventionLibrary, DefectsAreRefusedNamingTheEntry) {
  EXPECT_EQ(Refusal(WithEntry(R"({"id":"ex.a.one","kind":"education","title":"x","instructions":"x","source":"s","phases":["movement_control"]})")),
            "interventions: entry 'ex.a.one': id used twice");
  EXPECT_EQ(Refusal(WithEntry(R"({"id":"ex.a.two","kind":"exercise","category":"aerobic","title":"x","instructions":"x","source":"s","progression":"ex.a.nope",
      "dose":{"sets":1,"reps":1,"hold_seconds":0,"sessions_per_week":3,"duration_minutes":0},"phases":["movement_control"]})")),
            "interventions: entry 'ex.a.two': links to unknown exercise 'ex.a.nope'");
  EXPECT_EQ(Refusal(WithEntry(R"({"id":"ex.a.two","kind":"exercise","category":"aerobic","title":"x","instructions":"x","source":"s",
      "dose":{"sets":0,"reps":1,"hold_seconds":0,"sessions_per_week":3,"duration_minutes":0},"phases":["movement_control"]})")),
            "interventions: entry 'ex.a.two': dose.sets must be 1-10, got 0");
  EXPECT_EQ(Refusal(WithEntry(R"({"id":"edu.x","kind":"education","title":"x","source":"s","phases":["movement_control"]})")),
            "interventions: entry 'edu.x': 'instructions' are required");
  EXPECT_EQ(Refusal(WithEntry(R"({"id":"edu.x","kind":"magic","title":"x","source":"s","phases":["movement_control"]})")),
            "interventions: entry 'edu.x': unknown kind 'magic'");
  EXPECT_EQ(Refusal(WithEntry(R"({"id":"notrec.x","kind":"not_recommended","title":"x","source":"s","phases":["movement_control"]})")),
            "interventions: entry 'notrec.x': a not-recommended entry needs the 'reason' it is advised against");
  EXPECT_EQ(Refusal(WithEntry(R"({"id":"edu.x","kind":"education","title":"x","instructions":"x","source":"s","phases":["someday"]})")),
            "interventions: entry 'edu.x': unknown phase 'someday'");
  EXPECT_EQ(Refusal(WithEntry(R"({"id":"edu.x","kind":"education","title":"x","instructions":"x","source":"s","phases":["movement_control"],"contraindications":["pregnancy"]})")),
            "interventions: entry 'edu.x': unknown contraindication \"pregnancy\"");
  EXPECT_NE(Refusal("{not json").find("not valid JSON"), std::string::npos);
  EXPECT_EQ(Refusal(WithEntry(R"({"id":"edu.x","kind":"education","title":"x","instructions":"x","source":"s","phases":["movement_control"],"clinician_added_only":"yes"})")),
            "interventions: entry 'edu.x': 'clinician_added_only' must be true or false");
}

// Issue 26 item 15: every modality the public articles mention has an entry with honest evidence.
TEST(InterventionLibrary, WeaklyEvidencedModalitiesAreClinicianAddedOptionsThatStateTheirEvidence) {
  auto library = InterventionLibrary::Parse(RealLibraryText());
  for (const char* id : {"adjunct.dry_needling", "adjunct.kinesiology_tape"}) {
    const Intervention* entry = library.Find(id);
    ASSERT_NE(entry, nullptr) << id;
    EXPECT_TRUE(entry->clinician_added_only) << id;
    EXPECT_EQ(entry->kind, InterventionKind::kManualTherapy) << id;  // only beside exercise (NICE NG59)
    EXPECT_NE(entry->reason.find("never a primary treatment"), std::string::npos) << id;
    EXPECT_NE(entry->instructions.find("never instead of it"), std::string::npos) << id;
  }
  EXPECT_NE(library.Find("adjunct.dry_needling")->source.find("very low certainty"), std::string::npos);
  EXPECT_NE(library.Find("adjunct.kinesiology_tape")->source.find("not better than sham"), std::string::npos);
  // Needling waits with manipulation: anticoagulants, cancer, infection, cauda equina, fracture.
  const auto& tokens = library.Find("adjunct.dry_needling")->contraindications;
  EXPECT_NE(std::find(tokens.begin(), tokens.end(), "manipulation_contraindicated"), tokens.end());
}

TEST(InterventionLibrary, PostureLiftingErgonomicsAndHeatSayWhatTheEvidenceSays) {
  auto library = InterventionLibrary::Parse(RealLibraryText());
  // No item contradicts "no single correct posture" (Slater 2019; O'Sullivan 2020).
  for (const auto& entry : library.entries()) {
    for (const char* claim : {"sit tall", "lumbar roll", "sit up straight", "correct posture", "good posture",
                              "roll behind the low back"}) {
      std::string text = entry.title + " " + entry.instructions;
      std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::tolower(c); });
      EXPECT_EQ(text.find(claim), std::string::npos) << entry.id << " says '" << claim << "'";
    }
  }
  // Lifting-technique and ergonomics advice cites what backs it: neither prevents back pain.
  EXPECT_NE(library.Find("edu.body_mechanics_lifting")->source.find("does not prevent back pain"), std::string::npos);
  EXPECT_NE(library.Find("edu.body_mechanics_lifting")->instructions.find("No lifting technique has been shown"),
            std::string::npos);
  EXPECT_NE(library.Find("edu.desk_ergonomics")->source.find("did not reduce low back pain"), std::string::npos);
  for (const char* id : {"ex.func.lifting_practice", "ex.func.floor_lift"}) {
    EXPECT_NE(library.Find(id)->source.find("Saraceni"), std::string::npos) << id;
  }
  // Heat: the evidence is for acute and sub-acute pain.
  EXPECT_NE(library.Find("pain.heat")->instructions.find("acute and sub-acute"), std::string::npos);
  EXPECT_NE(library.Find("pain.heat")->source.find("acute and sub-acute"), std::string::npos);
}

}  // namespace
}  // namespace physio::planning

namespace physio::planning {
namespace {

TEST(InterventionLibrary, TranslationsFallBackToTheBaseLanguageThenEnglish) {
  const auto library = InterventionLibrary::Parse(RealLibraryText());
  const auto* walking = library.Find("ex.aerobic.walking");
  ASSERT_NE(walking, nullptr);
  std::string served;
  EXPECT_EQ(Localised(*walking, "es-MX", &served).title, "Caminar");
  EXPECT_EQ(served, "es");
  EXPECT_EQ(Localised(*walking, "fr", &served).title, "Walking");
  EXPECT_EQ(served, "en");
  EXPECT_EQ(Localised(*walking, "", &served).instructions, walking->instructions);
  // The shipped worked example: Spanish for the core patient-facing items, each complete.
  int translated = 0;
  for (const auto& entry : library.entries()) {
    auto es = entry.translations.find("es");
    if (es == entry.translations.end()) continue;
    ++translated;
    EXPECT_FALSE(es->second.title.empty()) << entry.id;
    EXPECT_EQ(es->second.instructions.empty(), entry.instructions.empty()) << entry.id;
    EXPECT_NE(es->second.instructions, entry.instructions) << entry.id << " is not translated";
  }
  EXPECT_GE(translated, 15);
  for (const char* id : {"edu.self_management", "edu.sciatica", "ex.neural.sciatic_slider", "pain.heat"}) {
    EXPECT_TRUE(library.Find(id)->translations.contains("es")) << id;
  }
}

TEST(InterventionLibrary, MediaAreValidatedAndChosenByLanguage) {
  const std::string media = R"("media":[
      {"uri":"https://media.example.org/walk-en.mp4","kind":"video","duration_seconds":45,"licence":"CC BY 4.0","attribution":"A clinic","locale":"en"},
      {"uri":"https://media.example.org/walk-es.mp4","kind":"video","duration_seconds":47,"licence":"CC BY 4.0","locale":"es"},
      {"uri":"https://media.example.org/walk.png","kind":"image","licence":"CC0"}])";
  const auto library = InterventionLibrary::Parse(WithEntry(
      R"({"id":"edu.x","kind":"education","title":"x","instructions":"x","source":"s","phases":["movement_control"],)" +
      media + R"(,"translations":{"es":{"title":"equis","instructions":"equis"}}})"));
  const auto* entry = library.Find("edu.x");
  ASSERT_EQ(entry->media.size(), 3u);
  auto uris = [](const std::vector<MediaReference>& chosen) {
    std::vector<std::string> out;
    for (const auto& m : chosen) out.push_back(m.uri);
    return out;
  };
  EXPECT_EQ(uris(MediaFor(*entry, "es")), (std::vector<std::string>{"https://media.example.org/walk-es.mp4",
                                                                     "https://media.example.org/walk.png"}));
  EXPECT_EQ(uris(MediaFor(*entry, "de")), (std::vector<std::string>{"https://media.example.org/walk-en.mp4",
                                                                     "https://media.example.org/walk.png"}))
      << "none in German: the English video";
  auto refused = [](const std::string& extra) {
    return Refusal(WithEntry(R"({"id":"edu.x","kind":"education","title":"x","instructions":"x","source":"s","phases":["movement_control"],)" +
                             extra + "}"));
  };
  EXPECT_EQ(refused(R"("media":[{"uri":"http://insecure.example.org/a.mp4","kind":"video","duration_seconds":5,"licence":"x"}])"),
            "interventions: entry 'edu.x': media 'uri' must be an https URL of at most 2048 characters without spaces");
  EXPECT_EQ(refused(R"("media":[{"uri":"https://a.example.org/a.gif","kind":"hologram","licence":"x"}])"),
            "interventions: entry 'edu.x': media 'kind' must be video, image or animation");
  EXPECT_EQ(refused(R"("media":[{"uri":"https://a.example.org/a.mp4","kind":"video","licence":"x"}])"),
            "interventions: entry 'edu.x': media 'duration_seconds' must be 1-3600 for a video or animation (0-3600 otherwise)");
  EXPECT_EQ(refused(R"("media":[{"uri":"https://a.example.org/a.png","kind":"image"}])"),
            "interventions: entry 'edu.x': 'licence' must be a non-empty string");
  EXPECT_EQ(refused(R"("translations":{"spanish":{"title":"x","instructions":"x"}})"),
            "interventions: entry 'edu.x': translation 'spanish': not a language tag other than English (e.g. 'es', 'pt-BR')");
  EXPECT_EQ(refused(R"("translations":{"es":{"title":"x"}})"),
            "interventions: entry 'edu.x': translation 'es' needs the 'instructions' too");
}

}  // namespace
}  // namespace physio::planning

namespace physio::planning {
namespace {

// A tenant's own library (issue 32 item 6): one exercise, one template.
std::string TenantDoc(const std::string& entry_extra = "", const std::string& template_items = "") {
  return R"({"entries": [{"id": "tenant.ex.hip_hinge_band", "kind": "exercise", "category": "functional",
     "title": "Banded hip hinge", "instructions": "Hinge at the hips against the band.",
     "reason": "Our clinics' lifting programme", "source": "Clinic protocol 2026",
     "dose": {"sets": 2, "reps": 10, "hold_seconds": 0, "sessions_per_week": 3, "duration_minutes": 0},
     "phases": ["movement_control", "function_optimisation"], "contraindications": ["loading_contraindicated"])" +
         entry_extra + R"(}],
   "templates": [{"id": "tenant.tpl.lifting", "name": "Return to lifting", "items": [)" +
         (template_items.empty()
              ? std::string(R"({"intervention_id": "tenant.ex.hip_hinge_band", "dose": {"sets": 3, "reps": 8,
                 "hold_seconds": 0, "sessions_per_week": 3, "duration_minutes": 0}},
                {"intervention_id": "ex.motor.bird_dog"})")
              : template_items) +
         R"(]}]})";
}

std::string Replaced(std::string doc, const std::string& part, const std::string& with) {
  const auto at = doc.find(part);
  EXPECT_NE(at, std::string::npos) << part;
  if (at != std::string::npos) doc.replace(at, part.size(), with);
  return doc;
}

std::string ErrorOf(const std::string& document) {
  static const InterventionLibrary shipped = InterventionLibrary::Parse(RealLibraryText());
  try {
    ParseTenantLibrary(shipped, document, 1);
  } catch (const LibraryError& e) {
    return e.what();
  }
  return "";
}

TEST(TenantLibrary, AValidLibraryMergesWithTheShippedOneAndKeepsItsTemplates) {
  const InterventionLibrary shipped = InterventionLibrary::Parse(RealLibraryText());
  const TenantLibrary tenant = ParseTenantLibrary(shipped, TenantDoc(), 3);
  EXPECT_EQ(tenant.version, 3);
  EXPECT_EQ(tenant.entry_count, 1);
  EXPECT_EQ(tenant.merged.entries().size(), shipped.entries().size() + 1);
  const Intervention* added = tenant.merged.Find("tenant.ex.hip_hinge_band");
  ASSERT_NE(added, nullptr);
  EXPECT_TRUE(added->tenant);
  ASSERT_NE(tenant.FindTemplate("tenant.tpl.lifting"), nullptr);
  EXPECT_EQ(tenant.FindTemplate("tenant.tpl.lifting")->items.at(0).dose->sets, 3);
  EXPECT_FALSE(tenant.FindTemplate("tenant.tpl.lifting")->items.at(1).dose.has_value());
}

TEST(TenantLibrary, AStoredDocumentsEntryIdsAreReadWithoutValidatingIt) {
  // What a new version must keep, even when the shipped library no longer validates the old one.
  EXPECT_EQ(TenantEntryIds(R"({"entries": [{"id": "tenant.a"}, {"id": "tenant.b", "kind": "gone"}]})"),
            (std::vector<std::string>{"tenant.a", "tenant.b"}));
  EXPECT_TRUE(TenantEntryIds("not json").empty());
}

TEST(TenantLibrary, DefectsAndWeakerSafetyThanTheShippedLibraryAreRefused) {
  EXPECT_EQ(ErrorOf(TenantDoc()), "");
  // The shipped library's own checks apply.
  EXPECT_NE(ErrorOf(TenantDoc(R"(, "dose": {"sets": 20, "reps": 10, "hold_seconds": 0, "sessions_per_week": 3,
                                 "duration_minutes": 0})")).find("dose.sets must be 1-10"), std::string::npos);
  // Its own id space: never a shipped entry's id.
  std::string doc = Replaced(TenantDoc(), "tenant.ex.hip_hinge_band", "ex.motor.bird_dog_v2");
  EXPECT_NE(ErrorOf(doc).find("starts with 'tenant.'"), std::string::npos) << ErrorOf(doc);
  // A reason, and contraindications stated.
  doc = Replaced(TenantDoc(), R"("reason": "Our clinics' lifting programme",)", "");
  EXPECT_NE(ErrorOf(doc).find("'reason' is required"), std::string::npos) << ErrorOf(doc);
  doc = Replaced(TenantDoc(), R"(, "contraindications": ["loading_contraindicated"])", "");
  EXPECT_NE(ErrorOf(doc).find("must state its 'contraindications'"), std::string::npos) << ErrorOf(doc);
  // A directional exercise without its direction's stop token would survive a stopped direction.
  doc = Replaced(TenantDoc(), R"("category": "functional")", R"("category": "directional_extension")");
  EXPECT_NE(ErrorOf(doc).find("must carry the contraindication 'extension_intolerant'"), std::string::npos) << ErrorOf(doc);
  // Templates: known, offered items; doses in range.
  EXPECT_NE(ErrorOf(TenantDoc("", R"({"intervention_id": "tenant.ex.nothing"})")).find("unknown intervention"),
            std::string::npos);
  EXPECT_NE(ErrorOf(TenantDoc("", R"({"intervention_id": "notrec.belts_corsets"})")).find("advised against"), std::string::npos)
      << ErrorOf(TenantDoc("", R"({"intervention_id": "notrec.belts_corsets"})"));
  EXPECT_NE(ErrorOf(TenantDoc(R"(, "retired": true)")).find("is retired"), std::string::npos);
  EXPECT_NE(ErrorOf(R"({"entries": [], "extra": 1})").find("unknown key 'extra'"), std::string::npos);
  // A NUL character in any text (escaped in the JSON) would fail every plan drawing on the entry when
  // PostgreSQL's jsonb refuses it: refused at publishing, naming the entry and the key.
  doc = Replaced(TenantDoc(), R"("title": "Banded hip hinge")", R"("title": "Banded\u0000 hip hinge")");
  EXPECT_EQ(ErrorOf(doc), "interventions: entry 'tenant.ex.hip_hinge_band': 'title' must not contain a NUL character (U+0000)");
  doc = Replaced(TenantDoc(), R"("name": "Return to lifting")", R"("name": "Return to lifting", "description": "a\u0000")");
  EXPECT_NE(ErrorOf(doc).find("'description' must not contain a NUL character"), std::string::npos) << ErrorOf(doc);
  // Nor any other control character (an escape sequence would reach every screen showing the plan),
  // nor a required text of white space only.
  doc = Replaced(TenantDoc(), R"("title": "Banded hip hinge")", R"("title": "Banded\u001b[2J hip hinge")");
  EXPECT_EQ(ErrorOf(doc),
            "interventions: entry 'tenant.ex.hip_hinge_band': 'title' must not contain a control character (U+001B)");
  // Line breaks are text (a library already stored with one must still be read for plans).
  doc = Replaced(TenantDoc(), R"("title": "Banded hip hinge")", R"("title": "Banded\nhip hinge")");
  EXPECT_EQ(ErrorOf(doc), "");
  // A dose is compared before it is narrowed: 4294967301 is not 5.
  EXPECT_NE(ErrorOf(TenantDoc(R"(, "dose": {"sets": 4294967301, "reps": 10, "hold_seconds": 0, "sessions_per_week": 3,
                                 "duration_minutes": 0})")).find("dose.sets must be 1-10, got 4294967301"), std::string::npos);
  EXPECT_NE(ErrorOf(TenantDoc(R"(, "dose": {"sets": 2, "reps": 10, "hold_seconds": 9223372036854775808,
                                 "sessions_per_week": 3, "duration_minutes": 0})")).find("dose.hold_seconds must be"),
            std::string::npos);
  // A value echoed in a refusal has its control characters named, not passed back.
  doc = Replaced(TenantDoc(), R"("phases": ["movement_control")", R"("phases": ["move\u001b[2J")");
  EXPECT_NE(ErrorOf(doc).find("unknown phase 'move<U+001B>[2J'"), std::string::npos) << ErrorOf(doc);
  doc = Replaced(TenantDoc(), R"("title": "Banded hip hinge")", R"("title": " \u00a0 ")");
  EXPECT_NE(ErrorOf(doc).find("'title' must be a non-empty string"), std::string::npos) << ErrorOf(doc);
}

}  // namespace
}  // namespace physio::planning
