#pragma once
// The 1 s heartbeat of observation: per-interval CPU of every live task (for
// cpu.p95_cores / cpu.max_cores), the RSS of its processes, and updates of
// finished reports whose processes outlived their task.

#include <kj/timer.h>

#include "observe/attribution_table.h"

namespace tracer {

constexpr kj::Duration SAMPLE_INTERVAL = 1 * kj::SECONDS;

kj::Promise<void> sampleForever(AttributionTable& table, kj::Timer& timer);

}  // namespace tracer
