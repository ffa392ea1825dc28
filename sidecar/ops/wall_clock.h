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

// A moment for people in UTC, by strftime's `format` (at most 63 characters
// long); inline: tracerctl links none of the sidecar.
inline kj::String utcText(int64_t ns, const char* format) {
  time_t seconds = ns / 1000000000;
  struct tm utc;
  gmtime_r(&seconds, &utc);
  char text[64];
  strftime(text, sizeof(text), format, &utc);
  return kj::str(text);
}

// "2026-12-06 16:13 UTC", in the sidecar's answers and tracerctl's text alike.
inline kj::String utcMinute(int64_t ns) { return utcText(ns, "%Y-%m-%d %H:%M UTC"); }

}  // namespace tracer
