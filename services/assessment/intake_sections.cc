#include "intake_sections.h"

#include <algorithm>

#include "physio/common/error.h"
#include "physio/common/validation.h"

namespace physio::assessment {

namespace {
void ValidateText(const std::string& field, const std::string& text, size_t max) {
  if (text.empty() || text.size() > max) ThrowInvalidArgument(field, "must be 1-" + std::to_string(max) + " characters");
  if (IsBlank(text)) ThrowInvalidArgument(field, "must not be blank (it holds only white space)");
  // One line: a tab or a line break is refused here too.
  if (auto why = ControlCharacterRefusal(text, LineBreaks::kOneLine); !why.empty()) ThrowInvalidArgument(field, why);
}

void ValidateEnum(const std::string& field, int value, bool (*is_valid)(int)) {
  if (!is_valid(value)) ThrowInvalidArgument(field, "is not a known value");
}

// A repeated enum: known, specified values, no repeats, at most `max`.
template <typename Repeated>
void ValidateEnumList(const std::string& field, const Repeated& values, int max, bool (*is_valid)(int)) {
  if (values.size() > max) ThrowInvalidArgument(field, "at most " + std::to_string(max) + " values");
  for (int i = 0; i < values.size(); ++i) {
    const std::string element = field + "[" + std::to_string(i) + "]";
    if (values[i] == 0 || !is_valid(values[i])) ThrowInvalidArgument(element, "is not a known value");
    for (int j = 0; j < i; ++j) {
      if (values[j] == values[i]) ThrowInvalidArgument(element, "repeats an earlier value");
    }
  }
}

// Short codes: 1-64 characters of [a-z0-9_], at most `max`.
void ValidateCodes(const std::string& field, const google::protobuf::RepeatedPtrField<std::string>& codes, int max) {
  if (codes.size() > max) ThrowInvalidArgument(field, "at most " + std::to_string(max) + " values");
  for (int i = 0; i < codes.size(); ++i) {
    const std::string& code = codes[i];
    bool ok = !code.empty() && code.size() <= 64;
    for (char c : code) ok = ok && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_');
    if (!ok) ThrowInvalidArgument(field + "[" + std::to_string(i) + "]", "must be 1-64 characters of [a-z0-9_]");
  }
}

template <typename Repeated, typename Value>
bool Contains(const Repeated& values, Value value) {
  return std::find(values.begin(), values.end(), value) != values.end();
}
}  // namespace

void ValidateHistory(const std::string& field, const v1::History& h) {
  if (h.has_age_years()) ValidateRange(field + ".age_years", h.age_years(), 0, 120);
  if (h.has_episode_duration_days()) ValidateRange(field + ".episode_duration_days", h.episode_duration_days(), 0, 36500);
  ValidateEnum(field + ".symptom_extent", h.symptom_extent(), v1::SymptomExtent_IsValid);
  ValidateEnum(field + ".occupation_demand", h.occupation_demand(), v1::OccupationDemand_IsValid);
  ValidateEnum(field + ".activity_level", h.activity_level(), v1::ActivityLevel_IsValid);
  ValidateRange(field + ".previous_episodes", h.previous_episodes(), 0, 100);
  if (h.goals_size() > 5) ThrowInvalidArgument(field + ".goals", "at most 5 goals");
  for (int i = 0; i < h.goals_size(); ++i) ValidateText(field + ".goals[" + std::to_string(i) + "]", h.goals(i), 200);
  ValidateEnum(field + ".provocation", h.provocation(), v1::Provocation_IsValid);
  if (h.has_settle_minutes()) ValidateRange(field + ".settle_minutes", h.settle_minutes(), 0, 1440);
  if (h.has_morning_stiffness_minutes()) {
    ValidateRange(field + ".morning_stiffness_minutes", h.morning_stiffness_minutes(), 0, 720);
  }
  ValidateEnumList(field + ".aggravating_factors", h.aggravating_factors(), 10, v1::AggravatingFactor_IsValid);
  ValidateEnumList(field + ".easing_factors", h.easing_factors(), 10, v1::EasingFactor_IsValid);
  ValidateEnumList(field + ".pain_regions", h.pain_regions(), 12, v1::BodyRegion_IsValid);
  ValidateEnumList(field + ".analgesics", h.analgesics(), 4, v1::Analgesic_IsValid);
  if (h.has_height_cm()) ValidateRange(field + ".height_cm", h.height_cm(), 100, 250);
  if (h.has_weight_kg()) ValidateRange(field + ".weight_kg", h.weight_kg(), 25, 350);
  if (h.has_pregnancy_weeks()) {
    if (!h.pregnant()) ThrowInvalidArgument(field + ".pregnancy_weeks", "only when pregnant is true");
    ValidateRange(field + ".pregnancy_weeks", h.pregnancy_weeks(), 1, 42);
  }
  ValidateCodes(field + ".previous_treatments", h.previous_treatments(), 10);
  ValidateEnum(field + ".previous_treatment_effect", h.previous_treatment_effect(), v1::TreatmentEffect_IsValid);
  ValidateEnum(field + ".recovery_expectation", h.recovery_expectation(), v1::RecoveryExpectation_IsValid);
  ValidateWork(field + ".work", h.work());
}

void ValidateWork(const std::string& field, const v1::WorkParticipation& w) {
  ValidateEnum(field + ".status", w.status(), v1::WorkStatus_IsValid);
  if (w.has_usual_hours_per_week()) ValidateRange(field + ".usual_hours_per_week", w.usual_hours_per_week(), 1, 80);
  if (w.has_current_hours_per_week()) {
    ValidateRange(field + ".current_hours_per_week", w.current_hours_per_week(), 0, 80);
  }
  if (w.has_days_off_work()) {
    if (w.status() != v1::WORK_STATUS_OFF_WORK) ThrowInvalidArgument(field + ".days_off_work", "only when off work");
    ValidateRange(field + ".days_off_work", w.days_off_work(), 0, 3650);
  }
  if (w.fit_note() && w.status() != v1::WORK_STATUS_OFF_WORK && w.status() != v1::WORK_STATUS_MODIFIED_DUTIES) {
    ThrowInvalidArgument(field + ".fit_note", "only when off work or on modified duties");
  }
  if (w.has_planned_return_in_days()) ValidateRange(field + ".planned_return_in_days", w.planned_return_in_days(), 0, 365);
  ValidateCodes(field + ".obstacles", w.obstacles(), 10);
}

void ValidateExamination(const std::string& field, const v1::Examination& e) {
  ValidateEnum(field + ".directional_preference", e.directional_preference(),
                                          v1::DirectionalPreference_IsValid);
  if (e.has_hip_internal_rotation_deg()) ValidateRange(field + ".hip_internal_rotation_deg", e.hip_internal_rotation_deg(), 0, 90);
  if (e.has_straight_leg_raise_deg()) ValidateRange(field + ".straight_leg_raise_deg", e.straight_leg_raise_deg(), 0, 120);
  ValidateCodes(field + ".observations", e.observations(), 10);
  if (e.has_neurological()) ValidateNeurological(field + ".neurological", e.neurological());
}

namespace {
// A required enum: specified and known.
void RequireEnum(const std::string& field, int value, bool (*is_valid)(int)) {
  if (value == 0 || !is_valid(value)) ThrowInvalidArgument(field, "is required (a known, specified value)");
}
// Each (key) once in a repeated list.
template <typename Repeated, typename Key>
void RequireDistinct(const std::string& field, const Repeated& list, Key key, const std::string& what) {
  for (int i = 0; i < list.size(); ++i) {
    for (int j = 0; j < i; ++j) {
      if (key(list[j]) == key(list[i])) ThrowInvalidArgument(field + "[" + std::to_string(i) + "]", "repeats " + what);
    }
  }
}
}  // namespace

void ValidateNeurological(const std::string& field, const v1::NeurologicalExamination& n) {
  if (n.myotomes_size() > 10) ThrowInvalidArgument(field + ".myotomes", "at most 10");
  if (n.dermatomes_size() > 10) ThrowInvalidArgument(field + ".dermatomes", "at most 10");
  if (n.reflexes_size() > 4) ThrowInvalidArgument(field + ".reflexes", "at most 4");
  if (n.legs_size() > 2) ThrowInvalidArgument(field + ".legs", "at most 2 (one per side)");
  for (int i = 0; i < n.myotomes_size(); ++i) {
    const std::string at = field + ".myotomes[" + std::to_string(i) + "]";
    RequireEnum(at + ".root", n.myotomes(i).root(), v1::NerveRoot_IsValid);
    RequireEnum(at + ".side", n.myotomes(i).side(), v1::BodySide_IsValid);
    ValidateRange(at + ".grade", n.myotomes(i).grade(), 0, 5);
  }
  RequireDistinct(field + ".myotomes", n.myotomes(), [](const auto& m) { return std::pair(m.root(), m.side()); },
                  "a root and side");
  for (int i = 0; i < n.dermatomes_size(); ++i) {
    const std::string at = field + ".dermatomes[" + std::to_string(i) + "]";
    RequireEnum(at + ".root", n.dermatomes(i).root(), v1::NerveRoot_IsValid);
    RequireEnum(at + ".side", n.dermatomes(i).side(), v1::BodySide_IsValid);
    RequireEnum(at + ".sensation", n.dermatomes(i).sensation(), v1::Sensation_IsValid);
  }
  RequireDistinct(field + ".dermatomes", n.dermatomes(), [](const auto& d) { return std::pair(d.root(), d.side()); },
                  "a root and side");
  for (int i = 0; i < n.reflexes_size(); ++i) {
    const std::string at = field + ".reflexes[" + std::to_string(i) + "]";
    RequireEnum(at + ".reflex", n.reflexes(i).reflex(), v1::Reflex_IsValid);
    RequireEnum(at + ".side", n.reflexes(i).side(), v1::BodySide_IsValid);
    RequireEnum(at + ".response", n.reflexes(i).response(), v1::ReflexResponse_IsValid);
  }
  RequireDistinct(field + ".reflexes", n.reflexes(), [](const auto& r) { return std::pair(r.reflex(), r.side()); },
                  "a reflex and side");
  for (int i = 0; i < n.legs_size(); ++i) {
    const std::string at = field + ".legs[" + std::to_string(i) + "]";
    const auto& leg = n.legs(i);
    RequireEnum(at + ".side", leg.side(), v1::BodySide_IsValid);
    ValidateEnum(at + ".extent", leg.extent(), v1::LegSymptomExtent_IsValid);
    if (leg.has_leg_symptoms_onset_days()) ValidateRange(at + ".leg_symptoms_onset_days", leg.leg_symptoms_onset_days(), 0, 3650);
    if (leg.has_straight_leg_raise_deg()) ValidateRange(at + ".straight_leg_raise_deg", leg.straight_leg_raise_deg(), 0, 120);
  }
  RequireDistinct(field + ".legs", n.legs(), [](const auto& l) { return l.side(); }, "a side");
}

NeuroExam NeuroExamOf(const v1::NeurologicalExamination& n) {
  auto side = [](v1::BodySide s) { return s == v1::BODY_SIDE_LEFT ? Side::kLeft : Side::kRight; };
  auto root = [](v1::NerveRoot r) {
    switch (r) {
      case v1::NERVE_ROOT_L2: return NerveRootLevel::kL2;
      case v1::NERVE_ROOT_L3: return NerveRootLevel::kL3;
      case v1::NERVE_ROOT_L4: return NerveRootLevel::kL4;
      case v1::NERVE_ROOT_L5: return NerveRootLevel::kL5;
      default: return NerveRootLevel::kS1;
    }
  };
  NeuroExam exam;
  // Validated input only: unspecified entries (never stored) are skipped rather than guessed.
  for (const auto& m : n.myotomes()) {
    if (m.root() == v1::NERVE_ROOT_UNSPECIFIED || m.side() == v1::BODY_SIDE_UNSPECIFIED) continue;
    exam.motor.push_back({root(m.root()), side(m.side()), m.grade()});
  }
  for (const auto& d : n.dermatomes()) {
    if (d.root() == v1::NERVE_ROOT_UNSPECIFIED || d.side() == v1::BODY_SIDE_UNSPECIFIED) continue;
    if (d.sensation() == v1::SENSATION_UNSPECIFIED) continue;
    exam.sensory.push_back({root(d.root()), side(d.side()), static_cast<SensationLevel>(d.sensation() - 1)});
  }
  for (const auto& r : n.reflexes()) {
    if (r.reflex() == v1::REFLEX_UNSPECIFIED || r.side() == v1::BODY_SIDE_UNSPECIFIED) continue;
    if (r.response() == v1::REFLEX_RESPONSE_UNSPECIFIED) continue;
    exam.reflexes.push_back({r.reflex() == v1::REFLEX_KNEE ? ReflexSite::kKnee : ReflexSite::kAnkle, side(r.side()),
                             static_cast<ReflexLevel>(r.response() - 1)});
  }
  for (const auto& l : n.legs()) {
    if (l.side() == v1::BODY_SIDE_UNSPECIFIED) continue;
    NeuroExam::Leg leg;
    leg.side = side(l.side());
    leg.extent = static_cast<LegExtent>(l.extent());
    if (l.has_leg_symptoms_onset_days()) leg.onset_days = l.leg_symptoms_onset_days();
    if (l.has_straight_leg_raise_deg()) leg.slr_deg = l.straight_leg_raise_deg();
    leg.slr_positive = l.straight_leg_raise_positive();
    leg.slump_positive = l.slump_positive();
    exam.legs.push_back(leg);
  }
  exam.motor_deficit_progressing = n.motor_deficit_progressing();
  return exam;
}

void AddNeurologicalFindings(RedFlagAnswers& answers, const NeuroFindings& findings) {
  answers.neurological_signs |= findings.objective_deficit;
  answers.bilateral_leg_neurological_symptoms |= findings.bilateral_deficit;
  answers.urgent_neurological.insert(answers.urgent_neurological.end(), findings.urgent.begin(), findings.urgent.end());
}

bool NeuroCallsForScreen(const NeuroFindings& findings) {
  return findings.bilateral_deficit || !findings.urgent.empty();
}

RedFlagAnswers RedFlagAnswersOf(const v1::RedFlagScreen& s) {
  RedFlagAnswers a;
  a.bladder_or_bowel_disturbance = s.bladder_or_bowel_disturbance();
  a.saddle_numbness = s.saddle_numbness();
  a.bilateral_leg_neurological_symptoms = s.bilateral_leg_neurological_symptoms();
  a.new_sexual_dysfunction = s.new_sexual_dysfunction();
  a.history_of_cancer = s.history_of_cancer();
  a.unexplained_weight_loss = s.unexplained_weight_loss();
  a.night_pain = s.night_pain();
  a.unremitting_pain = s.unremitting_pain();
  a.fever = s.fever();
  a.systemically_unwell = s.systemically_unwell();
  a.intravenous_drug_use = s.intravenous_drug_use();
  a.immunosuppression = s.immunosuppression();
  a.recent_infection_or_procedure = s.recent_infection_or_procedure();
  a.major_trauma = s.major_trauma();
  a.minor_trauma = s.minor_trauma();
  a.long_term_corticosteroids = s.long_term_corticosteroids();
  a.diabetes = s.diabetes();
  a.osteoporosis = s.osteoporosis();
  a.sudden_onset_severe_pain = s.sudden_onset_severe_pain();
  a.previous_fragility_fracture = s.previous_fragility_fracture();
  a.height_loss = s.height_loss();
  a.neurological_signs = s.neurological_signs();
  a.progressive_weakness = s.progressive_weakness();
  a.widespread_neurological_signs = s.widespread_neurological_signs();
  a.waking_second_half_of_night = s.waking_second_half_of_night();
  a.buttock_pain = s.buttock_pain();
  a.better_with_movement = s.better_with_movement();
  a.better_within_48h_of_nsaids = s.better_within_48h_of_nsaids();
  a.relative_with_spondyloarthritis = s.relative_with_spondyloarthritis();
  a.arthritis = s.arthritis();
  a.enthesitis = s.enthesitis();
  a.psoriasis = s.psoriasis();
  return a;
}

ClinicalFindings FindingsOf(const v1::History& h, const v1::Examination& e) {
  ClinicalFindings f;
  if (h.has_age_years()) f.age_years = h.age_years();
  if (h.has_episode_duration_days()) f.episode_duration_days = h.episode_duration_days();
  switch (h.symptom_extent()) {
    case v1::SYMPTOM_EXTENT_BACK_ONLY: f.symptom_extent = SymptomExtent::kBackOnly; break;
    case v1::SYMPTOM_EXTENT_BUTTOCK: f.symptom_extent = SymptomExtent::kButtock; break;
    case v1::SYMPTOM_EXTENT_THIGH: f.symptom_extent = SymptomExtent::kThigh; break;
    case v1::SYMPTOM_EXTENT_BELOW_KNEE: f.symptom_extent = SymptomExtent::kBelowKnee; break;
    default: f.symptom_extent = SymptomExtent::kUnknown; break;
  }
  switch (e.directional_preference()) {
    case v1::DIRECTIONAL_PREFERENCE_EXTENSION: f.directional_preference = DirectionalPreference::kExtension; break;
    case v1::DIRECTIONAL_PREFERENCE_FLEXION: f.directional_preference = DirectionalPreference::kFlexion; break;
    case v1::DIRECTIONAL_PREFERENCE_LATERAL_SHIFT: f.directional_preference = DirectionalPreference::kLateralShift; break;
    default: f.directional_preference = DirectionalPreference::kNone; break;
  }
  f.centralisation = e.centralisation();
  f.lumbar_hypomobility = e.lumbar_hypomobility();
  if (e.has_hip_internal_rotation_deg()) f.hip_internal_rotation_deg = e.hip_internal_rotation_deg();
  if (e.has_straight_leg_raise_deg()) f.straight_leg_raise_deg = e.straight_leg_raise_deg();
  f.aberrant_movements = e.aberrant_movements();
  f.prone_instability_positive = e.prone_instability_positive();
  f.visible_lateral_shift = e.visible_lateral_shift();
  f.stenosis_suspected = e.stenosis_suspected();
  // Radicular findings of the neurological examination are nerve-root signs too.
  f.nerve_root_signs = e.nerve_root_signs() || (e.has_neurological() && AnalyseNeuro(NeuroExamOf(e.neurological())).radicular);
  switch (h.provocation()) {
    case v1::PROVOCATION_MINIMAL: f.provocation = Provocation::kMinimal; break;
    case v1::PROVOCATION_MODERATE: f.provocation = Provocation::kModerate; break;
    case v1::PROVOCATION_SUBSTANTIAL: f.provocation = Provocation::kSubstantial; break;
    default: f.provocation = Provocation::kUnknown; break;
  }
  if (h.has_settle_minutes()) f.settle_minutes = h.settle_minutes();
  if (h.has_morning_stiffness_minutes()) f.morning_stiffness_minutes = h.morning_stiffness_minutes();
  f.worse_end_of_day = h.worse_end_of_day();
  f.night_waking_second_half = h.night_waking_second_half();
  f.alternating_buttock_pain = h.alternating_buttock_pain();
  f.eased_by_movement = Contains(h.easing_factors(), v1::EASING_FACTOR_MOVEMENT_OR_EXERCISE) ||
                        Contains(h.easing_factors(), v1::EASING_FACTOR_WALKING);
  f.eased_by_rest = Contains(h.easing_factors(), v1::EASING_FACTOR_REST) ||
                    Contains(h.easing_factors(), v1::EASING_FACTOR_LYING);
  for (auto factor : {v1::AGGRAVATING_FACTOR_SITTING, v1::AGGRAVATING_FACTOR_STANDING, v1::AGGRAVATING_FACTOR_WALKING,
                      v1::AGGRAVATING_FACTOR_BENDING, v1::AGGRAVATING_FACTOR_LIFTING, v1::AGGRAVATING_FACTOR_TWISTING}) {
    f.mechanical_factors |= Contains(h.aggravating_factors(), factor);
  }
  f.mechanical_factors |= Contains(h.easing_factors(), v1::EASING_FACTOR_CHANGING_POSITION);
  if (h.has_height_cm()) f.height_cm = h.height_cm();
  if (h.has_weight_kg()) f.weight_kg = h.weight_kg();
  return f;
}

RedFlagAnswers RedFlagAnswersWithHistory(const v1::RedFlagScreen& screen, const v1::History& h) {
  RedFlagAnswers answers = RedFlagAnswersOf(screen);
  // What the history already says counts even when the screen's own question was not
  // answered: medications and comorbidities as risk factors, the 24-hour pattern as
  // the axial SpA features it describes.
  answers.long_term_corticosteroids |= h.takes_corticosteroids();
  answers.diabetes |= h.diabetes();
  answers.osteoporosis |= h.osteoporosis();
  answers.waking_second_half_of_night |= h.night_waking_second_half();
  answers.buttock_pain |= h.alternating_buttock_pain();
  bool left_leg = false, right_leg = false, left_below_knee = false, right_below_knee = false;
  for (int region : h.pain_regions()) {
    left_below_knee |= region == v1::BODY_REGION_LOWER_LEG_LEFT || region == v1::BODY_REGION_FOOT_LEFT;
    right_below_knee |= region == v1::BODY_REGION_LOWER_LEG_RIGHT || region == v1::BODY_REGION_FOOT_RIGHT;
    left_leg |= region == v1::BODY_REGION_THIGH_LEFT;
    right_leg |= region == v1::BODY_REGION_THIGH_RIGHT;
  }
  answers.bilateral_leg_pain = (left_leg || left_below_knee) && (right_leg || right_below_knee);
  answers.bilateral_pain_below_knee = left_below_knee && right_below_knee;
  const ClinicalFindings findings = FindingsOf(h, {});
  answers.better_with_movement |= findings.eased_by_movement && !findings.eased_by_rest;
  const PatternResult pattern = JudgePainPattern(findings);
  if (pattern.pattern == PainPattern::kInflammatory) answers.inflammatory_pattern = pattern.criteria;
  return answers;
}

common::v1::Instrument ProtoOf(InstrumentKind kind) {
  switch (kind) {
    case InstrumentKind::kNprs: return common::v1::INSTRUMENT_NPRS;
    case InstrumentKind::kOdi: return common::v1::INSTRUMENT_ODI;
    case InstrumentKind::kRmdq: return common::v1::INSTRUMENT_RMDQ;
    case InstrumentKind::kStartBack: return common::v1::INSTRUMENT_START_BACK;
    case InstrumentKind::kFabq: return common::v1::INSTRUMENT_FABQ;
    case InstrumentKind::kPsfs: return common::v1::INSTRUMENT_PSFS;
  }
  return common::v1::INSTRUMENT_UNSPECIFIED;
}

v1::RedFlagAction ProtoOf(RedFlagAction action) {
  switch (action) {
    case RedFlagAction::kNone: return v1::RED_FLAG_ACTION_NONE;
    case RedFlagAction::kMonitor: return v1::RED_FLAG_ACTION_MONITOR;
    case RedFlagAction::kRoutineReferral: return v1::RED_FLAG_ACTION_ROUTINE_REFERRAL;
    case RedFlagAction::kUrgentReferral: return v1::RED_FLAG_ACTION_URGENT_REFERRAL;
    case RedFlagAction::kEmergencyReferral: return v1::RED_FLAG_ACTION_EMERGENCY_REFERRAL;
  }
  return v1::RED_FLAG_ACTION_UNSPECIFIED;
}

std::optional<RedFlagAction> ActionOf(v1::RedFlagAction action) {
  switch (action) {
    case v1::RED_FLAG_ACTION_NONE: return RedFlagAction::kNone;
    case v1::RED_FLAG_ACTION_MONITOR: return RedFlagAction::kMonitor;
    case v1::RED_FLAG_ACTION_ROUTINE_REFERRAL: return RedFlagAction::kRoutineReferral;
    case v1::RED_FLAG_ACTION_URGENT_REFERRAL: return RedFlagAction::kUrgentReferral;
    case v1::RED_FLAG_ACTION_EMERGENCY_REFERRAL: return RedFlagAction::kEmergencyReferral;
    default: return std::nullopt;
  }
}

v1::RedFlagResult ProtoOf(const RedFlagResult& result) {
  v1::RedFlagResult out;
  out.set_action(ProtoOf(result.action));
  out.set_manipulation_contraindicated(result.manipulation_contraindicated);
  for (const auto& concern : result.concerns) {
    auto* c = out.add_concerns();
    c->set_condition(concern.condition);
    c->set_action(ProtoOf(concern.action));
    for (const auto& reason : concern.reasons) c->add_reasons(reason);
  }
  return out;
}

v1::Classification ProtoOf(const Classification& c) {
  v1::Classification out;
  if (c.start_back) {
    out.set_start_back_risk(*c.start_back == StartBackRisk::kLow      ? v1::START_BACK_RISK_LOW
                            : *c.start_back == StartBackRisk::kMedium ? v1::START_BACK_RISK_MEDIUM
                                                                      : v1::START_BACK_RISK_HIGH);
  }
  if (c.phase) {
    out.set_phase(*c.phase == Phase::kSymptomModulation ? physio::common::v1::PHASE_SYMPTOM_MODULATION
                  : *c.phase == Phase::kMovementControl ? physio::common::v1::PHASE_MOVEMENT_CONTROL
                                                        : physio::common::v1::PHASE_FUNCTION_OPTIMISATION);
    out.set_phase_reason(c.phase_reason);
  }
  switch (c.subgroup.subgroup) {
    case Subgroup::kUnclassified: out.set_subgroup(v1::SUBGROUP_UNCLASSIFIED); break;
    case Subgroup::kManipulation: out.set_subgroup(v1::SUBGROUP_MANIPULATION); break;
    case Subgroup::kSpecificExercise: out.set_subgroup(v1::SUBGROUP_SPECIFIC_EXERCISE); break;
    case Subgroup::kStabilisation: out.set_subgroup(v1::SUBGROUP_STABILISATION); break;
  }
  out.set_direction(c.subgroup.direction);
  for (const auto& criterion : c.subgroup.criteria_met) out.add_criteria_met(criterion);
  out.set_manipulation_criteria_met(c.subgroup.manipulation_criteria_met);
  out.set_manipulation_two_factor(c.subgroup.manipulation_two_factor);
  for (const auto& note : c.subgroup.notes) out.add_notes(note);
  switch (c.irritability) {
    case Irritability::kUnknown: out.set_irritability(v1::IRRITABILITY_UNKNOWN); break;
    case Irritability::kLow: out.set_irritability(v1::IRRITABILITY_LOW); break;
    case Irritability::kModerate: out.set_irritability(v1::IRRITABILITY_MODERATE); break;
    case Irritability::kHigh: out.set_irritability(v1::IRRITABILITY_HIGH); break;
  }
  switch (c.pain_pattern.pattern) {
    case PainPattern::kUnknown: out.set_pain_pattern(v1::PAIN_PATTERN_UNKNOWN); break;
    case PainPattern::kMechanical: out.set_pain_pattern(v1::PAIN_PATTERN_MECHANICAL); break;
    case PainPattern::kInflammatory:
      out.set_pain_pattern(v1::PAIN_PATTERN_INFLAMMATORY);
      std::string criteria;
      for (const auto& criterion : c.pain_pattern.criteria) criteria += (criteria.empty() ? "" : ", ") + criterion;
      out.add_notes("inflammatory pain pattern (Berlin criteria, Rudwaleit 2006): " + criteria);
      break;
  }
  if (c.bmi) out.set_bmi(*c.bmi);
  return out;
}

bool CallsForReferral(v1::RedFlagAction action) {
  return action == v1::RED_FLAG_ACTION_URGENT_REFERRAL || action == v1::RED_FLAG_ACTION_EMERGENCY_REFERRAL;
}

std::string ConcernSummary(const v1::RedFlagConcern& concern) {
  std::string reasons;
  for (const auto& reason : concern.reasons()) reasons += (reasons.empty() ? "" : ", ") + reason;
  return concern.condition() + ": " + reasons;
}

std::vector<std::string> ConcernSummaries(const v1::RedFlagResult& red_flags) {
  std::vector<std::string> lines;
  for (const auto& concern : red_flags.concerns()) lines.push_back(ConcernSummary(concern));
  return lines;
}

}  // namespace physio::assessment

namespace physio::assessment {
namespace {
std::string Joined(const google::protobuf::RepeatedPtrField<std::string>& lines) {
  std::string out;
  for (const auto& line : lines) out += (out.empty() ? "" : "; ") + line;
  return out;
}
std::string ScoreText(double score) {
  std::string text = std::to_string(score);
  text.erase(text.find_last_not_of('0') + 1);
  if (!text.empty() && text.back() == '.') text.pop_back();
  return text;
}
}  // namespace

std::vector<v1::AssessmentChange> ReassessmentChanges(const v1::Assessment& before, const v1::Assessment& after) {
  std::vector<v1::AssessmentChange> changes;
  auto add = [&](std::string field, std::string was, std::string now, std::string reason) {
    if (was == now) return;
    v1::AssessmentChange change;
    change.set_field(std::move(field));
    change.set_before(std::move(was));
    change.set_after(std::move(now));
    change.set_reason(std::move(reason));
    changes.push_back(std::move(change));
  };
  const auto& was = before.classification();
  const auto& now = after.classification();
  const std::string criteria = now.criteria_met().empty() ? "no subgroup's criteria met"
                                                          : "criteria met: " + Joined(now.criteria_met());
  add("subgroup", v1::Subgroup_Name(was.subgroup()), v1::Subgroup_Name(now.subgroup()), criteria);
  const auto& exam = after.examination();
  std::string direction_reason =
      "directional preference " + v1::DirectionalPreference_Name(exam.directional_preference()) +
      (exam.centralisation() ? " with centralisation" : " without centralisation");
  if (!now.notes().empty()) direction_reason += "; " + Joined(now.notes());
  add("direction", was.direction().empty() ? "none" : was.direction(), now.direction().empty() ? "none" : now.direction(),
      direction_reason);
  add("phase", common::v1::Phase_Name(was.phase()), common::v1::Phase_Name(now.phase()), now.phase_reason());
  add("irritability", v1::Irritability_Name(was.irritability()), v1::Irritability_Name(now.irritability()),
      "from the history's provocation and settling time");
  add("nerve_root_signs", before.examination().nerve_root_signs() ? "yes" : "no", exam.nerve_root_signs() ? "yes" : "no",
      "the new examination");
  const auto judged = [](const v1::Assessment& a) {
    return a.has_clinician_red_flag_judgement() ? a.clinician_red_flag_judgement().action() : a.red_flags().action();
  };
  add("red_flags", v1::RedFlagAction_Name(judged(before)), v1::RedFlagAction_Name(after.red_flags().action()),
      after.red_flags().concerns().empty() ? "no concern in the new screen"
                                           : [&] {
                                               std::string lines;
                                               for (const auto& line : ConcernSummaries(after.red_flags())) {
                                                 lines += (lines.empty() ? "" : "; ") + line;
                                               }
                                               return lines;
                                             }());
  for (const auto& score : after.scores()) {
    for (const auto& earlier : before.scores()) {
      if (earlier.instrument() != score.instrument()) continue;
      add("score:" + common::v1::Instrument_Name(score.instrument()), ScoreText(earlier.score()),
          ScoreText(score.score()), "re-measured");
    }
  }
  return changes;
}

}  // namespace physio::assessment
