// The conductor with the sidecar's own pieces (policies built in, history and
// outbox on real SQLite, a real event loop): advice leaves the RPC path and
// comes at the end of the event loop's turn, at once for a client that waits
// for its report, and before a flow run's artifacts are built.

#include <capnp/message.h>
#include <catch2/catch.hpp>
#include <kj/async-io.h>

#include <string>

#include "contract_json.h"
#include "metrics/prometheus_text.h"
#include "metrics/task_metrics.h"
#include "report/artifact_publisher.h"
#include "runs/advisor.h"
#include "runs/conductor.h"
#include "store/history.h"
#include "store/outbox.h"
#include "temp_directory.h"

using namespace tracer;

namespace {

struct Pieces {
  kj::AsyncIoContext io = kj::setupAsyncIo();
  testing::TempDirectory state;
  Log log{false};
  History history{state.file("history.db"), 20};
  Outbox outbox{state.file("outbox.db")};
  Advisor advisor{log, "", history};
  TaskMetrics taskMetrics{100};
  ArtifactPublisher publisher{log, outbox, false, []() {}, 30ll * 24 * 3600 * 1000000000};
  Conductor conductor{advisor, taskMetrics, publisher, io.provider->getTimer(), log};

  TaskPlace place(kj::StringPtr task) {
    TaskPlace where;
    where.flow = "etl";
    where.task = task.cStr();
    return where;
  }

  // A measured report of a task that used `cpuNs` over a second, kept as its flow run keeps it.
  kj::Own<KeptReport> measured(kj::StringPtr taskRunId, kj::StringPtr task, uint64_t cpuNs) {
    capnp::MallocMessageBuilder scratch;
    auto report = scratch.initRoot<proto::TaskReport>();
    report.setTaskRunId(taskRunId);
    report.setFlowRunId("flow-1");
    report.setTaskName(task);
    report.setWallNs(1000000000);
    report.getCpu().setUserNs(cpuNs);
    report.getMemory().setPeakRssBytes(64 << 20);
    auto kept = kj::refcounted<KeptReport>(report.totalSize().wordCount + 1);
    kept->message.setRoot(report.asReader());
    return kept;
  }

  // Runs what the event loop has queued, to the end of its turn.
  void endTurn() { io.provider->getTimer().afterDelay(0 * kj::NANOSECONDS).wait(io.waitScope); }
};

proto::TaskReport::Reader rootOf(KeptReport& kept) {
  return kept.message.getRoot<proto::TaskReport>().asReader();
}

}  // namespace

TEST_CASE("a finished task run is advised once the event loop's turn is over, not on its way in") {
  Pieces pieces;
  auto kept = pieces.measured("t-1", "load", 500000000);
  pieces.conductor.taskRunFinished(pieces.place("load"), "etl", kj::addRef(*kept), nullptr);
  CHECK(rootOf(*kept).getPolicy() == "");
  CHECK_FALSE(rootOf(*kept).hasRecommendation());

  pieces.endTurn();
  CHECK(rootOf(*kept).getPolicy() == "built-in-default");
  CHECK(rootOf(*kept).hasRecommendation());
  CHECK(pieces.history.recent(TaskHistoryKey{"flow:etl", "load"}, 20).size() == 1);
}

TEST_CASE("a client that waits for its report gets the advice in it at once") {
  Pieces pieces;
  auto kept = pieces.measured("t-1", "load", 500000000);
  capnp::MallocMessageBuilder answerMessage;
  auto answer = answerMessage.initRoot<proto::TaskReport>();
  answer.setTaskRunId("t-1");
  pieces.conductor.taskRunFinished(pieces.place("load"), "etl", kj::addRef(*kept), answer);
  CHECK(answer.asReader().getPolicy() == "built-in-default");
  CHECK(answer.asReader().getRecommendation().getRuns() == 1);
  CHECK(rootOf(*kept).getPolicy() == "built-in-default");
  // Its cost too: 64 MiB for a second at 0.004445 per GiB-hour, and 0.5 s of CPU at 0.04048.
  CHECK(answer.asReader().getCost().getUsed() ==
        Approx((0.5 * 0.04048 + 0.0625 * 0.004445) / 3600));
  CHECK(answer.asReader().getCost().getCurrency() == "USD");
}

TEST_CASE("a flow run's finish resolves once its artifacts, with its tasks' advice, are stored") {
  Pieces pieces;
  auto first = pieces.measured("t-1", "load", 500000000);
  auto second = pieces.measured("t-2", "load", 250000000);
  pieces.conductor.taskRunFinished(pieces.place("load"), "etl", kj::addRef(*first), nullptr);
  pieces.conductor.taskRunFinished(pieces.place("load"), "etl", kj::addRef(*second), nullptr);
  auto tasks = kj::heapArrayBuilder<kj::Own<KeptReport>>(2);
  tasks.add(kj::addRef(*first));
  tasks.add(kj::addRef(*second));
  auto stored = pieces.conductor.flowRunFinished(
      pieces.place(""),
      FlowRunSummary{kj::str("flow-1"), kj::str("etl"), kj::str(), kj::str(),
                     kj::str("completed"), 2000000000},
      pieces.measured("", policy::FLOW_RUN_TASK, 700000000), tasks.finish());
  CHECK(pieces.outbox.list(10).empty());

  // What the flow run's client waits for: its answer comes once they are stored.
  stored.wait(pieces.io.waitScope);
  // The second run's recommendation saw the first: advice went in finish order.
  CHECK(rootOf(*first).getRecommendation().getRuns() == 1);
  CHECK(rootOf(*second).getRecommendation().getRuns() == 2);
  auto artifacts = pieces.outbox.list(10);
  REQUIRE(artifacts.size() >= 2);
  bool tableHasPolicy = false;
  for (auto& artifact: artifacts) {
    if (artifact.type == "table") {
      tableHasPolicy = artifact.body.find("built-in-default") != std::string::npos;
    }
  }
  CHECK(tableHasPolicy);
}

TEST_CASE("what finished before the sidecar stops is advised and published by finishPending") {
  Pieces pieces;
  auto kept = pieces.measured("t-1", "load", 500000000);
  pieces.conductor.taskRunFinished(pieces.place("load"), "etl", kj::addRef(*kept), nullptr);
  pieces.conductor.finishPending();
  CHECK(rootOf(*kept).getPolicy() == "built-in-default");
}

TEST_CASE("a flow run's footprint is advised as the deployment's: job variables are its alone") {
  Pieces pieces;
  for (int run = 1; run <= 3; ++run) {  // the built-in policy's min_runs
    auto task = pieces.measured(kj::str("t-", run), "load", 900000000);
    pieces.conductor.taskRunFinished(pieces.place("load"), "etl", kj::addRef(*task), nullptr);
    auto footprint = pieces.measured("", policy::FLOW_RUN_TASK, 1900000000);
    auto& whole = *footprint;  // its processes together held more than the task
    whole.message.getRoot<proto::TaskReport>().getMemory().setPeakRssBytes(800ull << 20);
    whole.message.getRoot<proto::TaskReport>().getCpu().setP95Cores(1.9);
    auto tasks = kj::heapArrayBuilder<kj::Own<KeptReport>>(1);
    tasks.add(kj::addRef(*task));
    pieces.conductor
        .flowRunFinished(pieces.place(""),
                         FlowRunSummary{kj::str("flow-", run), kj::str("etl"), kj::str(),
                                        kj::str(), kj::str("completed"), 1000000000},
                         kj::addRef(whole), tasks.finish())
        .wait(pieces.io.waitScope);
    auto advised = rootOf(whole).getRecommendation();
    CHECK(advised.getRuns() == uint32_t(run));
    CHECK(advised.getReady() == (run == 3));
    CHECK(rootOf(*task).getRecommendation().getJobVariables().size() == 0);
    if (run < 3) continue;
    // memory: 800 MiB peak x 1.15 headroom, rounded up to 64 MiB; CPU: 1.9 x 1.15.
    CHECK(advised.getMemoryBytes() == 960ull << 20);
    CHECK(advised.getCpuCores() == Approx(2.2));
    CHECK(std::string(advised.getJobVariables().cStr()).find("960 MiB") != std::string::npos);
  }
  CHECK(pieces.history.recent(TaskHistoryKey{"flow:etl", "(flow run)"}, 20).size() == 3);
  auto artifacts = pieces.outbox.list(10);
  bool headline = false;
  for (auto& artifact: artifacts) {
    headline = headline ||
               artifact.body.find("together need about **2.20 cores** and **960 MiB**") !=
                   std::string::npos;
  }
  CHECK(headline);
}

TEST_CASE("a flow run's cost is its footprint's, not its tasks' views of the allocation added up") {
  Pieces pieces;
  // 4 cores and 8 GiB for a second; two tasks side by side for all of it.
  auto allocate = [](KeptReport& kept) {
    auto allocation = kept.message.getRoot<proto::TaskReport>().getAllocation();
    allocation.setCpuCores(4);
    allocation.setMemoryBytes(8ull << 30);
  };
  auto first = pieces.measured("t-1", "load", 500000000);
  auto second = pieces.measured("t-2", "load", 500000000);
  allocate(*first);
  allocate(*second);
  pieces.conductor.taskRunFinished(pieces.place("load"), "etl", kj::addRef(*first), nullptr);
  pieces.conductor.taskRunFinished(pieces.place("load"), "etl", kj::addRef(*second), nullptr);
  auto footprint = pieces.measured("", policy::FLOW_RUN_TASK, 1500000000);
  allocate(*footprint);
  footprint->message.getRoot<proto::TaskReport>().getMemory().setPeakRssBytes(2ull << 30);
  auto tasks = kj::heapArrayBuilder<kj::Own<KeptReport>>(2);
  tasks.add(kj::addRef(*first));
  tasks.add(kj::addRef(*second));
  pieces.conductor
      .flowRunFinished(pieces.place(""),
                       FlowRunSummary{kj::str("flow-1"), kj::str("etl"), kj::str(), kj::str(),
                                      kj::str("completed"), 1000000000},
                       kj::addRef(*footprint), tasks.finish())
      .wait(pieces.io.waitScope);
  // At the built-in prices (0.04048 per core-hour, 0.004445 per GiB-hour), for 1/3600 h:
  // allocated (4 x 0.04048 + 8 x 0.004445) / 3600 = 0.19748 / 3600
  // used (1.5 x 0.04048 + 2 x 0.004445) / 3600 = 0.06961 / 3600
  auto flowCost = rootOf(*footprint).getCost();
  CHECK(flowCost.getAllocated() == Approx(0.19748 / 3600));
  CHECK(flowCost.getUsed() == Approx(0.06961 / 3600));
  CHECK(flowCost.getWaste() == Approx((0.19748 - 0.06961) / 3600));
  CHECK(flowCost.getCurrency() == "USD");
  // Each task's view is the whole allocation over its second: the same
  // figure, which twice over would be twice what the run cost.
  CHECK(rootOf(*first).getCost().getAllocated() == Approx(0.19748 / 3600));
  // used: 0.5 s of CPU and its 64 MiB peak for a second
  CHECK(rootOf(*first).getCost().getUsed() ==
        Approx((0.5 * 0.04048 + 0.0625 * 0.004445) / 3600));
  // /metrics sums the flow run's cost under task="(flow run)", apart from its tasks'.
  PrometheusText text;
  pieces.taskMetrics.renderMetrics(text);
  auto rendered = std::string(text.finish().cStr());
  CHECK(rendered.find("tracer_cost_allocated_total{flow=\"etl\",task=\"(flow run)\",currency=\"USD\"} 5.4855") !=
        std::string::npos);
}

TEST_CASE("a run whose use is not known has no cost: null, with the reason, not 0") {
  Pieces pieces;
  auto kept = pieces.measured("t-1", "load", 500000000);
  kept->message.getRoot<proto::TaskReport>().initUnknown(1).set(0, "cpu.user_ns");
  pieces.conductor.taskRunFinished(pieces.place("load"), "etl", kj::addRef(*kept), nullptr);
  pieces.conductor.finishPending();
  auto json = toContractJson(rootOf(*kept));
  CHECK(std::string(json.cStr()).find("\"allocated\":null,\"used\":null,\"waste\":null") !=
        std::string::npos);
  bool said = false;
  for (auto why: rootOf(*kept).getUnknownWhy()) {
    said = said || why == "cost: what the run used is not known (its CPU time or its memory peak)";
  }
  CHECK(said);
}

TEST_CASE("at a flow run's finish its tasks' profiles decide whether they belong on two work "
          "pools, before its record is kept") {
  Pieces pieces;
  constexpr int64_t START = 1800000000ll * 1000000000ll;  // wall clock
  constexpr uint64_t S = 1000000000;
  // crunch: 0-10 s at 1 core (compute); fetch: 10-20 s, 8 s of it waiting on
  // the network (external). fetch has the allocation alone 10 of 20 s: 50%.
  auto crunch = pieces.measured("t-1", "crunch", 10 * S);
  auto fetch = pieces.measured("t-2", "fetch", S / 10);
  for (auto* kept: {crunch.get(), fetch.get()}) {
    auto report = kept->message.getRoot<proto::TaskReport>();
    report.setWallNs(10 * S);
    report.setStartTimeNs(kept == crunch.get() ? START : START + int64_t(10 * S));
  }
  fetch->message.getRoot<proto::TaskReport>().getSched().getSleepByCause().setNetworkNs(8 * S);
  pieces.conductor.taskRunFinished(pieces.place("crunch"), "etl", kj::addRef(*crunch), nullptr);
  pieces.conductor.taskRunFinished(pieces.place("fetch"), "etl", kj::addRef(*fetch), nullptr);
  auto footprint = pieces.measured("", policy::FLOW_RUN_TASK, 10 * S);
  footprint->message.getRoot<proto::TaskReport>().setWallNs(20 * S);
  auto tasks = kj::heapArrayBuilder<kj::Own<KeptReport>>(2);
  tasks.add(kj::addRef(*crunch));
  tasks.add(kj::addRef(*fetch));
  pieces.conductor
      .flowRunFinished(pieces.place(""),
                       FlowRunSummary{kj::str("flow-1"), kj::str("etl"), kj::str(), kj::str(),
                                      kj::str("completed"), 20 * S},
                       kj::addRef(*footprint), tasks.finish())
      .wait(pieces.io.waitScope);
  CHECK(rootOf(*crunch).getProfile() == "compute");
  CHECK(rootOf(*fetch).getProfile() == "external");
  CHECK(std::string(crunch->row.cStr()).find("\"profile\":\"compute\"") != std::string::npos);
  auto whole = rootOf(*footprint);
  REQUIRE(whole.getFindings().size() == 1);
  CHECK(whole.getFindings()[0].getKind() == "separate_tasks");
  REQUIRE(whole.getPlacement().getGroups().size() == 2);
  CHECK(whole.getPlacement().getGroups()[1].getTasks()[0] == "fetch");
  // The flow run's record has it as its top finding: advised before it was kept.
  CHECK(std::string(footprint->row.cStr()).find("\"top_finding\":\"separate_tasks\"") !=
        std::string::npos);
  bool placement = false;
  for (auto& artifact: pieces.outbox.list(10)) {
    placement = placement || artifact.body.find("### Placement") != std::string::npos;
  }
  CHECK(placement);
}

TEST_CASE("the built-in policy looks at no more runs than the history keeps") {
  kj::AsyncIoContext io = kj::setupAsyncIo();
  testing::TempDirectory state;
  Log log{false};
  History history{state.file("history.db"), 2};  // --history-runs 2: fewer than its 20 and 3
  Advisor advisor{log, "", history};
  TaskPlace place;
  place.flow = "etl";
  place.task = "load";
  for (uint32_t run = 1; run <= 2; ++run) {
    capnp::MallocMessageBuilder message;
    auto report = message.initRoot<proto::TaskReport>();
    report.setTaskName("load");
    report.setWallNs(1000000000);
    report.getCpu().setUserNs(500000000);
    report.getMemory().setPeakRssBytes(64 << 20);
    advisor.advise(place, report);
    CHECK(report.getRecommendation().getRuns() == run);
    CHECK(report.getRecommendation().getMinRuns() == 2);
    CHECK(report.getRecommendation().getReady() == (run == 2));
    CHECK(report.getRecommendation().getConfidence() == Approx(run / 2.0));
  }
}
