// Malformed policy files: each gets its exact location and message.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "policy/detectors.h"
#include "policy/placement.h"
#include "policy/policy_loader.h"
#include "policy/run_cost.h"

using tracer::policy::loadPolicyText;

namespace {

// A valid file with one policy, whose body lines follow `  - name: p\n`.
std::string withPolicy(const std::string& body) {
  return "version: 1\npolicies:\n  - name: p\n" + body;
}

struct Case {
  const char* what;
  std::string text;
  const char* expected;  // the single diagnostic, as file:line:col: message
};

}  // namespace

TEST_CASE("malformed policy files are reported with their exact location") {
  const Case cases[] = {
      {"empty file", "", "bad.yaml: empty file (expected 'version: 1' and 'policies:')"},
      {"not a mapping", "- a\n- b\n", "bad.yaml:1:1: a policy file must be a mapping, not a list"},
      {"missing version", "policies:\n  - name: p\n", "bad.yaml:1:1: missing 'version: 1'"},
      {"missing policies", "version: 1\n", "bad.yaml:1:1: missing 'policies:'"},
      {"wrong version", "version: 2\npolicies:\n  - name: p\n",
       "bad.yaml:1:10: unsupported version '2' (this Tracer reads version 1)"},
      {"unknown top-level key", "version: 1\npolicies:\n  - name: p\npolicie: []\n",
       "bad.yaml:4:1: unknown key 'policie' in a policy file (did you mean 'policies'?)"},
      {"policies not a list", "version: 1\npolicies: {name: p}\n",
       "bad.yaml:2:11: policies must be a list, not a mapping"},
      {"policy not a mapping", "version: 1\npolicies:\n  - just-a-name\n",
       "bad.yaml:3:5: a policy must be a mapping, not 'just-a-name'"},
      {"policy without a name", "version: 1\npolicies:\n  - match: {}\n",
       "bad.yaml:3:5: a policy needs a name"},
      {"empty name", "version: 1\npolicies:\n  - name: ''\n", "bad.yaml:3:11: name must not be empty"},
      {"name is a list", "version: 1\npolicies:\n  - name: [a]\n",
       "bad.yaml:3:11: name must be a string, not a list"},
      {"misspelt section", withPolicy("    memroy: {min: 1Gi}\n"),
       "bad.yaml:4:5: unknown key 'memroy' in a policy (did you mean 'memory'?)"},
      {"unknown key without a close match", withPolicy("    colour: blue\n"),
       "bad.yaml:4:5: unknown key 'colour' in a policy"},
      {"misspelt match key", withPolicy("    match: {flwo: x}\n"),
       "bad.yaml:4:13: unknown key 'flwo' in match (did you mean 'flow'?)"},
      {"invalid regex", withPolicy("    match: {flow: 'etl-('}\n"),
       "bad.yaml:4:19: match.flow: invalid regular expression: missing ): etl-("},
      {"invalid regex in task", withPolicy("    match: {task: '[a-'}\n"),
       "bad.yaml:4:19: match.task: invalid regular expression: missing ]: [a-"},
      {"regex that is a list", withPolicy("    match: {work_pool: [a]}\n"),
       "bad.yaml:4:24: match.work_pool must be a string, not a list"},
      {"tags not a list", withPolicy("    match: {tags: etl}\n"),
       "bad.yaml:4:19: match.tags must be a list of strings, not 'etl'"},
      {"tag that is a mapping", withPolicy("    match: {tags: [{a: b}]}\n"),
       "bad.yaml:4:20: a tag in match.tags must be a string, not a mapping"},
      {"bad byte quantity", withPolicy("    memory: {min: 2GG}\n"),
       "bad.yaml:4:19: memory.min: '2GG' is not a byte quantity (expected e.g. 512Mi, 2Gi, 1G or 1048576)"},
      {"negative bytes", withPolicy("    memory: {min: -1}\n"),
       "bad.yaml:4:19: memory.min: '-1' is not a byte quantity (expected e.g. 512Mi, 2Gi, 1G or 1048576)"},
      {"fractional bytes", withPolicy("    memory: {round_to: 0.5Mi}\n"),
       "bad.yaml:4:24: memory.round_to: '0.5Mi' must be a whole number of Mi (use a smaller unit)"},
      {"zero rounding", withPolicy("    memory: {round_to: 0}\n"),
       "bad.yaml:4:24: memory.round_to must be more than 0"},
      {"bad cpu quantity", withPolicy("    cpu: {min: 2 cores}\n"),
       "bad.yaml:4:16: cpu.min: '2 cores' is not a CPU quantity (expected cores like 0.5, or millicores like 500m)"},
      {"fractional millicores", withPolicy("    cpu: {round_to: 2.5m}\n"),
       "bad.yaml:4:21: cpu.round_to: '2.5m' is not a CPU quantity (expected cores like 0.5, or millicores like 500m)"},
      {"percentile out of range", withPolicy("    cpu: {percentile: 150}\n"),
       "bad.yaml:4:23: cpu.percentile must be between 1 and 100, not 150"},
      {"percentile not a number", withPolicy("    cpu: {percentile: high}\n"),
       "bad.yaml:4:23: cpu.percentile must be a number, not 'high'"},
      {"negative headroom", withPolicy("    cpu: {headroom: -0.1}\n"),
       "bad.yaml:4:21: cpu.headroom must be between 0 and 10, not -0.1"},
      {"utilisation above one", withPolicy("    memory: {flag_below_utilization: 1.5}\n"),
       "bad.yaml:4:38: memory.flag_below_utilization must be between 0 and 1, not 1.5"},
      {"oom bump below one", withPolicy("    memory: {oom_bump: 0.9}\n"),
       "bad.yaml:4:24: memory.oom_bump must be between 1 and 10, not 0.9"},
      {"history runs not whole", withPolicy("    history: {runs: 2.5}\n"),
       "bad.yaml:4:21: history.runs must be a whole number, not '2.5'"},
      {"history runs zero", withPolicy("    history: {runs: 0}\n"),
       "bad.yaml:4:21: history.runs must be at least 1, not 0"},
      {"min_runs above runs", withPolicy("    history: {runs: 3, min_runs: 5}\n"),
       "bad.yaml:4:14: history.min_runs (5) cannot exceed history.runs (3)"},
      {"bad duration", withPolicy("    findings: {idle: {min_wall: 60 sec}}\n"),
       "bad.yaml:4:33: findings.idle.min_wall: '60 sec' is not a duration (expected e.g. 500ms, 60s, 5m, 1h, 7d or 2w)"},
      {"misspelt detector", withPolicy("    findings: {io_bund: {blocked_io_share_above: 0.3}}\n"),
       "bad.yaml:4:16: unknown key 'io_bund' in findings (did you mean 'io_bound'?)"},
      {"misspelt threshold", withPolicy("    findings: {io_bound: {blocked_share_above: 0.3}}\n"),
       "bad.yaml:4:27: unknown key 'blocked_share_above' in findings.io_bound"},
      {"share above one", withPolicy("    findings: {cpu_contention: {runqueue_share_above: 2}}\n"),
       "bad.yaml:4:55: findings.cpu_contention.runqueue_share_above must be between 0 and 1, not 2"},
      {"churn threshold negative", withPolicy("    findings: {subprocess_churn: {short_lived_above: -5}}\n"),
       "bad.yaml:4:54: findings.subprocess_churn.short_lived_above must be at least 0, not -5"},
      {"task artifact severity", withPolicy("    findings: {task_artifact: urgent}\n"),
       "bad.yaml:4:31: findings.task_artifact must be info, warning, critical or off, not 'urgent'"},
      {"live artifact too often", withPolicy("    findings: {live_artifact: 500ms}\n"),
       "bad.yaml:4:31: findings.live_artifact must be at least 1s, or off"},
      {"live artifact not a duration", withPolicy("    findings: {live_artifact: soon}\n"),
       "bad.yaml:4:31: findings.live_artifact: 'soon' is not a duration (expected e.g. 500ms, 60s, "
       "5m, 1h, 7d or 2w)"},
      {"renamed external_wait threshold",
       withPolicy("    findings: {external_wait: {sleep_share_above: 0.5}}\n"),
       "bad.yaml:4:32: unknown key 'sleep_share_above' in findings.external_wait"},
      {"negative price", withPolicy("    cost: {cpu_core_hour: -1, memory_gib_hour: 0.004}\n"),
       "bad.yaml:4:27: cost.cpu_core_hour must be between 0 and 10, not -1"},
      {"a monthly price", withPolicy("    cost: {cpu_core_hour: 29.5, memory_gib_hour: 0.0045}\n"),
       "bad.yaml:4:27: cost.cpu_core_hour must be between 0 and 10, not 29.5"},
      {"one price of two", withPolicy("    cost: {cpu_core_hour: 0.05}\n"),
       "bad.yaml:4:11: cost needs memory_gib_hour (a price per GiB-hour)"},
      {"a price that is not a number", withPolicy("    cost: {cpu_core_hour: cheap, memory_gib_hour: 0}\n"),
       "bad.yaml:4:27: cost.cpu_core_hour must be a number, not 'cheap'"},
      {"a work pool's missing price",
       withPolicy("    cost:\n      cpu_core_hour: 0.05\n      memory_gib_hour: 0.005\n"
                  "      work_pools: {gpu: {cpu_core_hour: 1.2}}\n"),
       "bad.yaml:7:25: cost.work_pools.gpu needs memory_gib_hour (a price per GiB-hour)"},
      {"an empty currency",
       withPolicy("    cost: {cpu_core_hour: 0.05, memory_gib_hour: 0.005, currency: ''}\n"),
       "bad.yaml:4:67: cost.currency must not be empty"},
      {"placement not a mapping", withPolicy("    placement: off\n"),
       "bad.yaml:4:16: placement must be a mapping, not 'off'"},
      {"misspelt placement key", withPolicy("    placement: {extrenal_share_above: 0.5}\n"),
       "bad.yaml:4:17: unknown key 'extrenal_share_above' in placement (did you mean "
       "'external_share_above'?)"},
      {"negative compute threshold", withPolicy("    placement: {compute_cores_above: -1}\n"),
       "bad.yaml:4:38: placement.compute_cores_above must be between 0 and 1024, not -1"},
      {"GiB per core past any machine",
       withPolicy("    placement: {memory_gib_per_core_above: 2000}\n"),
       "bad.yaml:4:44: placement.memory_gib_per_core_above must be between 0 and 1024, not 2000"},
      {"disk share above one", withPolicy("    placement: {disk_share_above: 1.5}\n"),
       "bad.yaml:4:35: placement.disk_share_above must be between 0 and 1, not 1.5"},
      {"idle share above one", withPolicy("    placement: {idle_cpu_share_below: 2}\n"),
       "bad.yaml:4:39: placement.idle_cpu_share_below must be between 0 and 1, not 2"},
      {"bad placement memory_min", withPolicy("    placement: {memory_min: 2GG}\n"),
       "bad.yaml:4:29: placement.memory_min: '2GG' is not a byte quantity (expected e.g. 512Mi, "
       "2Gi, 1G or 1048576)"},
      {"separate_tasks share above one",
       withPolicy("    findings: {separate_tasks: {light_wall_share_above: 2}}\n"),
       "bad.yaml:4:57: findings.separate_tasks.light_wall_share_above must be between 0 and 1, "
       "not 2"},
      {"duplicate names", "version: 1\npolicies:\n  - name: p\n  - name: p\n",
       "bad.yaml:4:3: duplicate policy name 'p' (first defined at bad.yaml:3)"},
      {"an empty set", "version: 1\npolicies: []\n", "bad.yaml: no policies: the set is empty"},
      {"YAML syntax error", "version: 1\npolicies:\n  - name: [p\n",
       "bad.yaml:4:1: end of sequence flow not found"},
      {"tab indentation", "version: 1\npolicies:\n\t- name: p\n",
       "bad.yaml:3:2: illegal block entry"},
  };
  for (auto& c: cases) {
    SECTION(c.what) {
      auto result = loadPolicyText("bad.yaml", c.text);
      REQUIRE(result.errors.size() == 1);
      CHECK(result.errors[0].text() == c.expected);
    }
  }
}

TEST_CASE("a policy whose default history.runs the history cannot feed is refused where it is") {
  auto none = loadPolicyText("bad.yaml", withPolicy("    cpu: {headroom: 0.2}\n"), 5);
  REQUIRE(none.errors.size() == 1);
  CHECK(none.errors[0].text() == "bad.yaml:3:5: history.runs is 20 by default, more than the 5 "
                                 "runs of each task the history keeps (--history-runs): set "
                                 "history.runs");
  auto onlyMin = loadPolicyText("bad.yaml", withPolicy("    history: {min_runs: 2}\n"), 5);
  REQUIRE(onlyMin.errors.size() == 1);
  CHECK(onlyMin.errors[0].text().rfind("bad.yaml:4:14: history.runs is 20 by default", 0) == 0);
  CHECK(loadPolicyText("ok.yaml", withPolicy("    history: {runs: 5, min_runs: 2}\n"), 5).ok());
}

TEST_CASE("a policy asking more runs than the history keeps is refused where it asks") {
  auto result =
      loadPolicyText("bad.yaml", withPolicy("    history: {runs: 300, min_runs: 250}\n"), 200);
  REQUIRE(result.errors.size() == 2);
  CHECK(result.errors[0].text() ==
        "bad.yaml:4:21: history.runs (300) is more than the 200 runs of each task the history "
        "keeps (--history-runs)");
  CHECK(result.errors[1].text() ==
        "bad.yaml:4:36: history.min_runs (250) is more than the 200 runs of each task the "
        "history keeps (--history-runs)");
  CHECK(result.set.policies.empty());
  CHECK(loadPolicyText("good.yaml", withPolicy("    history: {runs: 200, min_runs: 200}\n"), 200)
            .ok());
}

TEST_CASE("without a sidecar's history, a policy may ask for the most any sidecar keeps") {
  CHECK(loadPolicyText("good.yaml", withPolicy("    history: {runs: 100000}\n")).ok());
  // 2^32 + 1 runs: refused, not read as 1.
  auto result = loadPolicyText("bad.yaml", withPolicy("    history: {runs: 4294967297}\n"));
  REQUIRE(result.errors.size() == 1);
  CHECK(result.errors[0].text() ==
        "bad.yaml:4:21: history.runs (4294967297) is more than the 100000 runs of each task the "
        "history keeps (--history-runs)");
}

TEST_CASE("every problem in a file is reported, not just the first") {
  auto result = loadPolicyText(
      "bad.yaml", withPolicy("    memroy: {}\n    cpu: {percentile: 0, min: x}\n    cost: []\n"));
  REQUIRE(result.errors.size() == 4);
  CHECK(result.errors[0].line == 4);
  CHECK(result.errors[1].text() == "bad.yaml:5:23: cpu.percentile must be between 1 and 100, not 0");
  CHECK(result.errors[3].text() == "bad.yaml:6:11: cost must be a mapping, not a list");
}

TEST_CASE("a policy with errors is not loaded; its valid neighbours are") {
  auto result = loadPolicyText("bad.yaml", "version: 1\npolicies:\n  - name: good\n"
                                           "  - name: broken\n    cpu: {min: lots}\n");
  REQUIRE(result.errors.size() == 1);
  REQUIRE(result.set.policies.size() == 1);
  CHECK(result.set.policies[0].name == "good");
}

TEST_CASE("a valid policy loads with its settings and defaults") {
  auto result = loadPolicyText("good.yaml", withPolicy(
      "    match: {flow: 'etl-.*', tags: [etl]}\n"
      "    cpu: {min: 250m, round_to: 0.25}\n"
      "    memory: {min: 256Mi, round_to: 1G}\n"
      "    findings: {idle: off, subprocess_churn: {short_lived_above: 50}}\n"));
  REQUIRE(result.ok());
  REQUIRE(result.set.policies.size() == 1);
  auto& p = result.set.policies[0];
  CHECK(p.name == "p");
  CHECK(p.origin.line == 3);
  CHECK(p.cpu.min == Approx(0.25));
  CHECK(p.cpu.percentile == 95);  // default
  CHECK(p.memory.min == 256ull << 20);
  CHECK(p.memory.roundTo == 1000000000ull);
  CHECK_FALSE(p.findings.idle);
  CHECK(p.findings.churnShortLivedAbove == 50);
  CHECK(p.match.tags == std::vector<std::string>{"etl"});
}

TEST_CASE("prices: the defaults without cost; a policy's own, per work pool, with their source") {
  auto result = loadPolicyText(
      "prices.yaml",
      "version: 1\npolicies:\n  - name: plain\n    match: {flow: plain}\n"
      "  - name: priced\n    cost:\n      cpu_core_hour: 0.031611\n      memory_gib_hour: 0.004237\n"
      "      currency: EUR\n      work_pools: {big-pool: {cpu_core_hour: 0.05, memory_gib_hour: 0}}\n"
      "  - name: sourced\n    cost: {cpu_core_hour: 0, memory_gib_hour: 0, source: our own racks}\n");
  REQUIRE(result.ok());
  auto& plain = result.set.policies[0].cost;
  CHECK(plain.prices.cpuCoreHour == 0.04048);
  CHECK(plain.source.find("AWS Fargate") != std::string::npos);
  auto& priced = result.set.policies[1].cost;
  CHECK(priced.prices.cpuCoreHour == 0.031611);
  CHECK(priced.prices.memoryGibHour == 0.004237);
  CHECK(priced.currency == "EUR");
  CHECK(priced.pricesFor("big-pool").cpuCoreHour == 0.05);
  CHECK(priced.pricesFor("big-pool").memoryGibHour == 0);
  CHECK(priced.source == "policy file prices.yaml");
  CHECK(result.set.policies[2].cost.source == "our own racks");
}

TEST_CASE("placement thresholds and separate_tasks load; off turns the finding off") {
  auto result = loadPolicyText("good.yaml", withPolicy(
      "    placement: {compute_cores_above: 1.5, memory_gib_per_core_above: 6, memory_min: 2Gi,\n"
      "                disk_share_above: 0.4, external_share_above: 0.6, idle_cpu_share_below: 0.1}\n"
      "    findings: {separate_tasks: {light_wall_share_above: 0.4}}\n"
      "  - name: q\n"
      "    findings: {separate_tasks: off}\n"));
  REQUIRE(result.ok());
  REQUIRE(result.set.policies.size() == 2);
  auto& p = result.set.policies[0].placement;
  CHECK(p.computeCoresAbove == Approx(1.5));
  CHECK(p.memoryGibPerCoreAbove == Approx(6));
  CHECK(p.memoryMinBytes == 2ull << 30);
  CHECK(p.diskShareAbove == Approx(0.4));
  CHECK(p.externalShareAbove == Approx(0.6));
  CHECK(p.idleCpuShareBelow == Approx(0.1));
  CHECK(result.set.policies[0].findings.separateTasks);
  CHECK(result.set.policies[0].findings.separateLightWallShareAbove == Approx(0.4));
  auto& q = result.set.policies[1];
  CHECK_FALSE(q.findings.separateTasks);
  CHECK(q.placement.computeCoresAbove == Approx(0.7));  // the defaults
  CHECK(q.placement.memoryMinBytes == 1ull << 30);
}

// The sidecar without --policies uses a default-made Policy and says it is
// "the defaults of policies/default.yaml": the file must say the same.
TEST_CASE("policies/default.yaml holds the built-in defaults") {
  using namespace tracer::policy;
  auto loaded = loadPolicyFiles({std::string(TRACER_SOURCE_DIR) + "/policies/default.yaml"});
  REQUIRE(loaded.errors.empty());
  REQUIRE(loaded.set.policies.size() == 1);
  const Policy& file = loaded.set.policies[0];
  const Policy builtIn;
  // The history's and the cpu and memory rules' numbers, in one list.
  auto numbers = [](const Policy& p) {
    return std::vector<double>{double(p.history.runs),  double(p.history.minRuns),
                               p.cpu.percentile,        p.cpu.headroom,
                               p.cpu.flagBelowUtilization, p.cpu.min,
                               p.cpu.roundTo,           p.memory.headroom,
                               p.memory.oomBump,        double(p.memory.min),
                               double(p.memory.roundTo), p.memory.flagBelowUtilization};
  };
  CHECK(numbers(file) == numbers(builtIn));
  CHECK(describeFindingRules(file.findings) == describeFindingRules(builtIn.findings));
  CHECK(describePlacementRules(file.placement) == describePlacementRules(builtIn.placement));
  CHECK(describePrices(file.cost, "") == describePrices(builtIn.cost, ""));
  CHECK(describePrices(builtIn.cost, "") ==
        "0.04048 USD per core-hour, 0.004445 USD per GiB-hour (AWS Fargate on-demand, "
        "Linux/x86, us-east-1, read 2026-12-06)");
  CHECK(file.cost.workPools.empty());
}
