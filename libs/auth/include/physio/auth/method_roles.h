#pragma once
// Which roles may call each RPC of a service. Each service has one such table
// (services/<name>/<name>_roles.h); the call pipeline checks it after identity
// and before the use case runs, the service refuses to start when it does not
// name exactly the RPCs the service serves, and a unit test checks the README's
// role table against it. Rules about a request's fields (only a clinician
// resumes a suspended plan, a patient acts only on their own record) stay with
// the use case, which knows the field.
#include <initializer_list>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <utility>

#include "physio/auth/call_context.h"

namespace physio {

inline const std::set<Role> kEveryRole = {Role::kIntegrator, Role::kClinician, Role::kPatient, Role::kService};

class MethodRoles {
 public:
  MethodRoles() = default;
  MethodRoles(std::initializer_list<std::pair<const std::string, std::set<Role>>> entries) : roles_(entries) {}

  // PERMISSION_DENIED unless the caller holds one of `method`'s roles. A method
  // the table does not name is refused too (fail closed).
  void Require(const CallContext& ctx, std::string_view method) const;

  // Method name (as in the proto, e.g. "StartIntake") to the roles that may call it.
  const std::map<std::string, std::set<Role>, std::less<>>& entries() const { return roles_; }

 private:
  // std::less<>: looked up by the pipeline's method name without building a string per call.
  std::map<std::string, std::set<Role>, std::less<>> roles_;
};

}  // namespace physio
