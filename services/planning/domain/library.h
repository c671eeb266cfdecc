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

// A picture, video or animation showing an entry, hosted by whoever owns it (the project hosts no
// media): shown by the caller's app beside the entry's text.
struct MediaReference {
  std::string uri;          // https only
  std::string kind;         // "video", "image" or "animation"
  int duration_seconds = 0; // videos and animations
  std::string licence;      // e.g. "CC BY 4.0", or the clinic's own terms
  std::string attribution;  // who made it, as the licence asks
  std::string locale;       // the language spoken or written in it (BCP 47, e.g. "en", "es"); empty: none
};

// An entry's patient-facing text in one language.
struct LocalisedText {
  std::string title;
  std::string instructions;
};

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
  std::vector<MediaReference> media;
  // The title and instructions in other languages, by BCP 47 language tag ("es", "pt-BR"); the
  // fields above are English.
  std::map<std::string, LocalisedText> translations;

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

// An entry's text for a caller's locale: the exact tag ("es-MX"), then its language ("es"), then
// English. `served` is set to the tag of the text returned ("en" for English).
LocalisedText Localised(const Intervention& entry, const std::string& locale, std::string* served);
// Its media for the served locale: those in that language (or its base language), those in no
// language, and English ones only when none is in the served language.
std::vector<MediaReference> MediaFor(const Intervention& entry, const std::string& served);
// A locale as callers send it: empty, or a BCP 47 tag of a language and an optional region
// ("es", "es-MX", "pt-BR"); other forms are INVALID_ARGUMENT naming `field`.
void ValidateLocale(const std::string& field, const std::string& locale);

// Contraindication tokens an entry may carry and a patient may have.
const std::vector<std::string>& KnownContraindications();

}  // namespace physio::planning
