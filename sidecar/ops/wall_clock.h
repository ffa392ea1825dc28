#pragma once
// Wall-clock time in nanoseconds since the epoch: what is stored (history,
// outbox) and compared across restarts and nodes. Durations use the monotonic
// clock instead.

#include <kj/string.h>

#include <cstdint>
#include <ctime>

namespace tracer {

inline int64_t realtimeNs() {
  timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  return int64_t(now.tv_sec) * 1000000000 + now.tv_nsec;
}

// "2026-12-06 16:13 UTC": a moment for people, in the sidecar's answers and
// tracerctl's text alike (inline: tracerctl links none of the sidecar).
inline kj::String utcMinute(int64_t ns) {
  time_t seconds = ns / 1000000000;
  struct tm utc;
  gmtime_r(&seconds, &utc);
  char text[32];
  strftime(text, sizeof(text), "%Y-%m-%d %H:%M UTC", &utc);
  return kj::str(text);
}

}  // namespace tracer
