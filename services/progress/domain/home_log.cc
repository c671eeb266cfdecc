#include "home_log.h"

namespace physio::progress {

std::vector<std::string> DirectionalExercises(const std::vector<std::string>& exercise_ids) {
  std::vector<std::string> directional;
  for (const auto& id : exercise_ids) {
    if (id.starts_with("ex.dir.")) directional.push_back(id);
  }
  return directional;
}

std::vector<std::string> ProvokingDirectionalExercises(const std::string& logged,
                                                       const std::vector<std::string>& exercise_ids) {
  if (logged.starts_with("ex.dir.")) return {logged};
  return DirectionalExercises(exercise_ids);
}

std::string HomeLogAdvice(SafetyNetUrgency urgency, bool peripheralisation, bool direction_stopped) {
  switch (urgency) {
    case SafetyNetUrgency::kEmergency:
      return "Go to an emergency department now; do not wait for your next appointment. Stop your home "
             "exercises. Your clinic has been told.";
    case SafetyNetUrgency::kUrgent:
      return "Stop your home exercises and contact your clinic today; if you cannot reach them, call your doctor "
             "or out-of-hours service. Your clinic has been told and will contact you within 24 hours.";
    case SafetyNetUrgency::kContactClinic:
      return "Contact your clinic today about what you reported; seek emergency care at once for any of the "
             "emergency signs in your safety net. Your clinic has been told.";
    case SafetyNetUrgency::kNone: break;
  }
  if (peripheralisation) {
    return std::string("Your symptoms spread further down your leg. ") +
           (direction_stopped ? "The exercises in that direction have been stopped; do not do them again until "
                                "your physiotherapist has re-assessed you. "
                              : "") +
           "Stop any exercise that makes symptoms spread; your physiotherapist has been told and will re-assess you. Seek emergency care at once for any of the emergency signs in your safety net.";
  }
  return "";
}

}  // namespace physio::progress
