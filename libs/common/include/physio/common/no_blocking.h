#pragma once
// Threads that must never wait on a store: gRPC's own callback threads and the
// loop of the asynchronous Redis reads (libs/redis async_redis.h). Code they run
// is wrapped in a NoBlockingScope; anything inside it that would wait on I/O (a
// connection lease from a Redis or PostgreSQL pool, a key-set fetch) throws
// WouldBlock instead, and the caller hands the whole call to a worker thread,
// which may wait. So the same use-case code serves both paths, and a call that
// would need a store round trip beyond the one it was started with is never
// answered from the wrong thread.
#include <exception>

namespace physio {

// Not an Error: no use case catches and translates it, it reaches the scope's owner.
class WouldBlock final : public std::exception {
 public:
  explicit WouldBlock(const char* what) : what_(what) {}
  const char* what() const noexcept override { return what_; }

 private:
  const char* what_;
};

class NoBlockingScope {
 public:
  NoBlockingScope();
  ~NoBlockingScope();
  NoBlockingScope(const NoBlockingScope&) = delete;
  NoBlockingScope& operator=(const NoBlockingScope&) = delete;

 private:
  bool previous_;
};

// Whether this thread is inside a NoBlockingScope.
bool BlockingForbidden();
// Throws WouldBlock(`what`) inside a NoBlockingScope; `what` must outlive the exception (a literal).
void ThrowIfBlockingForbidden(const char* what);

}  // namespace physio
