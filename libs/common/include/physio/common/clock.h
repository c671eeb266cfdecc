#pragma once
#include <chrono>

namespace physio {

// The one clock of deadlines, waits and durations. Monotonic: a step of the
// wall clock (NTP, an operator) never ends a wait early or stretches it.
using Clock = std::chrono::steady_clock;

}  // namespace physio
