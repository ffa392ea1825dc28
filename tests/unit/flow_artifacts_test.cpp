// What a flow run's artifacts show of its tasks (report/flow_artifacts.h).
#include <capnp/compat/json.h>
#include <capnp/message.h>
#include <catch2/catch.hpp>

#include <string>
#include <utility>
#include <vector>

#include "policy/observation.h"
#include "report/flow_artifacts.h"

namespace {

// The table artifact's rows, as Prefect stores them (ArtifactCreate.data).
std::string tableData(const kj::Vector<tracer::Artifact>& artifacts) {
  for (auto& artifact: artifacts) {
    if (artifact.type != "table") continue;
    capnp::MallocMessageBuilder message;
    auto body = message.initRoot<capnp::JsonValue>();
    capnp::JsonCodec().decodeRaw(artifact.body, body);
    for (auto field: body.getObject()) {
      if (kj::StringPtr(field.getName()) == "data") return field.getValue().getString().cStr();
    }
  }
  return "";
}

// A flow run's footprint that nothing has advised yet.
struct Footprint {
  capnp::MallocMessageBuilder message;
  tracer::proto::TaskReport::Builder report = message.initRoot<tracer::proto::TaskReport>();
  operator tracer::proto::TaskReport::Reader() { return report.asReader(); }
};

std::string markdown(const kj::Vector<tracer::Artifact>& artifacts) {
  for (auto& artifact: artifacts) {
    if (artifact.type == "markdown") return artifact.body.cStr();
  }
  return "";
}

}  // namespace

TEST_CASE("a field a task's report does not know is null in the table and ? in the markdown") {
  capnp::MallocMessageBuilder message;
  auto report = message.initRoot<tracer::proto::TaskReport>();
  report.setTaskName("late");
  report.setTaskRunId("t1");
  report.getNet().setTxBytes(0);  // a zero that was never measured
  report.getIo().setWriteBytes(20 << 20);
  report.setUnobservedNs(300000);  // 0.3 ms: in microseconds, not 0.000 s
  auto unknown = report.initUnknown(2);
  unknown.set(0, "net.tx_bytes");
  unknown.set(1, "memory.peak_rss_bytes");
  tracer::FlowRunSummary flow{kj::str("f1"), kj::str("etl"), kj::str(), kj::str(),
                              kj::str("COMPLETED"), 300000000};
  tracer::proto::TaskReport::Reader tasks[] = {report.asReader()};
  auto artifacts = tracer::renderFlowArtifacts(flow, Footprint(), tasks);

  auto rows = tableData(artifacts);
  CHECK(rows.find("\"tx_bytes\":null") != std::string::npos);
  CHECK(rows.find("\"peak_rss_bytes\":null") != std::string::npos);
  CHECK(rows.find("\"write_bytes\":20971520") != std::string::npos);
  CHECK(rows.find("\"rx_bytes\":0") != std::string::npos);  // known, and zero
  CHECK(rows.find("\"unobserved_s\":0.0003") != std::string::npos);
  CHECK(rows.find("\"unknown\":[\"peak_rss_bytes\",\"tx_bytes\"]") != std::string::npos);
  auto md = markdown(artifacts);
  CHECK(md.find("| ? |") != std::string::npos);     // the peak memory column
  CHECK(md.find("| ? / 0 |") != std::string::npos); // sent unknown, received 0
  CHECK(md.find("? = not known for that task") != std::string::npos);
}

TEST_CASE("a row made when its task was advised goes into the table as made; others are made here") {
  capnp::MallocMessageBuilder message;
  auto reports = message.initRoot<tracer::proto::TaskReport>();
  reports.setTaskName("advised");
  capnp::MallocMessageBuilder other;
  auto lingering = other.initRoot<tracer::proto::TaskReport>();
  lingering.setTaskName("updated since");
  tracer::FlowRunSummary flow{kj::str("f2"), kj::str("etl"), kj::str(), kj::str(),
                              kj::str("COMPLETED"), 1000000};
  tracer::proto::TaskReport::Reader tasks[] = {reports.asReader(), lingering.asReader()};
  kj::StringPtr rows[] = {"{\"task\":\"as made\"}", nullptr};
  auto data = tableData(tracer::renderFlowArtifacts(flow, Footprint(), tasks, rows));
  CHECK(data.find("{\"task\":\"as made\"}") != std::string::npos);
  CHECK(data.find("\"task\":\"updated since\"") != std::string::npos);
  CHECK(data.find("\"task\":\"advised\"") == std::string::npos);
}

TEST_CASE("where the time went: a pie of the run's thread time and a row per task, ? where a "
          "cause is unknown") {
  capnp::MallocMessageBuilder first, second;
  auto waiting = first.initRoot<tracer::proto::TaskReport>();
  waiting.setTaskName("fetch");
  waiting.getCpu().setUserNs(750000000);
  waiting.getCpu().setSystemNs(250000000);
  waiting.getSched().setSleepNs(2500000000);
  waiting.getSched().getSleepByCause().setNetworkNs(2000000000);
  waiting.getSched().getSleepByCause().setLockNs(500000000);
  auto late = second.initRoot<tracer::proto::TaskReport>();
  late.setTaskName("late");
  late.getSched().setSleepNs(3000000000);
  late.initUnknown(1).set(0, "sched.sleep_by_cause");
  tracer::FlowRunSummary flow{kj::str("f1"), kj::str("etl"), kj::str(), kj::str(),
                              kj::str("COMPLETED"), 5000000000};
  tracer::proto::TaskReport::Reader tasks[] = {waiting.asReader(), late.asReader()};
  auto md = markdown(tracer::renderFlowArtifacts(flow, Footprint(), tasks));
  // The markdown is a JSON string in the artifact's body: its quotes escaped.
  CHECK(md.find("### Where the time went") != std::string::npos);
  CHECK(md.find("pie showData\\n  \\\"on-CPU\\\" : 1.00\\n  \\\"network\\\" : 2.00\\n"
                "  \\\"lock\\\" : 0.50\\n  \\\"asleep, cause unknown\\\" : 3.00\\n```") !=
        std::string::npos);
  // Each part keeps its colour whichever parts are shown: network's is blue as pie2.
  CHECK(md.find("\\\"pie2\\\": \\\"#2563eb\\\"") != std::string::npos);
  CHECK(md.find("| fetch | 1.00 | 0.00 | 0.00 | 2.00 | 0.50 | 0.00 | 0.00 | 0.00 | 0.00 |") !=
        std::string::npos);
  CHECK(md.find("| late | 0.00 | 0.00 | 0.00 | ? | ? | ? | ? | ? | ? |") != std::string::npos);
}

TEST_CASE("a task whose finding reached its policy's task_artifact gets an artifact on its task "
          "run's page") {
  capnp::MallocMessageBuilder first, second, third;
  auto flagged = first.initRoot<tracer::proto::TaskReport>();
  flagged.setTaskName("Load Orders");
  flagged.setTaskRunId("0f5e5a4c-6a7b-4c1d-9e2f-3a4b5c6d7e8f");
  flagged.setTaskArtifact(true);
  auto finding = flagged.initFindings(1)[0];
  finding.setKind("memory_pressure");
  finding.setSeverity("critical");
  finding.setSummary("1 process(es) killed by the OOM killer");
  auto quiet = second.initRoot<tracer::proto::TaskReport>();
  quiet.setTaskName("extract");
  quiet.setTaskRunId("1f5e5a4c-6a7b-4c1d-9e2f-3a4b5c6d7e8f");
  auto notPrefects = third.initRoot<tracer::proto::TaskReport>();
  notPrefects.setTaskName("make");
  notPrefects.setTaskRunId("tracerctl-1");  // no Prefect task run to show it on
  notPrefects.setTaskArtifact(true);
  tracer::FlowRunSummary flow{kj::str("2f5e5a4c-6a7b-4c1d-9e2f-3a4b5c6d7e8f"), kj::str("etl"),
                              kj::str(), kj::str(), kj::str("COMPLETED"), 5000000000};
  tracer::proto::TaskReport::Reader tasks[] = {flagged.asReader(), quiet.asReader(),
                                               notPrefects.asReader()};
  auto artifacts = tracer::renderFlowArtifacts(flow, Footprint(), tasks);
  REQUIRE(artifacts.size() == 3);
  auto& own = artifacts[2];
  CHECK(own.key == "tracer-etl-task-load-orders");
  CHECK(own.type == "markdown");
  std::string body = own.body.cStr();
  CHECK(body.find("\"task_run_id\":\"0f5e5a4c-6a7b-4c1d-9e2f-3a4b5c6d7e8f\"") != std::string::npos);
  CHECK(body.find("\"flow_run_id\":\"2f5e5a4c-6a7b-4c1d-9e2f-3a4b5c6d7e8f\"") != std::string::npos);
  CHECK(body.find("`memory_pressure` in **Load Orders**") != std::string::npos);
  CHECK(body.find("### Where the time went") != std::string::npos);
  // The flow run's own artifacts name no task run.
  CHECK(std::string(artifacts[0].body.cStr()).find("task_run_id") == std::string::npos);
}

TEST_CASE("the deployment's recommendation is the flow run's footprint's, not one task's") {
  Footprint whole;
  whole.report.setTaskName(tracer::policy::FLOW_RUN_TASK);
  whole.report.getCpu().setP95Cores(1.4);
  whole.report.getCpu().setMaxCores(1.9);
  whole.report.getMemory().setPeakRssBytes(850ull << 20);
  whole.report.getAllocation().setCpuCores(2);
  whole.report.getAllocation().setMemoryBytes(4096ull << 20);
  whole.report.getAllocation().setSource("cgroup");
  auto r = whole.report.initRecommendation();
  r.setReady(true);
  r.setRuns(3);
  r.setMinRuns(3);
  r.setCpuCores(1.7);
  r.setMemoryBytes(1024ull << 20);
  r.setJobVariables("deployments:\n  - name: nightly\n");
  auto finding = whole.report.initFindings(1)[0];
  finding.setKind("memory_over_allocation");
  finding.setSeverity("warning");
  finding.setSummary("the flow run's processes held at most 850 MiB of 4096 MiB allocated");
  capnp::MallocMessageBuilder message;
  auto task = message.initRoot<tracer::proto::TaskReport>();
  task.setTaskName("slow-service");
  auto own = task.initRecommendation();  // what the task alone needs
  own.setReady(true);
  own.setCpuCores(0.1);
  own.setMemoryBytes(64ull << 20);
  tracer::FlowRunSummary flow{kj::str("f1"), kj::str("etl"), kj::str(), kj::str(),
                              kj::str("COMPLETED"), 5000000000};
  tracer::proto::TaskReport::Reader tasks[] = {task.asReader()};
  auto md = markdown(tracer::renderFlowArtifacts(flow, whole, tasks));
  CHECK(md.find("The flow run's processes together need about **1.70 cores** and **1024 MiB** "
                "(they had 2.00 cores and 4096 MiB, cgroup)") != std::string::npos);
  CHECK(md.find("held at most **850 MiB** and used **1.40 cores**") != std::string::npos);
  CHECK(md.find("deployments:\\n  - name: nightly") != std::string::npos);
  CHECK(md.find("0.10 cores") == std::string::npos);
  CHECK(md.find("`memory_over_allocation` in the flow run (its processes together)") !=
        std::string::npos);

  // Before min_runs runs: what this run used, and how many runs are still needed.
  r.setReady(false);
  r.setRuns(1);
  md = markdown(tracer::renderFlowArtifacts(flow, whole, tasks));
  CHECK(md.find("needs 3 such runs (the policy's history.min_runs); it has 1.") !=
        std::string::npos);
  // Unmeasured: said, with the reason; no figure.
  whole.report.initUnknown(1).set(0, "memory.peak_rss_bytes");
  whole.report.initUnknownWhy(1).set(0, "flow run footprint: no sampling of its processes");
  md = markdown(tracer::renderFlowArtifacts(flow, whole, tasks));
  CHECK(md.find("Not known: what the flow run's processes used together could not be measured "
                "(flow run footprint: no sampling of its processes)") != std::string::npos);
  CHECK(md.find("held at most **850 MiB**") == std::string::npos);
}

TEST_CASE("the cost section: this run's from its footprint, the last runs', the saving a month") {
  Footprint whole;
  whole.report.setTaskName(tracer::policy::FLOW_RUN_TASK);
  whole.report.setPolicy("default");
  whole.report.setWallNs(1800ull * 1000000000);
  whole.report.getAllocation().setCpuCores(2);
  whole.report.getAllocation().setMemoryBytes(4096ull << 20);
  auto cost = whole.report.getCost();
  cost.setAllocated(0.05);
  cost.setUsed(0.0225);
  cost.setWaste(0.0275);
  cost.setCpuCoreHour(0.04);
  cost.setMemoryGibHour(0.005);
  cost.setCurrency("USD");
  cost.setPriceSource("our own racks");
  auto r = whole.report.initRecommendation();
  r.setReady(true);
  r.setRuns(3);
  r.setMinRuns(3);
  r.setSpanHours(2);
  r.setWastedCostPerRun(0.0700625);
  r.setRunsPerMonth(730);
  r.setRecentUsedCost(0.075);
  r.setRecentAllocatedCost(0.3);
  tracer::FlowRunSummary flow{kj::str("f1"), kj::str("etl"), kj::str(), kj::str(),
                              kj::str("COMPLETED"), 1800ull * 1000000000};
  auto md = markdown(tracer::renderFlowArtifacts(flow, whole, nullptr));
  CHECK(md.find("### Cost") != std::string::npos);
  CHECK(md.find("This run had **0.0500 USD** allocated (2.00 cores and 4096 MiB for 1800.00 s) "
                "and used **0.0225 USD** of it: **0.0275 USD** (55%) was not used.") !=
        std::string::npos);
  CHECK(md.find("Its last 3 measured runs used 0.0750 USD of 0.300 USD allocated") != std::string::npos);
  // 0.0700625 a run x 730 runs a month = 51.145625
  CHECK(md.find("would save about **0.0701 USD a run**; **51.15 USD a month** at the observed "
                "rate of 730 runs a month (3 runs over 2.00 h)") != std::string::npos);
  CHECK(md.find("Prices: 0.04 USD per core-hour and 0.005 USD per GiB-hour (our own racks; "
                "policy `default`)") != std::string::npos);

  r.setRunsPerMonth(0);
  md = markdown(tracer::renderFlowArtifacts(flow, whole, nullptr));
  CHECK(md.find("a month: not known (its runs so far span no time)") != std::string::npos);

  // Unknown: said, with the reason, and no figure.
  auto unknown = whole.report.initUnknown(1);
  unknown.set(0, "cost.used");
  whole.report.initUnknownWhy(1).set(0, "cost: no policy applies, so no prices do");
  md = markdown(tracer::renderFlowArtifacts(flow, whole, nullptr));
  CHECK(md.find("### Cost\\n\\nNot known: no policy applies, so no prices do.") != std::string::npos);
  CHECK(md.find("USD") == std::string::npos);
}

// One group of a flow run's Placement: its kind, tasks with their profiles, needs.
struct GroupSpec {
  const char* kind;
  std::vector<std::pair<const char*, const char*>> tasks;
  double cpuCores;
  uint64_t memoryBytes;
  const char* jobVariables;
};

// The flow run's footprint with a Placement of these groups: the deployment
// needs 2.0 GiB per core, its allocation has 4.0.
void setPlacement(Footprint& whole, const std::vector<GroupSpec>& specs) {
  whole.report.setTaskName(tracer::policy::FLOW_RUN_TASK);
  auto placement = whole.report.getPlacement();
  placement.setNeededGibPerCore(2.0);
  placement.setAllocatedGibPerCore(4.0);
  auto groups = placement.initGroups(specs.size());
  for (size_t i = 0; i < specs.size(); ++i) {
    auto& spec = specs[i];
    groups[i].setKind(spec.kind);
    auto tasks = groups[i].initTasks(spec.tasks.size());
    auto profiles = groups[i].initProfiles(spec.tasks.size());
    for (size_t j = 0; j < spec.tasks.size(); ++j) {
      tasks.set(j, spec.tasks[j].first);
      profiles.set(j, spec.tasks[j].second);
    }
    groups[i].setCpuCores(spec.cpuCores);
    groups[i].setMemoryBytes(spec.memoryBytes);
    groups[i].setJobVariables(spec.jobVariables);
  }
}

TEST_CASE("a flow run split by shape names each group's shape in its Placement section") {
  Footprint whole;
  setPlacement(whole, {{"compute", {{"crunch", "compute"}}, 2.1, 1216ull << 20, ""},
                       {"memory", {{"cache", "memory"}}, 0.35, 14144ull << 20, ""}});
  tracer::FlowRunSummary flow{kj::str("f1"), kj::str("etl"), kj::str(), kj::str(),
                              kj::str("COMPLETED"), 100000000000};
  auto md = markdown(tracer::renderFlowArtifacts(flow, whole, {}));
  CHECK(md.find("This run's compute-bound and memory-bound tasks need machines of different "
                "shapes") != std::string::npos);
  // 1216 MiB / 2.1 cores = 0.6 GiB per core; 14144 MiB / 0.35 cores = 39.5.
  CHECK(md.find("**Compute-bound tasks, a work pool of 0.6 GiB per core (compute-optimised)**: "
                "crunch (compute). At most **2.10 cores** and **1216 MiB**") != std::string::npos);
  CHECK(md.find("**Memory-bound tasks, a work pool of 39.5 GiB per core (memory-optimised)**: "
                "cache (memory). At most **0.35 cores** and **14144 MiB**") != std::string::npos);
  CHECK(md.find("light tasks") == std::string::npos);
}

TEST_CASE("a flow run whose tasks belong on two work pools gets a Placement section") {
  Footprint whole;
  setPlacement(whole, {{"heavy", {{"crunch", "compute"}, {"train", "compute+disk"}}, 3.8,
                        2944ull << 20, "deployments:\n  - name: nightly-heavy\n"},
                       {"light", {{"fetch_orders", "external"}}, 0.15, 256ull << 20,
                        "deployments:\n  - name: nightly-light\n"}});
  auto placement = whole.report.getPlacement();
  capnp::MallocMessageBuilder message;
  auto task = message.initRoot<tracer::proto::TaskReport>();
  task.setTaskName("crunch");
  task.setProfile("compute");
  tracer::FlowRunSummary flow{kj::str("f1"), kj::str("etl"), kj::str(), kj::str(),
                              kj::str("COMPLETED"), 100000000000};
  tracer::proto::TaskReport::Reader tasks[] = {task.asReader()};
  auto md = markdown(tracer::renderFlowArtifacts(flow, whole, tasks));
  auto at = md.find("### Placement");
  REQUIRE(at != std::string::npos);
  CHECK(md.find("### Recommendation") < at);
  CHECK(at < md.find("### Tasks"));
  CHECK(md.find("**Heavy tasks, a larger work pool**: crunch (compute), train (compute+disk). "
                "At most **3.80 cores** and **2944 MiB** at once") != std::string::npos);
  // markdown escapes the name's _ (markdownName), and the body is JSON: fetch\\_orders.
  CHECK(md.find("**Light tasks, a small work pool**: fetch\\\\_orders (external). At most **0.15 "
                "cores** and **256 MiB** at once") != std::string::npos);
  CHECK(md.find("```yaml\\ndeployments:\\n  - name: nightly-light\\n```") != std::string::npos);
  CHECK(md.find("Shape: the deployment needs 2.0 GiB per core (compute-optimised); its "
                "allocation has 4.0 GiB per core (general purpose).") != std::string::npos);
  CHECK(md.find("| compute / - |") != std::string::npos);  // the task's profile in its row

  // Before the deployment's recommendation is ready: its shape is not known, not 0.
  placement.setNeededGibPerCore(0);
  md = markdown(tracer::renderFlowArtifacts(flow, whole, tasks));
  CHECK(md.find("the deployment needs a shape not known yet") != std::string::npos);
  CHECK(md.find("0.0 GiB per core") == std::string::npos);

  // No groups, no section.
  Footprint plain;
  md = markdown(tracer::renderFlowArtifacts(flow, plain, tasks));
  CHECK(md.find("### Placement") == std::string::npos);
}
