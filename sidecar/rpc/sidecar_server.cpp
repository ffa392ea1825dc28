#include "rpc/sidecar_server.h"

#include <kj/debug.h>

#include "contract_json.h"
#include "message_limits.h"
#include "rpc/thread_resolver.h"
#include "ops/refuse.h"
#include "report/run_keys.h"

namespace tracer {

namespace {

// The size of an answer that is one capability. The answer stays in memory
// until the client lets go of the question, for as long as the run it opens is
// live: without the hint, Cap'n Proto gives each one an 8 KiB first segment.
constexpr capnp::MessageSize CAPABILITY_ONLY{1, 1};

// A state is stored, rendered into artifacts and shown by tracerctl by name:
// a number this build has no name for is refused at the door.
proto::RunState knownState(proto::RunState state) {
  if (enumName(state) == nullptr) {
    refuse(kj::str("finish: run state ", static_cast<unsigned>(state), " is not one of ",
                   "completed, failed, cancelled, crashed"));
  }
  return state;
}

class FlowRunScopeServer final: public MeasuredServer<proto::FlowRunScope> {
 public:
  FlowRunScopeServer(Services& services, kj::Own<Caller> caller, kj::Own<Caller::Scope> held,
                     kj::Own<FlowRunHold> hold)
      : MeasuredServer(services.rpcMetrics),
        services(services),
        caller(kj::mv(caller)),
        held(kj::mv(held)),
        hold(kj::mv(hold)) {}

  kj::Promise<void> startTask(StartTaskContext context) override {
    auto& flow = hold->run();
    if (hold->isFinished() || flow.isFinished()) {
      refuse(kj::str("flow run ", flow.flowRunId(), " is finished"));
    }
    auto params = context.getParams();
    auto info = params.getTask();
    if (tasks.find(params.getKey()) != nullptr) {
      refuse(kj::str("startTask: key ", params.getKey(), " is already a live task of flow run ",
                     flow.flowRunId(), " on this connection"));
    }
    auto held = caller->holdScope(kj::str("task ", info.getTaskRunId()));
    auto quota = services.liveTasksByUid.hold(caller->credentials(),
                                              services.access.maxLiveTasksPerUid);
    // The caller's own threads, whoever opened the run: joining grants nothing.
    auto thread = resolveTaskThread(*caller, info.getTid());
    auto task = services.runs.startTask(flow, info, thread, caller->credentials());
    services.log.debug(kj::str("task ", info.getTaskName(), " started on tid ", thread.tid),
                       {flow.flowRunId(), info.getTaskRunId()});
    tasks.insert(params.getKey(), HeldTask{kj::mv(held), kj::mv(quota), kj::mv(task)});
    return kj::READY_NOW;
  }

  kj::Promise<void> finishTask(FinishTaskContext context) override {
    auto params = context.getParams();
    auto state = knownState(params.getState());
    KJ_IF_MAYBE(entry, tasks.find(params.getKey())) {
      kj::Maybe<proto::ThreadBaseline::Reader> end;
      if (params.hasEnd()) end = params.getEnd();
      if (params.getReportWanted()) {
        entry->task->finish(state, context.getResults().initReport(), end);
      } else {
        entry->task->finish(state, nullptr, end);
      }
      tasks.erase(params.getKey());
      return kj::READY_NOW;
    }
    refuse(kj::str("finishTask: key ", params.getKey(), " is not a live task of flow run ",
                   hold->run().flowRunId(), " on this connection"));
  }

  kj::Promise<void> finish(FinishContext context) override {
    if (hold->isFinished()) {
      refuse(kj::str("flow run ", hold->run().flowRunId(), " already finished"));
    }
    // Answered once the run's artifacts are in the outbox.
    return hold->finish(knownState(context.getParams().getState()));
  }

 private:
  // A live task and what it holds against its caller's limits.
  struct HeldTask {
    kj::Own<Caller::Scope> held;
    kj::Own<LiveTasksByUid::Held> quota;
    kj::Own<LiveTask> task;  // dropped unfinished (with the scope), it ends as crashed
  };

  Services& services;
  kj::Own<Caller> caller;
  kj::Own<Caller::Scope> held;
  kj::Own<FlowRunHold> hold;
  // Last, so its tasks end before the run's hold lets go.
  kj::HashMap<uint64_t, HeldTask> tasks;
};

class AdminServer final: public MeasuredServer<proto::Admin> {
 public:
  explicit AdminServer(Services& services)
      : MeasuredServer(services.rpcMetrics), services(services) {}

  kj::Promise<void> liveTasks(LiveTasksContext context) override {
    services.queries.describeLiveTasks(
        context.getResults().initTasks(services.queries.liveTaskCount()));
    return kj::READY_NOW;
  }

  kj::Promise<void> reloadPolicies(ReloadPoliciesContext context) override {
    auto errors = services.policies.reload();
    auto results = context.getResults();
    results.setOk(errors.empty());
    auto list = results.initErrors(errors.size());
    for (size_t i = 0; i < errors.size(); ++i) list.set(i, errors[i]);
    return kj::READY_NOW;
  }

  kj::Promise<void> recommendations(RecommendationsContext context) override {
    capnp::Orphan<capnp::List<proto::TaskRecommendation>> list;
    services.policies.recommendations(context.getParams().getFlow(),
                                     capnp::Orphanage::getForMessageContaining(
                                         context.getResults()),
                                     list);
    context.getResults().adoptRecommendations(kj::mv(list));
    return kj::READY_NOW;
  }

  kj::Promise<void> artifacts(ArtifactsContext context) override {
    if (context.getParams().getRetryParked()) services.artifacts.retryParked();
    auto entries = services.artifacts.list(100);
    auto list = context.getResults().initArtifacts(entries.size());
    size_t bodyBytes = 0;  // a table artifact of thousands of task runs is megabytes
    for (size_t i = 0; i < entries.size(); ++i) {
      auto& e = entries[i];
      list[i].setId(e.id);
      list[i].setKey(e.key);
      list[i].setType(e.type);
      list[i].setFlowRunId(e.flowRunId);
      list[i].setStatus(e.status);
      list[i].setAttempts(e.attempts);
      list[i].setLastError(e.lastError);
      list[i].setCreatedAtNs(e.createdAtNs);
      if (bodyBytes + e.body.size() > ANSWER_PAYLOAD_BYTES_MAX) {
        list[i].setBodyOmitted(true);
        continue;
      }
      bodyBytes += e.body.size();
      list[i].setBody(e.body);
    }
    return kj::READY_NOW;
  }

  kj::Promise<void> costs(CostsContext context) override {
    auto params = context.getParams();
    return services.costs.costs(params.getBy(), params.getSinceNs(), params.getNowNs())
        .then([context](kj::Own<capnp::MessageBuilder> answer) mutable {
          context.getResults().setCosts(answer->getRoot<proto::CostReport>().asReader());
        });
  }

  kj::Promise<void> recentReports(RecentReportsContext context) override {
    uint32_t limit = context.getParams().getLimit();
    services.queries.recentReports(
        limit, context.getResults().initReports(services.queries.reportCount(limit)));
    return kj::READY_NOW;
  }

 private:
  Services& services;
};

// A joiner (FlowRunInfo.joinRunningFlowRun) gets the live run with its id if
// it may join it. With none, a run of its own: the opener may be unobserved
// (no plugin, a sidecar restarted since), and its tasks are still worth a
// report. But a run that already ended is refused: its artifacts are out, and
// a second run of the same id would make a second artifact set and count the
// flow run twice in the history.
kj::Own<FlowRunHold> joinFlowRun(Services& services, const Caller& caller,
                                 proto::FlowRunInfo::Reader info) {
  auto id = info.getFlowRunId();
  KJ_IF_MAYBE(flow, services.runs.liveFlowRun(id)) {
    KJ_IF_MAYBE(why, joinRefusal(id, caller.credentials(), flow->opener())) {
      refuse(kj::mv(*why));
    }
    return services.runs.joinFlowRun(*flow, caller.credentials());
  }
  KJ_IF_MAYBE(state, services.runs.endedFlowRun(id)) {
    refuse(kj::str("refused: flow run ", id, " already ended (",
                   KJ_ASSERT_NONNULL(enumName(*state)), "): its report is out, and tasks that ",
                   "join it now would not be in it"));
  }
  return services.runs.openFlowRun(info, caller.credentials());
}

class SidecarServer final: public MeasuredServer<proto::Sidecar> {
 public:
  SidecarServer(Services& services, kj::Own<Caller> caller)
      : MeasuredServer(services.rpcMetrics), services(services), caller(kj::mv(caller)) {}

  kj::Promise<void> openFlowRun(OpenFlowRunContext context) override {
    auto info = context.getParams().getRun();
    if (info.getFlowRunId().size() == 0) refuse(kj::str("openFlowRun: flow_run_id is empty"));
    // It keys the deployment's history and artifacts (report/run_keys.h).
    if (info.getDeploymentId().size() > 0 && !isUuid(info.getDeploymentId())) {
      refuse(kj::str("openFlowRun: deployment_id \"", info.getDeploymentId(),
                     "\" is not a UUID, as Prefect's deployment ids are"));
    }
    auto held = caller->holdScope(kj::str("flow run ", info.getFlowRunId()));
    // The flow run's limits are read from the caller's cgroup: it must still be the caller.
    caller->requireStillRunning();
    auto hold = info.getJoinRunningFlowRun()
                    ? joinFlowRun(services, *caller, info)
                    : services.runs.openFlowRun(info, caller->credentials());
    services.log.debug(kj::str("flow run of ", hold->run().flowName(),
                               hold->isJoined() ? " joined by " : " opened by ",
                               caller->credentials().describe()),
                       {info.getFlowRunId(), nullptr});
    context.getResults(CAPABILITY_ONLY).setScope(kj::heap<FlowRunScopeServer>(
        services, kj::addRef(*caller), kj::mv(held), kj::mv(hold)));
    return kj::READY_NOW;
  }

  kj::Promise<void> status(StatusContext context) override {
    auto status = context.getResults().initStatus();
    status.setVersion(TRACER_VERSION);
    status.setUptimeNs((services.clock.now() - services.startedAt) / kj::NANOSECONDS);
    status.setConnectedClients(services.connectedClients);
    services.queries.fillStatus(status);
    services.policies.fillStatus(status);
    for (auto* part: services.statusParts) part->fillStatus(status);
    return kj::READY_NOW;
  }

  kj::Promise<void> admin(AdminContext context) override {
    if (!caller->mayAdminister()) {
      refuse(kj::str("refused: the Admin interface is for root in the sidecar's PID namespace "
                     "and the --admin-group; the caller is ", caller->credentials().describe()));
    }
    context.getResults(CAPABILITY_ONLY).setAdmin(kj::heap<AdminServer>(services));
    return kj::READY_NOW;
  }

 private:
  Services& services;
  kj::Own<Caller> caller;
};

}  // namespace

kj::Own<proto::Sidecar::Server> makeSidecarServer(Services& services, kj::Own<Caller> caller) {
  return kj::heap<SidecarServer>(services, kj::mv(caller));
}

}  // namespace tracer
