#include "runs/conductor.h"

namespace tracer {

void Conductor::flowRunOpened(const TaskPlace& where) { advisor.flowOpened(where); }

void Conductor::taskRunFinished(const TaskPlace& place, kj::StringPtr flowName,
                                proto::TaskReport::Builder report) {
  advisor.advise(place, report);
  taskMetrics.add(flowName, report.asReader());
}

void Conductor::flowRunFinished(TaskPlace where, FlowRunSummary flow,
                                kj::Array<kj::Own<KeptReport>> tasks) {
  pending.add(EndedFlowRun{kj::mv(where), kj::mv(flow), kj::mv(tasks)});
  // A timer fires only once the event loop has run what is queued: the
  // finishing client's answer is on its way first.
  if (pending.size() == 1) later.add(timer.afterDelay(0 * kj::NANOSECONDS).then([this]() {
    finishPending();
  }));
}

void Conductor::finishPending() {
  auto ended = kj::mv(pending);
  pending = kj::Vector<EndedFlowRun>();
  for (auto& run: ended) {
    advisor.flowFinished(run.where, run.flow.flowRunId.cStr(), run.flow.wallNs,
                         run.flow.state.cStr());
  }
  // Task runs are committed in batches (once a second); a finished flow run's
  // are committed before its artifacts are built, so a SIGKILL cannot lose them.
  advisor.flush();
  for (auto& run: ended) {
    kj::Vector<proto::TaskReport::Reader> tasks(run.tasks.size());
    for (auto& kept: run.tasks) tasks.add(kept->message.getRoot<proto::TaskReport>().asReader());
    publisher.flowRunFinished(run.flow, tasks);
  }
}

void Conductor::tick() { advisor.flush(); }

void Conductor::taskFailed(kj::Exception&& exception) {
  log.error(kj::str("finishing flow runs failed: ", exception.getDescription()));
}

}  // namespace tracer
