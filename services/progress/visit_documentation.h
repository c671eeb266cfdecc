#pragma once
// A visit's session documentation (RecordVisitRequest.session) between the API and the session
// rules (domain/session_record.h): validation naming the field, and the conversions.
#include <string>
#include <vector>

#include "domain/session_record.h"
#include "physio/planning/v1/planning.pb.h"
#include "physio/progress/v1/progress.pb.h"

namespace physio::progress {

// Throws Error(kInvalidArgument) naming the field (e.g. "session.movement_tests[1].response").
void ValidateSessionRecord(const std::string& field, const v1::SessionRecord& session);

// "extension", "flexion" or "lateral_shift".
std::string DirectionOfTest(v1::MovementTest test);

// The session's consequences for the plan in use (null: none).
SessionJudgement JudgeSessionRecord(const v1::SessionRecord& session, const physio::planning::v1::Plan* plan);

// Range of movement as the rules compare it.
std::vector<RangeReading> RangeOf(const v1::SessionRecord& session);

}  // namespace physio::progress
