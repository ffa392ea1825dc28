#pragma once
// What the RPC side may ask of the live runs, and nothing more: the serving
// side (rpc/) holds these two interfaces, not the attribution table that
// implements them, so it can be served and tested against anything that
// keeps runs.

#include <kj/memory.h>

#include "observe/live_runs.h"
#include "tracer.capnp.h"

namespace tracer {

// Opens, joins and starts runs for a client.
class RunIntake {
 public:
  virtual ~RunIntake() noexcept(false) = default;

  // A new run, and the opener's hold on it.
  virtual kj::Own<FlowRunHold> openFlowRun(proto::FlowRunInfo::Reader info,
                                           const PeerCredentials& caller) = 0;
  // What a joiner of `flowRunId` finds: the newest opening of that id not yet
  // ended; else, if it ended a short while ago, how it ended.
  virtual kj::Maybe<LiveFlowRun&> liveFlowRun(kj::StringPtr flowRunId) = 0;
  virtual kj::Maybe<proto::RunState> endedFlowRun(kj::StringPtr flowRunId) const = 0;
  // `joiner`'s processes count toward the run's footprint from now on.
  virtual kj::Own<FlowRunHold> joinFlowRun(LiveFlowRun& flow, const PeerCredentials& joiner) = 0;
  // While the permit lives, the kernel follows `process`'s threads from the
  // starts they mark (a connected client's tgid, in the sidecar's namespace).
  virtual kj::Own<Permit> allowStartMarks(pid_t process) = 0;
  // `thread`: the caller's thread, resolved and authorized by the RPC side.
  virtual kj::Own<LiveTask> startTask(LiveFlowRun& flow, proto::TaskRunInfo::Reader info,
                                      HostThread thread, const PeerCredentials& caller) = 0;
};

// What the status call and the Admin interface read of the runs.
class RunQueries {
 public:
  virtual ~RunQueries() noexcept(false) = default;

  virtual void fillStatus(proto::SidecarStatus::Builder status) = 0;
  virtual uint liveTaskCount() const = 0;
  virtual void describeLiveTasks(capnp::List<proto::LiveTask>::Builder out) const = 0;
  // The newest `limit` finished reports the node keeps (reportCount of them).
  virtual uint32_t reportCount(uint32_t limit) const = 0;
  virtual void recentReports(uint32_t limit, capnp::List<proto::TaskReport>::Builder out) = 0;
};

}  // namespace tracer
