#include "physio/auth/method_roles.h"

#include "physio/common/error.h"

namespace physio {

void MethodRoles::Require(const CallContext& ctx, std::string_view method) const {
  const auto entry = roles_.find(method);
  if (entry == roles_.end()) {
    throw Error(ErrorCode::kPermissionDenied, "no role may call " + std::string(method));
  }
  RequireAnyRole(ctx, entry->second);
}

}  // namespace physio
