#include "report/artifact_publisher.h"

#include <ctime>

namespace tracer {

ArtifactPublisher::ArtifactPublisher(Log& log, Outbox& outbox, bool delivering,
                                     kj::Function<void()> wake)
    : log(log), outbox(outbox), delivering(delivering), wake(kj::mv(wake)) {}

void ArtifactPublisher::flowRunFinished(const FlowRunSummary& flow,
                                        kj::ArrayPtr<const proto::TaskReport::Reader> tasks) {
  timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  int64_t nowNs = int64_t(now.tv_sec) * 1000000000 + now.tv_nsec;
  KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() {
    for (auto& artifact: renderFlowArtifacts(flow, tasks)) {
      outbox.add(artifact.key.cStr(), artifact.type.cStr(), flow.flowRunId.cStr(),
                 artifact.body.cStr(), delivering ? "pending" : "local", nowNs);
    }
  })) {
    log.error(kj::str("cannot store the artifacts of flow run ", flow.flowRunId, ": ",
                      e->getDescription()));
    return;
  }
  if (delivering) wake();
}

}  // namespace tracer
