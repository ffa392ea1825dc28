#pragma once
// What every connection's servers share; built once in main and passed down.

#include <kj/time.h>

#include "observe/attribution_table.h"
#include "ops/log.h"
#include "policy/advisor.h"
#include "store/outbox.h"

namespace tracer {

struct Services {
  AttributionTable& table;
  Advisor& advisor;
  Outbox& outbox;
  Log& log;
  const kj::MonotonicClock& clock;
  kj::TimePoint startedAt;
  uint32_t connectedClients = 0;
};

}  // namespace tracer
