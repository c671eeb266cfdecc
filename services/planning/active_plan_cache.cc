#include "active_plan_cache.h"

#include <string_view>

#include "physio/common/error.h"
#include "physio/redis/redis_keys.h"

namespace physio::planning {

GenerationCache::Keys RedisActivePlanCache::KeysOf(const CallContext& ctx, const std::string& patient_id) {
  return {RedisKey("plan", ctx.tenant, {"active", patient_id}), RedisKey("plan", ctx.tenant, {"activegen", patient_id})};
}

void RedisActivePlanCache::BumpGenerationBeforeCommit(const CallContext& ctx, const std::string& patient_id,
                                                      Clock::time_point deadline) {
  cache_.BumpBeforeCommit(KeysOf(ctx, patient_id), deadline);
}

void RedisActivePlanCache::InvalidateAfterCommit(const CallContext& ctx, const std::string& patient_id,
                                                 Clock::time_point deadline) {
  cache_.InvalidateAfterCommit(KeysOf(ctx, patient_id), deadline);
}

std::optional<ActivePlanCache::Lookup> RedisActivePlanCache::Read(const CallContext& ctx, const std::string& patient_id,
                                                                  Clock::time_point deadline, v1::Plan* into) {
  return cache_.Read(KeysOf(ctx, patient_id), deadline, [into](const GenerationCache::Values& values) {
    Lookup lookup{values.generation, false};
    if (values.value) {
      // Parsed from hiredis's own buffer: a plan is several KB, not worth a copy.
      lookup.hit = into->ParseFromArray(values.value->data(), static_cast<int>(values.value->size()));
      if (!lookup.hit) into->Clear();
    }
    return lookup;
  });
}

bool RedisActivePlanCache::ReadAsync(const CallContext& ctx, const std::string& patient_id, Clock::time_point deadline,
                                     ReadDone done) {
  return cache_.ReadAsync(KeysOf(ctx, patient_id), deadline, std::move(done));
}

void RedisActivePlanCache::Fill(const CallContext& ctx, const std::string& patient_id, const std::string& generation,
                                const v1::Plan& plan, Clock::time_point deadline) {
  cache_.Fill(KeysOf(ctx, patient_id), generation, plan.SerializeAsString(), deadline);
}

}  // namespace physio::planning
