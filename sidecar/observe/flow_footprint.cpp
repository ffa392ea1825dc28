#include "observe/flow_footprint.h"

#include <kj/map.h>

#include <algorithm>

#include "proc_files.h"

namespace tracer {

kj::Maybe<TreeUsage> readTreeUsage(kj::ArrayPtr<const pid_t> roots) {
  TreeUsage usage;
  kj::HashSet<pid_t> seen;
  kj::Vector<pid_t> next;
  for (pid_t root: roots) next.add(root);
  bool childrenListed = false;
  while (!next.empty()) {
    pid_t pid = next.back();
    next.removeLast();
    if (seen.contains(pid)) continue;
    if (usage.processes == MAX_TREE_PROCESSES) {
      usage.complete = false;
      break;
    }
    seen.insert(pid);
    // A process that exits between these reads counts with what was read of it.
    KJ_IF_MAYBE(ticks, readProcessTreeTicks(pid)) {
      ++usage.processes;
      usage.userTicks += ticks->utime;
      usage.systemTicks += ticks->stime;
      KJ_IF_MAYBE(memory, readProcessMemory(pid)) {
        usage.rssBytes += memory->rssBytes;
        usage.hiwaterBytes = std::max(usage.hiwaterBytes, memory->hiwaterBytes);
      }
      KJ_IF_MAYBE(children, readChildPids(pid)) {
        childrenListed = true;
        for (pid_t child: *children) next.add(child);
      }
    }
  }
  if (usage.processes == 0 || !childrenListed) return nullptr;
  return usage;
}

FlowFootprint::FlowFootprint(pid_t flowRunProcess, kj::TimePoint now): lastAt(now) {
  roots.add(flowRunProcess);
  read(now, true);
}

void FlowFootprint::addProcess(pid_t pid) {
  for (pid_t root: roots) {
    if (root == pid) return;
  }
  roots.add(pid);
}

void FlowFootprint::sample(kj::TimePoint now) { read(now, false); }

void FlowFootprint::sampleLast(kj::TimePoint now) { read(now, false, true); }

void FlowFootprint::read(kj::TimePoint now, bool first, bool last) {
  KJ_IF_MAYBE(usage, readTreeUsage(roots)) {
    if (!usage->complete && problem == nullptr) {
      problem = kj::str("the flow run had more than ", MAX_TREE_PROCESSES,
                        " processes: the rest were not read");
    }
    peakBytes = std::max({peakBytes, usage->rssBytes, usage->hiwaterBytes});
    maxProcesses = std::max(maxProcesses, usage->processes);
    // A process that leaves the tree unreaped (its parent gone, it is
    // reparented outside) takes its time with it: no window goes negative.
    auto since = [](uint64_t now, uint64_t& last) {
      uint64_t grown = now > last ? now - last : 0;
      last = now;
      return grown;
    };
    uint64_t user = since(usage->userTicks, lastUserTicks);
    uint64_t system = since(usage->systemTicks, lastSystemTicks);
    if (!first) {
      ++samples;
      userTicks += user;
      systemTicks += system;
      uint64_t ns = (now - lastAt) / kj::NANOSECONDS;
      if (ns > 0) windows.add(ns, (user + system) * clockTickNs());
    }
    lastAt = now;
    return;
  }
  // At the end the processes may be gone (a client that crashed): the
  // samplings before stand, less the last partial window.
  if (problem == nullptr && !last) {
    problem = kj::str("its processes could not be read from /proc (gone, or a kernel without "
                      "/proc/PID/task/TID/children)");
  }
}

FlowFootprint::Summary FlowFootprint::summary() const {
  Summary s;
  auto cores = windows.cores();
  s.userNs = userTicks * clockTickNs();
  s.systemNs = systemTicks * clockTickNs();
  s.p95Cores = cores.p95;
  s.maxCores = cores.max;
  s.peakBytes = peakBytes;
  s.samples = samples;
  s.maxProcesses = maxProcesses;
  if (problem != nullptr) s.unknownWhy = kj::str(problem);
  else if (samples == 0) s.unknownWhy = kj::str("no sampling of its processes");
  return s;
}

namespace {

// What a footprint does not measure: read as 0, they would read as measured.
const kj::StringPtr NOT_MEASURED[] = {
    "sched.runqueue_wait_ns", "sched.blocked_io_ns", "sched.sleep_ns", "sched.sleep_by_cause",
    "memory.own_peak_rss_bytes", "io.read_bytes", "io.write_bytes", "io.rchar", "io.wchar",
    "net.tx_bytes", "net.rx_bytes", "net.endpoints", "net.other_endpoints", "proc.short_lived"};
const kj::StringPtr MEASURED[] = {"cpu.user_ns", "cpu.system_ns", "cpu.avg_cores",
                                  "cpu.p95_cores", "cpu.max_cores", "memory.peak_rss_bytes"};

}  // namespace

void fillFootprint(proto::TaskReport::Builder report, const FlowFootprint::Summary& footprint) {
  report.setCollector("procfs");
  auto cpu = report.getCpu();
  cpu.setUserNs(footprint.userNs);
  cpu.setSystemNs(footprint.systemNs);
  uint64_t wall = report.getWallNs();
  cpu.setAvgCores(wall == 0 ? 0 : double(footprint.userNs + footprint.systemNs) / wall);
  cpu.setP95Cores(footprint.p95Cores);
  cpu.setMaxCores(footprint.maxCores);
  report.getMemory().setPeakRssBytes(footprint.peakBytes);
  bool known = footprint.unknownWhy.size() == 0;
  auto unknown = report.initUnknown(kj::size(NOT_MEASURED) + (known ? 0 : kj::size(MEASURED)));
  size_t i = 0;
  for (auto field: NOT_MEASURED) unknown.set(i++, field);
  if (!known) {
    for (auto field: MEASURED) unknown.set(i++, field);
    report.initUnknownWhy(1).set(0, kj::str("flow run footprint: ", footprint.unknownWhy));
  }
}

}  // namespace tracer
