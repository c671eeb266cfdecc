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

std::optional<ActivePlanCache::Lookup> RedisActivePlanCache::ReadBytes(const CallContext& ctx,
                                                                       const std::string& patient_id,
                                                                       Clock::time_point deadline,
                                                                       const TakePlanBytes& take) {
  return cache_.Read(KeysOf(ctx, patient_id), deadline, [&take](const GenerationCache::Values& values) {
    // A view into hiredis's own buffer: a plan is several KB, not worth a copy.
    return Lookup{values.generation, values.value && take(*values.value)};
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
