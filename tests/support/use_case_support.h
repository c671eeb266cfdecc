#pragma once
// What the use-case tests share: a caller as the pipeline would hand it to an
// app (verified identity, no gRPC), the error a call threw, and the
// intervention library from the source tree.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>

#include "domain/library.h"
#include "physio/auth/call_context.h"
#include "physio/common/error.h"

namespace physio::testing {

// Tenant "t-1"; a patient is their own principal, staff are "staff-1".
inline CallContext CallerAs(Role role, const std::string& patient_id = "") {
  CallContext ctx;
  ctx.tenant = "t-1";
  ctx.principal = role == Role::kPatient ? patient_id : "staff-1";
  ctx.roles = {role};
  ctx.patient_id = patient_id;
  ctx.request_id = "req-1";
  ctx.deadline = Clock::now() + std::chrono::seconds(2);
  return ctx;
}

// The error `call` throws: its code and its message (which names the field).
struct Thrown {
  ErrorCode code;
  std::string message;
};
inline Thrown ErrorOf(const std::function<void()>& call) {
  try {
    call();
  } catch (const Error& e) {
    return {e.code(), e.what()};
  }
  ADD_FAILURE() << "the call succeeded";
  return {ErrorCode::kInternal, ""};
}
inline ErrorCode CodeOf(const std::function<void()>& call) { return ErrorOf(call).code; }

inline const planning::InterventionLibrary& SourceLibrary() {
  static const planning::InterventionLibrary library = [] {
    std::ifstream in(PHYSIO_SOURCE_DIR "/services/planning/library/interventions.json");
    std::stringstream text;
    text << in.rdbuf();
    return planning::InterventionLibrary::Parse(text.str());
  }();
  return library;
}

}  // namespace physio::testing
