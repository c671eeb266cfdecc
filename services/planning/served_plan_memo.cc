#include "served_plan_memo.h"

namespace physio::planning {

std::string ServedPlanMemo::Key(std::string_view tenant, std::string_view patient_id, std::string_view locale) {
  std::string key;
  key.reserve(tenant.size() + patient_id.size() + locale.size() + 2);
  // Ids and locales never hold a NUL, so the parts cannot run into each other.
  key.append(tenant).push_back('\0');
  key.append(patient_id).push_back('\0');
  key.append(locale);
  return key;
}

}  // namespace physio::planning
