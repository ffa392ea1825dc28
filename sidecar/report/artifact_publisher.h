#pragma once
// Turns each finished flow run into its artifacts and puts them in the outbox:
// `pending` for delivery when a Prefect API is configured, `local` otherwise
// (the embedded default: tracerctl outbox shows them).

#include <kj/function.h>

#include "ops/log.h"
#include "report/flow_artifacts.h"
#include "store/outbox.h"

namespace tracer {

class ArtifactPublisher {
 public:
  // `delivering`: a Prefect API is configured; `wake` nudges its delivery.
  ArtifactPublisher(Log& log, Outbox& outbox, bool delivering, kj::Function<void()> wake);

  void flowRunFinished(const FlowRunSummary& flow,
                       kj::ArrayPtr<const proto::TaskReport::Reader> tasks);

 private:
  Log& log;
  Outbox& outbox;
  bool delivering;
  kj::Function<void()> wake;
};

}  // namespace tracer
