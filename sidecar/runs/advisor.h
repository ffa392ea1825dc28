#pragma once
// The policy engine inside the sidecar: holds the current policy set (the last
// good one: a reload with errors keeps it), and at each task's finish matches
// the policy, records the run in the history, and adds the findings and the
// recommendation to the TaskReport.

#include <memory>
#include <string>
#include <vector>

#include <kj/vector.h>

#include "metrics/metrics_source.h"
#include "observe/run_sink.h"
#include "ops/log.h"
#include "prefect/history_seeder.h"
#include "policy/detectors.h"
#include "policy/matcher.h"
#include "policy/policy.h"
#include "report/run_keys.h"
#include "runs/policy_admin.h"
#include "store/history.h"
#include "tracer.capnp.h"

namespace tracer {

// Copies what advise() added to `advised` (policy, findings, recommendation,
// cost, and the unknown fields with the cost's) into `to`.
void copyAdvice(proto::TaskReport::Reader advised, proto::TaskReport::Builder to);

class Advisor final: public PolicyAdmin, public MetricsSource {
 public:
  // Without a directory the built-in defaults apply (those of policies/default.yaml).
  Advisor(Log& log, std::string policyDirectory, History& history,
          kj::Maybe<HistorySeeder&> seeder = nullptr);

  // Why the initial set could not be loaded (every error, file:line:col), empty
  // if it was: the sidecar refuses to start on a bad set.
  const std::string& startupError() const { return startupProblem; }

  std::vector<std::string> reload() override;

  // Returns the run's record as the history keeps it (its table-artifact
  // row, contract JSON), or null when it records none (no policy applies,
  // or the run was measured only in part). A flow run's footprint
  // (Scope::FLOW_RUN, place.task policy::FLOW_RUN_TASK) is advised as a task
  // run is, with the findings and the job variables of a deployment; given
  // its task runs (advised already), also whether they belong on different
  // work pools (separate_tasks, TaskReport.placement). A task run gets its
  // profile.
  kj::String advise(const TaskPlace& place, proto::TaskReport::Builder report,
                    policy::Scope scope = policy::Scope::TASK_RUN,
                    kj::ArrayPtr<const proto::TaskReport::Reader> flowTasks = nullptr);
  // A flow run started: a deployment's first run with its id takes over the
  // history a version-0 state directory kept under its name; then, with a
  // Prefect API, the history other nodes left is fetched if this node has none
  // for its deployment (or flow).
  void flowOpened(const TaskPlace& place);
  void flowFinished(const TaskPlace& place, const std::string& flowRunId, uint64_t wallNs,
                    const std::string& state);
  // How often a flow run at `place` that lasts gets its live artifact, in
  // ns (the policy matching its flow, for any task; 0: none).
  uint64_t liveArtifactEvery(const TaskPlace& place);
  // The policies, and the last reload's error.
  void fillStatus(proto::SidecarStatus::Builder status) const override;
  // Policy reloads by result, and whether the last was refused.
  void renderMetrics(PrometheusText& out) override;
  // Commits the runs recorded since the last call (see History::flush), and
  // that the sidecar is watching now (History::watchedUntil); logs when
  // writing starts failing and when it works again, not every failure.
  void flush();
  void recommendations(const std::string& flowPattern,
                       capnp::Orphanage orphanage,
                       capnp::Orphan<capnp::List<proto::TaskRecommendation>>& out) override;

 private:
  Log& log;
  std::string directory;
  History& history;
  kj::Maybe<HistorySeeder&> seeder;
  std::shared_ptr<const policy::PolicySet> policies;
  std::unique_ptr<policy::Matcher> matcher;  // over *policies
  std::string reloadError;
  std::string startupProblem;
  struct ReloadCounts {
    uint64_t applied = 0;
    uint64_t refused = 0;
  };
  ReloadCounts reloads;
};

}  // namespace tracer
