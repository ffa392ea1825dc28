#pragma once
// The keys a flow run's history (history.db) and artifacts (outbox.db, then
// Prefect) are kept under. Every key is made here: the advisor, the renderer
// and the seeder that reads other nodes' artifacts back all call these.
//
// Prefect makes a deployment's *name* unique only within its flow: flows
// "etl" and "report" may both have a deployment "prod". So a deployment is
// known by its id, and a run without one (`python flow.py`) by its flow's
// name, which is unique in a workspace. A run that names a deployment but
// gives no id (a client other than the plugin) counts as a run of its flow:
// a name alone cannot say which deployment it is.

#include <kj/string.h>

#include <string>

namespace tracer {

struct RunOwner {
  kj::StringPtr flow;
  kj::StringPtr deploymentId;    // a UUID (openFlowRun refuses others), or empty
  kj::StringPtr deploymentName;  // for people to read; part of no identity
};

// Prefect's ids are UUIDs (8-4-4-4-12 hex digits, either case). Runs
// announced by other tools (tracerctl run) have other ids, which no Prefect
// field accepts.
bool isUuid(kj::StringPtr text);

// "deployment:<id>" (lowercase), or "flow:<flow name>" without a deployment id.
std::string historyKey(const RunOwner& owner);

enum class ArtifactKind {
  REPORT,  // the markdown one
  TABLE,   // the machine-readable rows, which seed other nodes' history
};

// "tracer-<flow>-<deployment>-<first 8 hex digits of the id>", or
// "tracer-<flow>" without a deployment id; "-tasks" appended for the table.
kj::String artifactKey(const RunOwner& owner, ArtifactKind kind);

// A task's own artifact (findings.task_artifact): the flow run's report key
// and "-task-<task>".
kj::String taskArtifactKey(const RunOwner& owner, kj::StringPtr taskName);

// "flow/deployment", as Prefect's CLI names a deployment, or "flow" alone.
// Inline: tracerctl, which links none of the sidecar, names them so too.
inline kj::String displayName(const RunOwner& owner) {
  if (owner.deploymentName.size() == 0) return kj::str(owner.flow);
  return kj::str(owner.flow, "/", owner.deploymentName);
}

}  // namespace tracer
