#pragma once
// Where the attribution table hands what it has measured: it calls nothing
// above observe/ but this. A flow run's opening, each finished task run's
// report (the sink adds advice to it), the flow run's end with every task
// run of it, and a tick once a second. runs/conductor.h is the sidecar's sink;
// tests use their own.

#include <capnp/message.h>
#include <kj/array.h>
#include <kj/refcount.h>
#include <kj/string.h>
#include <kj/vector.h>

#include <string>
#include <vector>

#include "tracer.capnp.h"

namespace tracer {

// Where a run ran, as policies match it and the history keys it.
// `deployment` is the name; `deploymentId` keys the history.
struct TaskPlace {
  std::string flow, task, taskKey, deploymentId, deployment, workPool, workPoolType;
  std::vector<std::string> tags;
};

struct FlowRunSummary {
  kj::String flowRunId;
  kj::String flowName;
  kj::String deploymentId;  // empty without a deployment
  kj::String deploymentName;
  kj::String state;
  uint64_t wallNs;
  uint64_t tasksNotKept = 0;  // task runs past the flow run's report limit: counted only
};

// A finished task run's report: shared by its flow run (until the run ends,
// then by the sink) and the node's recent reports. A report whose processes
// outlived its task is brought up to date in place.
struct KeptReport final: public kj::Refcounted {
  // Sized to the report: a flow run keeps every report of its tasks, and the
  // builder's default first segment (8 KiB) is several times a report's size.
  explicit KeptReport(uint reportWords): message(reportWords) {}
  capnp::MallocMessageBuilder message;
  uint32_t slot;
  bool lingering;  // its processes are still running and counting
  // Its row of the flow run's table artifact (report/task_row, contract
  // JSON) as made when it was advised; null when it must be made from the
  // report (not advised into the history, or brought up to date since).
  kj::String row;
};

// What runs now, for the sink's tick: the live flow runs, and the live tasks
// of one as tracerctl top shows them.
class LiveRuns {
 public:
  struct FlowRun {
    FlowRunSummary summary;  // state "running", wallNs so far
    const TaskPlace* where;
    size_t finishedTasks;
  };
  virtual kj::Vector<FlowRun> runningFlowRuns() const = 0;
  // Its root is a proto::Admin::LiveTasksResults.
  virtual kj::Own<capnp::MallocMessageBuilder> liveTasksOf(kj::StringPtr flowRunId) const = 0;
};

class RunSink {
 public:
  virtual ~RunSink() noexcept(false) = default;

  // `where`: the flow run's place (task fields empty).
  virtual void flowRunOpened(const TaskPlace& where) = 0;
  // A task run's report, measured, as its flow run keeps it. The sink adds
  // its findings and recommendation to `kept`: at once when the task's client
  // waits for the report (`answer`, the copy it is sent, gets them too), else
  // whenever it likes before it takes the flow run's end, off the RPC path.
  virtual void taskRunFinished(const TaskPlace& place, kj::StringPtr flowName,
                               kj::Own<KeptReport> kept,
                               kj::Maybe<proto::TaskReport::Builder> answer) = 0;
  // The flow run ended; `tasks` are every task run of it that finished while
  // it was open, oldest first, the sink's to keep as long as it needs them;
  // `footprint` is its processes' use together, as a report of its own
  // (observe/flow_footprint.h), to be advised like a task run's.
  // Resolves once what the sink makes of the run is stored (its artifacts in
  // the outbox): the client's answer waits for that, so a finish the client
  // saw confirmed survives a SIGKILL. Never rejects: failures are the sink's
  // to log.
  virtual kj::Promise<void> flowRunFinished(TaskPlace where, FlowRunSummary flow,
                                            kj::Own<KeptReport> footprint,
                                            kj::Array<kj::Own<KeptReport>> tasks) = 0;
  // Once a second, after the sampler's pass over the live tasks.
  virtual void tick(const LiveRuns& live) = 0;
};

}  // namespace tracer
