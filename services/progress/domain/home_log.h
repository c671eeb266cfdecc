#pragma once
// What a home-exercise log's symptom questions mean for the patient, as plain C++:
// peripheralisation (symptoms spreading down the leg) stops the direction it happened
// with and asks for re-assessment (McKenzie & May 2003; Donelson 1990: peripheralisation
// means the loading direction is wrong for now), and the safety-net questions of
// every plan's cauda equina safety net (GIRFT 2023) are answered by the same
// red-flag rules as a check-in. The advice is shown to the patient at once.
#include <string>
#include <vector>

namespace physio::progress {

// How urgently a home log's answers send the patient for help.
enum class SafetyNetUrgency {
  kNone,            // no "yes"
  kContactClinic,   // a "yes" the red-flag rules only monitor: contact the clinic today
  kUrgent,          // urgent referral: stop the home programme, the clinic calls within 24 h
  kEmergency,       // emergency referral: emergency department now
};

// The plan's directional exercises (library ids "ex.dir.*": extension, flexion,
// lateral shift).
std::vector<std::string> DirectionalExercises(const std::vector<std::string>& exercise_ids);

// The exercises whose direction peripheralisation during `logged` stops: `logged` itself
// when it is directional; otherwise (symptoms spread with, say, walking) every directional
// exercise of the plan, the safer reading, since the patient did them too.
std::vector<std::string> ProvokingDirectionalExercises(const std::string& logged,
                                                       const std::vector<std::string>& exercise_ids);

// Plain words for the patient app; empty when nothing calls for advice.
// `direction_stopped`: the plan had directional exercises and their direction is being stopped.
std::string HomeLogAdvice(SafetyNetUrgency urgency, bool peripheralisation, bool direction_stopped);

}  // namespace physio::progress
