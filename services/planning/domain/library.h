#pragma once
// The intervention library: a versioned data file (services/planning/library/
// interventions.json), validated as a whole when loaded. A bad file is refused
// with a message naming the entry and the problem, so a service never starts
// with a library it cannot trust.
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "plan_rules.h"

namespace physio::planning {

enum class InterventionKind {
  kExercise,
  kManualTherapy,
  kEducation,
  kLifestyle,
  kPainManagement,
  kPsychological,
  kNotRecommended,
};

// The plan item kind an intervention becomes.
ItemKind PlanItemKindOf(InterventionKind kind);

struct Intervention {
  std::string id;
  InterventionKind kind;
  std::string category;       // exercises: trunk_activation, trunk_strength, flexibility, directional_extension,
                              // directional_flexion, lateral_shift, aerobic, functional, posture,
                              // supervised (a class: prescribed, but not part of the home programme)
  std::string title;
  std::string instructions;   // our own words
  std::string reason;         // non-exercise: why it is used (not recommended: why not)
  std::string source;
  Dose dose;                  // exercises: starting dose
  std::string progression;    // exercise id, or empty
  std::string regression;     // exercise id, or empty
  std::vector<std::string> contraindications;  // tokens, see kContraindications
  std::vector<Phase> phases;
  // Offered only when a clinician adds it to a plan (RevisePlan), never chosen by plan
  // generation: weakly evidenced options (e.g. dry needling, kinesiology tape) a clinic may use
  // beside exercise, with the evidence stated in `reason` and `source`.
  bool clinician_added_only = false;

  // Exercises the patient does at home and logs, and self-managed pain relief; a
  // supervised class is prescribed but not logged as home sessions.
  bool HomeProgramme() const {
    return (kind == InterventionKind::kExercise && category != "supervised") || kind == InterventionKind::kPainManagement;
  }
};

class LibraryError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class InterventionLibrary {
 public:
  // Throws LibraryError("interventions: entry 'ex.x': <problem>") on any defect.
  static InterventionLibrary Parse(const std::string& json_text);

  const std::string& version() const { return version_; }
  const std::vector<Intervention>& entries() const { return entries_; }
  // nullptr when absent.
  const Intervention* Find(const std::string& id) const;

 private:
  std::string version_;
  std::vector<Intervention> entries_;
  std::map<std::string, size_t> index_;
};

// Contraindication tokens an entry may carry and a patient may have.
const std::vector<std::string>& KnownContraindications();

}  // namespace physio::planning
