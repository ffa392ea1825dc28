#pragma once
// The handles of live runs: a flow run, a process's hold on it, and a task.
// A LiveTask, and the FlowRunHold of the process that opened a flow run, are
// owned by the RPC scope that stands for them; destroying one that was not
// finished (the client crashed or disconnected) ends it as `crashed`, so every
// run is counted exactly once however it ends. Other processes of a flow run
// (a ProcessPoolTaskRunner's children) join it with holds of their own, which
// only let go. The attribution table (observe/attribution_table.h) makes them.

#include <kj/map.h>
#include <kj/memory.h>
#include <kj/time.h>
#include <kj/vector.h>

#include "observe/allocation.h"
#include "observe/collector.h"
#include "observe/cpu_windows.h"
#include "observe/flow_footprint.h"
#include "observe/run_sink.h"
#include "ops/peer_credentials.h"
#include "tracer.capnp.h"

namespace tracer {

class AttributionTable;

// Refcounted: the run's holds and its live tasks share it, and a joiner's can
// outlast the end.
class LiveFlowRun final: public kj::Refcounted {
 public:
  LiveFlowRun(AttributionTable& table, proto::FlowRunInfo::Reader info, Allocation allocation,
              const PeerCredentials& opener);
  KJ_DISALLOW_COPY(LiveFlowRun);

  // Resolves once the sink has stored what it makes of the run.
  kj::Promise<void> finish(proto::RunState state);
  bool isFinished() const { return finished; }

  kj::StringPtr flowRunId() const { return id; }
  const PeerCredentials& opener() const { return openedBy; }
  // This opening of the flow run: ids come from clients and may repeat (a
  // client re-opens its run after reconnecting, or lies), serials do not.
  uint64_t serial() const { return openSerial; }
  kj::StringPtr flowName() const { return name; }
  const Allocation& allocation() const { return capacity; }
  // The task's place: flow, deployment and work pool (task fields left empty).
  const TaskPlace& place() const { return where; }
  kj::TimePoint openedAt() const { return startedAt; }
  // Its task runs that finished so far.
  size_t finishedTasks() const { return reports.size() + reportsNotKept; }
  // What its processes hold and use together, read once a second.
  FlowFootprint& footprint() { return processes; }

 private:
  friend class FlowRunHold;
  friend class LiveTask;

  // Its footprint, read a last time, as a report (observe/flow_footprint.h).
  kj::Own<KeptReport> footprintReport(proto::RunState state, kj::TimePoint now);

  AttributionTable& table;
  uint64_t openSerial;
  kj::String id;
  kj::String name;
  PeerCredentials openedBy;
  Allocation capacity;
  TaskPlace where;
  kj::TimePoint startedAt;
  FlowFootprint processes;
  bool finished = false;
  // Its task runs' reports, oldest first, until it ends: all of them, however
  // many; past FLOW_RUN_REPORTS_MAX only counted.
  kj::Vector<kj::Own<KeptReport>> reports;
  uint64_t reportsNotKept = 0;
};

// One flow-run scope's hold on its run. The opener's ends the run: finish(),
// or `crashed` when dropped unfinished. A joiner's finish() or drop only lets
// go: whether the run's other processes are done is the opener's to know.
class FlowRunHold {
 public:
  FlowRunHold(kj::Own<LiveFlowRun> run, bool joined);
  ~FlowRunHold() noexcept(false);
  KJ_DISALLOW_COPY(FlowRunHold);

  LiveFlowRun& run() { return *flow; }
  bool isJoined() const { return joined; }
  // The opener's ends the run with `state` (see LiveFlowRun::finish); a
  // joiner's lets go (state unused).
  kj::Promise<void> finish(proto::RunState state);
  // This scope was finished (the opener's: the run ended).
  bool isFinished() const { return released; }

 private:
  kj::Own<LiveFlowRun> flow;
  bool joined;
  bool released = false;
};

class LiveTask {
 public:
  LiveTask(AttributionTable& table, LiveFlowRun& flow, proto::TaskRunInfo::Reader info,
           HostThread thread, const PeerCredentials& caller);
  ~LiveTask() noexcept(false);
  KJ_DISALLOW_COPY(LiveTask);

  // `end`: its client's reading of the thread as the task ended (TaskScope.finish).
  void finish(proto::RunState state, kj::Maybe<proto::TaskReport::Builder> report,
              kj::Maybe<proto::ThreadBaseline::Reader> end = nullptr);
  void describe(proto::LiveTask::Builder out) const;

 private:
  friend class AttributionTable;

  static constexpr size_t MAX_COMMANDS = 256;  // distinct command names counted apart

  struct CommandCpu {
    uint32_t count = 0;
    uint64_t cpuNs = 0;
  };

  void end(proto::RunState state, kj::Maybe<proto::TaskReport::Builder> report,
           kj::Maybe<proto::ThreadBaseline::Reader> endReading);
  void lentUnfollowed(const Unfollowed& did, bool slept);
  // Takes its place on its thread: returns the task it is nested in, or
  // nullptr (then, if others are on the thread, it shares it and is not counted).
  LiveTask* joinThread(kj::StringPtr nestedIn);
  // Leaves it: returns the task its thread goes back to (the one it was nested in).
  LiveTask* leaveThread();
  void addSample(const TaskSample& sample, kj::TimePoint now);
  void threadExited(const ThreadExit& exit);

  // Ordered so that no field leaves a hole (10,000 live tasks are 10,000 of these).
  AttributionTable& table;
  LiveTask* startedBefore = nullptr;  // the task started on its thread before it, if live
  uint32_t slot;
  pid_t hostTid;
  uint32_t sharedWith = 0;    // other tasks on its thread while it ran, not nested in it
  uint32_t nestedTasks = 0;   // tasks called inside it on its thread, transitively
  uint64_t nestedCpuNs = 0;   // and their CPU
  PeerCredentials caller;
  // Its own fields only: the flow run's (names, place, allocation) are read
  // from `flow`, not copied into each of its tasks.
  kj::String taskRunId;
  kj::String taskName;
  kj::String taskKey;
  kj::Array<kj::String> tags;
  kj::Own<LiveFlowRun> flow;  // gets the report when this task ends
  kj::TimePoint startedAt;
  int64_t startTimeNs = 0;  // the caller's wall clock at start
  uint64_t unobservedNs = 0;  // how long it ran before its registration reached us
  uint64_t wokeUnseenNs = 0;  // TaskTotals.wokeUnseenNs at its finish
  // Its thread's voluntary switches at its client's reading, if sleepUnseenAsked.
  uint64_t switchesAtReading = 0;
  kj::TimePoint lastSampleAt;
  uint64_t lastSampleCpuNs = 0;
  uint64_t peakSampledRss = 0;
  uint64_t lastSampledRss = 0;
  CpuWindows windows;
  // Made when one of its processes first exits: most tasks start none.
  kj::Own<kj::HashMap<kj::String, CommandCpu>> commands;
  Unfollowed unfollowed;  // what it did before its registration that nothing followed
  // What tasks nested in it did while the thread still (or again) counted for
  // this one: on their way in (a late registration) or out (a late finish).
  Unfollowed nestedUnfollowed;
  bool nestedSlept = false;
  // Whether the collector counts its thread for it: false for a task that
  // started on a thread other tasks were running on, not nested in them.
  bool counted = true;
  bool ownProcess;
  bool read = false;  // its client read the thread at start (and so reads it at the end)
  bool sleptUnfollowed = false;
  // Its registration came late, and whether its thread slept meanwhile is
  // the collector's to tell at its finish (TaskTotals.switchesBeforeFollowed).
  bool sleepUnseenAsked = false;
  bool faultsUnseen = false;  // its registration came late enough to miss page faults
  bool hiwaterUnread = false;  // its client sent no high-water mark (an earlier version)
  bool finished = false;
};

}  // namespace tracer
