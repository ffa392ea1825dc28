// The attribution table as a stage: runs measured by a fake collector, handed
// to a fake sink, on a fake clock. No BPF, no SQLite, no Prefect.
#include <capnp/message.h>
#include <catch2/catch.hpp>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <vector>

#include "proc_files.h"
#include "process_rss.h"

#include "fake_stage.h"
#include "observe/attribution_table.h"

using namespace tracer;
using tracer::testing::FakeCollector;
using tracer::testing::FakeSink;

namespace {

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

  kj::Own<LiveTask> start(FlowRunHold& flow, kj::StringPtr taskRunId, kj::StringPtr nestedIn = "",
                          pid_t tid = syscall(SYS_gettid)) {
    capnp::MallocMessageBuilder message;
    auto info = message.initRoot<proto::TaskRunInfo>();
    info.setTaskRunId(taskRunId);
    info.setTaskName("load");
    info.setNestedIn(nestedIn);
    return table.startTask(flow.run(), info.asReader(), HostThread{tid, getpid()}, me);
  }

  // Finishes the task and returns a copy of its report.
  kj::Own<capnp::MallocMessageBuilder> reportOf(kj::Own<LiveTask> task) {
    auto message = kj::heap<capnp::MallocMessageBuilder>();
    task->finish(proto::RunState::COMPLETED, message->initRoot<proto::TaskReport>());
    return message;
  }

  // A task whose client read its thread `ago` before the registration.
  // `mark`: the start its client marked in the kernel (0: none).
  // `slept`: the thread left a CPU of its own accord since the reading.
  kj::Own<LiveTask> startRead(FlowRunHold& flow, kj::StringPtr taskRunId, kj::Duration ago,
                              uint32_t mark = 0, bool slept = false) {
    capnp::MallocMessageBuilder message;
    auto info = message.initRoot<proto::TaskRunInfo>();
    info.setTaskRunId(taskRunId);
    auto baseline = info.initBaseline();
    baseline.setStartMark(mark);
    baseline.setAtMonotonicNs((clock.now() - ago - kj::origin<kj::TimePoint>()) / kj::NANOSECONDS);
    baseline.setProcessHiwaterBytes(1 << 20);
    baseline.setVoluntarySwitches(KJ_ASSERT_NONNULL(readVoluntarySwitches(syscall(SYS_gettid))) -
                                  (slept ? 1 : 0));
    return table.startTask(flow.run(), info.asReader(),
                           HostThread{pid_t(syscall(SYS_gettid)), getpid()}, me);
  }

  void finish(kj::Own<LiveTask> task) {
    capnp::MallocMessageBuilder message;
    task->finish(proto::RunState::COMPLETED, message.initRoot<proto::TaskReport>());
  }

  // Finishes the task; returns its report's unknown fields and reasons.
  std::pair<std::vector<std::string>, std::vector<std::string>> unknownOf(kj::Own<LiveTask> task,
                                                                          uint64_t& unobservedNs) {
    capnp::MallocMessageBuilder message;
    auto report = message.initRoot<proto::TaskReport>();
    task->finish(proto::RunState::COMPLETED, report);
    std::vector<std::string> fields, why;
    for (auto field: report.getUnknown()) fields.push_back(field.cStr());
    for (auto line: report.getUnknownWhy()) why.push_back(line.cStr());
    unobservedNs = report.getUnobservedNs();
    return {fields, why};
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
  auto late = stage.start(*flow, "late", "", getpid() + 1);
  stage.finish(kj::mv(early));
  flow->finish(proto::RunState::FAILED);
  stage.finish(kj::mv(late));
  CHECK(stage.sink.flowTasks == std::vector<std::string>{"early"});
  CHECK(stage.sink.flowState == "failed");
  CHECK(stage.table.reportCount(10) == 2);
}

namespace {

// A child that holds `bytes` resident until the parent closes `release[1]`;
// it writes a byte to `ready` once it holds them.
pid_t holdMemory(size_t bytes, int ready, const int release[2]) {
  pid_t child = fork();
  if (child == 0) {
    close(release[1]);
    auto* memory = static_cast<char*>(mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                                           MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    for (size_t i = 0; i < bytes; i += 4096) memory[i] = 1;
    char byte = 1;
    if (write(ready, &byte, 1) != 1) _exit(1);
    (void)read(release[0], &byte, 1);  // EOF once the parent closes its end
    _exit(0);
  }
  return child;
}

const proto::TaskReport::Reader footprintOf(Stage& stage) {
  return KJ_ASSERT_NONNULL(stage.sink.footprint)->message.getRoot<proto::TaskReport>().asReader();
}

}  // namespace

TEST_CASE("a flow run's footprint is what its processes held and used together") {
  Stage stage;
  auto flow = stage.open("run-whole");
  constexpr size_t HELD = 96 << 20;
  int ready[2], release[2];
  REQUIRE(pipe(ready) == 0);
  REQUIRE(pipe(release) == 0);
  pid_t first = holdMemory(HELD, ready[1], release);
  pid_t second = holdMemory(HELD, ready[1], release);
  close(release[0]);
  char bytes[2];
  REQUIRE(read(ready[0], bytes, 1) == 1);
  REQUIRE(read(ready[0], bytes + 1, 1) == 1);
  uint64_t ownRss = ProcessRss().bytesOf(getpid()).orDefault(0);
  REQUIRE(ownRss > 0);
  stage.clock.time += 1 * kj::SECONDS;
  stage.table.sample();  // both children hold their memory now
  close(release[1]);
  REQUIRE(waitpid(first, nullptr, 0) == first);
  REQUIRE(waitpid(second, nullptr, 0) == second);
  // A child that ran 300 ms of CPU and was reaped: its time is its parent's now.
  pid_t busy = fork();
  if (busy == 0) {
    timespec start, now;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &start);
    do clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now);
    while ((now.tv_sec - start.tv_sec) * 1000000000ll + now.tv_nsec - start.tv_nsec < 300000000);
    _exit(0);
  }
  REQUIRE(waitpid(busy, nullptr, 0) == busy);
  stage.clock.time += 1 * kj::SECONDS;
  stage.table.sample();
  flow->finish(proto::RunState::COMPLETED);

  auto whole = footprintOf(stage);
  CHECK(whole.getFlowRunId() == "run-whole");
  CHECK(whole.getUnknownWhy().size() == 0);
  // Both children's memory at once, with the flow-run process's own.
  CHECK(whole.getMemory().getPeakRssBytes() >= 2 * HELD + ownRss * 9 / 10);
  uint64_t cpu = whole.getCpu().getUserNs() + whole.getCpu().getSystemNs();
  CHECK(cpu >= 280000000);
  CHECK(whole.getCpu().getMaxCores() >= 0.28);  // the busy child's window, of a fake second
  for (auto field: whole.getUnknown()) CHECK(field != "memory.peak_rss_bytes");
}

TEST_CASE("a flow run whose processes cannot be read has its footprint unknown, with the reason") {
  Stage stage;
  pid_t gone = fork();
  if (gone == 0) _exit(0);
  REQUIRE(waitpid(gone, nullptr, 0) == gone);
  capnp::MallocMessageBuilder message;
  auto info = message.initRoot<proto::FlowRunInfo>();
  info.setFlowRunId("run-gone");
  PeerCredentials them = stage.me;
  them.pid = gone;
  auto flow = stage.table.openFlowRun(info.asReader(), them);
  stage.clock.time += 1 * kj::SECONDS;
  stage.table.sample();
  flow->finish(proto::RunState::COMPLETED);
  auto whole = footprintOf(stage);
  std::vector<std::string> unknown;
  for (auto field: whole.getUnknown()) unknown.push_back(field.cStr());
  CHECK(std::find(unknown.begin(), unknown.end(), "memory.peak_rss_bytes") != unknown.end());
  CHECK(std::find(unknown.begin(), unknown.end(), "cpu.p95_cores") != unknown.end());
  REQUIRE(whole.getUnknownWhy().size() == 1);
  CHECK(std::string(whole.getUnknownWhy()[0].cStr()).find("could not be read from /proc") !=
        std::string::npos);
}

TEST_CASE("the sink ticks once per sampler pass, with the flow runs running then") {
  Stage stage;
  stage.table.sample();
  CHECK(stage.sink.running == 0);
  auto flow = stage.open("run-long");
  auto task = stage.start(*flow, "t1");
  stage.table.sample();
  CHECK(stage.sink.ticks == 2);
  CHECK(stage.sink.running == 1);
  auto tasks = stage.table.liveTasksOf("run-long");
  auto listed = tasks->getRoot<proto::Admin::LiveTasksResults>().getTasks();
  REQUIRE(listed.size() == 1);
  CHECK(listed[0].getTaskRunId().asReader() == "t1");
  CHECK(stage.table.runningFlowRuns()[0].summary.state == "running");
  stage.finish(kj::mv(task));
  flow->finish(proto::RunState::COMPLETED);
  stage.table.sample();
  CHECK(stage.sink.running == 0);
}

TEST_CASE("a long task's sampling windows widen, and p95 and max cores come from them") {
  Stage stage;
  auto flow = stage.open("flow-1");
  // The last task started: `seconds` one-second sampler passes, at 0.5
  // cores, then at 1.5 cores for the last `busy` of them.
  auto sampleSeconds = [&](int seconds, int busy) {
    uint32_t slot = stage.collector.handedOver.back().second;
    uint64_t cpuNs = 0;
    for (int second = 0; second < seconds; ++second) {
      cpuNs += second < seconds - busy ? 500000000 : 1500000000;
      stage.clock.time += 1 * kj::SECONDS;
      stage.collector.samples.upsert(slot, TaskSample{cpuNs, 0}, [](auto& old, auto&& now) {
        old = now;
      });
      stage.table.sample();
    }
  };
  auto task = stage.start(*flow, "long");
  // 600 one-second windows: 0.5 cores for 540 s, then 1.5 cores for 60 s.
  // Kept: 128 windows of 4 s for the first 512 s, then 22 more of 4 s, 15 of
  // them at 1.5 cores: 10 % of the windows, so p95 is 1.5.
  sampleSeconds(600, 60);
  auto report = stage.reportOf(kj::mv(task));
  auto cpu = report->getRoot<proto::TaskReport>().getCpu();
  CHECK(cpu.getMaxCores() == Approx(1.5).epsilon(1e-6));
  CHECK(cpu.getP95Cores() == Approx(1.5).epsilon(1e-6));

  // A task that used 1.5 cores in 5 % of its windows or fewer has a p95 of 0.5.
  auto steady = stage.start(*flow, "steady");
  sampleSeconds(100, 5);
  report = stage.reportOf(kj::mv(steady));
  cpu = report->getRoot<proto::TaskReport>().getCpu();
  CHECK(cpu.getP95Cores() == Approx(0.5).epsilon(1e-6));
  CHECK(cpu.getMaxCores() == Approx(1.5).epsilon(1e-6));
}

TEST_CASE("a registration that lands after the task began marks unknown only what the thread did "
          "meanwhile") {
  Stage stage;
  auto flow = stage.open("run-late");
  uint64_t unobservedNs = 0;

  // A thread that only ran in the 3 ms before its registration: all exact
  // but its own memory (page faults leave no counter of the thread's to read
  // back; past 1 ms, what it faulted in may be missing).
  auto [quiet, quietWhy] = stage.unknownOf(stage.startRead(*flow, "quiet", 3 * kj::MILLISECONDS),
                                           unobservedNs);
  CHECK(quiet == std::vector<std::string>{"memory.own_peak_rss_bytes"});
  CHECK(quietWhy == std::vector<std::string>{"in the 3000 us before its registration reached "
                                             "the sidecar, the memory its thread faulted in "
                                             "then was not seen"});
  CHECK(unobservedNs == 3000000);
  CHECK(stage.collector.readAtNs ==
        uint64_t((stage.clock.now() - 3 * kj::MILLISECONDS - kj::origin<kj::TimePoint>()) /
                 kj::NANOSECONDS));
  // Within 1 ms, nothing.
  auto [prompt, promptWhy] = stage.unknownOf(
      stage.startRead(*flow, "prompt", 500 * kj::MICROSECONDS), unobservedNs);
  CHECK(prompt.empty());

  auto has = [](const std::vector<std::string>& fields, const char* field) {
    return std::find(fields.begin(), fields.end(), field) != fields.end();
  };
  // One that used a socket meanwhile: its socket bytes, nothing else.
  stage.collector.unfollowed.usedSocket = true;
  auto [talker, talkerWhy] = stage.unknownOf(
      stage.startRead(*flow, "talker", 3 * kj::MILLISECONDS), unobservedNs);
  CHECK(talker == std::vector<std::string>{"net.tx_bytes", "net.rx_bytes", "net.endpoints",
                                           "net.other_endpoints", "memory.own_peak_rss_bytes"});
  REQUIRE(talkerWhy.size() == 2);
  CHECK(talkerWhy[0] == "in the 3000 us before its registration reached the sidecar, it used a "
                        "socket: those bytes were not counted");

  // One that started a thread meanwhile: everything its descendants add to.
  stage.collector.unfollowed = Unfollowed{false, false};
  stage.collector.unfollowed.startedThreadOrProcess = true;
  auto [parent, parentWhy] = stage.unknownOf(
      stage.startRead(*flow, "parent", 3 * kj::MILLISECONDS), unobservedNs);
  CHECK(has(parent, "cpu.user_ns"));
  CHECK(has(parent, "net.tx_bytes"));
  CHECK(has(parent, "sched.sleep_ns"));
  CHECK(has(parent, "proc.spawned"));
  CHECK(parentWhy.size() == 2);  // and its own memory, as for every late registration

  // A reading from beyond our clock's reach: the collector is told so (0).
  stage.collector.unfollowed = Unfollowed{};
  stage.finish(stage.startRead(*flow, "skewed", 2 * kj::MINUTES));
  CHECK(stage.collector.readAtNs == 0);
  flow->finish(proto::RunState::COMPLETED);
}

TEST_CASE("a sleep before the registration leaves the causes unknown unless it was at most 1 ms "
          "or 1 % of the task's wall time") {
  Stage stage;
  auto flow = stage.open("run-slept");
  uint64_t unobservedNs = 0;
  auto causesUnknown = [&](kj::Duration wall, uint64_t wokeAfterNs, std::string& why) {
    auto task = stage.startRead(*flow, "sleeper", 3 * kj::MILLISECONDS, 0, true);
    uint64_t startNs =
        (stage.clock.now() - 3 * kj::MILLISECONDS - kj::origin<kj::TimePoint>()) / kj::NANOSECONDS;
    stage.collector.wokeUnseenNs = wokeAfterNs == 0 ? 0 : startNs + wokeAfterNs;
    stage.clock.time += wall - 3 * kj::MILLISECONDS;
    auto [fields, reasons] = stage.unknownOf(kj::mv(task), unobservedNs);
    why = reasons.empty() ? "" : reasons[0];
    return std::find(fields.begin(), fields.end(), "sched.sleep_by_cause") != fields.end() &&
           std::find(fields.begin(), fields.end(), "net.endpoints") != fields.end();
  };
  std::string why;
  // 3 ms unseen of a 13 ms task: too much to leave out.
  CHECK(causesUnknown(13 * kj::MILLISECONDS, 0, why));
  CHECK(why == "in the 3000 us before its registration reached the sidecar, it slept or "
               "blocked: why it was off-CPU then was not seen");
  // Of a 1 s task, under 1 %: the causes stand.
  CHECK(!causesUnknown(1 * kj::SECONDS, 0, why));
  // But asleep at the registration, on until 500 ms into the task: unknown.
  CHECK(causesUnknown(1 * kj::SECONDS, 500000000, why));
  CHECK(why == "in the 3000 us before its registration reached the sidecar, it slept or "
               "blocked, and slept on unseen until 500000 us into the task");
  flow->finish(proto::RunState::COMPLETED);
}

TEST_CASE("a collector that follows switches tells at the finish whether the thread slept "
          "before it followed it") {
  Stage stage;
  stage.collector.tellsSwitches = true;
  auto flow = stage.open("run-told");
  uint64_t unobservedNs = 0;
  // 3 ms late, of a 13 ms task: the causes are unknown if it slept meanwhile.
  auto causesUnknown = [&](bool sleptByTheKernelNow, kj::Maybe<uint64_t> told) {
    stage.collector.switchesPastReading = told;
    auto task = stage.startRead(*flow, "told", 3 * kj::MILLISECONDS, 0, sleptByTheKernelNow);
    stage.clock.time += 10 * kj::MILLISECONDS;
    auto fields = stage.unknownOf(kj::mv(task), unobservedNs).first;
    return std::find(fields.begin(), fields.end(), "sched.sleep_by_cause") != fields.end();
  };
  auto lateTasks = [&]() {
    capnp::MallocMessageBuilder message;
    auto status = message.initRoot<proto::SidecarStatus>();
    stage.table.fillStatus(status);
    return status.getLateTasks();
  };
  uint64_t late = lateTasks();
  // What the collector tells wins over what the kernel's count says by now.
  CHECK(causesUnknown(false, uint64_t(1)));
  CHECK(lateTasks() == late + 1);
  CHECK(!causesUnknown(true, uint64_t(0)));
  CHECK(lateTasks() == late + 1);
  // Where it cannot tell (the thread's entry is gone), the kernel is asked.
  CHECK(causesUnknown(true, nullptr));
  CHECK(!causesUnknown(false, nullptr));
  flow->finish(proto::RunState::COMPLETED);
}

TEST_CASE("a marked start takes the slot the kernel counted it for, and nothing is unknown") {
  Stage stage;
  auto flow = stage.open("run-marked");
  uint64_t unobservedNs = 0;
  // The kernel followed the thread from its mark: whatever it did meanwhile was counted.
  stage.collector.markedSlot = 0x80000007u;
  stage.collector.unfollowed.followed = true;
  auto [fields, why] = stage.unknownOf(stage.startRead(*flow, "marked", 30 * kj::MILLISECONDS, 42),
                                       unobservedNs);
  CHECK(stage.collector.claimedMark == 42);
  CHECK(stage.collector.handedOver.back().second == 0x80000007u);
  CHECK(fields.empty());
  CHECK(why.empty());
  CHECK(unobservedNs == 0);

  // Not claimed (no slot was left in the kernel): our own slot, counted from the reading.
  stage.collector.markedSlot = nullptr;
  stage.collector.unfollowed = Unfollowed{};
  stage.finish(stage.startRead(*flow, "unmarked", 30 * kj::MILLISECONDS, 43));
  CHECK(stage.collector.claimedMark == 43);
  CHECK(stage.collector.handedOver.back().second < 0x80000000u);

  // A thread that runs a task already is not asked: a mark there is not this task's.
  stage.collector.claimedMark = 0;
  auto outer = stage.startRead(*flow, "outer", kj::MILLISECONDS, 44);
  capnp::MallocMessageBuilder message;
  auto info = message.initRoot<proto::TaskRunInfo>();
  info.setTaskRunId("inner");
  info.setNestedIn("outer");
  info.initBaseline().setStartMark(45);
  stage.finish(stage.table.startTask(flow->run(), info.asReader(),
                                     HostThread{pid_t(syscall(SYS_gettid)), getpid()}, stage.me));
  CHECK(stage.collector.claimedMark == 44);
  stage.finish(kj::mv(outer));
  flow->finish(proto::RunState::COMPLETED);
}

TEST_CASE("a task called inside a task counts its thread for itself, and the outer one says so") {
  Stage stage;
  auto flow = stage.open("run-nested");
  auto outer = stage.start(*flow, "outer");      // slot 1
  auto inner = stage.start(*flow, "inner", "outer");  // slot 2, nested in it
  auto innermost = stage.start(*flow, "innermost", "inner");  // slot 3
  CHECK(stage.collector.handedOver ==
        std::vector<std::pair<uint32_t, uint32_t>>{{0, 1}, {1, 2}, {2, 3}});
  auto innermostReport = stage.reportOf(kj::mv(innermost));
  auto innerReport = stage.reportOf(kj::mv(inner));
  auto outerReport = stage.reportOf(kj::mv(outer));
  // Each finish hands the thread back to the task it was called inside.
  CHECK(stage.collector.handedBack ==
        std::vector<std::pair<uint32_t, uint32_t>>{{3, 2}, {2, 1}, {1, 0}});
  auto o = outerReport->getRoot<proto::TaskReport>().getThread();
  CHECK(o.getNestedTasks() == 2);
  CHECK(o.getNestedCpuNs() == 5000000);  // the fake's 1 ms per slot: 2 + 3
  CHECK(o.getSharedWith() == 0);
  CHECK(innerReport->getRoot<proto::TaskReport>().getThread().getNestedCpuNs() == 3000000);
  CHECK(outerReport->getRoot<proto::TaskReport>().getUnknown().size() == 0);
}

TEST_CASE("tasks that run at once on one thread, not nested, share it: its counts are unknown") {
  Stage stage;
  auto flow = stage.open("run-shared");
  auto first = stage.start(*flow, "first");
  auto second = stage.start(*flow, "second");          // not nested: an event loop's task
  auto third = stage.start(*flow, "third", "second");  // on a shared thread: shares it too
  CHECK(stage.collector.tracked == 1);  // only the first counts the thread
  auto secondReport = stage.reportOf(kj::mv(second));
  auto firstReport = stage.reportOf(kj::mv(first));
  auto thirdReport = stage.reportOf(kj::mv(third));
  for (auto* message: {firstReport.get(), secondReport.get(), thirdReport.get()}) {
    auto report = message->getRoot<proto::TaskReport>();
    CHECK(report.getThread().getSharedWith() == 2);
    std::vector<std::string> unknown;
    for (auto field: report.getUnknown()) unknown.push_back(field.cStr());
    CHECK(std::count(unknown.begin(), unknown.end(), "cpu.user_ns") == 1);
    CHECK(std::count(unknown.begin(), unknown.end(), "net.tx_bytes") == 1);
    REQUIRE(report.getUnknownWhy().size() == 1);
    CHECK(std::string(report.getUnknownWhy()[0].cStr()).find("shared its thread with 2 other "
                                                             "tasks") != std::string::npos);
  }
  capnp::MallocMessageBuilder message;
  auto status = message.initRoot<proto::SidecarStatus>();
  stage.table.fillStatus(status);
  CHECK(status.getSharedThreadTasks() == 3);
  // Once the thread has no task, the next one has it to itself.
  auto alone = stage.reportOf(stage.start(*flow, "alone"));
  CHECK(alone->getRoot<proto::TaskReport>().getThread().getSharedWith() == 0);
  CHECK(stage.collector.tracked == 2);
}

TEST_CASE("a task ends where its client read its thread at the end, not when the finish arrives") {
  Stage stage;
  auto flow = stage.open("run-end");
  auto task = stage.startRead(*flow, "t", 10 * kj::MILLISECONDS);
  capnp::MallocMessageBuilder endMessage;
  auto end = endMessage.initRoot<proto::ThreadBaseline>();
  end.setAtMonotonicNs((stage.clock.now() - 4 * kj::MILLISECONDS - kj::origin<kj::TimePoint>()) /
                       kj::NANOSECONDS);
  end.setRuntimeNs(123456789);
  capnp::MallocMessageBuilder message;
  auto report = message.initRoot<proto::TaskReport>();
  task->finish(proto::RunState::COMPLETED, report, end.asReader());
  CHECK(report.getWallNs() == 6000000);
  CHECK(stage.collector.endedAtNs == 123456789);

  // A reading whose time is not on the sidecar's clock (a time namespace)
  // ends the task's wall time at the finish's arrival; its counters still hold.
  auto other = stage.startRead(*flow, "u", 10 * kj::MILLISECONDS);
  end.setAtMonotonicNs(1);
  end.setRuntimeNs(7);
  auto second = message.initRoot<proto::TaskReport>();
  other->finish(proto::RunState::COMPLETED, second, end.asReader());
  CHECK(second.getWallNs() == 10000000);
  CHECK(stage.collector.endedAtNs == 7);
}

TEST_CASE("what a nested task's thread did after its end, counted in it, is unknown in both") {
  Stage stage;
  auto flow = stage.open("run-past-end");
  auto outer = stage.start(*flow, "outer");
  auto inner = stage.start(*flow, "inner", "outer");
  stage.collector.pastEnd.usedSocket = true;  // the outer's next request, counted in the inner
  auto innerReport = stage.reportOf(kj::mv(inner));
  stage.collector.pastEnd = Unfollowed{};
  auto outerReport = stage.reportOf(kj::mv(outer));
  for (auto* message: {innerReport.get(), outerReport.get()}) {
    std::vector<std::string> unknown;
    for (auto field: message->getRoot<proto::TaskReport>().getUnknown()) {
      unknown.push_back(field.cStr());
    }
    CHECK(unknown == std::vector<std::string>{"net.tx_bytes", "net.rx_bytes", "net.endpoints",
                                             "net.other_endpoints"});
  }
}

TEST_CASE("a registration the collector refuses leaves its thread to the next task") {
  Stage stage;
  auto flow = stage.open("run-refused");
  stage.collector.refuse = true;
  CHECK_THROWS(stage.start(*flow, "gone"));
  stage.collector.refuse = false;
  auto next = stage.reportOf(stage.start(*flow, "next"));
  CHECK(next->getRoot<proto::TaskReport>().getThread().getSharedWith() == 0);
  CHECK(next->getRoot<proto::TaskReport>().getUnknown().size() == 0);
}
