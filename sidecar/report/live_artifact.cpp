#include "report/live_artifact.h"

#include <algorithm>

#include "contract_json.h"
#include "endpoint_name.h"
#include "ops/wall_clock.h"
#include "report/markdown_text.h"

namespace tracer {

namespace {

constexpr const char* DESCRIPTION = "Tracer: what this flow run is doing now";

kj::String utcTime(int64_t wallNs) { return utcText(wallNs, "%H:%M:%S UTC"); }

kj::String waitingOn(proto::LiveTask::Reader t) {
  if (t.getWaitingOn().size() == 0) return kj::str("(running)");
  auto on = t.getWaitingOnEndpoint().getAddress().size() > 0
                ? kj::str(t.getWaitingOn(), " ", endpointName(t.getWaitingOnEndpoint()))
                : kj::str(t.getWaitingOn());
  return t.getWaitingNs() == 0 ? kj::mv(on)
                               : kj::str(on, " for ", inSeconds(t.getWaitingNs()), " s");
}

}  // namespace

Artifact renderLiveArtifact(kj::String id, const FlowRunSummary& flow, size_t finishedTasks,
                            capnp::List<proto::LiveTask>::Reader tasks, int64_t nowNs) {
  kj::Vector<proto::LiveTask::Reader> ranked;
  for (auto t: tasks) ranked.add(t);
  std::sort(ranked.begin(), ranked.end(),
            [](auto& a, auto& b) { return a.getRunningNs() > b.getRunningNs(); });
  kj::Vector<kj::String> md;
  md.add(kj::str("## Tracer: flow run **", markdownName(flow.flowName), "** is running"));
  md.add(kj::str("As of ", utcTime(nowNs), ", ", inSeconds(flow.wallNs), " s into the run: ",
                 tasks.size(), " task runs running, ", finishedTasks,
                 " finished. The full report comes when the run ends."));
  if (ranked.size() > 0) {
    md.add(kj::str(""));
    md.add(kj::str("| task | task run | running (s) | cores | memory (MiB) | waiting on |"));
    md.add(kj::str("|---|---|---|---|---|---|"));
    for (size_t i = 0; i < std::min(ranked.size(), LIVE_TASKS_MAX); ++i) {
      auto t = ranked[i];
      char cores[32];
      snprintf(cores, sizeof(cores), "%.2f", t.getCores());
      md.add(kj::str("| ", markdownName(t.getTaskName()), " | `", markdownCode(t.getTaskRunId()),
                     "` | ", inSeconds(t.getRunningNs()), " | ", cores, " | ",
                     t.getRssBytes() >> 20, " | ", markdownCell(waitingOn(t)), " |"));
    }
    if (ranked.size() > LIVE_TASKS_MAX) {
      md.add(kj::str(""));
      md.add(kj::str("... and ", ranked.size() - LIVE_TASKS_MAX, " more (tracerctl top)"));
    }
  }
  return artifactFor(kj::mv(id), "", "markdown", DESCRIPTION,
                     jsonQuoted(kj::strArray(md, "\n")), flow, "");
}

Artifact renderLiveArtifactEnded(kj::String id, const FlowRunSummary& flow) {
  auto md = kj::str("## Tracer: flow run **", markdownName(flow.flowName), "** ended (",
                    flow.state, ") after ", inSeconds(flow.wallNs),
                    " s\n\nIts report is in the artifacts Tracer made for it at its end.");
  return artifactFor(kj::mv(id), "", "markdown", DESCRIPTION, jsonQuoted(md), flow, "");
}

}  // namespace tracer
