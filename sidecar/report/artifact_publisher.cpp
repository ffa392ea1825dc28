#include "report/artifact_publisher.h"

#include "ops/wall_clock.h"

namespace tracer {

namespace {

constexpr int64_t HOUR_NS = 3600ll * 1000000000;

}  // namespace

ArtifactPublisher::ArtifactPublisher(Log& log, Outbox& outbox, bool delivering,
                                     kj::Function<void()> wake, int64_t retentionNs)
    : log(log), outbox(outbox), delivering(delivering), wake(kj::mv(wake)),
      retentionNs(retentionNs) {
  pruneHourly(realtimeNs());
}

void ArtifactPublisher::pruneHourly(int64_t nowNs) {
  if (nowNs - prunedAtNs < HOUR_NS) return;
  prunedAtNs = nowNs;
  KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() {
    size_t pruned = outbox.prune(nowNs - retentionNs);
    if (pruned > 0) {
      log.info(kj::str("outbox: removed ", pruned, " delivered or local artifacts older than ",
                       retentionNs / (24 * HOUR_NS), " days"));
    }
  })) {
    log.error(kj::str("outbox: cannot remove old artifacts: ", e->getDescription()));
  }
}

void ArtifactPublisher::flowRunFinished(const FlowRunSummary& flow,
                                        proto::TaskReport::Reader footprint,
                                        kj::ArrayPtr<const proto::TaskReport::Reader> tasks,
                                        kj::ArrayPtr<const kj::StringPtr> rows) {
  int64_t nowNs = realtimeNs();
  pruneHourly(nowNs);
  KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() {
    for (auto& artifact: renderFlowArtifacts(flow, footprint, tasks, rows)) {
      outbox.add(artifact.key.cStr(), artifact.type.cStr(), flow.flowRunId.cStr(),
                 artifact.id.cStr(), artifact.body.cStr(), delivering ? "pending" : "local",
                 nowNs);
    }
  })) {
    log.error(kj::str("cannot store the artifacts of flow run ", flow.flowRunId, ": ",
                      e->getDescription()),
              {flow.flowRunId, nullptr});
    return;
  }
  if (delivering) wake();
}

void ArtifactPublisher::flowRunLive(const Artifact& live, kj::StringPtr flowRunId) {
  KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() {
    outbox.putLive(flowRunId.cStr(), live.id.cStr(), live.body.cStr(),
                   delivering ? "pending" : "local", realtimeNs());
  })) {
    // The next update (or the run's end) tries again.
    log.error(kj::str("cannot store the live artifact of flow run ", flowRunId, ": ",
                      e->getDescription()),
              {flowRunId, nullptr});
    return;
  }
  if (delivering) wake();
}

std::vector<OutboxEntry> ArtifactPublisher::list(size_t limit) { return outbox.list(limit); }

size_t ArtifactPublisher::retryParked() {
  size_t retried = outbox.retryParked(0);
  if (delivering) wake();  // due now, not at delivery's next run
  return retried;
}

}  // namespace tracer
