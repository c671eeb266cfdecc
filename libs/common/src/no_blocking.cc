#include "physio/common/no_blocking.h"

namespace physio {

namespace {
thread_local bool blocking_forbidden = false;
}  // namespace

NoBlockingScope::NoBlockingScope() : previous_(blocking_forbidden) { blocking_forbidden = true; }
NoBlockingScope::~NoBlockingScope() { blocking_forbidden = previous_; }

bool BlockingForbidden() { return blocking_forbidden; }

void ThrowIfBlockingForbidden(const char* what) {
  if (blocking_forbidden) throw WouldBlock(what);
}

}  // namespace physio
