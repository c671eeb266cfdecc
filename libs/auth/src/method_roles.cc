#include "physio/auth/method_roles.h"

#include "physio/common/error.h"

namespace physio {

void MethodRoles::Require(const CallContext& ctx, const std::string& method) const {
  const auto entry = roles_.find(method);
  if (entry == roles_.end()) {
    throw Error(ErrorCode::kPermissionDenied, "no role may call " + method);
  }
  for (Role role : entry->second) {
    if (ctx.HasRole(role)) return;
  }
  std::string names;
  for (Role role : entry->second) names += (names.empty() ? "" : ", ") + RoleName(role);
  throw Error(ErrorCode::kPermissionDenied, "this call needs one of the roles: " + names);
}

}  // namespace physio
