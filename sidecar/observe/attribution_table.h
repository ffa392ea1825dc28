#pragma once
// The live flow runs and tasks (observe/live_runs.h), and what ends them. A
// finished task's report goes to the RunSink (advice), stays with its flow
// run until the run ends (the sink gets them all then), and the last
// KEPT_REPORTS of the node are kept for tracerctl; those whose processes
// outlived the task are brought up to date until the last one exits.

#include <capnp/message.h>
#include <kj/map.h>
#include <kj/memory.h>
#include <kj/time.h>
#include <kj/vector.h>

#include "observe/thread_switches.h"
#include "observe/live_runs.h"
#include "observe/run_intake.h"
#include "ops/log.h"

namespace tracer {
class AttributionTable final: public RunIntake,
                               public RunQueries,
                               public LiveRuns,
                               public ExitListener {
 public:
  AttributionTable(Collector& collector, const kj::MonotonicClock& clock, RunSink& sink,
                   Log& log);

  kj::Own<FlowRunHold> openFlowRun(proto::FlowRunInfo::Reader info,
                                   const PeerCredentials& caller) override;
  // A run is remembered as ended for the last ENDED_REMEMBERED runs to end.
  kj::Maybe<LiveFlowRun&> liveFlowRun(kj::StringPtr flowRunId) override;
  kj::Maybe<proto::RunState> endedFlowRun(kj::StringPtr flowRunId) const override;
  kj::Own<FlowRunHold> joinFlowRun(LiveFlowRun& flow, const PeerCredentials& joiner) override;
  kj::Own<Permit> allowStartMarks(pid_t process) override {
    return collector.allowStartMarks(process);
  }
  kj::Own<LiveTask> startTask(LiveFlowRun& flow, proto::TaskRunInfo::Reader info,
                              HostThread thread, const PeerCredentials& caller) override;

  // Once a second: the collector's view of every live task, each live flow
  // run's footprint, an update of finished reports whose processes are still
  // running, the sink's tick.
  void sample();

  void fillStatus(proto::SidecarStatus::Builder status) override;
  uint liveTaskCount() const override { return live.size(); }
  void describeLiveTasks(capnp::List<proto::LiveTask>::Builder out) const override;
  kj::Vector<LiveRuns::FlowRun> runningFlowRuns() const override;
  kj::Own<capnp::MallocMessageBuilder> liveTasksOf(kj::StringPtr flowRunId) const override;
  uint32_t reportCount(uint32_t limit) const override;
  void recentReports(uint32_t limit, capnp::List<proto::TaskReport>::Builder out) override;

  void threadExited(const ThreadExit& exit) override;

  Collector& collector;
  const kj::MonotonicClock& clock;
  RunSink& sink;
  Log& log;

 private:
  friend class LiveFlowRun;
  friend class LiveTask;

  // The live tasks on one thread, in start order. Each is nested in the one
  // before it (called inside it; the last one counts the thread) until one
  // starts there that is not nested in the last: from then on, until the
  // thread has no task, they share it (async tasks of one event loop) and
  // what the thread does is no one task's.
  // A list through LiveTask::startedBefore, not a vector: most threads have
  // one task, and 10,000 of them held 10,000 small arrays.
  struct ThreadTasks {
    LiveTask* latest = nullptr;  // the last one started there
    bool shared = false;
  };
  kj::HashMap<pid_t, ThreadTasks> threads;

  static constexpr size_t KEPT_REPORTS = 1000;  // the node's recent ones, for tracerctl
  // A flow run's reports kept for its artifacts: 100,000 at a few KiB each.
  static constexpr size_t FLOW_RUN_REPORTS_MAX = 100000;
  // Joiners come while their run lives; this only has to outlast stragglers.
  static constexpr size_t ENDED_REMEMBERED = 4096;

  // Keeps a finished report among the recent ones; returns it for its flow run.
  kj::Own<KeptReport> keep(proto::TaskReport::Reader report, uint32_t slot, bool lingering);
  void updateLingering();
  // A new task's slot: the one the kernel has counted its thread for since
  // its client marked the start, if it did, else the next of ours.
  uint32_t slotFor(HostThread thread, proto::TaskRunInfo::Reader info);
  void flowRunEnded(const LiveFlowRun& flow, proto::RunState state);

  uint32_t nextSlot = 1;  // never reused, so a late child event cannot hit a newer task
  uint64_t nextFlowSerial = 1;
  kj::HashMap<uint32_t, LiveTask*> live;
  kj::HashMap<kj::StringPtr, LiveFlowRun*> liveFlowRunsById;  // keys are the runs' own ids
  kj::HashMap<kj::String, proto::RunState> endedById;
  kj::Vector<kj::String> endedOrder;  // a ring of endedById's keys, the oldest at nextForgotten
  size_t nextForgotten = 0;
  kj::Vector<kj::Own<KeptReport>> recent;  // a ring: once full, the oldest at nextRecent
  size_t nextRecent = 0;
  uint32_t liveFlowRuns = 0;
  uint64_t finishedFlowRuns = 0;
  uint64_t crashedFlowRuns = 0;
  uint64_t finishedTasks = 0;
  uint64_t crashedTasks = 0;
  uint64_t lostInTasks = 0;
  uint64_t lateTasks = 0;  // tasks that did, before their registration, what nothing followed
  uint64_t sharedThreadTasks = 0;  // tasks that shared their thread with others not nested in them
  ThreadSwitches switches;  // whether a thread slept before its registration
};

// Fills a report's measurements from the collector's totals. Shared by a
// task's finish and the later updates of a lingering report.
void fillMeasurements(proto::TaskReport::Builder report, const TaskTotals& totals,
                      uint64_t peakSampledRss);

}  // namespace tracer
