#pragma once
// A right-sizing policy as loaded from policies/*.yaml (see docs/policies.md
// and policies/tracer-policy.schema.json). Plain data: loading, matching and
// evaluation live in their own files.

#include <re2/re2.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace tracer::policy {

// Where a policy came from, for messages that point at it.
struct Origin {
  std::string file;
  int line = 0;
};

struct Match {
  // RE2, full match; a missing key matches anything.
  std::shared_ptr<RE2> flow, task, deployment, workPool;
  std::vector<std::string> tags;  // all must be present on the task
};

struct History {
  uint32_t runs = 20;     // how many recent runs the maths looks at
  uint32_t minRuns = 3;   // never recommend from fewer
};

struct CpuRule {
  double percentile = 95;             // of per-interval core usage over the runs
  double headroom = 0.15;
  double flagBelowUtilization = 0.5;  // over-allocated when p-th usage < this share of allocation
  double min = 0.1;                   // cores
  double roundTo = 0.05;              // cores
};

struct MemoryRule {
  double headroom = 0.15;
  double oomBump = 1.2;               // after an OOM: at least peak x this (and peak + 100 MiB)
  uint64_t min = 64ull << 20;         // bytes
  uint64_t roundTo = 64ull << 20;     // bytes
  double flagBelowUtilization = 0.5;  // over-allocated when peak < this share of allocation
};

// A threshold left unset (in the file) switches that detector off.
struct FindingRules {
  double ioBoundBlockedShareAbove = 0.30;
  double externalWaitNetworkShareAbove = 0.50;
  double externalWaitCpuShareBelow = 0.20;
  double lockWaitShareAbove = 0.30;
  double gilLockShareAbove = 0.30;
  double gilCpuShareAbove = 0.10;
  double contentionRunqueueShareAbove = 0.20;
  double idleCpuShareBelow = 0.05;
  uint64_t idleMinWallNs = 60ull * 1000000000;
  uint64_t churnShortLivedAbove = 100;
  double slowerWallVsMedianAbove = 1.5;
  // separate_tasks: a flow run with heavy tasks (compute, memory or disk
  // bound) and light ones (external or idle) whose light tasks held the
  // allocation for more than this share of its wall time.
  double separateLightWallShareAbove = 0.25;
  bool ioBound = true, externalWait = true, lockWait = true, gil = true, contention = true,
       idle = true, churn = true, slower = true, separateTasks = true;
  // A task with a finding at least this severe gets an artifact of its own,
  // on its task run's page: "info", "warning", "critical", or "" (off).
  std::string taskArtifact = "critical";
  // A flow run that lasts longer than this gets an artifact of what runs
  // now, updated this often until it ends (0: off).
  uint64_t liveArtifactNs = 30ull * 1000000000;
};

// What an hour of a core and of a GiB of memory cost (docs/policies.md,
// "Cost"). The defaults are AWS Fargate's on-demand prices (Linux/x86, US East,
// N. Virginia: $0.04048 per vCPU-hour and $0.004445 per GB-hour, Fargate's GB
// being 1024 MiB), as published in 2026 and read on 2026-12-06: a container's
// CPU and memory priced apart, which is what a work pool's job variables set.
struct Prices {
  double cpuCoreHour = 0.04048;
  double memoryGibHour = 0.004445;
};

struct Cost {
  Prices prices;
  std::string currency = "USD";
  // Where the prices come from, for people (tracerctl policy explain, the artifacts).
  std::string source = "AWS Fargate on-demand, Linux/x86, us-east-1, read 2026-12-06";
  // Prices of runs on these work pools (by name), where they differ.
  std::map<std::string, Prices> workPools;

  const Prices& pricesFor(const std::string& workPool) const {
    auto found = workPools.find(workPool);
    return found == workPools.end() ? prices : found->second;
  }
};

// What bounds a run (its profile), from its time and resources: the first
// that holds of compute, memory, disk, external, idle; else balanced
// (docs/policies.md, "Placement").
struct PlacementRules {
  double computeCoresAbove = 0.7;        // average cores over its wall time
  double memoryGibPerCoreAbove = 8;      // peak GiB per core it used (cores at least 0.1)
  uint64_t memoryMinBytes = 1ull << 30;  // and at least this peak
  double diskShareAbove = 0.30;          // blocked on disk, share of wall time
  double externalShareAbove = 0.50;      // waiting on the network, share of wall time
  double idleCpuShareBelow = 0.05;       // average cores
};

struct Policy {
  std::string name;
  std::string description;
  Origin origin;
  Match match;
  History history;
  CpuRule cpu;
  MemoryRule memory;
  FindingRules findings;
  Cost cost;
  PlacementRules placement;
};

// In evaluation order: files by name, policies in file order; first match wins.
struct PolicySet {
  std::vector<Policy> policies;
};

}  // namespace tracer::policy
