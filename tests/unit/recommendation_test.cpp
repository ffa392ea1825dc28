// Right-sizing maths against hand-computed cases.
#include <catch2/catch.hpp>

#include <algorithm>

#include "policy/detectors.h"
#include "policy/recommendation.h"

using namespace tracer::policy;

namespace {

constexpr uint64_t MiB = 1ull << 20;
constexpr uint64_t HOUR_NS = 3600ull * 1000000000;

Observation run(double p95Cores, uint64_t peakBytes, uint32_t oom = 0, int hour = 0) {
  Observation o;
  o.p95Cores = p95Cores;
  o.peakRssBytes = peakBytes;
  o.oomKills = oom;
  o.wallNs = HOUR_NS;
  o.finishedAtNs = int64_t(hour) * int64_t(HOUR_NS);
  o.allocatedCores = 2;
  o.allocatedBytes = 4096 * MiB;
  return o;
}

Policy basePolicy() {
  Policy p;
  p.name = "test";
  p.history = {20, 3};
  p.cpu = CpuRule{95, 0.15, 0.5, 0.1, 0.05};
  p.memory = MemoryRule{0.15, 1.2, 64 * MiB, 64 * MiB, 0.5};
  p.cost.prices = Prices{0.04, 0.005};
  return p;
}

// The tests build runs as vectors; the engine takes them as array pointers.
Recommendation recommendFrom(const Policy& p, const std::vector<Observation>& runs) {
  return recommend(p, kj::arrayPtr(runs.data(), runs.size()));
}
std::vector<Finding> detectAfter(const Policy& p, const Observation& run,
                                 const std::vector<Observation>& earlier) {
  return detect(p, run, kj::arrayPtr(earlier.data(), earlier.size()));
}
// The kinds of one run's findings that are among `of`, in order.
std::vector<std::string> kindsAmong(const Policy& p, const Observation& run,
                                    std::vector<std::string> of) {
  std::vector<std::string> kinds;
  for (auto& f: detectAfter(p, run, {})) {
    if (std::find(of.begin(), of.end(), f.kind) != of.end()) kinds.push_back(f.kind);
  }
  return kinds;
}

}  // namespace

TEST_CASE("CPU: nearest-rank percentile of per-run p95, headroom, round up") {
  auto p = basePolicy();
  std::vector<Observation> runs = {run(0.2, 0), run(0.3, 0), run(0.25, 0), run(0.4, 0),
                                   run(0.35, 0, 0, 4)};
  auto r = recommendFrom(p, runs);
  REQUIRE(r.ready);
  CHECK(r.cpuCores == Approx(0.5));   // p95 of 5 runs = the largest, 0.4; x1.15 = 0.46 -> 0.50
  p.cpu.percentile = 50;
  CHECK(recommendFrom(p, runs).cpuCores == Approx(0.35));  // 3rd of 5 = 0.3; x1.15 = 0.345 -> 0.35
  CHECK(r.runs == 5);
  CHECK(r.confidence == Approx(0.25));  // 5 of the 20 runs the policy looks at
  CHECK(r.spanHours == Approx(4));
}

TEST_CASE("memory: highest peak with headroom, rounded up to the step") {
  auto p = basePolicy();
  auto r = recommendFrom(p, {run(0.1, 300 * MiB), run(0.1, 400 * MiB), run(0.1, 350 * MiB)});
  CHECK(r.memoryBytes == 512 * MiB);  // 400 x 1.15 = 460 MiB -> 8 x 64 MiB
  CHECK_FALSE(r.oomSeen);
}

TEST_CASE("memory after an OOM: at least peak x oom_bump and peak + 100 MiB") {
  auto p = basePolicy();
  std::vector<Observation> runs = {run(0.1, 400 * MiB, 1), run(0.1, 300 * MiB), run(0.1, 300 * MiB)};
  CHECK(recommendFrom(p, runs).memoryBytes == 512 * MiB);  // max(460, 480, 500) = 500 -> 512
  p.memory.oomBump = 1.5;
  CHECK(recommendFrom(p, runs).memoryBytes == 640 * MiB);  // 600 -> 10 x 64
  p.memory.oomBump = 1.2;
  std::vector<Observation> small = {run(0.1, 100 * MiB, 1), run(0.1, 90 * MiB), run(0.1, 90 * MiB)};
  CHECK(recommendFrom(p, small).memoryBytes == 256 * MiB);  // peak + 100 MiB = 200 -> 256
  CHECK(recommendFrom(p, small).oomSeen);
}

TEST_CASE("minimums win over tiny usage") {
  auto p = basePolicy();
  std::vector<Observation> runs = {run(0.01, MiB), run(0.01, MiB), run(0.01, MiB)};
  CHECK(recommendFrom(p, runs).cpuCores == Approx(0.1));
  CHECK(recommendFrom(p, runs).memoryBytes == 64 * MiB);
  p.cpu.min = 0.25;
  p.memory.min = 1024 * MiB;
  CHECK(recommendFrom(p, runs).cpuCores == Approx(0.25));
  CHECK(recommendFrom(p, runs).memoryBytes == 1024 * MiB);
}

TEST_CASE("too little history: no recommendation, but the count and confidence") {
  auto p = basePolicy();
  auto r = recommendFrom(p, {run(0.2, MiB), run(0.2, MiB)});
  CHECK_FALSE(r.ready);
  CHECK(r.runs == 2);
  CHECK(r.confidence == Approx(0.1));
  CHECK(r.cpuCores == 0);
}

TEST_CASE("only the last history.runs runs count") {
  auto p = basePolicy();
  p.history = {3, 3};
  auto r = recommendFrom(p, {run(1.9, MiB), run(0.2, MiB), run(0.2, MiB), run(0.2, MiB)});
  CHECK(r.runs == 3);
  CHECK(r.cpuCores == Approx(0.25));  // the 1.9-core run fell out: 0.2 x 1.15 = 0.23 -> 0.25
}

TEST_CASE("waste is priced at the policy's rates") {
  auto p = basePolicy();
  auto r = recommendFrom(p, {run(0.4, 400 * MiB), run(0.4, 400 * MiB), run(0.4, 400 * MiB)});
  // 2 - 0.5 cores and 4096 - 512 MiB spare for one hour: 1.5 x 0.04 + 3.5 x 0.005.
  CHECK(r.wastedCostPerRun == Approx(0.0775));
}

TEST_CASE("job variables for each work pool type") {
  Recommendation r;
  r.cpuCores = 0.5;
  r.memoryBytes = 512 * MiB;
  CHECK(jobVariablesSnippet("kubernetes", "nightly", r) ==
        "deployments:\n  - name: nightly\n    work_pool:\n      job_variables:\n"
        "        cpu_request: \"500m\"\n        memory_request: \"512Mi\"\n"
        "        memory_limit: \"512Mi\"\n");
  CHECK(jobVariablesSnippet("ecs", "nightly", r).find("        cpu: 512\n        memory: 512\n") !=
        std::string::npos);
  CHECK(jobVariablesSnippet("docker", "nightly", r).find("mem_limit: \"512m\"") != std::string::npos);
  CHECK(jobVariablesSnippet("process", "nightly", r).rfind("# process work pool", 0) == 0);
  CHECK(kubernetesCpu(2) == "2");
  CHECK(kubernetesMemory(2ull << 30) == "2Gi");
}

TEST_CASE("detectors fire on their thresholds and carry their evidence") {
  auto p = basePolicy();
  Observation o = run(0.3, 500 * MiB);
  o.wallNs = 100ull * 1000000000;
  o.cpuNs = 2ull * 1000000000;
  o.sleepNs = 80ull * 1000000000;
  o.networkWaitNs = 60ull * 1000000000;
  o.lockWaitNs = 20ull * 1000000000;  // not past lock_wait's 30 %
  o.blockedIoNs = 5ull * 1000000000;
  o.runqueueNs = 9ull * 1000000000;  // wanted a CPU 11 % of the run, queued 82 % of that
  o.shortLived = 150;
  auto findings = detectAfter(p, o, {});
  std::vector<std::string> kinds;
  for (auto& f: findings) kinds.push_back(f.kind);
  // Use against the allocation is the flow run's to judge, not a task's.
  CHECK(kinds == std::vector<std::string>{"external_wait", "cpu_contention", "idle",
                                          "subprocess_churn"});
  CHECK(findings[0].policy == "test");

  o.oomKills = 1;
  CHECK(detectAfter(p, o, {})[0].kind == "memory_pressure");
  CHECK(detectAfter(p, o, {})[0].severity == "critical");

  p.findings.idle = false;
  p.findings.churn = false;
  for (auto& f: detectAfter(p, o, {})) {
    CHECK(f.kind != "idle");
    CHECK(f.kind != "subprocess_churn");
  }
}

TEST_CASE("a sleep's cause decides its finding: the network and locks get one, timers and "
          "children none") {
  auto p = basePolicy();
  auto kindsOf = [&](const Observation& o) {
    return kindsAmong(p, o, {"external_wait", "lock_wait"});
  };
  Observation o = run(0.01, 100 * MiB);
  o.wallNs = 100ull * 1000000000;
  o.cpuNs = 1ull * 1000000000;
  o.sleepNs = 90ull * 1000000000;

  o.timerNs = o.sleepNs;  // time.sleep(90)
  CHECK(kindsOf(o).empty());
  o.timerNs = 0;
  o.childWaitNs = o.sleepNs;  // subprocess.run(...) of 90 s
  CHECK(kindsOf(o).empty());
  o.childWaitNs = 0;

  o.networkWaitNs = o.sleepNs;
  auto findings = detectAfter(p, o, {});
  auto external = std::find_if(findings.begin(), findings.end(),
                               [](auto& f) { return f.kind == "external_wait"; });
  REQUIRE(external != findings.end());
  CHECK(external->summary.find("90.00 s (90% of the run)") != std::string::npos);
  CHECK(external->evidence[0] == std::pair<std::string, std::string>{"network_wait", "90.00 s"});
  CHECK(external->summary.find(") waiting on ") == std::string::npos);  // no endpoint known
  // The endpoint it waited on longest is named, with its share of the run.
  o.topEndpoint = "10.0.3.7:5432";
  o.topEndpointWaitNs = 68ull * 1000000000;
  findings = detectAfter(p, o, {});
  external = std::find_if(findings.begin(), findings.end(),
                          [](auto& f) { return f.kind == "external_wait"; });
  REQUIRE(external != findings.end());
  CHECK(external->summary.find("; 68.00 s (68%) waiting on 10.0.3.7:5432") != std::string::npos);
  CHECK(external->evidence[3] ==
        std::pair<std::string, std::string>{"endpoint", "10.0.3.7:5432"});
  o.networkWaitNs = 0;
  o.topEndpoint.clear();
  o.topEndpointWaitNs = 0;

  o.lockWaitNs = 31ull * 1000000000;
  CHECK(kindsOf(o) == std::vector<std::string>{"lock_wait"});
  p.findings.lockWait = false;
  CHECK(kindsOf(o).empty());
}

TEST_CASE("a thread task that runs and waits on a lock in turn is GIL contention, not lock_wait") {
  auto p = basePolicy();
  auto kindsOf = [&](const Observation& o) {
    return kindsAmong(p, o, {"gil_contention", "lock_wait"});
  };
  // One of four pure-Python threads on one GIL: a quarter running, the rest waiting.
  Observation o = run(0.25, 100 * MiB);
  o.wallNs = 40ull * 1000000000;
  o.cpuNs = 10ull * 1000000000;
  o.sleepNs = o.lockWaitNs = 29ull * 1000000000;
  o.sharedProcess = true;
  CHECK(kindsOf(o) == std::vector<std::string>{"gil_contention"});
  // A task of its own process waiting the same: a lock, not the GIL's turns.
  o.sharedProcess = false;
  CHECK(kindsOf(o) == std::vector<std::string>{"lock_wait"});
  // Waiting on a lock held by a thread that sleeps: hardly running at all.
  o.sharedProcess = true;
  o.cpuNs = 1ull * 1000000000;
  CHECK(kindsOf(o) == std::vector<std::string>{"lock_wait"});
}

TEST_CASE("slower than usual compares with the median of earlier runs") {
  auto p = basePolicy();
  Observation slow = run(1, MiB);
  slow.wallNs = 31ull * 1000000000;
  std::vector<Observation> earlier(3, run(1, MiB));
  for (size_t i = 0; i < earlier.size(); ++i) earlier[i].wallNs = (10 + 5 * i) * 1000000000ull;
  auto has = [](const std::vector<Finding>& findings, const std::string& kind) {
    for (auto& f: findings) {
      if (f.kind == kind) return true;
    }
    return false;
  };
  CHECK(has(detectAfter(p, slow, earlier), "slower_than_usual"));  // 31 s > 1.5 x 15 s
  slow.wallNs = 22ull * 1000000000;
  CHECK_FALSE(has(detectAfter(p, slow, earlier), "slower_than_usual"));
  earlier.pop_back();  // fewer than min_runs earlier runs: no verdict
  slow.wallNs = 100ull * 1000000000;
  CHECK_FALSE(has(detectAfter(p, slow, earlier), "slower_than_usual"));
}

TEST_CASE("use against the allocation is judged on the flow run's footprint, never on one task") {
  auto p = basePolicy();
  // A task of a flow run with 2 cores and 4 GiB: it alone used little of them.
  Observation task = run(0.3, 500 * MiB);
  for (auto& f: detect(p, task, {}, Scope::TASK_RUN)) {
    CHECK(f.kind != "cpu_over_allocation");
    CHECK(f.kind != "memory_over_allocation");
    CHECK(f.kind != "memory_pressure");
  }
  // The run's processes together: little CPU, memory near the limit.
  Observation whole = run(0.3, 3900 * MiB);
  whole.oomKills = 1;  // a task's: that task has the critical finding
  auto findings = detect(p, whole, {}, Scope::FLOW_RUN);
  std::vector<std::string> kinds;
  for (auto& f: findings) kinds.push_back(f.kind + "/" + f.severity);
  CHECK(kinds == std::vector<std::string>{"cpu_over_allocation/warning", "memory_pressure/warning"});
  CHECK(findings[0].evidence[2] == std::pair<std::string, std::string>{"utilization", "15%"});
  whole.peakRssBytes = 1000 * MiB;
  kinds.clear();
  for (auto& f: detect(p, whole, {}, Scope::FLOW_RUN)) kinds.push_back(f.kind);
  CHECK(kinds == std::vector<std::string>{"cpu_over_allocation", "memory_over_allocation"});
}
