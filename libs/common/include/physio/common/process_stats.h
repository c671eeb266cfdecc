#pragma once
// This process's resource use, as Prometheus' standard process metrics and
// physio-bench read it; and handing the heap's free memory back to the system.
#include <cstdint>

namespace physio {

// User plus system CPU seconds used by the process so far.
double ProcessCpuSeconds();
// Resident memory now, in bytes; 0 where there is no /proc.
long ProcessResidentBytes();

// Hands the memory glibc's allocator holds free (in every thread's arena) back to
// the system (malloc_trim); returns by how much resident memory fell, in bytes
// (0 when it did not). It takes each arena's lock in turn: for quiet moments.
// The one way this process trims (at the end of a busy spell, and when the last
// of a burst's HTTP threads ends); each trim is counted.
long TrimFreeHeap();

struct HeapTrims {
  std::uint64_t trims = 0;
  std::uint64_t bytes = 0;  // resident memory they handed back
};
// The process's trims so far (for /metrics).
HeapTrims HeapTrimsSoFar();

// When to trim: once after each busy spell. A burst of calls leaves the per-thread
// arenas holding tens of MiB they no longer use (kept for reuse, never returned on
// their own); trimming while calls keep coming would only make them fault it in
// again. The process's start counts as a busy spell.
class TrimAfterBusySpell {
 public:
  // An interval with at most `quiet_calls` calls is quiet.
  explicit TrimAfterBusySpell(std::uint64_t quiet_calls) : quiet_calls_(quiet_calls) {}
  // `calls`: calls started in the interval that just ended. True: trim now (the
  // first quiet interval after a busy one).
  bool Observe(std::uint64_t calls);

 private:
  std::uint64_t quiet_calls_;
  bool busy_since_trim_ = true;
};

}  // namespace physio
