#include "store/run_record.h"

namespace tracer {

namespace {

uint64_t nanoseconds(double seconds) { return uint64_t(seconds * 1e9 + 0.5); }

}  // namespace

policy::Observation observationOf(const RunContext& context, proto::TaskRow::Reader row) {
  policy::Observation o;
  o.flow = context.flow;
  o.task = row.getTask().cStr();
  o.deployment = context.deployment;
  o.workPool = context.workPool;
  o.workPoolType = context.workPoolType;
  o.tags = context.tags;
  o.finishedAtNs = context.finishedAtNs;
  o.wallNs = nanoseconds(row.getWallS());
  o.cpuNs = nanoseconds(row.getCpuS());
  o.p95Cores = row.getP95Cores();
  o.maxCores = row.getMaxCores();
  o.runqueueNs = nanoseconds(row.getRunqueueWaitS());
  o.blockedIoNs = nanoseconds(row.getBlockedIoS());
  o.sleepNs = nanoseconds(row.getSleepS());
  o.networkWaitNs = nanoseconds(row.getNetworkWaitS());
  o.topEndpoint = row.getTopEndpoint().cStr();
  o.topEndpointWaitNs = nanoseconds(row.getTopEndpointWaitS());
  o.lockWaitNs = nanoseconds(row.getLockWaitS());
  o.childWaitNs = nanoseconds(row.getChildWaitS());
  o.timerNs = nanoseconds(row.getTimerS());
  o.pipeWaitNs = nanoseconds(row.getPipeWaitS());
  o.sharedProcess = row.getSharedProcess();
  o.peakRssBytes = row.getPeakRssBytes();
  o.oomKills = row.getOomKills();
  o.shortLived = row.getShortLived();
  o.allocatedCores = row.getAllocatedCores();
  o.allocatedBytes = row.getAllocatedBytes();
  return o;
}

}  // namespace tracer
