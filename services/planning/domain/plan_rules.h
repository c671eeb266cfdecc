#pragma once
// Plan generation rules as plain C++ over the intervention library: the same
// input and library version always give the same plan. Every item carries the
// reason it was chosen and its source. The phase comes from the assessment's
// classification (its cut-offs are configured in the assessment service).
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace physio::planning {

inline constexpr const char* kRulesVersion = "2026.12.4";

enum class Phase { kSymptomModulation, kMovementControl, kFunctionOptimisation };
enum class ItemKind {
  kExercise,
  kEducation,
  kPainManagement,
  kLifestyle,
  kManualTherapy,
  kPsychological,
  kNotRecommended,
  kReferral,
};
// kActivity: weekly minutes of moderate physical activity (no instrument).
enum class GoalMeasure { kNprs, kOdi, kRmdq, kPsfs, kActivity, kWorkHours };
enum class WorkStatus { kUnknown, kWorking, kModifiedDuties, kOffWork, kNotEmployed, kRetired };
enum class StartBackRisk { kUnknown, kLow, kMedium, kHigh };
enum class RedFlagLevel { kNotScreened, kNone, kMonitor, kRoutineReferral, kUrgentReferral, kEmergencyReferral };
enum class Subgroup { kUnclassified, kManipulation, kSpecificExercise, kStabilisation };
enum class Occupation { kUnknown, kSedentary, kLight, kHeavy, kNotWorking };
enum class PlanType { kTreatment, kReferral };
enum class Intensity { kNone, kAdviceAndSelfManagement, kPhysiotherapyPackage, kPsychologicallyInformed };
enum class Irritability { kUnknown, kLow, kModerate, kHigh };
enum class ActivityLevel { kUnknown, kLow, kModerate, kHigh };
enum class Analgesic {
  kParacetamol,
  kNsaid,
  kOpioid,
  kNeuropathic,  // an anticonvulsant or antidepressant, not known which
  kGabapentinoid,
  kAntidepressant,
  kOralCorticosteroid,
  kBenzodiazepine,
};

struct Dose {
  int sets = 0;
  int reps = 0;
  int hold_seconds = 0;
  int sessions_per_week = 0;
  int duration_minutes = 0;  // for time-based exercise (walking, cycling)
};

struct PsfsActivity {
  std::string activity;
  double rating;
};

struct PlanInput {
  Phase phase = Phase::kMovementControl;  // from the assessment's classification
  std::optional<double> nprs;             // baseline pain 0-10
  std::optional<double> odi_percent;      // baseline Oswestry 0-100
  std::optional<double> rmdq;             // baseline Roland-Morris 0-24
  std::vector<PsfsActivity> psfs;
  StartBackRisk start_back = StartBackRisk::kUnknown;
  RedFlagLevel red_flags = RedFlagLevel::kNotScreened;  // the clinician's judgement when recorded, else computed
  std::vector<std::string> red_flag_reasons;            // "condition: reasons", for a referral
  bool fracture_concern = false;                        // any fracture concern: no manipulation, no loaded flexion
  bool fracture_urgent = false;                         // an urgent or worse one (treated only on a clinician's judgement): no loading
  // Why spinal manipulation is not offered besides a fracture concern: monitored cancer or
  // infection concern, suspected axial SpA, anticoagulants (empty: nothing against it).
  std::vector<std::string> manipulation_blocked;
  // A computed urgent/emergency concern the clinician's judgement overrode, kept visible.
  std::vector<std::string> overridden_concerns;
  // Conditions of the screen's concerns at monitor level or above ("fracture", ...): the plan's
  // precautions cover them; a check-in concern with another condition is new.
  std::vector<std::string> monitored_conditions;
  Subgroup subgroup = Subgroup::kUnclassified;
  std::string direction;                                // specific exercise direction
  std::string subgroup_evidence;                        // criteria met, for the reason text
  bool traction_candidate = false;
  bool chronic = false;                                 // episode longer than 3 months
  std::vector<std::string> fear_avoidance;              // elevated FABQ subscales, as reasons
  bool smoker = false;
  bool sleep_disturbed = false;
  Occupation occupation = Occupation::kUnknown;
  // Work participation (issue 32 part 3): off work or on modified duties brings a graded
  // return-to-work plan and a return-to-work goal.
  struct Work {
    WorkStatus status = WorkStatus::kUnknown;
    std::optional<int> usual_hours;
    std::optional<int> current_hours;
    std::optional<int> days_off;
    bool fit_note = false;
    std::optional<int> planned_return_in_days;
    std::vector<std::string> obstacles;
  } work;
  // The nature of the pain and the person (issue 15).
  Irritability irritability = Irritability::kUnknown;  // sets the starting dose and the progression rate
  std::optional<double> bmi;
  ActivityLevel activity_level = ActivityLevel::kUnknown;  // sets the walking dose
  int previous_episodes = 0;
  std::vector<std::string> goals;         // the patient's own words
  std::vector<std::string> observations;  // examination codes, e.g. "reduced_hamstring_length"
  bool cardiovascular_disease = false;
  bool pregnant = false;
  std::optional<int> pregnancy_weeks;     // when pregnant; unknown is taken as past the supine week
  bool pelvic_girdle_pain = false;        // in pregnancy or since giving birth
  bool takes_anticoagulants = false;
  // Sciatica: symptoms below the knee or nerve-root signs (NICE NG59's own medicines advice for it).
  bool sciatica = false;
  bool low_recovery_expectation = false;
  // Pain medicines in use (NICE NG59's pharmacological recommendations select a review).
  std::set<Analgesic> analgesics;
  // Earlier treatment of this episode: what was tried (history codes) and whether it
  // helped. Manual therapy that made it worse is not offered again by generation;
  // earlier treatment that did not help adds the combined physical and psychological
  // approach (NICE NG59).
  std::vector<std::string> previous_treatments;
  bool previous_treatment_did_not_help = false;
  bool previous_treatment_made_worse = false;
  // Shared decisions (NICE NG59 1.1.x: the person's preferences).
  bool declines_manual_therapy = false;
  bool prefers_group_exercise = false;
  bool prefers_pilates = false;
};

struct PlanItemDraft {
  std::string id;
  ItemKind kind;
  std::string title;
  std::string instructions;
  Dose dose;
  std::string reason;
  std::string source;
  bool home_programme = false;
  std::string progression;
  std::string regression;
};

struct GoalDraft {
  std::string description;
  GoalMeasure measure;
  double target = 0;
};

// The graded return to work for someone off work or on modified duties (nullopt for anyone
// else): the plan item and the goal (usual hours by a week). Design default: about half the usual
// hours for two weeks, three quarters for two more, then usual hours and duties (Faculty of
// Occupational Medicine 2000: early, graded return with temporary modified duties).
struct ReturnToWork {
  PlanItemDraft item;
  GoalDraft goal;
};
std::optional<ReturnToWork> GradedReturnToWork(const PlanInput::Work& work);

struct ReviewDraft {
  int week;
  std::string purpose;
};

struct PlanDraft {
  PlanType type = PlanType::kTreatment;
  Phase phase = Phase::kMovementControl;
  Intensity intensity = Intensity::kNone;
  std::vector<PlanItemDraft> items;
  std::vector<GoalDraft> goals;
  std::vector<ReviewDraft> reviews;
  int expected_weeks = 0;
  int home_sessions_per_week = 0;
  std::string rules_version = kRulesVersion;
  std::string library_version;
  std::vector<std::string> contraindications;  // what generation excluded for this patient (library tokens)
  std::vector<std::string> monitored_conditions;  // red-flag conditions the precautions cover (PlanInput's)
  int progression_interval_days = 7;           // how long a dose is held before progressing (irritability)
  int weekly_activity_target_minutes = 0;      // moderate activity a week to build up to (WHO 2020)
};

// Design defaults (docs/clinical-rules.md), configurable in the planning service: how long a
// dose is held before progressing, by irritability (high 14 days, low 5, otherwise 7).
struct PlanPolicy {
  // Days between two weekly pain questionnaires of the outcome schedule (0: none).
  int outcome_nprs_every_days = 7;
  int progression_days_high_irritability = 14;
  int progression_days = 7;
  int progression_days_low_irritability = 5;
  // The minimal detectable changes the responder rule uses (the progress service's
  // odi-mdc-points and rmdq-mdc-points; set both services alike): goals are the smallest
  // meaningful drop by that same rule (physio/common/meaningful_change.h).
  double odi_mdc_points = 10;
  double rmdq_mdc_points = 4;
  // In pregnancy, exercises lying on the back are left out from this week (ACOG 2020: avoid
  // the supine position as pregnancy progresses; RCOG: after about 16 weeks; design default 16).
  int pregnancy_supine_from_week = 16;
  // A plan taking effect within this many days of the end of the patient's last episode is a
  // relapse of that episode, not a new one (relapse-window-days; 0: never; design default 90).
  int relapse_window_days = 90;
};
int ProgressionIntervalDays(Irritability irritability, const PlanPolicy& policy = {});

class InterventionLibrary;
PlanDraft GeneratePlanDraft(const PlanInput& input, const InterventionLibrary& library, const PlanPolicy& policy = {});

// The contraindication tokens one monitored red-flag concern brings, by its condition
// (the rules PatientContraindications applies at generation): "fracture" forbids spinal
// manipulation and loaded flexion; "malignancy", "infection", "cauda_equina" and
// "axial_spondyloarthritis" forbid spinal manipulation and mobilisation; others bring none.
std::set<std::string> ContraindicationsForConcern(const std::string& condition);

// The safety-netting item for monitored concerns ("condition: reasons" each).
PlanItemDraft SafetyNettingItem(const std::vector<std::string>& concerns);
// The note that spinal manipulation is not offered, and why.
PlanItemDraft NoManipulationNote(const std::string& why);

// The library contraindication tokens that apply to this patient (a fracture
// concern forbids manipulation and loading; a directional preference forbids
// the opposite direction). Generation, progression and revisions all use it.
std::set<std::string> PatientContraindications(const PlanInput& input, const PlanPolicy& policy = {});

}  // namespace physio::planning
