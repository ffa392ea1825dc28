#include "report/task_row.h"

#include <kj/vector.h>

#include <cmath>

#include "contract_json.h"
#include "endpoint_name.h"

namespace tracer {

namespace {

// Each TaskRow field that a report field it comes from can leave unknown.
const std::pair<kj::StringPtr, kj::StringPtr> ROW_FIELD_OF[] = {
    {"cpu.user_ns", "cpu_s"},
    {"cpu.avg_cores", "avg_cores"},
    {"cpu.p95_cores", "p95_cores"},
    {"cpu.max_cores", "max_cores"},
    {"memory.peak_rss_bytes", "peak_rss_bytes"},
    {"memory.oom_kills", "oom_kills"},
    {"io.read_bytes", "read_bytes"},
    {"io.write_bytes", "write_bytes"},
    {"net.tx_bytes", "tx_bytes"},
    {"net.rx_bytes", "rx_bytes"},
    {"sched.runqueue_wait_ns", "runqueue_wait_s"},
    {"sched.blocked_io_ns", "blocked_io_s"},
    {"sched.sleep_ns", "sleep_s"},
    {"sched.sleep_by_cause", "network_wait_s"},
    {"sched.sleep_by_cause", "lock_wait_s"},
    {"sched.sleep_by_cause", "child_wait_s"},
    {"sched.sleep_by_cause", "timer_s"},
    {"sched.sleep_by_cause", "pipe_wait_s"},
    {"net.endpoints", "top_endpoint"},
    {"net.endpoints", "top_endpoint_wait_s"},
    {"proc.short_lived", "short_lived"},
    {"cost.allocated", "cost_allocated"},
    {"cost.used", "cost_used"},
    {"cost.waste", "cost_waste"},
};

double rounded(double value, int decimals) {
  double scale = std::pow(10.0, decimals);
  return std::round(value * scale) / scale;
}

// Seconds to the microsecond, cores to the thousandth: what a reader needs,
// without the noise of a double's last digits.
double seconds(uint64_t ns) { return rounded(ns / 1e9, 6); }
double cores(double value) { return rounded(value, 3); }

}  // namespace

void fillTaskRow(proto::TaskReport::Reader t, proto::TaskRow::Builder row) {
  auto cpu = t.getCpu();
  auto sched = t.getSched();
  row.setTask(t.getTaskName());
  row.setTaskKey(t.getTaskKey());
  row.setTaskRunId(t.getTaskRunId());
  row.setState(stateName(t.getState()));
  row.setWallS(seconds(t.getWallNs()));
  row.setCpuS(seconds(cpu.getUserNs() + cpu.getSystemNs()));
  row.setAvgCores(cores(cpu.getAvgCores()));
  row.setP95Cores(cores(cpu.getP95Cores()));
  row.setMaxCores(cores(cpu.getMaxCores()));
  row.setPeakRssBytes(t.getMemory().getPeakRssBytes());
  row.setOomKills(t.getMemory().getOomKills());
  row.setReadBytes(t.getIo().getReadBytes());
  row.setWriteBytes(t.getIo().getWriteBytes());
  row.setTxBytes(t.getNet().getTxBytes());
  row.setRxBytes(t.getNet().getRxBytes());
  row.setRunqueueWaitS(seconds(sched.getRunqueueWaitNs()));
  row.setBlockedIoS(seconds(sched.getBlockedIoNs()));
  row.setSleepS(seconds(sched.getSleepNs()));
  auto by = sched.getSleepByCause();
  row.setNetworkWaitS(seconds(by.getNetworkNs()));
  row.setLockWaitS(seconds(by.getLockNs()));
  row.setChildWaitS(seconds(by.getChildNs()));
  row.setTimerS(seconds(by.getTimerNs()));
  row.setPipeWaitS(seconds(by.getPipeNs()));
  row.setSharedProcess(t.getMemory().getSharedProcess());
  auto endpoints = t.getNet().getEndpoints();
  if (endpoints.size() > 0 && endpoints[0].getWaitNs() > 0) {  // listed longest wait first
    row.setTopEndpoint(endpointName(endpoints[0]));
    row.setTopEndpointWaitS(seconds(endpoints[0].getWaitNs()));
  }
  row.setShortLived(t.getProc().getShortLived());
  row.setUnobservedS(seconds(t.getUnobservedNs()));
  row.setNestedCpuS(seconds(t.getThread().getNestedCpuNs()));
  row.setSharedWith(t.getThread().getSharedWith());
  row.setAllocatedCores(cores(t.getAllocation().getCpuCores()));
  row.setAllocatedBytes(t.getAllocation().getMemoryBytes());
  row.setPolicy(t.getPolicy());
  row.setProfile(t.getProfile());
  row.setTopFinding(topFinding(t));
  fillRowCost(t, row);
  // The report's unknown paths, read out of the message once for the row's
  // two dozen lookups (each read checks bounds: a tenth of a busy intake).
  auto unknownPaths = KJ_MAP(path, t.getUnknown()) -> kj::StringPtr { return path; };
  kj::Vector<kj::StringPtr> unknown;
  for (auto& [reportField, rowField]: ROW_FIELD_OF) {
    if (listsUnknown(unknownPaths.asPtr(), reportField)) unknown.add(rowField);
  }
  auto out = row.initUnknown(unknown.size());
  for (auto i: kj::indices(unknown)) out.set(i, unknown[i]);
}

void fillRowCost(proto::TaskReport::Reader t, proto::TaskRow::Builder row) {
  auto cost = t.getCost();
  row.setCostAllocated(cost.getAllocated());
  row.setCostUsed(cost.getUsed());
  row.setCostWaste(cost.getWaste());
  row.setCurrency(cost.getCurrency());
}

kj::String stateName(proto::RunState state) {
  KJ_IF_MAYBE(name, enumName(state)) { return kj::str(*name); }
  return kj::str("unknown");
}

kj::String topFinding(proto::TaskReport::Reader task) {
  if (task.getFindings().size() == 0) return kj::str("-");
  // critical before warning before info
  auto rank = [](kj::StringPtr severity) {
    return severity == "critical" ? 0 : severity == "warning" ? 1 : 2;
  };
  auto best = task.getFindings()[0];
  for (auto f: task.getFindings()) {
    if (rank(f.getSeverity()) < rank(best.getSeverity())) best = f;
  }
  return kj::str(best.getKind());
}

}  // namespace tracer
