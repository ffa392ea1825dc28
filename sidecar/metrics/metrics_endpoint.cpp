#include "ops/metrics_endpoint.h"

#include <capnp/message.h>

#include "ops/prometheus_text.h"

namespace tracer {

MetricsEndpoint::MetricsEndpoint(Services& services, const kj::HttpHeaderTable& headers)
    : services(services), headerTable(headers) {}

kj::String MetricsEndpoint::render() {
  capnp::MallocMessageBuilder message;
  auto status = message.initRoot<proto::SidecarStatus>();
  services.table.fillStatus(status);
  auto load = services.collector.load();
  PrometheusText out;
  out.single("tracer_uptime_seconds", "gauge", "Seconds since the sidecar started.",
             (services.clock.now() - services.startedAt) / kj::SECONDS);
  out.single("tracer_connected_clients", "gauge", "Clients connected over the socket.",
             services.connectedClients);
  out.single("tracer_live_flow_runs", "gauge", "Flow runs in progress.", status.getLiveFlowRuns());
  out.single("tracer_live_tasks", "gauge", "Tasks being observed.", status.getLiveTasks());
  out.family("tracer_flow_runs_total", "counter", "Flow runs that ended, by how.");
  out.sample("tracer_flow_runs_total", {{"end", "finished"}}, status.getFinishedFlowRuns());
  out.sample("tracer_flow_runs_total", {{"end", "crashed"}}, status.getCrashedFlowRuns());
  out.family("tracer_tasks_total", "counter", "Tasks that ended, by how.");
  out.sample("tracer_tasks_total", {{"end", "finished"}}, status.getFinishedTasks());
  out.sample("tracer_tasks_total", {{"end", "crashed"}}, status.getCrashedTasks());
  out.single("tracer_tasks_registered_late_total", "counter",
             "Tasks whose registration reached the sidecar after their client stopped waiting: "
             "what they did before it is partly unknown (see their reports).",
             status.getLateTasks());

  out.single("tracer_tracked_threads", "gauge",
             "Threads the kernel observer attributes to tasks (registered and their descendants).",
             load.trackedThreads);
  out.single("tracer_tracked_processes", "gauge", "Processes among the tracked threads.",
             load.trackedProcesses);
  out.single("tracer_ringbuf_events_total", "counter",
             "Thread-exit events read from the kernel's ring buffer (bpf collector).",
             load.exitEvents);
  out.single("tracer_events_lost_total", "counter",
             "Kernel events dropped (ring buffer full, tracking map full).",
             status.getEventsLost());

  auto outbox = services.outbox.countsByStatus();
  out.family("tracer_outbox_artifacts", "gauge", "Artifacts in the outbox, by status.");
  for (auto state: {"local", "pending", "delivered", "parked"}) {
    auto found = outbox.find(state);
    out.sample("tracer_outbox_artifacts", {{"status", state}},
               uint64_t(found == outbox.end() ? 0 : found->second));
  }
  KJ_IF_MAYBE(delivery, services.delivery) {
    auto& counts = delivery->counts();
    out.family("tracer_artifact_deliveries_total", "counter",
               "Artifact delivery attempts to Prefect, by result.");
    out.sample("tracer_artifact_deliveries_total", {{"result", "delivered"}}, counts.delivered);
    out.sample("tracer_artifact_deliveries_total", {{"result", "retried"}}, counts.retried);
    out.sample("tracer_artifact_deliveries_total", {{"result", "parked"}}, counts.parked);
    out.sample("tracer_artifact_deliveries_total", {{"result", "found_delivered"}},
               counts.foundDelivered);
  }

  auto reloads = services.advisor.reloadCounts();
  out.family("tracer_policy_reloads_total", "counter", "Policy reloads, by result.");
  out.sample("tracer_policy_reloads_total", {{"result", "applied"}}, reloads.applied);
  out.sample("tracer_policy_reloads_total", {{"result", "refused"}}, reloads.refused);
  out.single("tracer_policy_reload_failed", "gauge",
             "1 when the last policy reload was refused (the previous set is in use).",
             status.getPolicyReloadError().size() > 0 ? 1 : 0);
  out.single("tracer_collector_degraded", "gauge",
             "1 when the kernel observer is not fully available (see tracerctl status).",
             status.getCollectorNote().size() > 0 ? 1 : 0);
  auto unknown = services.collector.unknownFields();
  if (unknown.size() > 0) {
    out.family("tracer_report_field_unknown", "gauge",
               "1 for each report field the collector cannot measure here, with the reason.");
    for (auto field: unknown) {
      out.sample("tracer_report_field_unknown",
                 {{"field", field}, {"reason", status.getCollectorNote()}}, uint64_t(1));
    }
  }

  services.rpcMetrics.render(out);
  services.taskMetrics.render(out);
  return out.finish();
}

kj::Promise<void> MetricsEndpoint::request(kj::HttpMethod method, kj::StringPtr url,
                                           const kj::HttpHeaders& headers,
                                           kj::AsyncInputStream& body, Response& response) {
  if (method != kj::HttpMethod::GET || url != "/metrics") {
    return response.sendError(404, "Not Found", headerTable);
  }
  auto text = render();
  kj::HttpHeaders replyHeaders(headerTable);
  replyHeaders.set(kj::HttpHeaderId::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8");
  auto stream = response.send(200, "OK", replyHeaders, text.size());
  auto written = stream->write(text.begin(), text.size());
  return written.attach(kj::mv(stream), kj::mv(text));
}

}  // namespace tracer
