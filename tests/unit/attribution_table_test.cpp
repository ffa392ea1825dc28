// The attribution table as a stage: runs measured by a fake collector, handed
// to a fake sink, on a fake clock. No BPF, no SQLite, no Prefect.
#include <capnp/message.h>
#include <catch2/catch.hpp>
#include <sys/syscall.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "observe/attribution_table.h"

using namespace tracer;

namespace {

// Every task used 1 ms of CPU per slot number, and nothing else.
class FakeCollector final: public Collector {
 public:
  kj::StringPtr name() const override { return "fake"; }
  kj::StringPtr degradedReason() const override { return ""; }
  kj::ArrayPtr<const kj::StringPtr> unknownFields() const override { return nullptr; }
  kj::Promise<void> run(ExitListener&) override { return kj::NEVER_DONE; }
  void track(uint32_t, pid_t, kj::Maybe<const ThreadCounters&>, bool) override { ++tracked; }
  bool clonedSince(pid_t, uint64_t) override { return false; }
  TaskTotals finish(uint32_t slot, pid_t) override {
    TaskTotals totals;
    totals.kernel.runtime_ns = slot * 1000000ull;
    return totals;
  }
  void release(uint32_t) override { ++released; }
  TaskTotals lingering(uint32_t) override { return {}; }
  kj::HashMap<uint32_t, TaskSample> sample() override { return {}; }
  uint64_t unattributedLost() override { return 0; }
  CollectorLoad load() override { return {}; }

  uint32_t tracked = 0;
  uint32_t released = 0;
};

// Records what reaches it; its advice is one finding per task.
class FakeSink final: public RunSink {
 public:
  void flowRunOpened(const TaskPlace& where) override { opened.push_back(where.flow); }
  void taskRunFinished(const TaskPlace& place, kj::StringPtr,
                       proto::TaskReport::Builder report) override {
    report.initFindings(1)[0].setKind("advised");
    finishedTasks.push_back(place.task);
  }
  void flowRunFinished(TaskPlace, FlowRunSummary flow,
                       kj::Array<kj::Own<KeptReport>> tasks) override {
    flowState = flow.state.cStr();
    notKept = flow.tasksNotKept;
    for (auto& task: tasks) {
      flowTasks.push_back(task->message.getRoot<proto::TaskReport>().getTaskRunId().cStr());
    }
  }
  void tick() override { ++ticks; }

  std::vector<std::string> opened, finishedTasks, flowTasks;
  std::string flowState;
  uint64_t notKept = 0;
  uint32_t ticks = 0;
};

class FakeClock final: public kj::MonotonicClock {
 public:
  kj::TimePoint now() const override { return time; }
  kj::TimePoint time = kj::origin<kj::TimePoint>() + 1000 * kj::SECONDS;
};

struct Stage {
  FakeCollector collector;
  FakeSink sink;
  FakeClock clock;
  Log log{false};
  AttributionTable table{collector, clock, sink, log};
  PeerCredentials me{getpid(), getuid(), getgid(), true};

  kj::Own<FlowRunHold> open(kj::StringPtr id) {
    capnp::MallocMessageBuilder message;
    auto info = message.initRoot<proto::FlowRunInfo>();
    info.setFlowRunId(id);
    info.setFlowName("etl");
    return table.openFlowRun(info.asReader(), me);
  }

  kj::Own<LiveTask> start(FlowRunHold& flow, kj::StringPtr taskRunId) {
    capnp::MallocMessageBuilder message;
    auto info = message.initRoot<proto::TaskRunInfo>();
    info.setTaskRunId(taskRunId);
    info.setTaskName("load");
    return table.startTask(flow.run(), info.asReader(), syscall(SYS_gettid), me);
  }

  void finish(kj::Own<LiveTask> task) {
    capnp::MallocMessageBuilder message;
    task->finish(proto::RunState::COMPLETED, message.initRoot<proto::TaskReport>());
  }
};

}  // namespace

TEST_CASE("a flow run's artifacts get every task run, past the node's recent reports") {
  Stage stage;
  auto flow = stage.open("run-1");
  for (int i = 0; i < 1500; ++i) stage.finish(stage.start(*flow, kj::str("t", i)));
  flow->finish(proto::RunState::COMPLETED);
  REQUIRE(stage.sink.flowTasks.size() == 1500);
  CHECK(stage.sink.flowTasks.front() == "t0");
  CHECK(stage.sink.flowTasks.back() == "t1499");
  CHECK(stage.sink.flowState == "completed");
  CHECK(stage.sink.notKept == 0);
  CHECK(stage.sink.opened == std::vector<std::string>{"etl"});
  CHECK(stage.table.reportCount(5000) == 1000);  // tracerctl's recent ones: bounded
}

TEST_CASE("the sink's advice is in the report the client reads") {
  Stage stage;
  auto flow = stage.open("run-2");
  auto task = stage.start(*flow, "t");
  capnp::MallocMessageBuilder message;
  auto report = message.initRoot<proto::TaskReport>();
  task->finish(proto::RunState::COMPLETED, report);
  REQUIRE(report.getFindings().size() == 1);
  CHECK(std::string(report.getFindings()[0].getKind().cStr()) == "advised");
  CHECK(report.getCpu().getUserNs() + report.getCpu().getSystemNs() > 0);
  CHECK(stage.sink.finishedTasks == std::vector<std::string>{"load"});
}

TEST_CASE("a task dropped unfinished reaches the sink as crashed, once") {
  Stage stage;
  auto flow = stage.open("run-3");
  { auto task = stage.start(*flow, "lost"); }  // its client went away
  flow->finish(proto::RunState::COMPLETED);
  REQUIRE(stage.sink.flowTasks == std::vector<std::string>{"lost"});
  CHECK(stage.sink.finishedTasks.size() == 1);
  capnp::MallocMessageBuilder message;
  auto status = message.initRoot<proto::SidecarStatus>();
  stage.table.fillStatus(status);
  CHECK(status.getCrashedTasks() == 1);
  CHECK(status.getFinishedTasks() == 0);
  CHECK(status.getLiveTasks() == 0);
}

TEST_CASE("a task that ends after its flow run is not in that run's artifacts") {
  Stage stage;
  auto flow = stage.open("run-4");
  auto early = stage.start(*flow, "early");
  auto late = stage.start(*flow, "late");
  stage.finish(kj::mv(early));
  flow->finish(proto::RunState::FAILED);
  stage.finish(kj::mv(late));
  CHECK(stage.sink.flowTasks == std::vector<std::string>{"early"});
  CHECK(stage.sink.flowState == "failed");
  CHECK(stage.table.reportCount(10) == 2);
}

TEST_CASE("the sink ticks once per sampler pass") {
  Stage stage;
  stage.table.sample();
  stage.table.sample();
  CHECK(stage.sink.ticks == 2);
}
