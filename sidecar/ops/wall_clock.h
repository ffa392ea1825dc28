#pragma once
// Wall-clock time in nanoseconds since the epoch: what is stored (history,
// outbox) and compared across restarts and nodes. Durations use the monotonic
// clock instead.

#include <cstdint>
#include <ctime>

namespace tracer {

inline int64_t realtimeNs() {
  timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  return int64_t(now.tv_sec) * 1000000000 + now.tv_nsec;
}

}  // namespace tracer
