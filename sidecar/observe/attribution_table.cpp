#include "observe/attribution_table.h"

#include <kj/debug.h>

namespace tracer {

LiveFlowRun::LiveFlowRun(AttributionTable& table, proto::FlowRunInfo::Reader info)
    : table(table), id(kj::str(info.getFlowRunId())), name(kj::str(info.getFlowName())) {
  ++table.liveFlowRuns;
}

LiveFlowRun::~LiveFlowRun() noexcept(false) {
  if (!finished) finish(proto::RunState::CRASHED);
}

void LiveFlowRun::finish(proto::RunState state) {
  KJ_REQUIRE(!finished, "flow run already finished", id);
  finished = true;
  --table.liveFlowRuns;
  ++(state == proto::RunState::CRASHED ? table.crashedFlowRuns : table.finishedFlowRuns);
}

LiveTask::LiveTask(AttributionTable& table, const LiveFlowRun& flow,
                   proto::TaskRunInfo::Reader info, pid_t hostTid, const PeerCredentials& caller)
    : table(table),
      slot(table.nextSlot++),
      hostTid(hostTid),
      caller(caller),
      taskRunId(kj::str(info.getTaskRunId())),
      taskName(kj::str(info.getTaskName())),
      flowRunId(kj::str(flow.flowRunId())),
      flowName(kj::str(flow.flowName())),
      startedAt(table.clock.now()) {
  table.collector.track(slot, hostTid);
  table.live.insert(slot, this);
}

LiveTask::~LiveTask() noexcept(false) {
  if (!finished) end(proto::RunState::CRASHED, nullptr);
}

void LiveTask::finish(proto::RunState state, proto::TaskReport::Builder report) {
  KJ_REQUIRE(!finished, "task already finished", taskRunId);
  end(state, report);
}

void LiveTask::end(proto::RunState state, kj::Maybe<proto::TaskReport::Builder> report) {
  finished = true;
  table.live.erase(slot);
  auto activity = table.collector.untrack(slot, hostTid);
  table.lostInTasks += activity.lost;
  ++(state == proto::RunState::CRASHED ? table.crashedTasks : table.finishedTasks);
  KJ_IF_MAYBE(out, report) {
    out->setTaskRunId(taskRunId);
    out->setFlowRunId(flowRunId);
    out->setTaskName(taskName);
    out->setState(state);
    out->setWallNs((table.clock.now() - startedAt) / kj::NANOSECONDS);
    out->setCollector(table.collector.name());
    out->getProc().setSpawned(activity.spawned);
    out->getProc().setExecs(activity.execs);
    out->getEvents().setLost(activity.lost);
  }
}

void LiveTask::describe(proto::LiveTask::Builder out) const {
  out.setTaskRunId(taskRunId);
  out.setTaskName(taskName);
  out.setFlowRunId(flowRunId);
  out.setFlowName(flowName);
  out.setHostTid(hostTid);
  out.setCallerPid(caller.pid);
  out.setCallerUid(caller.uid);
  out.setRunningNs((table.clock.now() - startedAt) / kj::NANOSECONDS);
}

AttributionTable::AttributionTable(Collector& collector, const kj::MonotonicClock& clock)
    : collector(collector), clock(clock) {}

kj::Own<LiveFlowRun> AttributionTable::openFlowRun(proto::FlowRunInfo::Reader info) {
  return kj::heap<LiveFlowRun>(*this, info);
}

kj::Own<LiveTask> AttributionTable::startTask(const LiveFlowRun& flow,
                                              proto::TaskRunInfo::Reader info, pid_t hostTid,
                                              const PeerCredentials& caller) {
  return kj::heap<LiveTask>(*this, flow, info, hostTid, caller);
}

void AttributionTable::fillStatus(proto::SidecarStatus::Builder status) {
  status.setCollector(collector.name());
  status.setCollectorNote(collector.degradedReason());
  status.setLiveFlowRuns(liveFlowRuns);
  status.setLiveTasks(live.size());
  status.setFinishedFlowRuns(finishedFlowRuns);
  status.setCrashedFlowRuns(crashedFlowRuns);
  status.setFinishedTasks(finishedTasks);
  status.setCrashedTasks(crashedTasks);
  status.setEventsLost(lostInTasks + collector.unattributedLost());
}

void AttributionTable::describeLiveTasks(capnp::List<proto::LiveTask>::Builder out) const {
  uint i = 0;
  for (auto& entry: live) entry.value->describe(out[i++]);
}

}  // namespace tracer
