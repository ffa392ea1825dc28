#include "ctl/report_text.h"

#include <capnp/schema.h>
#include <kj/vector.h>

#include <cstdio>

#include "contract_json.h"
#include "endpoint_name.h"
#include "policy/run_cost.h"

namespace tracer {

kj::String fixed(double value, int decimals) {
  char text[64];
  snprintf(text, sizeof(text), "%.*f", decimals, value);
  return kj::str(text);
}

namespace {

bool unknown(proto::TaskReport::Reader report, kj::StringPtr field) {
  for (auto entry: report.getUnknown()) {
    if (entry == field) return true;
  }
  return false;
}

}  // namespace

kj::String humanBytes(uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double value = bytes;
  int unit = 0;
  while (value >= 1024 && unit < 4) {
    value /= 1024;
    ++unit;
  }
  return unit == 0 ? kj::str(bytes, " B") : kj::str(fixed(value, 1), " ", units[unit]);
}

kj::String humanDuration(uint64_t ns) {
  if (ns < 1000000) return kj::str(fixed(ns / 1e3, 0), " us");
  if (ns < 1000000000) return kj::str(fixed(ns / 1e6, 1), " ms");
  return kj::str(fixed(ns / 1e9, 2), " s");
}

kj::String reportText(proto::TaskReport::Reader r) {
  kj::Vector<kj::String> lines;
  auto line = [&](kj::StringPtr label, kj::StringPtr field, kj::String value) {
    lines.add(kj::str("  ", label, kj::repeat(' ', 20 - label.size()),
                      unknown(r, field) ? kj::str("unknown") : kj::mv(value)));
  };
  auto cpu = r.getCpu();
  auto alloc = r.getAllocation();
  auto proc = r.getProc();
  kj::StringPtr state = "unknown";
  KJ_IF_MAYBE(name, enumName(r.getState())) { state = *name; }
  lines.add(kj::str("task ", r.getTaskName(), " (", r.getTaskRunId(), "): ", state,
                    ", collector ", r.getCollector()));
  line("wall", "wall_ns", humanDuration(r.getWallNs()));
  line("cpu", "cpu.user_ns",
       kj::str(humanDuration(cpu.getUserNs() + cpu.getSystemNs()), " (user ",
               humanDuration(cpu.getUserNs()), ", system ", humanDuration(cpu.getSystemNs()),
               ")"));
  line("cores", "cpu.avg_cores",
       kj::str("avg ", fixed(cpu.getAvgCores(), 2), ", p95 ", fixed(cpu.getP95Cores(), 2),
               ", max ", fixed(cpu.getMaxCores(), 2), " of ", fixed(alloc.getCpuCores(), 2),
               " allocated (", alloc.getSource(), ")"));
  auto sched = r.getSched();
  line("waiting for a CPU", "sched.runqueue_wait_ns", humanDuration(sched.getRunqueueWaitNs()));
  line("blocked on I/O", "sched.blocked_io_ns", humanDuration(sched.getBlockedIoNs()));
  line("sleeping", "sched.sleep_ns", humanDuration(sched.getSleepNs()));
  auto by = sched.getSleepByCause();
  line("  sleeping on", "sched.sleep_by_cause",
       kj::str("network ", humanDuration(by.getNetworkNs()), ", lock ",
               humanDuration(by.getLockNs()), ", child ", humanDuration(by.getChildNs()),
               ", timer ", humanDuration(by.getTimerNs()), ", pipe ",
               humanDuration(by.getPipeNs()), ", other ", humanDuration(by.getOtherNs())));
  auto memory = r.getMemory();
  line("peak memory", "memory.peak_rss_bytes",
       kj::str(humanBytes(memory.getPeakRssBytes()), " of ", humanBytes(alloc.getMemoryBytes()),
               " allocated (", alloc.getMemorySource(), ")",
               memory.getSharedProcess() ? ", process-wide (task is a thread)" : ""));
  line("oom kills", "memory.oom_kills", kj::str(memory.getOomKills()));
  auto io = r.getIo();
  line("disk", "io.read_bytes",
       kj::str("read ", humanBytes(io.getReadBytes()), ", written ", humanBytes(io.getWriteBytes())));
  line("read/write calls", "io.rchar",
       kj::str("read ", humanBytes(io.getRchar()), ", written ", humanBytes(io.getWchar())));
  auto net = r.getNet();
  line("network", "net.tx_bytes",
       kj::str("sent ", humanBytes(net.getTxBytes()), ", received ", humanBytes(net.getRxBytes())));
  if (unknown(r, "net.endpoints")) line("  endpoints", "net.endpoints", kj::str());
  for (auto endpoint: net.getEndpoints()) {
    line("  endpoint", "net.endpoints",
         kj::str(endpointName(endpoint), ": waited ", humanDuration(endpoint.getWaitNs()),
                 ", sent ", humanBytes(endpoint.getTxBytes()), ", received ",
                 humanBytes(endpoint.getRxBytes()), ", ", endpoint.getConnections(),
                 " connections"));
  }
  auto other = net.getOtherEndpoints();
  if (other.getCount() > 0 || other.getUnlisted() || other.getWaitNs() > 0) {
    line("  other endpoints", "net.other_endpoints",
         kj::str(other.getUnlisted() ? "at least " : "", other.getCount(),
                 " more, and unconnected sockets: waited ",
                 humanDuration(other.getWaitNs()), ", sent ", humanBytes(other.getTxBytes()),
                 ", received ", humanBytes(other.getRxBytes())));
  }
  line("processes", "proc.spawned",
       kj::str(proc.getSpawned(), " spawned, ", proc.getExecs(), " execs, ", proc.getShortLived(),
               " short-lived (<100 ms), at most ", proc.getMaxConcurrent(), " at once",
               proc.getOutliving() ? kj::str(", ", proc.getOutliving(), " still running")
                                   : kj::str()));
  for (auto top: proc.getTop()) {
    line("", "proc.top",
         kj::str(top.getComm(), " x", top.getCount(), ": ", humanDuration(top.getCpuNs()), " CPU"));
  }
  line("events lost", "events.lost", kj::str(r.getEvents().getLost()));
  auto cost = r.getCost();
  std::string currency = cost.getCurrency().cStr();
  line("cost", "cost.used",
       kj::str("allocated ", policy::formatMoney(cost.getAllocated(), currency), ", used ",
               policy::formatMoney(cost.getUsed(), currency), ", not used ",
               policy::formatMoney(cost.getWaste(), currency), " (", cost.getCpuCoreHour(),
               " per core-hour, ", cost.getMemoryGibHour(), " per GiB-hour)"));
  if (r.getPolicy().size() == 0) return kj::strArray(lines, "\n");
  lines.add(kj::str("policy ", r.getPolicy()));
  for (auto finding: r.getFindings()) {
    kj::Vector<kj::String> evidence;
    for (auto e: finding.getEvidence()) evidence.add(kj::str(e.getName(), "=", e.getValue()));
    lines.add(kj::str("  ", finding.getSeverity(), " ", finding.getKind(), ": ",
                      finding.getSummary(), " (", kj::strArray(evidence, ", "), ")"));
  }
  lines.add(kj::str("  recommendation: ", recommendationText(r.getRecommendation())));
  return kj::strArray(lines, "\n");
}

kj::String recommendationText(proto::Recommendation::Reader r) {
  if (!r.getReady()) {
    return kj::str("not yet: ", r.getRuns(), " of the ", r.getMinRuns(), " runs needed");
  }
  return kj::str(fixed(r.getCpuCores(), 2), " cores, ", humanBytes(r.getMemoryBytes()), " from ",
                 r.getRuns(), " runs over ", fixed(r.getSpanHours(), 1), " h (confidence ",
                 fixed(r.getConfidence() * 100, 0), "%", r.getOomSeen() ? ", after an OOM" : "",
                 "; waste ", fixed(r.getWastedCostPerRun(), 4), " per run)\n",
                 r.getJobVariables());
}

}  // namespace tracer
