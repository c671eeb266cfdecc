#pragma once
// One JSON object per line on stderr. Log ids, never patient data: messages are
// written by us, and every value in them is an opaque id or a code.
// Lines are formatted on the caller's thread and written in batches by one
// writer thread (at once for warnings and errors), so a call never waits on stderr.
#include <chrono>
#include <string>

#include "physio/common/clock.h"

namespace physio {

void InitJsonLogging(const std::string& service, const std::string& level);
std::string JsonEscape(const std::string& text);
// Writes the lines not yet written, on the calling thread, without waiting long
// for a lock the dying thread may hold: for the fatal-signal handler (crash_handler.h).
void FlushLogsBeforeDeath();

// One access-log line per call, with real JSON keys:
// {"ts":..,"level":"info","service":..,"kind":"access","method":..,"tenant":..,"principal":..,
//  "request_id":..,"code":..,"duration_ms":..}
struct AccessRecord {
  const char* method;
  std::string tenant;
  std::string principal;
  std::string request_id;
  const char* code;  // gRPC status code name, e.g. "OK", "NOT_FOUND"
  Clock::duration duration;
  std::string trace_id;  // W3C trace id when the caller sent a traceparent
};
void LogAccess(const AccessRecord& record);

}  // namespace physio
