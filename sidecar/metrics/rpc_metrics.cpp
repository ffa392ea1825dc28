#include "metrics/rpc_metrics.h"

#include <cstdio>

namespace tracer {

void RpcMetrics::recordCall(capnp::InterfaceSchema schema, uint16_t methodId, kj::Duration took,
                            bool failed) {
  auto methodList = schema.getMethods();
  // An unknown method id is refused by the generated dispatch; it has no name
  // and must not mint a label.
  if (methodId >= methodList.size()) return;
  auto& method = methods[{schema.getProto().getId(), methodId}];
  if (method.name.empty()) {
    method.name = kj::str(schema.getShortDisplayName(), ".",
                          methodList[methodId].getProto().getName()).cStr();
  }
  ++(failed ? method.failed : method.ok);
  double seconds = double(took / kj::NANOSECONDS) / 1e9;
  method.sumSeconds += seconds;
  for (size_t i = 0; i < BUCKETS.size(); ++i) {
    if (seconds <= BUCKETS[i]) {
      ++method.buckets[i];
      break;
    }
  }
}

void RpcMetrics::renderMetrics(PrometheusText& out) {
  out.family("tracer_rpc_calls_total", "counter", "RPC calls served, by method and result.");
  for (auto& [id, method]: methods) {
    auto& name = method.name;
    out.sample("tracer_rpc_calls_total", {{"method", name.c_str()}, {"result", "ok"}}, method.ok);
    out.sample("tracer_rpc_calls_total", {{"method", name.c_str()}, {"result", "error"}},
               method.failed);
  }
  out.family("tracer_rpc_call_duration_seconds", "histogram",
             "Time the sidecar spent serving an RPC call, by method.");
  for (auto& [id, method]: methods) {
    auto& name = method.name;
    uint64_t cumulative = 0;
    for (size_t i = 0; i < BUCKETS.size(); ++i) {
      cumulative += method.buckets[i];
      char bound[32];
      snprintf(bound, sizeof(bound), "%g", BUCKETS[i]);
      out.sample("tracer_rpc_call_duration_seconds_bucket",
                 {{"method", name.c_str()}, {"le", bound}}, cumulative);
    }
    uint64_t count = method.ok + method.failed;
    out.sample("tracer_rpc_call_duration_seconds_bucket", {{"method", name.c_str()}, {"le", "+Inf"}},
               count);
    out.sample("tracer_rpc_call_duration_seconds_sum", {{"method", name.c_str()}},
               method.sumSeconds);
    out.sample("tracer_rpc_call_duration_seconds_count", {{"method", name.c_str()}}, count);
  }
  out.single("tracer_rpc_connections_refused_total", "counter",
             "Connections refused by --allow-uid/--allow-group.", refusedConnections);
  out.single("tracer_rpc_connections_over_cap_total", "counter",
             "Connections refused: over --max-connections, or over --max-connections-per-uid "
             "for their uid.",
             connectionsOverCap);
  out.single("tracer_rpc_accept_errors_total", "counter",
             "Times accepting a connection failed (out of descriptors or memory); the sidecar "
             "backs off and goes on.",
             acceptErrors);
  out.single("tracer_rpc_connections_throttled_total", "counter",
             "Connections that exceeded --max-calls-per-second at least once.",
             throttledConnections);
  out.single("tracer_rpc_throttle_pauses_total", "counter",
             "Times the sidecar paused reading a client to hold it to its call rate.",
             throttledWaits);
  out.single("tracer_rpc_connections_wedged_total", "counter",
             "Connections hung up on because the client left 1,024 answers (or 8 MiB) unread "
             "or 10,000 unfinished.",
             wedgedHangups);
}

}  // namespace tracer
