#include "assessment_cache.h"

#include "physio/redis/redis_keys.h"

namespace physio::assessment {

GenerationCache::Keys AssessmentCache::KeysOf(const CallContext& ctx, const std::string& assessment_id) {
  return {RedisKey("asmt", ctx.tenant, {"assessment", assessment_id}),
          RedisKey("asmt", ctx.tenant, {"assessmentgen", assessment_id})};
}

void AssessmentCache::BumpGenerationBeforeCommit(const CallContext& ctx, const std::string& assessment_id,
                                                 Clock::time_point deadline) {
  cache_.BumpBeforeCommit(KeysOf(ctx, assessment_id), deadline);
}

void AssessmentCache::InvalidateAfterCommit(const CallContext& ctx, const std::string& assessment_id,
                                            Clock::time_point deadline) {
  cache_.InvalidateAfterCommit(KeysOf(ctx, assessment_id), deadline);
}

std::string AssessmentCache::ValueOf(const v1::Assessment& assessment) {
  return assessment.patient_id() + "\n" + assessment.SerializeAsString();
}

std::optional<AssessmentCache::Cached> AssessmentCache::CachedOf(std::string_view value) {
  const auto newline = value.find('\n');
  if (newline == std::string_view::npos || newline == 0) return std::nullopt;
  return Cached{value.substr(0, newline), value.substr(newline + 1)};
}

std::optional<AssessmentCache::Lookup> AssessmentCache::Read(const CallContext& ctx, const std::string& assessment_id,
                                                             Clock::time_point deadline, v1::Assessment* into) {
  return cache_.Read(KeysOf(ctx, assessment_id), deadline, [into](const GenerationCache::Values& values) {
    Lookup lookup{values.generation, false};
    if (auto cached = values.value ? CachedOf(*values.value) : std::nullopt) {
      lookup.hit = into->ParseFromArray(cached->assessment.data(), static_cast<int>(cached->assessment.size())) &&
                   into->patient_id() == cached->patient_id;
      if (!lookup.hit) into->Clear();
    }
    return lookup;
  });
}

bool AssessmentCache::ReadAsync(const CallContext& ctx, const std::string& assessment_id, Clock::time_point deadline,
                                ReadDone done) {
  return cache_.ReadAsync(KeysOf(ctx, assessment_id), deadline,
                          [done = std::move(done)](std::optional<std::optional<std::string_view>> value) {
                            if (!value) return done(std::nullopt);
                            if (!*value) return done(std::optional<Cached>());
                            auto cached = CachedOf(**value);
                            if (!cached) return done(std::nullopt);  // not an entry this code wrote
                            done(cached);
                          });
}

void AssessmentCache::Fill(const CallContext& ctx, const std::string& generation, const v1::Assessment& assessment,
                           Clock::time_point deadline) {
  cache_.Fill(KeysOf(ctx, assessment.assessment_id()), generation, ValueOf(assessment), deadline);
}

}  // namespace physio::assessment
