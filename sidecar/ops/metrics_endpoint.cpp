#include "ops/metrics_endpoint.h"

#include <capnp/message.h>
#include <kj/vector.h>

namespace tracer {

namespace {

void metric(kj::Vector<kj::String>& out, kj::StringPtr name, kj::StringPtr type,
            kj::StringPtr help, kj::ArrayPtr<const std::pair<kj::StringPtr, uint64_t>> samples) {
  out.add(kj::str("# HELP ", name, " ", help));
  out.add(kj::str("# TYPE ", name, " ", type));
  for (auto& sample: samples) out.add(kj::str(name, sample.first, " ", sample.second));
}

}  // namespace

MetricsEndpoint::MetricsEndpoint(Services& services, const kj::HttpHeaderTable& headers)
    : services(services), headerTable(headers) {}

kj::String MetricsEndpoint::render() {
  capnp::MallocMessageBuilder message;
  auto status = message.initRoot<proto::SidecarStatus>();
  services.table.fillStatus(status);
  auto outbox = services.outbox.countsByStatus();
  kj::Vector<kj::String> out;
  auto count = [&](kj::StringPtr status) -> uint64_t {
    auto found = outbox.find(status.cStr());
    return found == outbox.end() ? 0 : found->second;
  };
  using Sample = std::pair<kj::StringPtr, uint64_t>;
  metric(out, "tracer_uptime_seconds", "gauge", "Seconds since the sidecar started.",
         {Sample{"", (services.clock.now() - services.startedAt) / kj::SECONDS}});
  metric(out, "tracer_connected_clients", "gauge", "Clients connected over the socket.",
         {Sample{"", services.connectedClients}});
  metric(out, "tracer_live_flow_runs", "gauge", "Flow runs in progress.",
         {Sample{"", status.getLiveFlowRuns()}});
  metric(out, "tracer_live_tasks", "gauge", "Tasks being observed.",
         {Sample{"", status.getLiveTasks()}});
  metric(out, "tracer_flow_runs_total", "counter", "Flow runs that ended, by how.",
         {Sample{"{end=\"finished\"}", status.getFinishedFlowRuns()},
          Sample{"{end=\"crashed\"}", status.getCrashedFlowRuns()}});
  metric(out, "tracer_tasks_total", "counter", "Tasks that ended, by how.",
         {Sample{"{end=\"finished\"}", status.getFinishedTasks()},
          Sample{"{end=\"crashed\"}", status.getCrashedTasks()}});
  metric(out, "tracer_events_lost_total", "counter",
         "Kernel events dropped (ring buffer full, tracking map full).",
         {Sample{"", status.getEventsLost()}});
  metric(out, "tracer_outbox_artifacts", "gauge", "Artifacts in the outbox, by status.",
         {Sample{"{status=\"local\"}", count("local")}, Sample{"{status=\"pending\"}", count("pending")},
          Sample{"{status=\"delivered\"}", count("delivered")},
          Sample{"{status=\"parked\"}", count("parked")}});
  metric(out, "tracer_policy_reload_failed", "gauge",
         "1 when the last policy reload was refused (the previous set is in use).",
         {Sample{"", status.getPolicyReloadError().size() > 0 ? 1u : 0u}});
  metric(out, "tracer_collector_degraded", "gauge",
         "1 when the kernel observer is not fully available (see tracerctl status).",
         {Sample{"", status.getCollectorNote().size() > 0 ? 1u : 0u}});
  out.add(kj::str(""));
  return kj::strArray(out, "\n");
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
