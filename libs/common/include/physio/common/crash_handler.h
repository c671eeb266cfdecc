#pragma once
// What a service leaves behind when it dies of a fatal signal (SIGSEGV,
// SIGABRT, SIGBUS, SIGFPE, SIGILL): the log lines not yet written, then
// "fatal signal ..." and a stack trace symbolised from the binary's own
// DWARF (elfutils' libdw: function, file and line) on stderr; then the signal
// is raised again with its default action, so the exit status (and a core
// dump, where enabled) is what it would have been. SIGPIPE is ignored: a
// write to a store's closed socket is an error on that connection, never the
// end of the process.
namespace physio {

// Once, early in main() (before threads start, so every thread inherits the
// signal dispositions). The main thread gets an alternate signal stack, so a
// stack overflow there is reported too.
void InstallCrashHandler();

}  // namespace physio
