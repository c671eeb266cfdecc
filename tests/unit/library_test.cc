// The intervention library file: the real one loads and covers what the plans
// need; a defective one is refused with the entry and the problem named.
#include <gtest/gtest.h>

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
}

}  // namespace
}  // namespace physio::planning
