#pragma once
// An artifact as the outbox keeps it: Prefect's ArtifactCreate JSON, with
// the metadata every Tracer artifact carries (docs/prefect.md, "The artifacts").

#include <kj/string.h>

#include "observe/run_sink.h"

namespace tracer {

struct Artifact {
  kj::String key;   // "" for none (a flow run's live artifact)
  kj::String type;  // "markdown" or "table"
  // Random, also in the body as metadata_.tracer_artifact_id: how delivery
  // recognises this very artifact in Prefect after an unanswered attempt.
  kj::String id;
  kj::String body;  // the ArtifactCreate JSON: no field outside that schema
};

kj::String randomArtifactId();

// `key` "": an artifact without a key (Prefect keeps no versions of it).
// `taskRunId`: a task's own artifact, shown on its task run's page too.
Artifact artifactFor(kj::String id, kj::StringPtr key, kj::StringPtr type,
                     kj::StringPtr description, kj::StringPtr dataJson,
                     const FlowRunSummary& flow, kj::StringPtr policies,
                     kj::StringPtr taskRunId = nullptr);

}  // namespace tracer
