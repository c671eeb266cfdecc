#pragma once
// The one place Redis keys are built. Every key carries the tenant inside a hash
// tag ("asmt:{t:acme}:intake:<id>") so that all keys of a tenant that a script
// touches together land in one cluster slot, and so no key can exist without a tenant.
#include <initializer_list>
#include <string>

namespace physio {

// service_prefix: "asmt", "plan", "prog", "idem"... parts are appended with ':'.
// Throws std::invalid_argument when the tenant or a part is not an opaque id,
// which keeps braces (hash-tag breakout) and separators out of keys.
std::string RedisKey(const std::string& service_prefix, const std::string& tenant,
                     std::initializer_list<std::string> parts);

}  // namespace physio
