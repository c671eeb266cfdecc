#include "physio/server/startup.h"

#include <spdlog/spdlog.h>

namespace physio {

namespace {
std::mutex active_mutex;
StartupTracker* active = nullptr;

long long MillisSince(Clock::time_point since) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - since).count();
}
}  // namespace

void StartupPhase(const std::string& phase) {
  std::lock_guard lock(active_mutex);
  if (active != nullptr) active->Next(phase);
}

StartupTracker::StartupTracker(const std::string& first_phase, std::chrono::milliseconds warn_after)
    : warn_after_(warn_after), phase_(first_phase), started_(Clock::now()), phase_started_(started_) {
  {
    std::lock_guard lock(active_mutex);
    active = this;
  }
  if (warn_after_.count() > 0) watchdog_ = std::jthread([this](std::stop_token stop) { Watch(stop); });
}

StartupTracker::~StartupTracker() {
  {
    std::lock_guard lock(active_mutex);
    if (active == this) active = nullptr;
  }
  watchdog_.request_stop();
  changed_.notify_all();
}

void StartupTracker::Next(const std::string& phase) {
  std::lock_guard lock(mutex_);
  if (finished_) return;
  spdlog::info("startup: {} done in {} ms", phase_, MillisSince(phase_started_));
  phase_ = phase;
  phase_started_ = Clock::now();
  changed_.notify_all();
}

std::chrono::milliseconds StartupTracker::Finish() {
  {
    std::lock_guard lock(active_mutex);
    if (active == this) active = nullptr;
  }
  std::lock_guard lock(mutex_);
  if (!finished_) {
    spdlog::info("startup: {} done in {} ms", phase_, MillisSince(phase_started_));
    finished_ = true;
    changed_.notify_all();
  }
  return std::chrono::milliseconds(MillisSince(started_));
}

void StartupTracker::Watch(std::stop_token stop) {
  std::unique_lock lock(mutex_);
  while (!finished_ && !stop.stop_requested()) {
    const Clock::time_point phase_started = phase_started_;
    Clock::time_point warn_at = phase_started + warn_after_;
    // Each period the same phase goes on, say so again.
    while (!changed_.wait_until(lock, stop, warn_at, [&] { return finished_ || phase_started_ != phase_started; })) {
      if (stop.stop_requested()) return;
      spdlog::warn("startup: still {} after {} ms", phase_, MillisSince(phase_started));
      warn_at += warn_after_;
    }
  }
}

}  // namespace physio
