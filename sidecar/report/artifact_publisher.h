#pragma once
// Turns each finished flow run into its artifacts and puts them in the outbox:
// `pending` for delivery when a Prefect API is configured, `local` otherwise
// (the embedded default: tracerctl outbox shows them). Admin lists them and
// sends the parked ones again through it.

#include <kj/function.h>

#include "ops/log.h"
#include "report/artifact_admin.h"
#include "report/flow_artifacts.h"
#include "store/outbox.h"

namespace tracer {

class ArtifactPublisher final: public ArtifactAdmin {
 public:
  // `delivering`: a Prefect API is configured; `wake` nudges its delivery.
  // Delivered and local artifacts older than `retentionNs` are pruned, at
  // construction and at most once an hour after.
  ArtifactPublisher(Log& log, Outbox& outbox, bool delivering, kj::Function<void()> wake,
                    int64_t retentionNs);

  // `footprint`, `rows`: see renderFlowArtifacts().
  void flowRunFinished(const FlowRunSummary& flow, proto::TaskReport::Reader footprint,
                       kj::ArrayPtr<const proto::TaskReport::Reader> tasks,
                       kj::ArrayPtr<const kj::StringPtr> rows = nullptr);

  // A flow run's live artifact (report/live_artifact.h), made or updated.
  void flowRunLive(const Artifact& live, kj::StringPtr flowRunId);

  std::vector<OutboxEntry> list(size_t limit) override;
  size_t retryParked() override;

 private:
  void pruneHourly(int64_t nowNs);

  Log& log;
  Outbox& outbox;
  bool delivering;
  kj::Function<void()> wake;
  int64_t retentionNs;
  int64_t prunedAtNs = 0;
};

}  // namespace tracer
