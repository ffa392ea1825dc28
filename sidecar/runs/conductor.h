#pragma once
// The finish path's one conductor: a finished task run goes through advice
// (findings, recommendation, its history row) and the per-task metrics off
// the RPC path, in batches once the event loop has answered what it read
// (before its client gets the report only when the client waits for it); a
// finished flow run has its tasks' advice and its history committed, then its
// artifacts built into the outbox, at the end of the event loop's turn (a run
// of thousands of tasks takes a while to render: what was read in the turn is
// answered first), and only then is its client's finish answered. It also
// commits the history once a second, keeps the live artifact of a flow run
// that lasts up to date, and starts history seeding when a flow run opens.

#include <kj/async.h>
#include <kj/map.h>
#include <kj/timer.h>
#include <kj/vector.h>

#include "metrics/task_metrics.h"
#include "observe/run_sink.h"
#include "ops/log.h"
#include "report/artifact_publisher.h"
#include "runs/advisor.h"

namespace tracer {

class Conductor final: public RunSink, private kj::TaskSet::ErrorHandler {
 public:
  Conductor(Advisor& advisor, TaskMetrics& taskMetrics, ArtifactPublisher& publisher,
            kj::Timer& timer, Log& log)
      : advisor(advisor), taskMetrics(taskMetrics), publisher(publisher), timer(timer),
        log(log) {}

  void flowRunOpened(const TaskPlace& where) override;
  void taskRunFinished(const TaskPlace& place, kj::StringPtr flowName, kj::Own<KeptReport> kept,
                       kj::Maybe<proto::TaskReport::Builder> answer) override;
  kj::Promise<void> flowRunFinished(TaskPlace where, FlowRunSummary flow,
                                    kj::Own<KeptReport> footprint,
                                    kj::Array<kj::Own<KeptReport>> tasks) override;
  // Advises what finished, commits the history, stores the artifacts the
  // outbox could not take before, and brings each lasting flow run's live
  // artifact up to date at its policy's interval.
  void tick(const LiveRuns& live) override;

  // Every task run ended so far through advice, and every flow run through
  // the history and into the outbox, now (before the sidecar exits).
  void finishPending();

 private:
  struct FinishedTask {
    TaskPlace place;
    kj::String flowName;
    kj::Own<KeptReport> kept;
  };
  void adviseFinished();
  // Runs finishPending() once the event loop has answered what is queued;
  // resolves after it.
  kj::Promise<void> finishSoon();

  struct EndedFlowRun {
    TaskPlace where;
    FlowRunSummary flow;
    kj::Own<KeptReport> footprint;
    kj::Array<kj::Own<KeptReport>> tasks;
  };

  void taskFailed(kj::Exception&& exception) override;
  void updateLiveArtifacts(const LiveRuns& live);

  // The flow runs with a live artifact: its id, and when it was last made.
  struct LiveArtifact {
    kj::String id;
    kj::TimePoint madeAt;
  };
  kj::HashMap<kj::String, LiveArtifact> liveArtifacts;

  Advisor& advisor;
  TaskMetrics& taskMetrics;
  ArtifactPublisher& publisher;
  kj::Timer& timer;
  Log& log;
  kj::Vector<FinishedTask> unadvised;
  kj::Vector<EndedFlowRun> pending;
  // The finishPending() that finishSoon() has on its way, if `finishing`.
  kj::Maybe<kj::ForkedPromise<void>> finished;
  bool finishing = false;
  kj::TaskSet later{*this};
};

}  // namespace tracer
