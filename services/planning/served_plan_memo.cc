#include "served_plan_memo.h"

namespace physio::planning {

std::string ServedPlanMemo::Key(std::string_view tenant, std::string_view patient_id, std::string_view locale) {
  return MemoKey({tenant, patient_id, locale});
}

}  // namespace physio::planning
