// A throwaway binary for process_test: installs the services' fatal-signal
// handler and JSON logging, logs a line, then dies as argv[1] says.
//   crash_probe segv|abort|fpe|sigpipe
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <stdexcept>

#include "physio/common/crash_handler.h"
#include "physio/common/logging.h"

// Not static and not inlined, so the trace has this frame and its name.
extern "C++" __attribute__((noinline)) void CrashProbeFaultsHere(const char* how) {
  if (std::strcmp(how, "segv") == 0) {
    volatile int* nowhere = nullptr;
    *nowhere = 1;
  } else if (std::strcmp(how, "abort") == 0) {
    throw std::logic_error("an exception nobody catches");  // std::terminate, then SIGABRT
  } else if (std::strcmp(how, "fpe") == 0) {
    std::raise(SIGFPE);
  }
  asm volatile("" ::: "memory");  // keeps the frame a frame
}

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  physio::InstallCrashHandler();
  physio::InitJsonLogging("crash-probe", "info");
  // Buffered (info lines are written every 50 ms): the handler must write it before the trace.
  spdlog::info("probe line before the fault");
  if (std::strcmp(argv[1], "sigpipe") == 0) {
    int fds[2];
    if (pipe(fds) != 0) return 3;
    close(fds[0]);
    const ssize_t written = write(fds[1], "x", 1);  // EPIPE, not death
    spdlog::info("write to a closed pipe returned {}", written);
    return written < 0 ? 0 : 4;
  }
  CrashProbeFaultsHere(argv[1]);
  return 0;
}
