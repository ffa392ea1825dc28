#include "runs/conductor.h"

#include "ops/wall_clock.h"
#include "report/live_artifact.h"

namespace tracer {

namespace {

kj::Array<proto::TaskReport::Reader> readersOf(kj::ArrayPtr<kj::Own<KeptReport>> kept) {
  return KJ_MAP(one, kept) { return one->message.getRoot<proto::TaskReport>().asReader(); };
}

}  // namespace

void Conductor::flowRunOpened(const TaskPlace& where) { advisor.flowOpened(where); }

void Conductor::taskRunFinished(const TaskPlace& place, kj::StringPtr flowName,
                                kj::Own<KeptReport> kept,
                                kj::Maybe<proto::TaskReport::Builder> answer) {
  KJ_IF_MAYBE(a, answer) {
    auto report = kept->message.getRoot<proto::TaskReport>();
    kept->row = advisor.advise(place, report);
    copyAdvice(report.asReader(), *a);
    taskMetrics.add(flowName, report.asReader());
    return;
  }
  unadvised.add(FinishedTask{place, kj::str(flowName), kj::mv(kept)});
  (void)finishSoon();  // nobody waits for a task's advice but its flow run
}

kj::Promise<void> Conductor::flowRunFinished(TaskPlace where, FlowRunSummary flow,
                                             kj::Own<KeptReport> footprint,
                                             kj::Array<kj::Own<KeptReport>> tasks) {
  pending.add(EndedFlowRun{kj::mv(where), kj::mv(flow), kj::mv(footprint), kj::mv(tasks)});
  return finishSoon().catch_([](kj::Exception&&) {});  // logged by taskFailed()
}

kj::Promise<void> Conductor::finishSoon() {
  if (!finishing) {
    finishing = true;
    // A timer fires only once the event loop has run what is queued: the
    // answers to what it read are on their way first, and what finished
    // meanwhile is advised in one batch.
    auto batch = timer.afterDelay(0 * kj::NANOSECONDS).then([this]() { finishPending(); }).fork();
    later.add(batch.addBranch());
    finished = kj::mv(batch);
  }
  return KJ_ASSERT_NONNULL(finished).addBranch();
}

void Conductor::adviseFinished() {
  auto batch = kj::mv(unadvised);
  unadvised = kj::Vector<FinishedTask>();
  for (auto& task: batch) {
    auto report = task.kept->message.getRoot<proto::TaskReport>();
    task.kept->row = advisor.advise(task.place, report);
    taskMetrics.add(task.flowName, report.asReader());
  }
}

void Conductor::finishPending() {
  finishing = false;
  adviseFinished();  // a flow run's artifacts show its tasks' advice
  auto ended = kj::mv(pending);
  pending = kj::Vector<EndedFlowRun>();
  for (auto& run: ended) {
    // The deployment's CPU and memory advice: from what the run's processes
    // used together, which its allocation has to hold.
    TaskPlace whole = run.where;
    whole.task = policy::FLOW_RUN_TASK;
    auto footprint = run.footprint->message.getRoot<proto::TaskReport>();
    footprint.setTaskName(policy::FLOW_RUN_TASK);
    // Its tasks, advised above, say whether they belong on different work pools.
    auto tasks = readersOf(run.tasks);
    run.footprint->row = advisor.advise(whole, footprint, policy::Scope::FLOW_RUN, tasks);
    taskMetrics.addFootprint(run.flow.flowName, footprint.asReader());
    advisor.flowFinished(run.where, run.flow.flowRunId.cStr(), run.flow.wallNs,
                         run.flow.state.cStr());
  }
  // Task runs are committed in batches (once a second); a finished flow run's
  // are committed before its artifacts are built, so a SIGKILL cannot lose them.
  if (ended.size() > 0) advisor.flush();
  for (auto& run: ended) {
    auto tasks = readersOf(run.tasks);
    kj::Vector<kj::StringPtr> rows(run.tasks.size());
    for (auto& kept: run.tasks) rows.add(kept->row);
    publisher.flowRunFinished(run.flow,
                              run.footprint->message.getRoot<proto::TaskReport>().asReader(),
                              tasks, rows);
    KJ_IF_MAYBE(live, liveArtifacts.find(run.flow.flowRunId)) {
      publisher.flowRunLive(renderLiveArtifactEnded(kj::mv(live->id), run.flow),
                            run.flow.flowRunId);
      liveArtifacts.erase(run.flow.flowRunId);
    }
  }
}

void Conductor::tick(const LiveRuns& live) {
  adviseFinished();
  advisor.flush();
  publisher.storeHeld();
  updateLiveArtifacts(live);
}

void Conductor::updateLiveArtifacts(const LiveRuns& live) {
  auto now = timer.now();
  for (auto& run: live.runningFlowRuns()) {
    uint64_t every = advisor.liveArtifactEvery(*run.where);
    if (every == 0 || run.summary.wallNs < every) continue;
    auto& flowRunId = run.summary.flowRunId;
    auto existing = liveArtifacts.find(flowRunId);
    KJ_IF_MAYBE(made, existing) {
      if (now - made->madeAt < every * kj::NANOSECONDS) continue;
    }
    auto id = existing == nullptr ? randomArtifactId() : kj::str(KJ_ASSERT_NONNULL(existing).id);
    auto tasks = live.liveTasksOf(flowRunId);
    auto listed = tasks->getRoot<proto::Admin::LiveTasksResults>().getTasks().asReader();
    publisher.flowRunLive(
        renderLiveArtifact(kj::str(id), run.summary, run.finishedTasks, listed, realtimeNs()),
        flowRunId);
    liveArtifacts.upsert(kj::str(flowRunId), LiveArtifact{kj::mv(id), now},
                         [](LiveArtifact& old, LiveArtifact&& latest) { old.madeAt = latest.madeAt; });
  }
}

void Conductor::taskFailed(kj::Exception&& exception) {
  log.error(kj::str("finishing runs failed: ", exception.getDescription()));
}

}  // namespace tracer
