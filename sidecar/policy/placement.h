#pragma once
// Which tasks of a flow run belong on which work pool (docs/policies.md,
// "Placement"). Each task run gets a profile, what bounds it, from its time
// and resources. A flow run gets the `separate_tasks` finding, with the two
// groups, what each needs as job variables, and the CPU:memory shape the
// deployment needs against the one it has, when
// - by size: its heavy tasks (compute, memory or disk bound) share an
//   allocation sized for them with light ones (waiting on external systems,
//   or idle) that hold it alone for a large share of the run; or
// - by shape: its tasks are all compute bound or memory bound, and the two
//   groups' needs fit different instance families.

#include <kj/array.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "policy/detectors.h"
#include "policy/observation.h"
#include "policy/policy.h"
#include "policy/recommendation.h"

namespace tracer::policy {

// What a run's profile reads that was not measured. A rule that cannot be
// judged leaves the profile unknown unless a rule before it holds, or a
// measured bound settles it: a thread task's own memory is at most its
// process's peak, its network wait at most its sleep.
struct Unmeasured {
  bool ownMemory = false;    // a thread task's own: run.peakRssBytes is its process's
  bool sleepCauses = false;  // run.networkWaitNs not known
  bool sleep = false;        // run.sleepNs not known either
  bool blockedIo = false;
};

// The first that holds of "compute", "memory", "disk", "external", "idle";
// else "balanced" (the rules: PlacementRules); "" when that cannot be told.
// `run`'s CPU time and wall time are measured.
std::string profileOf(const PlacementRules& rules, const Observation& run,
                      const Unmeasured& unmeasured = {});

// The profile thresholds as the policy sets them, one line each ("compute:
// compute_cores_above 0.70"), as the policy file spells them.
std::vector<std::string> describePlacementRules(const PlacementRules& rules);

// Light tasks (external, idle) fit a small work pool. The others are heavy:
// balanced ones too, which use a real share of a CPU and go with the heavy
// tasks to the larger pool.
bool isLight(const std::string& profile);

// One task run of a flow run, as the separation sees it.
struct PlacedTask {
  Observation run;
  int64_t startNs = 0;  // wall clock (CLOCK_REALTIME); 0: not known
  std::string profile;  // empty: not known (the run was measured only in part)
};

struct TaskGroup {
  std::string kind;                   // "heavy" or "light"; "compute" or "memory"
  std::vector<std::string> tasks;     // task names, in the order they first started
  std::vector<std::string> profiles;  // each name's profiles there ("compute", "compute+disk")
  double cpuCores = 0;                // what the group's tasks need at once, with the
  uint64_t memoryBytes = 0;           // policy's headroom, rounding and minimums
  std::string jobVariables;           // prefect.yaml snippet for the group's work pool
};

// Memory GiB per core: the shape an instance family has.
struct Shape {
  double neededGibPerCore = 0;     // the deployment's recommendation; 0: not ready
  double allocatedGibPerCore = 0;  // its allocation; 0: not known
};

// Memory GiB per core of `bytes` over `cores`; 0 (not known) without cores.
double gibPerCore(uint64_t bytes, double cores);

// "compute-optimised" (about 2 GiB a core), "general purpose" (4) or
// "memory-optimised" (8): the nearest on a log scale.
std::string instanceFamily(double gibPerCore);

struct Separation {
  Finding finding;                // separate_tasks
  std::vector<TaskGroup> groups;  // heavy, then light; or compute, then memory
  Shape shape;
};

// `flowRun`: the flow run's footprint (its wall time, allocation, work pool),
// `deployment`: its recommendation, `tasks`: the flow run's task runs. None
// when the policy turns the finding off, when a task is not fully measured
// (its profile or start unknown: a heavy task no one saw could fill the time
// the light ones seem to have alone), when the run is of one kind only, when
// the light tasks have the allocation alone for no more than
// findings.separate_tasks.light_wall_share_above of the run, and it is not
// split by shape either.
std::optional<Separation> separateTasks(const Policy& policy, const Observation& flowRun,
                                        const Recommendation& deployment,
                                        kj::ArrayPtr<const PlacedTask> tasks);

}  // namespace tracer::policy
