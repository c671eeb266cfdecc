#pragma once
// Threads that run blocking work (hiredis, libpq, calls to other services) off
// gRPC's own small callback pool, fed by a queue. The queue is what lets a
// service accept hundreds of concurrent calls on a few dozen threads: a call
// waits its turn instead of being refused. Each job checks its own deadline when
// it starts, so a call that waited too long ends DEADLINE_EXCEEDED, not late.
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace physio {

class WorkerPool {
 public:
  // `queue_limit`: jobs that may wait at once; past it Submit refuses (a real
  // overload, far beyond the concurrency the service is sized for).
  WorkerPool(int threads, std::size_t queue_limit);
  // Runs every job already queued, then joins the threads.
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // False when the queue is full; the job is then not run.
  bool Submit(std::function<void()> job);
  std::size_t queued() const;
  int threads() const { return static_cast<int>(threads_.size()); }

 private:
  void Run();

  const std::size_t queue_limit_;
  mutable std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::function<void()>> jobs_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace physio
