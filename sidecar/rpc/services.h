#pragma once
// What every connection's servers (and /metrics) share; built once in main and
// passed down. Each is a narrow interface onto one stage below: the serving
// side knows what it may ask, not who answers.

#include <kj/time.h>

#include "metrics/rpc_metrics.h"
#include "metrics/status_part.h"
#include "observe/run_intake.h"
#include "ops/log.h"
#include "report/artifact_admin.h"
#include "report/cost_admin.h"
#include "rpc/access_policy.h"
#include "rpc/live_tasks_by_uid.h"
#include "runs/policy_admin.h"

namespace tracer {

struct Services {
  RunIntake& runs;
  RunQueries& queries;
  PolicyAdmin& policies;
  ArtifactAdmin& artifacts;
  CostAdmin& costs;
  const AccessPolicy& access;
  RpcMetrics& rpcMetrics;
  Log& log;
  const kj::MonotonicClock& clock;
  kj::TimePoint startedAt;
  uint32_t connectedClients = 0;
  LiveTasksByUid liveTasksByUid = {};
  // What else shows in `tracerctl status` (the history, the outbox, delivery):
  // each fills its own fields.
  kj::ArrayPtr<const StatusPart* const> statusParts = nullptr;
};

}  // namespace tracer
