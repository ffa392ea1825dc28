// Task profiles and the separation of a flow run's tasks onto work pools
// (policy/placement.h), against hand-computed cases.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "policy/placement.h"

using namespace tracer::policy;

namespace {

constexpr uint64_t S = 1000000000;  // ns
constexpr uint64_t MiB = 1ull << 20, GiB = 1ull << 30;
constexpr int64_t T0 = 1800000000ll * 1000000000ll;  // the flow run's start, wall clock

// A 10 s task run that used `cpuS` seconds of CPU: 0.1 cores per second of CPU.
Observation tenSeconds(double cpuS) {
  Observation o;
  o.wallNs = 10 * S;
  o.cpuNs = uint64_t(cpuS * S);
  return o;
}

std::string profile(const Observation& run) { return profileOf(PlacementRules{}, run); }

// The defaults of policies/default.yaml: cpu headroom 0.15, round to 50m,
// at least 100m; memory headroom 0.15, round to 64Mi, at least 64Mi;
// separate_tasks above 0.25 of the run.
Policy defaults() {
  Policy p;
  p.name = "default";
  return p;
}

PlacedTask task(const std::string& name, const std::string& profile, int64_t startS,
                uint64_t wallS, double p95Cores, uint64_t peakBytes, bool shared = false) {
  PlacedTask t;
  t.run.task = name;
  t.run.wallNs = wallS * S;
  t.run.p95Cores = p95Cores;
  t.run.peakRssBytes = peakBytes;
  t.run.sharedProcess = shared;
  t.startNs = T0 + startS * int64_t(S);
  t.profile = profile;
  return t;
}

// The flow run's footprint: 100 s on 4 cores and 16 GiB, of deployment
// nightly on a Kubernetes work pool.
Observation flowRun() {
  Observation o;
  o.task = FLOW_RUN_TASK;
  o.deployment = "nightly";
  o.workPoolType = "kubernetes";
  o.wallNs = 100 * S;
  o.allocatedCores = 4;
  o.allocatedBytes = 16 * GiB;
  return o;
}

// The deployment's recommendation: 4 cores and 8 GiB, ready.
Recommendation ready() {
  Recommendation r;
  r.ready = true;
  r.cpuCores = 4;
  r.memoryBytes = 8 * GiB;
  return r;
}

std::optional<Separation> separate(const Policy& p, const std::vector<PlacedTask>& tasks,
                                   const Recommendation& r = ready()) {
  return separateTasks(p, flowRun(), r, kj::arrayPtr(tasks.data(), tasks.size()));
}

std::string evidence(const Finding& f, const std::string& name) {
  for (auto& [key, value]: f.evidence) {
    if (key == name) return value;
  }
  return "(none)";
}

// Two compute tasks side by side (crunch 0-40 s, train 10-40 s), then two
// tasks waiting on the network one after the other (fetch_orders 40-70 s,
// upload 70-100 s): the light ones alone 60 of the run's 100 s.
std::vector<PlacedTask> mixedFlow() {
  return {task("crunch", "compute", 0, 40, 1.8, 1 * GiB),
          task("train", "compute", 10, 30, 1.5, 1536 * MiB),
          task("fetch_orders", "external", 40, 30, 0.05, 200 * MiB),
          task("upload", "external", 70, 30, 0.1, 100 * MiB)};
}

}  // namespace

TEST_CASE("profile: compute above 0.7 cores on average, not at it") {
  CHECK(profile(tenSeconds(7.0)) == "balanced");  // 7 s / 10 s = 0.70 cores: not above
  CHECK(profile(tenSeconds(7.01)) == "compute");  // 0.701
}

TEST_CASE("profile: memory above 8 GiB per core used, at least 1 GiB, cores floored at 0.1") {
  auto run = tenSeconds(5);  // 0.5 cores
  run.peakRssBytes = 4 * GiB;  // 4 / 0.5 = 8 GiB per core: not above
  CHECK(profile(run) == "balanced");
  run.peakRssBytes = 4 * GiB + MiB;  // 8.002
  CHECK(profile(run) == "memory");
  auto still = tenSeconds(0);  // no CPU: per 0.1 core, 1 GiB is 10 GiB per core
  still.peakRssBytes = 1 * GiB;
  CHECK(profile(still) == "memory");
  still.peakRssBytes = 1 * GiB - MiB;  // under memory_min: not memory, and idle (0 cores)
  CHECK(profile(still) == "idle");
}

TEST_CASE("profile: disk above 30% of the run blocked on I/O") {
  auto run = tenSeconds(1);  // 0.1 cores: balanced otherwise
  run.blockedIoNs = 3 * S;   // 0.30: not above
  CHECK(profile(run) == "balanced");
  run.blockedIoNs = 3 * S + S / 1000;  // 0.3001
  CHECK(profile(run) == "disk");
}

TEST_CASE("profile: external above 50% of the run waiting on the network, before idle") {
  auto run = tenSeconds(0.1);  // 0.01 cores: idle otherwise
  run.networkWaitNs = 5 * S;   // 0.50: not above
  CHECK(profile(run) == "idle");
  run.networkWaitNs = 5 * S + S / 1000;
  CHECK(profile(run) == "external");
}

TEST_CASE("profile: idle below 0.05 cores on average, not at it") {
  CHECK(profile(tenSeconds(0.5)) == "balanced");  // 0.05 cores
  CHECK(profile(tenSeconds(0.49)) == "idle");     // 0.049
}

TEST_CASE("profile: the first rule that holds wins, in order compute, memory, disk, external") {
  auto run = tenSeconds(8);   // 0.8 cores
  run.blockedIoNs = 5 * S;    // and disk-bound
  run.networkWaitNs = 4 * S;  // and no less external
  CHECK(profile(run) == "compute");
  run.cpuNs = 2 * S;  // 0.2 cores
  CHECK(profile(run) == "disk");
}

TEST_CASE("instance families: 2, 4 and 8 GiB per core, split on a log scale") {
  CHECK(instanceFamily(2) == "compute-optimised");
  CHECK(instanceFamily(2.8) == "compute-optimised");  // below sqrt(8) = 2.83
  CHECK(instanceFamily(2.9) == "general purpose");
  CHECK(instanceFamily(4) == "general purpose");
  CHECK(instanceFamily(5.6) == "general purpose");    // below sqrt(32) = 5.66
  CHECK(instanceFamily(5.7) == "memory-optimised");
  CHECK(instanceFamily(8) == "memory-optimised");
}

TEST_CASE("a mixed flow run: its light tasks go to a small work pool, with what each group needs") {
  auto found = separate(defaults(), mixedFlow());
  REQUIRE(found);
  auto& f = found->finding;
  CHECK(f.kind == "separate_tasks");
  CHECK(f.severity == "info");
  CHECK(f.policy == "default");
  // light alone 40-100 s = 60 s of 100 s.
  CHECK(evidence(f, "light_alone") == "60.00 s");
  CHECK(evidence(f, "light_alone_share") == "60%");
  REQUIRE(found->groups.size() == 2);
  auto& heavy = found->groups[0];
  auto& light = found->groups[1];
  CHECK(heavy.kind == "heavy");
  CHECK(heavy.tasks == std::vector<std::string>{"crunch", "train"});
  CHECK(heavy.profiles == std::vector<std::string>{"compute", "compute"});
  // 10-40 s both run: 1.8 + 1.5 = 3.3 cores x 1.15 = 3.795, up to 50m: 3.8.
  CHECK(heavy.cpuCores == Approx(3.8));
  // 1 GiB + 1.5 GiB = 2560 MiB x 1.15 = 2944 MiB, 46 x 64 MiB exactly.
  CHECK(heavy.memoryBytes == 2944 * MiB);
  CHECK(light.kind == "light");
  CHECK(light.tasks == std::vector<std::string>{"fetch_orders", "upload"});
  // fetch_orders ends as upload starts: never both. max(0.05, 0.1) x 1.15 =
  // 0.115, up to 50m: 0.15; max(200, 100) MiB x 1.15 = 230 MiB, up to 64 MiB: 256 MiB.
  CHECK(light.cpuCores == Approx(0.15));
  CHECK(light.memoryBytes == 256 * MiB);
  CHECK(light.jobVariables ==
        "deployments:\n  - name: nightly-light\n    work_pool:\n      job_variables:\n"
        "        cpu_request: \"150m\"\n        memory_request: \"256Mi\"\n"
        "        memory_limit: \"256Mi\"\n");
  CHECK(heavy.jobVariables.find("cpu_request: \"3800m\"") != std::string::npos);
  CHECK(heavy.jobVariables.find("memory_limit: \"2944Mi\"") != std::string::npos);
  CHECK(f.summary ==
        "fetch_orders and upload wait on external systems and have the allocation to "
        "themselves for 60% of the run, needing 0.15 cores and 256 MiB: run them on a small "
        "work pool, and crunch and train (3.8 cores and 2944 MiB) on a larger one");
  // Needs 8 GiB / 4 cores = 2.0 GiB per core; has 16 GiB / 4 cores = 4.0.
  CHECK(found->shape.neededGibPerCore == Approx(2.0));
  CHECK(found->shape.allocatedGibPerCore == Approx(4.0));
  CHECK(evidence(f, "needed_shape") == "2.0 GiB per core (compute-optimised)");
  CHECK(evidence(f, "allocated_shape") == "4.0 GiB per core (general purpose)");

  // Before the deployment's recommendation is ready its shape is not known: no number.
  auto early = separate(defaults(), mixedFlow(), Recommendation{});
  REQUIRE(early);
  CHECK(early->shape.neededGibPerCore == 0);
  CHECK(evidence(early->finding, "needed_shape") ==
        "not known: the deployment's recommendation is not ready");
}

TEST_CASE("compute-bound and memory-bound tasks of different shapes: each on a pool of its shape") {
  // crunch 0-50 s: 1.8 cores, 1 GiB; cache_build 50-100 s: 0.3 cores, 12 GiB.
  std::vector<PlacedTask> tasks = {task("crunch", "compute", 0, 50, 1.8, 1 * GiB),
                                   task("cache_build", "memory", 50, 50, 0.3, 12 * GiB)};
  auto found = separate(defaults(), tasks);
  REQUIRE(found);
  REQUIRE(found->groups.size() == 2);
  auto& compute = found->groups[0];
  auto& memory = found->groups[1];
  CHECK(compute.kind == "compute");
  CHECK(compute.tasks == std::vector<std::string>{"crunch"});
  // 1.8 x 1.15 = 2.07, up to 50m: 2.1 cores; 1024 MiB x 1.15 = 1177.6, up to 64 MiB: 1216 MiB.
  CHECK(compute.cpuCores == Approx(2.1));
  CHECK(compute.memoryBytes == 1216 * MiB);
  CHECK(memory.kind == "memory");
  // 0.3 x 1.15 = 0.345: 0.35 cores; 12288 MiB x 1.15 = 14131.2, up to 64 MiB: 14144 MiB.
  CHECK(memory.cpuCores == Approx(0.35));
  CHECK(memory.memoryBytes == 14144 * MiB);
  CHECK(memory.jobVariables.find("- name: nightly-memory") != std::string::npos);
  auto& f = found->finding;
  // 1216 / 1024 / 2.1 = 0.57 GiB per core; 14144 / 1024 / 0.35 = 39.47.
  CHECK(f.summary ==
        "crunch is compute-bound (2.1 cores and 1216 MiB: 0.6 GiB per core (compute-optimised)) "
        "and cache_build is memory-bound (0.35 cores and 14144 MiB: 39.5 GiB per core "
        "(memory-optimised)): run them as two deployments, each on a work pool of its shape");
  CHECK(evidence(f, "compute_shape") == "0.6 GiB per core (compute-optimised)");
  CHECK(evidence(f, "memory_shape") == "39.5 GiB per core (memory-optimised)");
  CHECK(evidence(f, "needed_shape") == "2.0 GiB per core (compute-optimised)");
  CHECK(evidence(f, "light_alone") == "(none)");

  // Needs of one family (a memory-bound task that needs 2 GiB a core at its
  // p95): one pool of that shape fits both.
  tasks[1] = task("cache_build", "memory", 50, 50, 1, 2 * GiB);
  CHECK_FALSE(separate(defaults(), tasks));
  // A task of another profile beside them: no split by shape.
  tasks[1] = task("cache_build", "memory", 50, 40, 0.3, 12 * GiB);
  tasks.push_back(task("write", "disk", 90, 10, 0.2, 100 * MiB));
  CHECK_FALSE(separate(defaults(), tasks));
  // And the policy's off turns it off too.
  tasks.pop_back();
  auto off = defaults();
  off.findings.separateTasks = false;
  CHECK_FALSE(separate(off, tasks));
  CHECK(separate(defaults(), tasks));
}

TEST_CASE("a flow run of one kind of task is not separated") {
  std::vector<PlacedTask> compute = {task("a", "compute", 0, 50, 1, GiB),
                                     task("b", "disk", 50, 50, 0.3, GiB)};
  CHECK_FALSE(separate(defaults(), compute));
  std::vector<PlacedTask> light = {task("a", "external", 0, 50, 0.1, MiB),
                                   task("b", "idle", 50, 50, 0, MiB)};
  CHECK_FALSE(separate(defaults(), light));
  // Balanced tasks need no larger pool of their own: beside light ones, nothing to split.
  std::vector<PlacedTask> balanced = {task("a", "balanced", 0, 30, 0.3, MiB),
                                      task("b", "external", 30, 70, 0.1, MiB)};
  CHECK_FALSE(separate(defaults(), balanced));
}

TEST_CASE("light tasks alone for no more than the threshold: no separation; they count once") {
  // Heavy 0-40 s and 60-100 s; light 40-55 s and 45-60 s overlap: alone
  // 40-60 s = 20% (summed they would make 30 s, 30%, and fire).
  std::vector<PlacedTask> tasks = {task("load", "compute", 0, 40, 1, GiB),
                                   task("save", "compute", 60, 40, 1, GiB),
                                   task("ping", "external", 40, 15, 0.1, MiB),
                                   task("poll", "external", 45, 15, 0.1, MiB)};
  CHECK_FALSE(separate(defaults(), tasks));
  // 25% is not above 0.25: poll now ends at 65 s, under save from 60 s.
  tasks[3] = task("poll", "external", 45, 20, 0.1, MiB);
  tasks[1] = task("save", "compute", 65, 35, 1, GiB);
  CHECK_FALSE(separate(defaults(), tasks));  // 40-65 s = 25 s
  tasks[1] = task("save", "compute", 66, 34, 1, GiB);
  tasks[3] = task("poll", "external", 45, 21, 0.1, MiB);
  CHECK(separate(defaults(), tasks));  // 40-66 s = 26%
}

TEST_CASE("the policy's off, and tasks not fully measured, give no separation") {
  auto off = defaults();
  off.findings.separateTasks = false;
  CHECK_FALSE(separate(off, mixedFlow()));
  auto tasks = mixedFlow();
  tasks[1].profile = "";  // train measured in part: it might have run all along
  CHECK_FALSE(separate(defaults(), tasks));
  tasks = mixedFlow();
  tasks[2].startNs = 0;  // when fetch_orders ran is not known
  CHECK_FALSE(separate(defaults(), tasks));
  auto higher = defaults();
  higher.findings.separateLightWallShareAbove = 0.6;  // 60% is not above
  CHECK_FALSE(separate(higher, mixedFlow()));
}

TEST_CASE("thread tasks of one shared process count that process's memory once") {
  // a and b are threads of one process that peaked at 2 GiB (each reports
  // it), c a process of its own at 512 MiB; all three run 0-40 s. At once:
  // 2 GiB once + 512 MiB = 2560 MiB x 1.15 = 2944 MiB (not 4.5 GiB x 1.15).
  // A thread task of a smaller peak (d, 1 GiB) beside them adds nothing.
  std::vector<PlacedTask> tasks = {task("a", "compute", 0, 40, 1, 2 * GiB, true),
                                   task("b", "compute", 0, 40, 1, 2 * GiB, true),
                                   task("d", "compute", 10, 20, 0.5, 1 * GiB, true),
                                   task("c", "compute", 0, 40, 0.5, 512 * MiB),
                                   task("wait", "external", 40, 60, 0.1, 64 * MiB)};
  auto found = separate(defaults(), tasks);
  REQUIRE(found);
  CHECK(found->groups[0].memoryBytes == 2944 * MiB);
  // Cores add up: 1 + 1 + 0.5 + 0.5 = 3 x 1.15 = 3.45.
  CHECK(found->groups[0].cpuCores == Approx(3.45));
  // The light group's 64 MiB x 1.15 = 73.6 MiB rounds up to 128 MiB.
  CHECK(found->groups[1].memoryBytes == 128 * MiB);
}

TEST_CASE("a task name with runs of several profiles in a group lists each profile once") {
  std::vector<PlacedTask> tasks = {task("step", "compute", 0, 20, 1, GiB),
                                   task("step", "disk", 20, 20, 0.2, GiB),
                                   task("step", "compute", 40, 10, 1, GiB),
                                   task("wait", "idle", 50, 50, 0, 64 * MiB)};
  auto found = separate(defaults(), tasks);
  REQUIRE(found);
  CHECK(found->groups[0].tasks == std::vector<std::string>{"step"});
  CHECK(found->groups[0].profiles == std::vector<std::string>{"compute+disk"});
  // 50-100 s alone: 50%; one light task, said of one.
  CHECK(found->finding.summary.rfind("wait sits idle and has the allocation to itself for 50% "
                                     "of the run, needing 0.1 cores and 128 MiB: run it on", 0) == 0);
}

TEST_CASE("profile: what was not measured leaves it unknown, unless a rule before it holds or a "
          "measured bound settles it") {
  Unmeasured none;
  none.ownMemory = none.sleepCauses = none.sleep = none.blockedIo = true;
  CHECK(profileOf(PlacementRules{}, tenSeconds(8), none) == "compute");  // the first rule holds
  CHECK(profileOf(PlacementRules{}, tenSeconds(2), none) == "");  // 0.2 cores: disk? unknown

  // A thread task's own memory unmeasured: its process's peak bounds it.
  Unmeasured ownMemory;
  ownMemory.ownMemory = true;
  auto run = tenSeconds(2);  // 0.2 cores
  run.peakRssBytes = 4 * GiB;  // the process's: 20 GiB per core, it might be the task's
  CHECK(profileOf(PlacementRules{}, run, ownMemory) == "");
  run.peakRssBytes = 1536 * MiB;  // 7.5 GiB per core: the task's own is no more
  CHECK(profileOf(PlacementRules{}, run, ownMemory) == "balanced");

  // Sleep causes unmeasured: its sleep bounds its network wait.
  Unmeasured causes;
  causes.sleepCauses = true;
  auto quiet = tenSeconds(0.1);  // 0.01 cores
  quiet.sleepNs = 5 * S;         // 0.50: even all of it network, not above
  CHECK(profileOf(PlacementRules{}, quiet, causes) == "idle");
  quiet.sleepNs = 6 * S;  // it might be external, or idle
  CHECK(profileOf(PlacementRules{}, quiet, causes) == "");
  causes.sleep = true;
  quiet.sleepNs = 0;  // a zero never measured bounds nothing
  CHECK(profileOf(PlacementRules{}, quiet, causes) == "");
}
