#pragma once
// What a flow run leaves in Prefect's Artifacts tab (docs/prefect.md, "The
// artifacts"): a markdown artifact (the deployment's recommendation from the
// run's footprint, with its prefect.yaml snippet, the task table, a mermaid timeline, the findings with
// their evidence) and a table artifact with one machine-readable row per task.
// Both are keyed per deployment (or flow), so each run adds a version
// (report/run_keys.h).

#include <kj/string.h>
#include <kj/vector.h>

#include "observe/run_sink.h"
#include "report/artifact_body.h"
#include "tracer.capnp.h"

namespace tracer {

// What the markdown artifact lists at most (a page of thousands of rows and a
// timeline of thousands of bars helps nobody); the table artifact has every
// task run.
constexpr size_t MARKDOWN_TASKS_MAX = 200;  // the longest ones
constexpr size_t MARKDOWN_FINDINGS_MAX = 200;

// `footprint`: what the run's processes used together, advised
// (observe/flow_footprint.h): the headline recommendation and the findings
// on its allocation come from it. `rows`: each task's table-artifact row if
// made already (as its advice recorded it in the history), or null; none at
// all: all made here.
kj::Vector<Artifact> renderFlowArtifacts(const FlowRunSummary& flow,
                                         proto::TaskReport::Reader footprint,
                                         kj::ArrayPtr<const proto::TaskReport::Reader> tasks,
                                         kj::ArrayPtr<const kj::StringPtr> rows = nullptr);

}  // namespace tracer
