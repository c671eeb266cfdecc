// libFuzzer: the intervention-library loader, and a tenant's library document (PublishTenantLibrary:
// an integrator's input of up to 1 MB, validated against the shipped library), refuse malformed JSON
// or entries with a clear error and never crash.
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "domain/library.h"

namespace {
const physio::planning::InterventionLibrary& Shipped() {
  // A small shipped library: an exercise with a link, a directional one (its category's token), advice.
  static const auto library = physio::planning::InterventionLibrary::Parse(R"({"library_version": "fuzz",
    "entries": [
     {"id": "ex.motor.bird_dog", "kind": "exercise", "category": "trunk_activation", "title": "Bird dog",
      "instructions": "Lift opposite arm and leg.", "source": "s", "phases": ["movement_control"],
      "dose": {"sets": 2, "reps": 8, "hold_seconds": 5, "sessions_per_week": 5, "duration_minutes": 0}},
     {"id": "ex.dir.prone_lying", "kind": "exercise", "category": "directional_extension", "title": "Prone lying",
      "instructions": "Lie face down.", "source": "s", "phases": ["symptom_modulation"],
      "dose": {"sets": 1, "reps": 1, "hold_seconds": 60, "sessions_per_week": 7, "duration_minutes": 0},
      "progression": "ex.motor.bird_dog", "contraindications": ["extension_intolerant"]},
     {"id": "edu.self_management", "kind": "education", "title": "Self-management", "instructions": "Keep active.",
      "source": "s", "phases": ["movement_control"]}]})");
  return library;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    physio::planning::InterventionLibrary::Parse(text);
  } catch (const std::exception&) {
    // Refused with a message (Error or a parse error): fine.
  }
  try {
    physio::planning::ParseTenantLibrary(Shipped(), text, 1);
  } catch (const std::exception&) {
    // Refused with a message naming the entry or template: fine.
  }
  (void)physio::planning::TenantEntryIds(text);
  return 0;
}
