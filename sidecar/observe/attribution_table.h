#pragma once
// The live flow runs and tasks, and what ends them. A LiveFlowRun / LiveTask is
// owned by the RPC scope that stands for it; destroying one that was not
// finished (the client crashed or disconnected) ends it as `crashed`, so every
// run is counted exactly once however it ends.

#include <kj/map.h>
#include <kj/memory.h>
#include <kj/time.h>

#include "observe/collector.h"
#include "rpc/peer_credentials.h"
#include "tracer.capnp.h"

namespace tracer {

class AttributionTable;

class LiveFlowRun {
 public:
  LiveFlowRun(AttributionTable& table, proto::FlowRunInfo::Reader info);
  ~LiveFlowRun() noexcept(false);
  KJ_DISALLOW_COPY(LiveFlowRun);

  void finish(proto::RunState state);
  bool isFinished() const { return finished; }

  kj::StringPtr flowRunId() const { return id; }
  kj::StringPtr flowName() const { return name; }

 private:
  AttributionTable& table;
  kj::String id;
  kj::String name;
  bool finished = false;
};

class LiveTask {
 public:
  LiveTask(AttributionTable& table, const LiveFlowRun& flow, proto::TaskRunInfo::Reader info,
           pid_t hostTid, const PeerCredentials& caller);
  ~LiveTask() noexcept(false);
  KJ_DISALLOW_COPY(LiveTask);

  void finish(proto::RunState state, proto::TaskReport::Builder report);
  void describe(proto::LiveTask::Builder out) const;

 private:
  void end(proto::RunState state, kj::Maybe<proto::TaskReport::Builder> report);

  AttributionTable& table;
  uint32_t slot;
  pid_t hostTid;
  PeerCredentials caller;
  kj::String taskRunId;
  kj::String taskName;
  kj::String flowRunId;
  kj::String flowName;
  kj::TimePoint startedAt;
  bool finished = false;
};

class AttributionTable {
 public:
  AttributionTable(Collector& collector, const kj::MonotonicClock& clock);

  kj::Own<LiveFlowRun> openFlowRun(proto::FlowRunInfo::Reader info);
  kj::Own<LiveTask> startTask(const LiveFlowRun& flow, proto::TaskRunInfo::Reader info,
                              pid_t hostTid, const PeerCredentials& caller);

  void fillStatus(proto::SidecarStatus::Builder status);
  uint liveTaskCount() const { return live.size(); }
  void describeLiveTasks(capnp::List<proto::LiveTask>::Builder out) const;

  Collector& collector;
  const kj::MonotonicClock& clock;

 private:
  friend class LiveFlowRun;
  friend class LiveTask;

  uint32_t nextSlot = 1;  // never reused, so a late child event cannot hit a newer task
  kj::HashMap<uint32_t, const LiveTask*> live;
  uint32_t liveFlowRuns = 0;
  uint64_t finishedFlowRuns = 0;
  uint64_t crashedFlowRuns = 0;
  uint64_t finishedTasks = 0;
  uint64_t crashedTasks = 0;
  uint64_t lostInTasks = 0;
};

}  // namespace tracer
