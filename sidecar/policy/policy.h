#pragma once
// A right-sizing policy as loaded from policies/*.yaml (see docs/policies.md
// and policies/tracer-policy.schema.json). Plain data: loading, matching and
// evaluation live in their own files.

#include <re2/re2.h>

#include <cstdint>
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
  bool ioBound = true, externalWait = true, lockWait = true, gil = true, contention = true,
       idle = true, churn = true, slower = true;
  // A task with a finding at least this severe gets an artifact of its own,
  // on its task run's page: "info", "warning", "critical", or "" (off).
  std::string taskArtifact = "critical";
  // A flow run that lasts longer than this gets an artifact of what runs
  // now, updated this often until it ends (0: off).
  uint64_t liveArtifactNs = 30ull * 1000000000;
};

struct Cost {
  double cpuCoreHour = 0;
  double memoryGibHour = 0;
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
};

// In evaluation order: files by name, policies in file order; first match wins.
struct PolicySet {
  std::vector<Policy> policies;
};

}  // namespace tracer::policy
