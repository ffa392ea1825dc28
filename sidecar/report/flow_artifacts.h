#pragma once
// What a flow run leaves in Prefect's Artifacts tab (DESIGN.md, "The artifacts
// we post"): a markdown artifact (headline recommendation with its
// prefect.yaml snippet, the task table, a mermaid timeline, the findings with
// their evidence) and a table artifact with one machine-readable row per task.
// Both are keyed per deployment (or flow), so each run adds a version
// (report/run_keys.h).

#include <kj/string.h>
#include <kj/vector.h>

#include "tracer.capnp.h"

namespace tracer {

struct FlowRunSummary {
  kj::String flowRunId;
  kj::String flowName;
  kj::String deploymentId;  // empty without a deployment
  kj::String deploymentName;
  kj::String state;
  uint64_t wallNs;
};

struct Artifact {
  kj::String key;
  kj::String type;  // "markdown" or "table"
  // Random, also in the body as metadata_.tracer_artifact_id: how delivery
  // recognises this very artifact in Prefect after an unanswered attempt.
  kj::String id;
  kj::String body;  // the ArtifactCreate JSON: no field outside that schema
};

// A Prefect flow run id (a UUID)? Runs announced by other tools (tracerctl
// run) have other ids, which no Prefect field accepts.
bool isUuid(kj::StringPtr text);

kj::Vector<Artifact> renderFlowArtifacts(const FlowRunSummary& flow,
                                         kj::ArrayPtr<const proto::TaskReport::Reader> tasks);

}  // namespace tracer
