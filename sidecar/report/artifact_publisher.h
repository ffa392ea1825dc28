#pragma once
// Turns each finished flow run into its artifacts and puts them in the outbox:
// `pending` for delivery when a Prefect API is configured, `local` otherwise
// (the embedded default: tracerctl outbox shows them). Admin lists them and
// sends the parked ones again through it.
//
// An artifact the outbox cannot store (a full disk) is held in memory and
// stored by the next attempt that works: each publish, and storeHeld() once a
// second. At most HELD_ARTIFACTS_MAX artifacts and HELD_BYTES_MAX bytes of
// their bodies are held; past either, the oldest are dropped (counted).

#include <kj/function.h>

#include <deque>
#include <string>

#include "metrics/metrics_source.h"
#include "metrics/status_part.h"
#include "ops/log.h"
#include "report/artifact_admin.h"
#include "report/flow_artifacts.h"
#include "store/outbox.h"

namespace tracer {

class ArtifactPublisher final: public ArtifactAdmin, public MetricsSource, public StatusPart {
 public:
  static constexpr size_t HELD_ARTIFACTS_MAX = 10000;
  static constexpr size_t HELD_BYTES_MAX = 64 << 20;

  // `delivering`: a Prefect API is configured; `wake` nudges its delivery.
  // Delivered and local artifacts older than `retentionNs` are pruned, at
  // construction and at most once an hour after.
  ArtifactPublisher(Log& log, Outbox& outbox, bool delivering, kj::Function<void()> wake,
                    int64_t retentionNs);
  ~ArtifactPublisher() noexcept(false);

  // `footprint`, `rows`: see renderFlowArtifacts().
  void flowRunFinished(const FlowRunSummary& flow, proto::TaskReport::Reader footprint,
                       kj::ArrayPtr<const proto::TaskReport::Reader> tasks,
                       kj::ArrayPtr<const kj::StringPtr> rows = nullptr);

  // A flow run's live artifact (report/live_artifact.h), made or updated.
  void flowRunLive(const Artifact& live, kj::StringPtr flowRunId);

  // Stores the artifacts held in memory, oldest first, as far as the outbox
  // takes them. Logs when storing starts failing and when it works again.
  void storeHeld();
  size_t artifactsHeld() const { return held.size(); }

  std::vector<OutboxEntry> list(size_t limit) override;
  size_t retryParked() override;

  // Failed stores, what is held in memory and what was dropped past the cap.
  void renderMetrics(PrometheusText& out) override;
  void fillStatus(proto::SidecarStatus::Builder status) const override;

 private:
  // An artifact not yet in the outbox. A live one (no key) replaces its flow
  // run's live artifact held before it: only its newest body matters.
  struct HeldArtifact {
    std::string key, type, flowRunId, artifactId, body;
    bool live;
    int64_t createdAtNs;
  };

  void hold(HeldArtifact artifact);
  void store(const HeldArtifact& artifact);
  void dropPastCap();
  void pruneHourly(int64_t nowNs);

  Log& log;
  Outbox& outbox;
  bool delivering;
  kj::Function<void()> wake;
  int64_t retentionNs;
  int64_t prunedAtNs = 0;
  std::deque<HeldArtifact> held;
  size_t heldBytes = 0;
  bool storeFailing = false;
  bool droppingLogged = false;  // once per time the outbox fails
  uint64_t storeFailures = 0;
  uint64_t dropped = 0;
};

}  // namespace tracer
