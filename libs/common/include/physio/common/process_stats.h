#pragma once
// This process's resource use, as Prometheus' standard process metrics and
// physio-bench read it.

namespace physio {

// User plus system CPU seconds used by the process so far.
double ProcessCpuSeconds();
// Resident memory now, in bytes; 0 where there is no /proc.
long ProcessResidentBytes();

}  // namespace physio
