#pragma once
// What every connection's servers (and /metrics) share; built once in main and
// passed down.

#include <kj/time.h>

#include "observe/attribution_table.h"
#include "ops/log.h"
#include "runs/advisor.h"
#include "prefect/artifact_delivery.h"
#include "rpc/access_policy.h"
#include "metrics/rpc_metrics.h"
#include "store/outbox.h"

namespace tracer {

struct Services {
  AttributionTable& table;
  Advisor& advisor;
  Outbox& outbox;
  kj::Maybe<ArtifactDelivery&> delivery;  // none without a Prefect API
  const AccessPolicy& access;
  RpcMetrics& rpcMetrics;
  Log& log;
  const kj::MonotonicClock& clock;
  kj::TimePoint startedAt;
  uint32_t connectedClients = 0;
};

}  // namespace tracer
