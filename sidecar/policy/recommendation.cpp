#include "policy/recommendation.h"

#include "policy/run_cost.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace tracer::policy {

namespace {

constexpr uint64_t OOM_MIN_EXTRA = 100ull << 20;  // after an OOM: at least peak + 100 MiB

// Nearest-rank percentile: the smallest value with at least p % of values at or below it.
double percentile(std::vector<double> values, double p) {
  std::sort(values.begin(), values.end());
  size_t rank = static_cast<size_t>(std::ceil(p / 100.0 * values.size()));
  return values[std::max<size_t>(rank, 1) - 1];
}

double roundUp(double value, double step) { return std::ceil(value / step - 1e-9) * step; }

}  // namespace

Recommendation recommend(const Policy& policy, kj::ArrayPtr<const Observation> all) {
  Recommendation r;
  r.minRuns = policy.history.minRuns;
  size_t take = std::min<size_t>(all.size(), policy.history.runs);
  auto runs = all.slice(all.size() - take, all.size());
  r.runs = runs.size();
  if (runs.size() == 0) return r;
  r.allocatedCores = runs.back().allocatedCores;
  r.allocatedBytes = runs.back().allocatedBytes;
  r.spanHours = (runs.back().finishedAtNs - runs.front().finishedAtNs) / 3.6e12;
  r.confidence = std::min(1.0, double(runs.size()) / policy.history.runs);
  // n runs over a span are n - 1 intervals apart.
  if (r.spanHours > 0) r.runsPerMonth = (runs.size() - 1) / r.spanHours * HOURS_PER_MONTH;
  auto& prices = policy.cost.pricesFor(runs.back().workPool);
  for (auto& run: runs) {
    auto cost = runCost(prices, run);
    r.recentUsedCost += cost.used;
    r.recentAllocatedCost += cost.allocated;
  }
  if (runs.size() < policy.history.minRuns) return r;
  r.ready = true;

  std::vector<double> cores;
  uint64_t peak = 0;
  double wallHours = 0;
  for (auto& run: runs) {
    cores.push_back(run.p95Cores);
    peak = std::max(peak, run.peakRssBytes);
    r.oomSeen = r.oomSeen || run.oomKills > 0;
    wallHours += run.wallNs / 3.6e12;
  }
  r.cpuCores = cpuTarget(policy.cpu, percentile(cores, policy.cpu.percentile));
  r.memoryBytes = memoryTarget(policy.memory, peak, r.oomSeen);

  double meanWallHours = wallHours / runs.size();
  double spareCores = std::max(0.0, r.allocatedCores - r.cpuCores);
  double spareGib = r.allocatedBytes > r.memoryBytes
                        ? double(r.allocatedBytes - r.memoryBytes) / (1ull << 30) : 0;
  r.wastedCostPerRun = meanWallHours * (spareCores * prices.cpuCoreHour +
                                        spareGib * prices.memoryGibHour);

  return r;
}

double cpuTarget(const CpuRule& rule, double cores) {
  return std::max(roundUp(cores * (1 + rule.headroom), rule.roundTo), rule.min);
}

uint64_t memoryTarget(const MemoryRule& rule, uint64_t peak, bool oomSeen) {
  double memory = peak * (1 + rule.headroom);
  if (oomSeen) memory = std::max({memory, peak * rule.oomBump, double(peak + OOM_MIN_EXTRA)});
  uint64_t rounded = static_cast<uint64_t>(roundUp(memory, double(rule.roundTo)));
  return std::max(rounded, rule.min);
}

std::string kubernetesCpu(double cores) {
  long millicores = std::lround(cores * 1000);
  if (millicores % 1000 == 0) return std::to_string(millicores / 1000);
  return std::to_string(millicores) + "m";
}

std::string kubernetesMemory(uint64_t bytes) {
  if (bytes % (1ull << 30) == 0) return std::to_string(bytes >> 30) + "Gi";
  if (bytes % (1ull << 20) == 0) return std::to_string(bytes >> 20) + "Mi";
  return std::to_string(bytes);
}

std::string jobVariablesSnippet(const std::string& type, const std::string& deployment,
                                const Recommendation& r) {
  std::string head = "deployments:\n  - name: " + (deployment.empty() ? "<deployment>" : deployment) +
                     "\n    work_pool:\n      job_variables:\n";
  uint64_t mib = r.memoryBytes >> 20;
  if (type == "kubernetes") {
    // Like KRR: requests from the recommendation, a memory limit equal to the
    // request (OOM is then predictable), and no CPU limit (throttling hurts more).
    return head + "        cpu_request: \"" + kubernetesCpu(r.cpuCores) + "\"\n" +
           "        memory_request: \"" + kubernetesMemory(r.memoryBytes) + "\"\n" +
           "        memory_limit: \"" + kubernetesMemory(r.memoryBytes) + "\"\n";
  }
  if (type == "ecs") {
    // ECS task CPU is in units of 1/1024 vCPU, memory in MiB.
    long units = std::lround(r.cpuCores * 1024);
    return head + "        cpu: " + std::to_string(units) + "\n        memory: " +
           std::to_string(mib) + "\n";
  }
  if (type == "docker") {
    return head + "        mem_limit: \"" + std::to_string(mib) + "m\"\n";
  }
  char advisory[160];
  snprintf(advisory, sizeof(advisory),
           "# process work pool: no limits to set; the task needs about %.2f cores and %llu MiB\n",
           r.cpuCores, static_cast<unsigned long long>(mib));
  return advisory;
}

}  // namespace tracer::policy
