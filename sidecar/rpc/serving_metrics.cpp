#include "rpc/serving_metrics.h"

namespace tracer {

void ServingMetrics::renderMetrics(PrometheusText& out) {
  out.single("tracer_uptime_seconds", "gauge", "Seconds since the sidecar started.",
             (services.clock.now() - services.startedAt) / kj::SECONDS);
  out.single("tracer_connected_clients", "gauge", "Clients connected over the socket.",
             services.connectedClients);
  out.single("tracer_tasks_refused_over_uid_quota_total", "counter",
             "Task starts refused: their uid held --max-live-tasks-per-uid live tasks.",
             services.liveTasksByUid.refused());
}

}  // namespace tracer
