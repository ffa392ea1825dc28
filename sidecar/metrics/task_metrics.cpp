#include "metrics/task_metrics.h"

#include <capnp/schema.h>

#include "contract_json.h"

namespace tracer {

void TaskMetrics::add(kj::StringPtr flowName, proto::TaskReport::Reader report) {
  std::pair<std::string, std::string> key{flowName.cStr(), report.getTaskName().cStr()};
  auto found = byName.find(key);
  if (found == byName.end()) {
    if (byName.size() >= maxSeries) key = {"other", "other"};
    found = byName.try_emplace(key).first;
  }
  auto& totals = found->second;
  auto state = static_cast<uint32_t>(report.getState());
  if (state < STATES) ++totals.runs[state];
  // A field the report does not know adds nothing: the totals are sums of
  // what was measured.
  auto unknown = report.getUnknown();
  auto add = [&](uint64_t& total, kj::StringPtr path, uint64_t value) {
    if (!listsUnknown(unknown, path)) total += value;
  };
  auto cpu = report.getCpu();
  add(totals.cpuNs, "cpu.user_ns", cpu.getUserNs() + cpu.getSystemNs());
  auto sched = report.getSched();
  add(totals.runqueueWaitNs, "sched.runqueue_wait_ns", sched.getRunqueueWaitNs());
  add(totals.blockedIoNs, "sched.blocked_io_ns", sched.getBlockedIoNs());
  auto io = report.getIo();
  add(totals.readBytes, "io.read_bytes", io.getReadBytes());
  add(totals.writeBytes, "io.write_bytes", io.getWriteBytes());
  auto net = report.getNet();
  add(totals.txBytes, "net.tx_bytes", net.getTxBytes());
  add(totals.rxBytes, "net.rx_bytes", net.getRxBytes());
  add(totals.processes, "proc.spawned", report.getProc().getSpawned());
  add(totals.oomKills, "memory.oom_kills", report.getMemory().getOomKills());
  addCost(flowName, report);
}

void TaskMetrics::addFootprint(kj::StringPtr flowName, proto::TaskReport::Reader footprint) {
  addCost(flowName, footprint);
}

void TaskMetrics::addCost(kj::StringPtr flowName, proto::TaskReport::Reader report) {
  auto cost = report.getCost();
  // Unknown (no prices, or what it used unknown): nothing to add.
  if (listsUnknown(report.getUnknown(), "cost.used") || cost.getCurrency().size() == 0) return;
  std::tuple<std::string, std::string, std::string> key{
      flowName.cStr(), report.getTaskName().cStr(), cost.getCurrency().cStr()};
  auto found = costs.find(key);
  if (found == costs.end()) {
    if (costs.size() >= maxSeries) key = {"other", "other", cost.getCurrency().cStr()};
    found = costs.try_emplace(key).first;
  }
  found->second.used += cost.getUsed();
  found->second.allocated += cost.getAllocated();
}

void TaskMetrics::renderMetrics(PrometheusText& out) {
  auto states = capnp::Schema::from<proto::RunState>().getEnumerants();
  static_assert(STATES == 4, "proto::RunState changed: update TaskMetrics::STATES");

  out.family("tracer_task_runs_total", "counter", "Finished task runs by flow, task and end state.");
  for (auto& [key, totals]: byName) {
    for (uint32_t s = 0; s < STATES; ++s) {
      out.sample("tracer_task_runs_total",
                 {{"flow", key.first.c_str()}, {"task", key.second.c_str()},
                  {"state", states[s].getProto().getName()}},
                 totals.runs[s]);
    }
  }
  auto seconds = [&](kj::StringPtr name, kj::StringPtr help, uint64_t Totals::*field) {
    out.family(name, "counter", help);
    for (auto& [key, totals]: byName) {
      out.sample(name, {{"flow", key.first.c_str()}, {"task", key.second.c_str()}},
                 double(totals.*field) / 1e9);
    }
  };
  auto count = [&](kj::StringPtr name, kj::StringPtr help, uint64_t Totals::*field) {
    out.family(name, "counter", help);
    for (auto& [key, totals]: byName) {
      out.sample(name, {{"flow", key.first.c_str()}, {"task", key.second.c_str()}},
                 totals.*field);
    }
  };
  seconds("tracer_task_cpu_seconds_total", "CPU time of finished task runs (user + system).",
          &Totals::cpuNs);
  seconds("tracer_task_runqueue_wait_seconds_total",
          "Time finished task runs were runnable but waiting for a CPU.", &Totals::runqueueWaitNs);
  seconds("tracer_task_blocked_io_seconds_total",
          "Time finished task runs were blocked in uninterruptible (I/O) sleep.",
          &Totals::blockedIoNs);
  count("tracer_task_read_bytes_total", "Bytes finished task runs read from storage.",
        &Totals::readBytes);
  count("tracer_task_write_bytes_total", "Bytes finished task runs wrote to storage.",
        &Totals::writeBytes);
  count("tracer_task_network_transmit_bytes_total", "TCP/UDP bytes finished task runs sent.",
        &Totals::txBytes);
  count("tracer_task_network_receive_bytes_total", "TCP/UDP bytes finished task runs received.",
        &Totals::rxBytes);
  count("tracer_task_processes_total", "Processes finished task runs started.",
        &Totals::processes);
  count("tracer_task_oom_kills_total", "OOM kills in finished task runs.", &Totals::oomKills);
  auto money = [&](kj::StringPtr name, kj::StringPtr help, double CostTotals::*field) {
    out.family(name, "counter", help);
    for (auto& [key, totals]: costs) {
      out.sample(name, {{"flow", std::get<0>(key).c_str()}, {"task", std::get<1>(key).c_str()},
                        {"currency", std::get<2>(key).c_str()}},
                 totals.*field);
    }
  };
  money("tracer_cost_used_total",
        "Cost of what finished runs used, at their policies' prices (task=\"(flow run)\": "
        "a flow run's processes together, the figure a flow's cost is).",
        &CostTotals::used);
  money("tracer_cost_allocated_total",
        "Cost of what finished runs had allocated for their wall time (a task's is its flow "
        "run's allocation over the task's window: tasks overlap; task=\"(flow run)\" does not).",
        &CostTotals::allocated);
}

}  // namespace tracer
