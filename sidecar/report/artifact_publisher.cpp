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

ArtifactPublisher::~ArtifactPublisher() noexcept(false) {
  if (!held.empty()) {
    log.error(kj::str(held.size(), " artifacts held in memory are lost: the outbox could not "
                      "store them before the sidecar stopped"));
  }
}

void ArtifactPublisher::flowRunFinished(const FlowRunSummary& flow,
                                        proto::TaskReport::Reader footprint,
                                        kj::ArrayPtr<const proto::TaskReport::Reader> tasks,
                                        kj::ArrayPtr<const kj::StringPtr> rows) {
  int64_t nowNs = realtimeNs();
  pruneHourly(nowNs);
  for (auto& artifact: renderFlowArtifacts(flow, footprint, tasks, rows)) {
    hold(HeldArtifact{artifact.key.cStr(), artifact.type.cStr(), flow.flowRunId.cStr(),
                      artifact.id.cStr(), artifact.body.cStr(), false, nowNs});
  }
  storeHeld();
}

void ArtifactPublisher::flowRunLive(const Artifact& live, kj::StringPtr flowRunId) {
  hold(HeldArtifact{"", "markdown", flowRunId.cStr(), live.id.cStr(), live.body.cStr(), true,
                    realtimeNs()});
  storeHeld();
}

void ArtifactPublisher::hold(HeldArtifact artifact) {
  if (artifact.live) {
    for (auto& earlier: held) {
      if (earlier.live && earlier.flowRunId == artifact.flowRunId) {
        heldBytes = heldBytes - earlier.body.size() + artifact.body.size();
        earlier = kj::mv(artifact);
        return;
      }
    }
  }
  heldBytes += artifact.body.size();
  held.push_back(kj::mv(artifact));
}

void ArtifactPublisher::store(const HeldArtifact& artifact) {
  auto status = delivering ? "pending" : "local";
  if (artifact.live) {
    outbox.putLive(artifact.flowRunId, artifact.artifactId, artifact.body, status,
                   artifact.createdAtNs);
  } else {
    outbox.add(artifact.key, artifact.type, artifact.flowRunId, artifact.artifactId,
               artifact.body, status, artifact.createdAtNs);
  }
}

void ArtifactPublisher::storeHeld() {
  if (held.empty()) return;
  size_t stored = 0;
  KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() {
    for (; !held.empty(); ++stored) {
      store(held.front());
      heldBytes -= held.front().body.size();
      held.pop_front();
    }
  })) {
    ++storeFailures;
    if (!storeFailing) {
      log.error(kj::str("cannot store artifacts in the outbox (", e->getDescription(),
                        "); holding them in memory, at most ", HELD_ARTIFACTS_MAX, " or ",
                        HELD_BYTES_MAX >> 20, " MiB, and retrying every second"));
    }
    storeFailing = true;
    dropPastCap();
  } else if (storeFailing) {
    storeFailing = false;
    droppingLogged = false;
    log.info(kj::str("outbox stores artifacts again: the ", stored,
                     " held in memory are in it"));
  }
  if (stored > 0 && delivering) wake();
}

void ArtifactPublisher::dropPastCap() {
  while (held.size() > HELD_ARTIFACTS_MAX || heldBytes > HELD_BYTES_MAX) {
    if (!droppingLogged) {
      log.error(kj::str("more artifacts than memory may hold for the outbox: dropping the "
                        "oldest (tracer_artifacts_dropped_total counts them)"));
      droppingLogged = true;
    }
    heldBytes -= held.front().body.size();
    held.pop_front();
    ++dropped;
  }
}

std::vector<OutboxEntry> ArtifactPublisher::list(size_t limit) { return outbox.list(limit); }

size_t ArtifactPublisher::retryParked() {
  size_t retried = outbox.retryParked(0);
  if (delivering) wake();  // due now, not at delivery's next run
  return retried;
}

void ArtifactPublisher::renderMetrics(PrometheusText& out) {
  out.single("tracer_outbox_write_failures_total", "counter",
             "Attempts to store artifacts in the outbox that failed (a full disk); the "
             "artifacts stay held in memory.", storeFailures);
  out.single("tracer_artifacts_held_in_memory", "gauge",
             "Artifacts held in memory until the outbox can store them.", uint64_t(held.size()));
  out.single("tracer_artifacts_held_in_memory_bytes", "gauge",
             "Bytes of the bodies of the artifacts held in memory.", uint64_t(heldBytes));
  out.single("tracer_artifacts_dropped_total", "counter",
             "Artifacts dropped unstored: held in memory past its cap.", dropped);
}

void ArtifactPublisher::fillStatus(proto::SidecarStatus::Builder status) const {
  status.setOutboxWriteFailures(storeFailures);
  status.setArtifactsHeld(held.size());
  status.setArtifactsDropped(dropped);
}

}  // namespace tracer
