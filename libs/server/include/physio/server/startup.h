#pragma once
// A service's start, phase by phase, in its log: each phase ends with
// `startup: <phase> done in N ms`, and one still running after
// `startup-phase-warn-ms` logs `startup: still <phase> after N ms` (and again
// each period after that), so a start that hangs says where it waits.
// ServiceMain tracks its process's start; elsewhere (services started inside
// tests) StartupPhase does nothing.
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include "physio/common/clock.h"

namespace physio {

// Ends the current phase (logging its time) and begins `phase` ("applying migrations").
void StartupPhase(const std::string& phase);

class StartupTracker {
 public:
  // Begins tracking this process's start with `first_phase`.
  StartupTracker(const std::string& first_phase, std::chrono::milliseconds warn_after);
  ~StartupTracker();
  StartupTracker(const StartupTracker&) = delete;
  StartupTracker& operator=(const StartupTracker&) = delete;
  // Ends the last phase; returns the whole start's time.
  std::chrono::milliseconds Finish();

  void Next(const std::string& phase);

 private:
  void Watch(std::stop_token stop);

  std::chrono::milliseconds warn_after_;
  std::mutex mutex_;
  std::condition_variable_any changed_;
  std::string phase_;
  Clock::time_point started_, phase_started_;
  bool finished_ = false;
  std::jthread watchdog_;
};

}  // namespace physio
