#include "physio/server/event_kinds.h"

#include <set>

#include "physio/common/error.h"
#include "physio/common/v1/common.pb.h"

namespace physio {

std::vector<std::string> EventKindNames(const std::string& field, const google::protobuf::RepeatedField<int>& kinds,
                                        int max) {
  if (kinds.size() > max) ThrowInvalidArgument(field, "at most " + std::to_string(max) + " kinds");
  std::vector<std::string> names;
  std::set<int> seen;
  for (int i = 0; i < kinds.size(); ++i) {
    const int kind = kinds.Get(i);
    const std::string item = field + "[" + std::to_string(i) + "]";
    if (!common::v1::EventKind_IsValid(kind) || kind == common::v1::EVENT_KIND_UNSPECIFIED) {
      ThrowInvalidArgument(item, "unknown event kind " + std::to_string(kind));
    }
    if (!seen.insert(kind).second) ThrowInvalidArgument(item, "event kind named twice");
    names.push_back(common::v1::EventKind_Name(static_cast<common::v1::EventKind>(kind)));
  }
  return names;
}

}  // namespace physio
