#pragma once
// Validation of the history, examination and red-flag sections, and their
// translation into the plain-C++ inputs of the clinical rules.
#include <optional>

#include "domain/classification.h"
#include "domain/instruments.h"
#include "domain/neuro_exam.h"
#include "domain/red_flags.h"
#include "physio/assessment/v1/assessment.pb.h"

namespace physio::assessment {

// Throw Error(kInvalidArgument) naming the field.
void ValidateHistory(const std::string& field, const v1::History& history);
// Work participation (History.work, and a visit's work update): ranges, and days off and a fit
// note only with a status they fit.
void ValidateWork(const std::string& field, const v1::WorkParticipation& work);
void ValidateExamination(const std::string& field, const v1::Examination& examination);
// The neurological examination (Examination.neurological, a visit's re-examination): roots, sides
// and findings specified, grades 0-5, angles 0-120, each root, reflex and side once.
void ValidateNeurological(const std::string& field, const v1::NeurologicalExamination& examination);
NeuroExam NeuroExamOf(const v1::NeurologicalExamination& examination);
// What an examination shows, as red-flag answers: objective deficits are neurological signs,
// deficits on both sides bilateral leg neurological symptoms, urgent findings urgent reasons.
void AddNeurologicalFindings(RedFlagAnswers& answers, const NeuroFindings& findings);
// True when the examination alone raises a concern (bilateral deficits or an urgent finding):
// the screen runs even without the red-flag questions answered.
bool NeuroCallsForScreen(const NeuroFindings& findings);

RedFlagAnswers RedFlagAnswersOf(const v1::RedFlagScreen& screen);
// The screen's answers with what the history already says (medications, comorbidities,
// the 24-hour pattern and an inflammatory pain pattern for the axial SpA screen).
RedFlagAnswers RedFlagAnswersWithHistory(const v1::RedFlagScreen& screen, const v1::History& history);
ClinicalFindings FindingsOf(const v1::History& history, const v1::Examination& examination);

common::v1::Instrument ProtoOf(InstrumentKind kind);
v1::RedFlagAction ProtoOf(RedFlagAction action);
// nullopt for UNSPECIFIED, NOT_SCREENED or an unknown value.
std::optional<RedFlagAction> ActionOf(v1::RedFlagAction action);
v1::RedFlagResult ProtoOf(const RedFlagResult& result);
v1::Classification ProtoOf(const Classification& classification);

// True for urgent or emergency referral: no treatment; refer.
bool CallsForReferral(v1::RedFlagAction action);

// One line per condition of concern: "<condition>: <reason>, <reason>".
std::vector<std::string> ConcernSummaries(const v1::RedFlagResult& red_flags);
// One concern as "condition: reason, reason".
std::string ConcernSummary(const v1::RedFlagConcern& concern);

// What a re-assessment changed against the earlier assessment: the subgroup, the exercise
// direction, the phase, irritability, nerve-root signs, the red-flag action and each instrument's
// score, each with the reason the new findings give (ReassessPatientResponse.changes).
std::vector<v1::AssessmentChange> ReassessmentChanges(const v1::Assessment& before, const v1::Assessment& after);

}  // namespace physio::assessment
