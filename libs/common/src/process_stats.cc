#include "physio/common/process_stats.h"

#include <malloc.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <fstream>

namespace physio {

double ProcessCpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  const auto seconds = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

long ProcessResidentBytes() {
  std::ifstream statm("/proc/self/statm");  // in pages: total, resident, ...
  long pages_total = 0, pages_resident = 0;
  if (!(statm >> pages_total >> pages_resident)) return 0;
  return pages_resident * sysconf(_SC_PAGESIZE);
}

namespace {
std::atomic<std::uint64_t> g_trims{0}, g_trimmed_bytes{0};
}  // namespace

long TrimFreeHeap() {
  const long before = ProcessResidentBytes();
  malloc_trim(0);
  const long after = ProcessResidentBytes();
  const long released = before > after ? before - after : 0;
  ++g_trims;
  g_trimmed_bytes += static_cast<std::uint64_t>(released);
  return released;
}

HeapTrims HeapTrimsSoFar() { return {g_trims.load(), g_trimmed_bytes.load()}; }

bool TrimAfterBusySpell::Observe(std::uint64_t calls) {
  if (calls > quiet_calls_) {
    busy_since_trim_ = true;
    return false;
  }
  const bool trim = busy_since_trim_;
  busy_since_trim_ = false;
  return trim;
}

}  // namespace physio
