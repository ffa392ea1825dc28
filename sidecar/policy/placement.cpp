#include "policy/placement.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "policy/finding_text.h"

namespace tracer::policy {

namespace {

constexpr double GIB = double(1ull << 30);
// A task that barely ran still holds its memory: per core it used, at
// least this many, or a sleeping task's every MiB would read as memory-bound.
constexpr double MEMORY_RULE_MIN_CORES = 0.1;
// More names than this in a summary are counted, not listed.
constexpr size_t NAMES_LISTED_MAX = 4;

double averageCores(const Observation& run) {
  return run.wallNs == 0 ? 0 : double(run.cpuNs) / double(run.wallNs);
}

// When a task run ran, wall clock.
struct Interval {
  int64_t start, end;
};

// At least 1 ns long, so that a task's end never sorts before its start.
Interval intervalOf(const PlacedTask& task) {
  return Interval{task.startNs, task.startNs + int64_t(std::max<uint64_t>(task.run.wallNs, 1))};
}

// How long some light task ran while no heavy one did: the union of the
// light tasks' intervals less the union of the heavy ones'. Then the
// allocation, sized for the heavy tasks, held only tasks a small one fits.
uint64_t lightAloneNs(kj::ArrayPtr<const PlacedTask> tasks) {
  struct Edge {
    int64_t at;
    int light, heavy;  // +1 as a task starts, -1 as it ends
  };
  std::vector<Edge> edges;
  for (auto& task: tasks) {
    auto span = intervalOf(task);
    bool light = isLight(task.profile);
    edges.push_back({span.start, light ? 1 : 0, light ? 0 : 1});
    edges.push_back({span.end, light ? -1 : 0, light ? 0 : -1});
  }
  std::sort(edges.begin(), edges.end(), [](const Edge& a, const Edge& b) { return a.at < b.at; });
  uint64_t alone = 0;
  int light = 0, heavy = 0;
  for (size_t i = 0; i < edges.size(); ++i) {
    light += edges[i].light;
    heavy += edges[i].heavy;
    // Between this edge and the next, the counts hold.
    if (i + 1 < edges.size() && light > 0 && heavy == 0) {
      alone += uint64_t(edges[i + 1].at - edges[i].at);
    }
  }
  return alone;
}

// The most a group's tasks used at once: a sweep over their intervals, at
// each start the sum of the p95 cores of the tasks running, and of their
// peaks. Both over-estimate (p95s and peaks need not coincide), never under.
// Tasks that are threads of a shared process report that process's peak,
// which holds all of them: it counts once, as the largest of theirs running.
struct AtOnce {
  double cores = 0;
  uint64_t memoryBytes = 0;
  bool oomSeen = false;
};

AtOnce mostAtOnce(const std::vector<const PlacedTask*>& group) {
  struct Edge {
    int64_t at;
    bool starts;
    const PlacedTask* task;
  };
  std::vector<Edge> edges;
  AtOnce most;
  for (auto* task: group) {
    auto span = intervalOf(*task);
    edges.push_back({span.start, true, task});
    edges.push_back({span.end, false, task});
    most.oomSeen = most.oomSeen || task->run.oomKills > 0;
  }
  // Intervals are half-open: a task ending as another starts is not beside it.
  std::sort(edges.begin(), edges.end(), [](const Edge& a, const Edge& b) {
    return a.at != b.at ? a.at < b.at : !a.starts && b.starts;
  });
  double cores = 0;
  uint64_t ownProcesses = 0;
  std::multiset<uint64_t> sharedProcessPeaks;
  for (auto& edge: edges) {
    auto& run = edge.task->run;
    if (edge.starts) {
      cores += run.p95Cores;
      if (run.sharedProcess) {
        sharedProcessPeaks.insert(run.peakRssBytes);
      } else {
        ownProcesses += run.peakRssBytes;
      }
      uint64_t shared = sharedProcessPeaks.empty() ? 0 : *sharedProcessPeaks.rbegin();
      most.cores = std::max(most.cores, cores);
      most.memoryBytes = std::max(most.memoryBytes, ownProcesses + shared);
    } else {
      cores -= run.p95Cores;
      if (run.sharedProcess) {
        sharedProcessPeaks.erase(sharedProcessPeaks.find(run.peakRssBytes));
      } else {
        ownProcesses -= run.peakRssBytes;
      }
    }
  }
  return most;
}

// "2", "0.25": cores as people write them.
std::string coresText(double cores) {
  auto text = fixed(cores, 2);
  while (text.back() == '0') text.pop_back();
  if (text.back() == '.') text.pop_back();
  return text + (cores == 1 ? " core" : " cores");
}

// "3 GiB", "320 MiB".
std::string memoryText(uint64_t bytes) {
  if (bytes % (1ull << 30) == 0) return std::to_string(bytes >> 30) + " GiB";
  return mib(bytes);
}

std::string needsText(const TaskGroup& group) {
  return coresText(group.cpuCores) + " and " + memoryText(group.memoryBytes);
}

// "a", "a and b", "a, b, c, d and 3 more".
std::string namesText(const std::vector<std::string>& names) {
  size_t listed = names.size() > NAMES_LISTED_MAX + 1 ? NAMES_LISTED_MAX : names.size();
  std::string text;
  for (size_t i = 0; i < listed; ++i) {
    text += (i == 0 ? "" : i + 1 == listed && listed == names.size() ? " and " : ", ") + names[i];
  }
  if (listed < names.size()) text += " and " + std::to_string(names.size() - listed) + " more";
  return text;
}

// What the light tasks do, as a verb phrase for one task or several.
std::string lightDoing(const TaskGroup& light) {
  bool external = false, idle = false;
  for (auto& profiles: light.profiles) {
    external = external || profiles.find("external") != std::string::npos;
    idle = idle || profiles.find("idle") != std::string::npos;
  }
  bool one = light.tasks.size() == 1;
  std::string waits = one ? "waits on external systems" : "wait on external systems";
  std::string sits = one ? "sits idle" : "sit idle";
  if (external && idle) return waits + " or " + sits;
  return external ? waits : sits;
}

TaskGroup groupOf(const Policy& policy, const Observation& flowRun, const std::string& kind,
                  const std::vector<const PlacedTask*>& members) {
  TaskGroup group;
  group.kind = kind;
  // Each name once, with the profiles its runs in this group had.
  std::map<std::string, size_t> at;
  for (auto* task: members) {
    auto [where, added] = at.emplace(task->run.task, group.tasks.size());
    if (added) {
      group.tasks.push_back(task->run.task);
      group.profiles.push_back(task->profile);
      continue;
    }
    auto& profiles = group.profiles[where->second];
    if (("+" + profiles + "+").find("+" + task->profile + "+") == std::string::npos) {
      profiles += "+" + task->profile;
    }
  }
  auto most = mostAtOnce(members);
  Recommendation needs;
  needs.ready = true;
  needs.cpuCores = group.cpuCores = cpuTarget(policy.cpu, most.cores);
  needs.memoryBytes = group.memoryBytes = memoryTarget(policy.memory, most.memoryBytes,
                                                       most.oomSeen);
  // Suggested names of the two deployments the flow run's tasks split into.
  std::string deployment = (flowRun.deployment.empty() ? "<deployment>" : flowRun.deployment) +
                           "-" + kind;
  group.jobVariables = jobVariablesSnippet(
      flowRun.workPoolType.empty() ? "process" : flowRun.workPoolType, deployment, needs);
  return group;
}

std::string shapeText(double gibPerCore, const std::string& unknownWhy) {
  if (gibPerCore <= 0) return "not known: " + unknownWhy;
  return fixed(gibPerCore, 1) + " GiB per core (" + instanceFamily(gibPerCore) + ")";
}

// The deployment's shape and its allocation's, after each split's own evidence.
void addShapes(Separation& s) {
  s.finding.evidence.push_back({"needed_shape",
                                shapeText(s.shape.neededGibPerCore,
                                          "the deployment's recommendation is not ready")});
  s.finding.evidence.push_back(
      {"allocated_shape", shapeText(s.shape.allocatedGibPerCore, "the allocation is not known")});
}

// Heavy and light tasks: the light ones had the allocation, sized for the
// heavy ones, to themselves for `alone` of the run.
void bySize(Separation& s, uint64_t alone, double aloneShare, uint64_t wallNs) {
  auto& big = s.groups[0];
  auto& small = s.groups[1];
  bool one = small.tasks.size() == 1;
  s.finding.summary = namesText(small.tasks) + " " + lightDoing(small) +
                      (one ? " and has the allocation to itself for "
                           : " and have the allocation to themselves for ") +
                      percent(aloneShare) + " of the run, needing " + needsText(small) +
                      (one ? ": run it" : ": run them") + " on a small work pool, and " +
                      namesText(big.tasks) + " (" + needsText(big) + ") on a larger one";
  s.finding.evidence = {
      {"light_alone", seconds(alone)},
      {"wall", seconds(wallNs)},
      {"light_alone_share", percent(aloneShare)},
      {"heavy_needs", needsText(big)},
      {"light_needs", needsText(small)},
  };
  addShapes(s);
}

// Compute-bound and memory-bound tasks whose needs fit different instance
// families: one allocation for both has the shape of neither. False when
// both fit one family.
bool byShape(Separation& s) {
  auto& compute = s.groups[0];
  auto& memory = s.groups[1];
  double computeShape = gibPerCore(compute.memoryBytes, compute.cpuCores);
  double memoryShape = gibPerCore(memory.memoryBytes, memory.cpuCores);
  if (instanceFamily(computeShape) == instanceFamily(memoryShape)) return false;
  auto bound = [](const TaskGroup& group, const std::string& by, double shape) {
    return namesText(group.tasks) + (group.tasks.size() == 1 ? " is " : " are ") + by +
           "-bound (" + needsText(group) + ": " + shapeText(shape, "") + ")";
  };
  s.finding.summary = bound(compute, "compute", computeShape) + " and " +
                      bound(memory, "memory", memoryShape) +
                      ": run them as two deployments, each on a work pool of its shape";
  s.finding.evidence = {
      {"compute_needs", needsText(compute)},
      {"memory_needs", needsText(memory)},
      {"compute_shape", shapeText(computeShape, "")},
      {"memory_shape", shapeText(memoryShape, "")},
  };
  addShapes(s);
  return true;
}

}  // namespace

std::string profileOf(const PlacementRules& rules, const Observation& run,
                      const Unmeasured& unmeasured) {
  double cores = averageCores(run);
  if (cores > rules.computeCoresAbove) return "compute";
  // Unmeasured own memory: the process's peak bounds it, and a bound that
  // does not reach the rule settles it.
  double gibPerCore = run.peakRssBytes / GIB / std::max(cores, MEMORY_RULE_MIN_CORES);
  if (run.peakRssBytes >= rules.memoryMinBytes && gibPerCore > rules.memoryGibPerCoreAbove) {
    return unmeasured.ownMemory ? "" : "memory";
  }
  if (unmeasured.blockedIo) return "";
  if (share(run.blockedIoNs, run.wallNs) > rules.diskShareAbove) return "disk";
  if (unmeasured.sleepCauses) {
    // All of its sleep would not be enough to make it external: it is not.
    if (unmeasured.sleep || share(run.sleepNs, run.wallNs) > rules.externalShareAbove) return "";
  } else if (share(run.networkWaitNs, run.wallNs) > rules.externalShareAbove) {
    return "external";
  }
  if (cores < rules.idleCpuShareBelow) return "idle";
  return "balanced";
}

std::vector<std::string> describePlacementRules(const PlacementRules& r) {
  return {
      "compute: compute_cores_above " + fixed(r.computeCoresAbove),
      "memory: memory_gib_per_core_above " + fixed(r.memoryGibPerCoreAbove) + ", memory_min " +
          kubernetesMemory(r.memoryMinBytes),
      "disk: disk_share_above " + fixed(r.diskShareAbove),
      "external: external_share_above " + fixed(r.externalShareAbove),
      "idle: idle_cpu_share_below " + fixed(r.idleCpuShareBelow),
  };
}

double gibPerCore(uint64_t bytes, double cores) { return cores > 0 ? bytes / GIB / cores : 0; }

bool isLight(const std::string& profile) { return profile == "external" || profile == "idle"; }

std::string instanceFamily(double gibPerCore) {
  // The geometric means of 2 and 4, and of 4 and 8, split the families.
  if (gibPerCore < std::sqrt(2.0 * 4.0)) return "compute-optimised";
  if (gibPerCore < std::sqrt(4.0 * 8.0)) return "general purpose";
  return "memory-optimised";
}

std::optional<Separation> separateTasks(const Policy& policy, const Observation& flowRun,
                                        const Recommendation& deployment,
                                        kj::ArrayPtr<const PlacedTask> tasks) {
  if (!policy.findings.separateTasks || flowRun.wallNs == 0) return std::nullopt;
  std::vector<const PlacedTask*> heavy, light, compute, memory;
  bool bound = false;  // by compute, memory or disk: balanced tasks alone need no larger pool
  for (auto& task: tasks) {
    if (task.profile.empty() || task.startNs == 0) return std::nullopt;
    (isLight(task.profile) ? light : heavy).push_back(&task);
    bound = bound || (!isLight(task.profile) && task.profile != "balanced");
    if (task.profile == "compute") compute.push_back(&task);
    if (task.profile == "memory") memory.push_back(&task);
  }
  auto byStart = [](const PlacedTask* a, const PlacedTask* b) { return a->startNs < b->startNs; };
  for (auto* group: {&heavy, &light, &compute, &memory}) {
    std::stable_sort(group->begin(), group->end(), byStart);
  }
  Separation s;
  if (deployment.ready) {
    s.shape.neededGibPerCore = gibPerCore(deployment.memoryBytes, deployment.cpuCores);
  }
  s.shape.allocatedGibPerCore = gibPerCore(flowRun.allocatedBytes, flowRun.allocatedCores);
  s.finding.kind = "separate_tasks";
  // Nothing is wrong with the run: splitting a flow run is a change to its
  // design, worth it for what a pool of the right size or shape saves.
  s.finding.severity = "info";
  s.finding.policy = policy.name;
  uint64_t alone = bound && !light.empty() ? lightAloneNs(tasks) : 0;
  double aloneShare = share(alone, flowRun.wallNs);
  if (aloneShare > policy.findings.separateLightWallShareAbove) {
    s.groups.push_back(groupOf(policy, flowRun, "heavy", heavy));
    s.groups.push_back(groupOf(policy, flowRun, "light", light));
    bySize(s, alone, aloneShare, flowRun.wallNs);
    return s;
  }
  // Only compute-bound and memory-bound tasks: each group's own shape.
  if (compute.empty() || memory.empty() || compute.size() + memory.size() != tasks.size()) {
    return std::nullopt;
  }
  s.groups.push_back(groupOf(policy, flowRun, "compute", compute));
  s.groups.push_back(groupOf(policy, flowRun, "memory", memory));
  if (!byShape(s)) return std::nullopt;
  return s;
}

}  // namespace tracer::policy
