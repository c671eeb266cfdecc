// The service process's own behaviour, from outside: a fatal signal leaves a
// symbolised stack trace and the buffered log lines on stderr; a start that
// cannot finish says which phase it waits in, then exits naming the cause.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "test_env.h"

namespace {

struct Outcome {
  std::string output;  // stdout and stderr
  int status = 0;      // as waitpid reports it
};

Outcome RunProcess(std::vector<std::string> argv) {
  int fds[2];
  if (pipe(fds) != 0) throw std::runtime_error("pipe");
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    dup2(fds[1], STDERR_FILENO);
    close(fds[0]);
    std::vector<char*> args;
    for (auto& arg : argv) args.push_back(arg.data());
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  close(fds[1]);
  Outcome outcome;
  char buffer[4096];
  for (ssize_t n; (n = read(fds[0], buffer, sizeof buffer)) > 0;) outcome.output.append(buffer, static_cast<std::size_t>(n));
  close(fds[0]);
  waitpid(pid, &outcome.status, 0);
  return outcome;
}

const std::string kProbe = std::string(PHYSIO_BINARY_DIR) + "/tests/crash_probe";

TEST(FatalSignal, ASegfaultWritesTheLogThenASymbolisedTraceNamingTheFunctionAndDiesOfIt) {
  const Outcome run = RunProcess({kProbe, "segv"});
  ASSERT_TRUE(WIFSIGNALED(run.status)) << run.output;
  EXPECT_EQ(WTERMSIG(run.status), SIGSEGV);
  const auto log_line = run.output.find("probe line before the fault");
  const auto report = run.output.find("fatal signal 11 (SIGSEGV)");
  ASSERT_NE(log_line, std::string::npos) << run.output;
  ASSERT_NE(report, std::string::npos) << run.output;
  EXPECT_LT(log_line, report) << "the log lines come first";
  // Symbolised from DWARF: the demangled function with its source file and line.
  EXPECT_NE(run.output.find("CrashProbeFaultsHere(char const*) (", report), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("crash_probe.cc:", report), std::string::npos) << run.output;
  EXPECT_NE(run.output.find(" main (", report), std::string::npos) << run.output;
}

TEST(FatalSignal, AnUncaughtExceptionAbortsWithATraceThroughTheThrow) {
  const Outcome run = RunProcess({kProbe, "abort"});
  ASSERT_TRUE(WIFSIGNALED(run.status)) << run.output;
  EXPECT_EQ(WTERMSIG(run.status), SIGABRT);
  EXPECT_NE(run.output.find("fatal signal 6 (SIGABRT)"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("CrashProbeFaultsHere"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("probe line before the fault"), std::string::npos) << run.output;
}

TEST(FatalSignal, SigfpeIsReportedToo) {
  const Outcome run = RunProcess({kProbe, "fpe"});
  ASSERT_TRUE(WIFSIGNALED(run.status)) << run.output;
  EXPECT_EQ(WTERMSIG(run.status), SIGFPE);
  EXPECT_NE(run.output.find("fatal signal 8 (SIGFPE)"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("CrashProbeFaultsHere"), std::string::npos) << run.output;
}

TEST(FatalSignal, AWriteToAClosedSocketOrPipeIsAnErrorNotTheEndOfTheProcess) {
  const Outcome run = RunProcess({kProbe, "sigpipe"});
  ASSERT_TRUE(WIFEXITED(run.status)) << run.output;
  EXPECT_EQ(WEXITSTATUS(run.status), 0) << run.output;
  EXPECT_NE(run.output.find("write to a closed pipe returned -1"), std::string::npos) << run.output;
}

// A real service binary whose PostgreSQL never answers: the log names the phase
// it waits in while it waits, then the process exits 1 with the reason.
TEST(Startup, AStartThatWaitsSaysWhereAndAStartThatFailsExitsNamingTheCause) {
  const int closed_port = physio::testing::FreePort();
  const Outcome run = RunProcess({std::string(PHYSIO_BINARY_DIR) + "/services/planning/physio-planning",
                                  "--listen=127.0.0.1:0", "--http-listen=off", "--metrics-listen=off",
                                  "--pg-port=" + std::to_string(closed_port), "--redis-port=" + std::to_string(closed_port),
                                  "--jwt-public-key=" + physio::testing::TestKeys().public_key_path.string(),
                                  "--startup-timeout-ms=1500", "--startup-phase-warn-ms=400"});
  ASSERT_TRUE(WIFEXITED(run.status)) << run.output;
  EXPECT_EQ(WEXITSTATUS(run.status), 1) << run.output;
  EXPECT_NE(run.output.find(R"(startup: loading keys and settings done in )"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("redis not reachable at start"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("startup: still reaching PostgreSQL and applying migrations after "), std::string::npos)
      << run.output;
  EXPECT_NE(run.output.find("planning: "), std::string::npos) << run.output;
  EXPECT_EQ(run.output.find("listening on port"), std::string::npos) << run.output;
}

}  // namespace
