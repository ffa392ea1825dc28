#pragma once
// Right-sizing from history, after the Kubernetes VPA recommender and Robusta
// KRR: CPU = the policy's percentile of per-run p95 cores × (1 + headroom);
// memory = the highest peak × (1 + headroom), and after an OOM at least
// max(peak × oom_bump, peak + 100 MiB); both rounded up and floored at the
// policy's minimum. Never from fewer than history.min_runs runs.

#include <kj/array.h>

#include <cstdint>
#include <string>
#include <vector>

#include "policy/observation.h"
#include "policy/policy.h"

namespace tracer::policy {

struct Recommendation {
  bool ready = false;        // enough runs to recommend
  uint32_t runs = 0;         // runs the figures come from
  uint32_t minRuns = 0;
  double spanHours = 0;      // from the oldest to the newest of those runs
  double confidence = 0;     // runs / history.runs, at most 1
  double cpuCores = 0;
  uint64_t memoryBytes = 0;
  bool oomSeen = false;
  double allocatedCores = 0;  // of the newest run
  uint64_t allocatedBytes = 0;
  double wastedCostPerRun = 0;  // allocation above the targets, at the policy's prices
  double runsPerMonth = 0;      // the observed run rate; 0: not known (no span)
  // What the runs used and had allocated, at the policy's prices now.
  double recentUsedCost = 0, recentAllocatedCost = 0;
};

// A month of cloud billing: 365 × 24 / 12 hours.
constexpr double HOURS_PER_MONTH = 730;

// `runs`: the task's runs, oldest first (the newest is the one just finished).
Recommendation recommend(const Policy& policy, kj::ArrayPtr<const Observation> runs);

// What `cores` of use need as a request: × (1 + headroom), rounded up to
// round_to, at least min. And what a `peak` of memory needs: × (1 +
// headroom), after an OOM at least max(peak × oom_bump, peak + 100 MiB),
// rounded up, at least min. The recommendation's maths, for any use.
double cpuTarget(const CpuRule& rule, double cores);
uint64_t memoryTarget(const MemoryRule& rule, uint64_t peak, bool oomSeen);

// The work pool job variables to change, as a prefect.yaml snippet, for a
// work pool type: kubernetes, ecs, docker or process (advisory only).
std::string jobVariablesSnippet(const std::string& workPoolType, const std::string& deployment,
                                const Recommendation& recommendation);

// 0.5 -> "500m"; 2 -> "2"; and bytes -> "512Mi" / "2Gi".
std::string kubernetesCpu(double cores);
std::string kubernetesMemory(uint64_t bytes);

}  // namespace tracer::policy
