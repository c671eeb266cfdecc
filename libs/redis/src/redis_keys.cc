#include "physio/redis/redis_keys.h"

#include <stdexcept>

#include "physio/common/validation.h"

namespace physio {

std::string RedisKey(const std::string& service_prefix, const std::string& tenant,
                     std::initializer_list<std::string> parts) {
  if (!IsOpaqueId(service_prefix) || !IsOpaqueId(tenant)) throw std::invalid_argument("bad redis key prefix or tenant");
  std::string key = service_prefix + ":{t:" + tenant + "}";
  for (const auto& part : parts) {
    if (!IsOpaqueId(part)) throw std::invalid_argument("bad redis key part");
    key += ":" + part;
  }
  return key;
}

}  // namespace physio
