#pragma once
// The intervention library: a versioned data file (services/planning/library/
// interventions.json), validated as a whole when loaded. A bad file is refused
// with a message naming the entry and the problem, so a service never starts
// with a library it cannot trust.
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "physio/common/validation.h"
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
  // A tenant's own entry (PublishTenantLibrary; id "tenant.*").
  bool tenant = false;
  // A tenant entry no longer offered (kept so plans that hold it stay resolvable).
  bool retired = false;

  // Exercises the patient does at home and logs, and self-managed pain relief; a
  // supervised class is prescribed but not logged as home sessions.
  bool HomeProgramme() const {
    return (kind == InterventionKind::kExercise && category != "supervised") || kind == InterventionKind::kPainManagement;
  }
};

// Its message goes back to the library's author: a value it echoes (an unknown kind, an id) has its
// control characters named, never passed on.
class LibraryError : public std::runtime_error {
 public:
  explicit LibraryError(const std::string& message) : std::runtime_error(ControlCharactersNamed(message)) {}
};

struct TenantLibrary;

class InterventionLibrary {
 public:
  // Throws LibraryError("interventions: entry 'ex.x': <problem>") on any defect.
  static InterventionLibrary Parse(const std::string& json_text);

  const std::string& version() const { return version_; }
  const std::vector<Intervention>& entries() const { return entries_; }
  // nullptr when absent.
  const Intervention* Find(const std::string& id) const;

 private:
  friend TenantLibrary ParseTenantLibrary(const InterventionLibrary& shipped, const std::string& json_text, int version);
  std::string version_;
  std::vector<Intervention> entries_;
  std::map<std::string, size_t> index_;
};

// One item of a tenant's plan template: a library id and, for an exercise, its dose (else the
// entry's starting dose).
struct TemplateItem {
  std::string intervention_id;
  std::optional<Dose> dose;
};

// A named set of items and doses a clinician starts a plan from (GeneratePlanRequest.template_id).
struct PlanTemplate {
  std::string id;
  std::string name;
  std::string description;
  std::vector<TemplateItem> items;
};

// A tenant's own library on top of the shipped one.
struct TenantLibrary {
  int version = 0;
  InterventionLibrary merged;  // the shipped entries, then the tenant's
  std::vector<PlanTemplate> templates;
  int entry_count = 0;         // the tenant's own entries (retired ones included)
  const PlanTemplate* FindTemplate(const std::string& id) const;
};

// A tenant's library document ({"entries": [...], "templates": [...]}) validated against the
// shipped library: each entry exactly as a shipped one is, and besides: its id starts "tenant."
// (it never shadows a shipped entry), it states a reason, an exercise states its contraindications
// (an empty list is a statement) and carries at least the
// contraindication tokens every shipped exercise of its category carries (a tenant extension
// exercise is stopped with extension, a loaded one kept from a fracture concern), links resolve in
// the merged library; each template has an id, a name and 1-30 distinct items of offered
// (not retired, not advised-against) entries with doses in range. Throws LibraryError naming the
// entry or template.
TenantLibrary ParseTenantLibrary(const InterventionLibrary& shipped, const std::string& json_text, int version);
// The entry ids of a tenant library document as stored, read without validating it against the
// shipped library (which may have changed since): what a new version must keep.
std::vector<std::string> TenantEntryIds(const std::string& json_text);

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
