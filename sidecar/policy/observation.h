#pragma once
// One finished task run as the policy engine sees it: the TaskReport's
// numbers plus where it ran. Stored in the history, fed to detectors and to
// the recommendation maths.

#include <cstdint>
#include <string>
#include <vector>

namespace tracer::policy {

// The task name a flow run's footprint (what its processes used together)
// is matched by policies and kept in the history under: the deployment's
// record as a whole, which its CPU and memory advice comes from.
constexpr const char FLOW_RUN_TASK[] = "(flow run)";

struct Observation {
  std::string flow, task, deployment, workPool;
  std::string workPoolType;  // kubernetes, ecs, docker, process: the form recommendations take
  std::vector<std::string> tags;
  int64_t finishedAtNs = 0;  // wall clock (CLOCK_REALTIME)
  uint64_t wallNs = 0;
  uint64_t cpuNs = 0;
  double p95Cores = 0;
  double maxCores = 0;
  uint64_t runqueueNs = 0;
  uint64_t blockedIoNs = 0;
  uint64_t sleepNs = 0;
  // sleepNs by cause (0 where not measured: procfs, older history rows)
  uint64_t networkWaitNs = 0;
  uint64_t lockWaitNs = 0;
  uint64_t childWaitNs = 0;
  uint64_t timerNs = 0;
  uint64_t pipeWaitNs = 0;
  // The endpoint ("10.0.3.7:5432") of networkWaitNs it waited on longest, and how long.
  std::string topEndpoint;
  uint64_t topEndpointWaitNs = 0;
  bool sharedProcess = false;  // a thread of a process other tasks share
  uint64_t peakRssBytes = 0;
  uint32_t oomKills = 0;
  uint64_t shortLived = 0;
  double allocatedCores = 0;
  uint64_t allocatedBytes = 0;
};

}  // namespace tracer::policy
