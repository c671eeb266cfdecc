#pragma once
// The Redis cache of assessments (GetAssessment's fast path, issue 33), kept by GenerationCache's
// rule (libs/redis generation_cache.h): the one write that changes a stored assessment
// (RecordRedFlagJudgement) bumps the assessment's generation inside its transaction and again
// with the entry's delete after commit, so a read never brings back an assessment older than a
// committed judgement. An entry holds the patient's id (to check the caller may see them before
// anything is handed out) and the assessment as protobuf bytes, which the fast path sends as
// they are, without a parse.
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "physio/assessment/v1/assessment.pb.h"
#include "physio/auth/call_context.h"
#include "physio/redis/generation_cache.h"

namespace physio::assessment {

class AssessmentCache {
 public:
  // `async` (optional): the connection ReadAsync uses; without it ReadAsync is never possible.
  AssessmentCache(RedisPool& redis, std::chrono::seconds ttl, AsyncRedis* async = nullptr)
      : cache_(redis, ttl, async) {}

  // In RecordRedFlagJudgement's transaction / after its commit (GenerationCache's rules and errors).
  void BumpGenerationBeforeCommit(const CallContext& ctx, const std::string& assessment_id, Clock::time_point deadline);
  void InvalidateAfterCommit(const CallContext& ctx, const std::string& assessment_id, Clock::time_point deadline);

  struct Lookup {
    std::string generation;  // to hand back to Fill
    bool hit = false;        // a current entry was cached, and is now in `into`
  };
  // One round trip; nullopt when Redis answered something unusable; throws Error(kUnavailable)
  // when Redis cannot be reached. A hit is parsed into `into` (on the call's arena when it has one).
  std::optional<Lookup> Read(const CallContext& ctx, const std::string& assessment_id, Clock::time_point deadline,
                             v1::Assessment* into);
  // A current entry: views into the reply, valid only while the callback that gets them runs.
  struct Cached {
    std::string_view patient_id;
    std::string_view assessment;  // v1::Assessment's bytes
  };
  // The same read with no thread waiting (CallPipeline::ServeFastRead): true once sent, and `done`
  // then runs once on the loop's thread with the entry, an empty optional inside for a miss, or
  // nullopt when Redis gave no usable answer; false (`done` never runs) when it cannot be sent now.
  using ReadDone = std::function<void(std::optional<std::optional<Cached>> entry)>;
  bool ReadAsync(const CallContext& ctx, const std::string& assessment_id, Clock::time_point deadline, ReadDone done);
  // Caches `assessment` only if its generation is still `generation`.
  void Fill(const CallContext& ctx, const std::string& generation, const v1::Assessment& assessment,
            Clock::time_point deadline);

  // An entry's value ("<patient id>\n<assessment bytes>") and back (nullopt: not one).
  static std::string ValueOf(const v1::Assessment& assessment);
  static std::optional<Cached> CachedOf(std::string_view value);

 private:
  static GenerationCache::Keys KeysOf(const CallContext& ctx, const std::string& assessment_id);

  GenerationCache cache_;
};

}  // namespace physio::assessment
