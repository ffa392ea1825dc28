#pragma once
// A flow run's live artifact (docs/prefect.md, "While a flow run runs"): what
// runs now, one artifact per flow run without a key, updated in place while
// the run lasts, and a last time when it ends.

#include "report/artifact_body.h"
#include "tracer.capnp.h"

namespace tracer {

// Live tasks listed at most, the longest running first.
constexpr size_t LIVE_TASKS_MAX = 50;

// `flow`: state "running" and its wall time so far; `id` the artifact's, the
// same each time; `nowNs` the wall clock.
Artifact renderLiveArtifact(kj::String id, const FlowRunSummary& flow, size_t finishedTasks,
                            capnp::List<proto::LiveTask>::Reader tasks, int64_t nowNs);
// Its last form: the run ended (its final state and wall time in `flow`).
Artifact renderLiveArtifactEnded(kj::String id, const FlowRunSummary& flow);

}  // namespace tracer
