#pragma once
// A fixed set of connections handed out one caller at a time. A lease waits at
// most until the caller's deadline (then UNAVAILABLE: better a fast retryable
// error than a call that outlives its deadline) and returns itself when it ends.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "physio/common/clock.h"
#include "physio/common/error.h"
#include "physio/common/no_blocking.h"

namespace physio {

// Which connections of a pool may still be alive. When one connection finds its
// store gone (closed, reset), every connection dialled before is most likely
// dead as well (the store restarted): each redials on its next use instead of
// failing one caller apiece. A timeout alone says nothing about the others.
class ConnectionEpoch {
 public:
  std::uint64_t Current() const { return value_.load(std::memory_order_acquire); }
  void StoreLost() { value_.fetch_add(1, std::memory_order_acq_rel); }

 private:
  std::atomic<std::uint64_t> value_{0};
};

// What a pool has done so far, for the metrics endpoint.
struct PoolStats {
  int size = 0;
  int idle = 0;
  std::uint64_t acquired = 0;
  std::uint64_t waited = 0;       // leases that found no connection idle
  double wait_seconds = 0;        // their total wait
  std::uint64_t timed_out = 0;    // waits that reached the caller's deadline
};

template <typename Connection>
class BoundedPool {
 public:
  class Lease {
   public:
    Lease(BoundedPool* pool, std::unique_ptr<Connection> conn) : pool_(pool), conn_(std::move(conn)) {}
    Lease(Lease&&) = default;
    Lease& operator=(Lease&&) = delete;
    ~Lease() {
      if (pool_ && conn_) pool_->Return(std::move(conn_));
    }
    Connection* operator->() { return conn_.get(); }
    Connection& operator*() { return *conn_; }

   private:
    BoundedPool* pool_;
    std::unique_ptr<Connection> conn_;
  };

  // `store` names the store in errors ("redis", "postgres").
  BoundedPool(int size, const std::function<std::unique_ptr<Connection>()>& make, std::string store)
      : store_(std::move(store)) {
    for (int i = 0; i < size; ++i) idle_.push_back(make());
    stats_.size = size;
  }

  // Inside a NoBlockingScope: throws WouldBlock (a lease is the first step of every round trip).
  Lease Acquire(Clock::time_point deadline) {
    ThrowIfBlockingForbidden("a store connection lease");
    std::unique_lock lock(mutex_);
    ++stats_.acquired;
    if (idle_.empty()) {
      ++stats_.waited;
      const auto since = Clock::now();
      const bool got = available_.wait_until(lock, deadline, [&] { return !idle_.empty(); });
      stats_.wait_seconds += std::chrono::duration<double>(Clock::now() - since).count();
      if (!got) {
        ++stats_.timed_out;
        throw Error(ErrorCode::kUnavailable, store_ + ": no connection free before the deadline");
      }
    }
    auto conn = std::move(idle_.back());
    idle_.pop_back();
    return Lease(this, std::move(conn));
  }

  PoolStats Stats() {
    std::lock_guard lock(mutex_);
    PoolStats stats = stats_;
    stats.idle = static_cast<int>(idle_.size());
    return stats;
  }

 private:
  void Return(std::unique_ptr<Connection> conn) {
    {
      std::lock_guard lock(mutex_);
      idle_.push_back(std::move(conn));
    }
    available_.notify_one();
  }

  std::string store_;
  std::mutex mutex_;
  std::condition_variable available_;
  std::vector<std::unique_ptr<Connection>> idle_;
  PoolStats stats_;
};

}  // namespace physio
