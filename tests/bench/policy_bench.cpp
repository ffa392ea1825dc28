// Evaluating 100 policies against 10,000 stored observations: for each
// observation, find its policy (99 specific ones miss, a catch-all matches),
// run the detectors against its task's earlier runs and compute the
// recommendation from its history, as the sidecar does at every finish.
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "policy/detectors.h"
#include "policy/matcher.h"
#include "policy/policy_loader.h"
#include "policy/recommendation.h"

using namespace tracer::policy;

int main() {
  std::string text = "version: 1\npolicies:\n";
  for (int i = 0; i < 99; ++i) {
    text += "  - name: team-" + std::to_string(i) + "\n    match: {flow: 'team" +
            std::to_string(i) + "-.*', task: '(extract|load)-[0-9]+', tags: [prod]}\n";
  }
  text += "  - name: default\n    match: {}\n";
  auto loaded = loadPolicyText("bench.yaml", text);
  if (!loaded.ok()) return 1;

  const int tasks = 500, runsPerTask = 20;  // 10,000 observations
  std::vector<std::vector<Observation>> history(tasks);
  for (int t = 0; t < tasks; ++t) {
    for (int r = 0; r < runsPerTask; ++r) {
      Observation o;
      o.flow = "flow-" + std::to_string(t % 37);
      o.task = "transform-" + std::to_string(t);
      o.tags = {"etl", "nightly"};
      o.wallNs = (10 + r % 7) * 1000000000ull;
      o.cpuNs = o.wallNs / 3;
      o.p95Cores = 0.3 + (r % 5) * 0.1;
      o.peakRssBytes = (200 + r * 10) << 20;
      o.sleepNs = o.wallNs / 2;
      o.allocatedCores = 2;
      o.allocatedBytes = 4ull << 30;
      o.finishedAtNs = int64_t(r) * 60000000000;
      history[t].push_back(o);
    }
  }

  auto started = std::chrono::steady_clock::now();
  Matcher matcher(loaded.set);
  size_t findings = 0, ready = 0;
  for (auto& runs: history) {
    for (size_t r = 0; r < runs.size(); ++r) {
      auto& run = runs[r];
      const Policy* policy = matcher.match(Subject{run.flow, run.task, "", "", run.tags});
      findings += detect(*policy, run, kj::arrayPtr(runs.data(), r)).size();
      ready += recommend(*policy, kj::arrayPtr(runs.data(), r + 1)).ready;
    }
  }
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started)
                  .count();
  printf("policy engine: 100 policies x %d observations evaluated in %.1f ms "
         "(%zu findings, %zu recommendations; target < 100 ms)\n",
         tasks * runsPerTask, ms, findings, ready);
  return 0;
}
