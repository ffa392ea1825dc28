#pragma once
// The attribution table's neighbours, faked: a collector that measures 1 ms of
// CPU per slot number and nothing else, and a sink that records what reaches
// it. Shared by the tests of the table and of the RPC server above it.

#include <kj/map.h>

#include <string>
#include <utility>
#include <vector>

#include "observe/collector.h"
#include "observe/run_sink.h"

namespace tracer::testing {

// Every task used 1 ms of CPU per slot number, and nothing else.
class FakeCollector final: public Collector {
 public:
  kj::StringPtr name() const override { return "fake"; }
  kj::StringPtr degradedReason() const override { return ""; }
  kj::ArrayPtr<const kj::StringPtr> unknownFields() const override { return nullptr; }
  bool tellsSwitchesBeforeFollowed() const override { return tellsSwitches; }
  kj::Promise<void> run(ExitListener&) override { return kj::NEVER_DONE; }
  kj::Maybe<uint32_t> claimMarkedStart(HostThread, uint32_t mark) override {
    claimedMark = mark;
    return markedSlot;
  }
  kj::Own<Permit> allowStartMarks(pid_t) override { return kj::heap<Permit>(); }
  Unfollowed track(uint32_t slot, HostThread, kj::Maybe<const ClientReading&> reading, bool,
                   kj::Maybe<uint32_t> outer, uid_t) override {
    KJ_REQUIRE(!refuse, "the thread has exited");
    ++tracked;
    KJ_IF_MAYBE(r, reading) {
      readAtNs = r->atMonotonicNs;
      readSwitches = r->voluntarySwitches;
    }
    handedOver.push_back({outer.orDefault(0u), slot});
    return unfollowed;
  }
  TaskTotals finish(uint32_t slot, pid_t, kj::Maybe<const ClientReading&> end,
                    kj::Maybe<uint32_t> outer) override {
    KJ_IF_MAYBE(e, end) { endedAtNs = e->counters.runtimeNs; }
    handedBack.push_back({slot, outer.orDefault(0u)});
    TaskTotals totals;
    totals.kernel.runtime_ns = slot * 1000000ull;
    totals.pastEnd = pastEnd;
    totals.wokeUnseenNs = wokeUnseenNs;
    KJ_IF_MAYBE(n, switchesPastReading) { totals.switchesBeforeFollowed = readSwitches + *n; }
    return totals;
  }
  void release(uint32_t) override { ++released; }
  TaskTotals lingering(uint32_t) override { return {}; }
  ThreadWait currentWait(pid_t) override { return {"lock", 1}; }
  kj::HashMap<uint32_t, TaskSample> sample() override {
    kj::HashMap<uint32_t, TaskSample> copy;
    for (auto& entry: samples) copy.insert(entry.key, entry.value);
    return copy;
  }
  uint64_t unattributedLost() override { return 0; }
  CollectorLoad load() override { return {}; }

  uint32_t tracked = 0;
  uint32_t released = 0;
  Unfollowed unfollowed;   // what each thread did before its registration
  Unfollowed pastEnd;      // and after its end reading
  uint64_t wokeUnseenNs = 0;  // what finish() says of a sleep that began unseen
  // Whether finish() tells the thread's voluntary switches before it was
  // followed, and what it tells: so many past its reading's (null: nothing).
  bool tellsSwitches = false;
  kj::Maybe<uint64_t> switchesPastReading;
  uint64_t readSwitches = 0;  // the last client reading's voluntary switches
  bool refuse = false;     // track() throws, as for a thread that has exited
  uint64_t readAtNs = 0;   // the last client reading's time, as handed over
  uint64_t endedAtNs = 0;  // the runtime of the last end reading handed over
  kj::HashMap<uint32_t, TaskSample> samples;  // what sample() answers, by slot
  kj::Maybe<uint32_t> markedSlot;  // what claimMarkedStart() answers
  uint32_t claimedMark = 0;        // and the mark it was last asked about
  // (outer slot or 0, slot) at each track(); (slot, outer slot or 0) at each finish().
  std::vector<std::pair<uint32_t, uint32_t>> handedOver, handedBack;
};

// Records what reaches it; its advice is one finding per task.
class FakeSink final: public RunSink {
 public:
  void flowRunOpened(const TaskPlace& where) override { opened.push_back(where.flow); }
  void taskRunFinished(const TaskPlace& place, kj::StringPtr, kj::Own<KeptReport> kept,
                       kj::Maybe<proto::TaskReport::Builder> answer) override {
    kept->message.getRoot<proto::TaskReport>().initFindings(1)[0].setKind("advised");
    KJ_IF_MAYBE(a, answer) { a->initFindings(1)[0].setKind("advised"); }
    finishedTasks.push_back(place.task);
  }
  kj::Promise<void> flowRunFinished(TaskPlace, FlowRunSummary flow, kj::Own<KeptReport> whole,
                                    kj::Array<kj::Own<KeptReport>> tasks) override {
    footprint = kj::mv(whole);
    flowState = flow.state.cStr();
    notKept = flow.tasksNotKept;
    for (auto& task: tasks) {
      flowTasks.push_back(task->message.getRoot<proto::TaskReport>().getTaskRunId().cStr());
    }
    return kj::READY_NOW;
  }
  void tick(const LiveRuns& live) override {
    ++ticks;
    running = live.runningFlowRuns().size();
  }

  std::vector<std::string> opened, finishedTasks, flowTasks;
  std::string flowState;
  kj::Maybe<kj::Own<KeptReport>> footprint;  // of the last flow run to finish
  uint64_t notKept = 0;
  uint32_t ticks = 0;
  size_t running = 0;  // flow runs running at the last tick
};

}  // namespace tracer::testing
