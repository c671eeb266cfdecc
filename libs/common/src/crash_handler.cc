#include "physio/common/crash_handler.h"

#include <cxxabi.h>
#include <elfutils/libdwfl.h>
#include <execinfo.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>

#include "physio/common/logging.h"

namespace physio {

namespace {

constexpr int kFatalSignals[] = {SIGSEGV, SIGABRT, SIGBUS, SIGFPE, SIGILL};
constexpr int kMaxFrames = 64;
std::atomic<bool> crashing{false};
// The main thread's alternate stack: libdw wants room, so it is generous.
alignas(16) char alternate_stack[256 * 1024];

void WriteText(const char* text) {
  for (std::size_t left = strlen(text); left > 0;) {
    const ssize_t n = ::write(STDERR_FILENO, text, left);
    if (n <= 0) return;
    text += n;
    left -= static_cast<std::size_t>(n);
  }
}

// "function (file:line)" for one frame from the DWARF of whichever module holds
// it; false when libdw cannot say.
bool Symbolise(Dwfl* dwfl, uintptr_t address, char* out, std::size_t size) {
  if (dwfl == nullptr) return false;
  Dwfl_Module* module = dwfl_addrmodule(dwfl, address);
  if (module == nullptr) return false;
  const char* name = dwfl_module_addrname(module, address);
  if (name == nullptr) return false;
  int status = -1;
  char* demangled = abi::__cxa_demangle(name, nullptr, nullptr, &status);
  const char* shown = status == 0 && demangled != nullptr ? demangled : name;
  int line = 0;
  const char* file = nullptr;
  if (Dwfl_Line* where = dwfl_module_getsrc(module, address)) {
    file = dwfl_lineinfo(where, nullptr, &line, nullptr, nullptr, nullptr);
  }
  if (file != nullptr) {
    snprintf(out, size, "%s (%s:%d)", shown, file, line);
  } else {
    const char* module_name = dwfl_module_info(module, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr);
    snprintf(out, size, "%s (in %s)", shown, module_name != nullptr ? module_name : "?");
  }
  free(demangled);
  return true;
}

void OnFatalSignal(int signal, siginfo_t* info, void*) {
  // A second fault while reporting the first (or in another thread): die as the signal would.
  if (crashing.exchange(true)) {
    ::signal(signal, SIG_DFL);
    raise(signal);
    return;
  }
  FlushLogsBeforeDeath();
  char line[1024];
  snprintf(line, sizeof line, "fatal signal %d (SIG%s) in thread %ld, fault address %p; stack:\n", signal,
           sigabbrev_np(signal) != nullptr ? sigabbrev_np(signal) : "?", static_cast<long>(syscall(SYS_gettid)),
           info != nullptr ? info->si_addr : nullptr);
  WriteText(line);
  void* frames[kMaxFrames];
  const int count = backtrace(frames, kMaxFrames);
  // Symbolising allocates and reads the binary: not async-signal-safe, but the
  // process is ending either way, and the plain addresses below are written
  // (backtrace_symbols_fd) should it fail.
  static char* debuginfo_path = nullptr;
  static const Dwfl_Callbacks callbacks = {dwfl_linux_proc_find_elf, dwfl_standard_find_debuginfo, nullptr,
                                           &debuginfo_path};
  Dwfl* dwfl = dwfl_begin(&callbacks);
  if (dwfl != nullptr && (dwfl_linux_proc_report(dwfl, getpid()) != 0 || dwfl_report_end(dwfl, nullptr, nullptr) != 0)) {
    dwfl_end(dwfl);
    dwfl = nullptr;
  }
  bool symbolised = false;
  for (int i = 0; i < count; ++i) {
    const auto address = reinterpret_cast<uintptr_t>(frames[i]);
    // A return address points after its call: look up the call itself.
    char where[768];
    if (Symbolise(dwfl, i == 0 ? address : address - 1, where, sizeof where)) {
      snprintf(line, sizeof line, "  #%-2d 0x%016" PRIxPTR " %s\n", i, address, where);
      symbolised = true;
    } else {
      snprintf(line, sizeof line, "  #%-2d 0x%016" PRIxPTR " ?\n", i, address);
    }
    WriteText(line);
  }
  if (dwfl != nullptr) dwfl_end(dwfl);
  if (!symbolised) backtrace_symbols_fd(frames, count, STDERR_FILENO);
  // SA_RESETHAND restored the default action: the signal ends the process as it would have.
  raise(signal);
}

}  // namespace

void InstallCrashHandler() {
  // Load libgcc's unwinder now: backtrace() would otherwise dlopen it inside the handler.
  void* warm_up[1];
  backtrace(warm_up, 1);
  stack_t stack{};
  stack.ss_sp = alternate_stack;
  stack.ss_size = sizeof alternate_stack;
  sigaltstack(&stack, nullptr);
  struct sigaction action {};
  action.sa_sigaction = OnFatalSignal;
  action.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESETHAND;
  sigemptyset(&action.sa_mask);
  for (int signal : kFatalSignals) sigaction(signal, &action, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
}

}  // namespace physio
