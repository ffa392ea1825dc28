#include "rpc/sidecar_server.h"

#include <kj/debug.h>

#include "observe/thread_resolver.h"
#include "ops/refuse.h"

namespace tracer {

namespace {

class TaskScopeServer final: public proto::TaskScope::Server {
 public:
  explicit TaskScopeServer(kj::Own<LiveTask> task): task(kj::mv(task)) {}

  kj::Promise<void> finish(FinishContext context) override {
    task->finish(context.getParams().getState(), context.getResults().initReport());
    return kj::READY_NOW;
  }

 private:
  kj::Own<LiveTask> task;  // dropping the scope unfinished ends the task as crashed
};

class FlowRunScopeServer final: public proto::FlowRunScope::Server {
 public:
  FlowRunScopeServer(Services& services, const PeerCredentials& caller,
                     kj::Own<LiveFlowRun> flow)
      : services(services), caller(caller), flow(kj::mv(flow)) {}

  kj::Promise<void> startTask(StartTaskContext context) override {
    if (flow->isFinished()) refuse(kj::str("flow run ", flow->flowRunId(), " is finished"));
    auto info = context.getParams().getTask();
    pid_t hostTid = resolveTaskThread(caller, info.getTid());
    auto task = services.table.startTask(*flow, info, hostTid, caller);
    services.log.debug(kj::str("task ", info.getTaskRunId(), " started on tid ", hostTid));
    context.getResults().setScope(kj::heap<TaskScopeServer>(kj::mv(task)));
    return kj::READY_NOW;
  }

  kj::Promise<void> finish(FinishContext context) override {
    if (flow->isFinished()) refuse(kj::str("flow run ", flow->flowRunId(), " already finished"));
    flow->finish(context.getParams().getState());
    return kj::READY_NOW;
  }

 private:
  Services& services;
  PeerCredentials caller;
  kj::Own<LiveFlowRun> flow;
};

class AdminServer final: public proto::Admin::Server {
 public:
  explicit AdminServer(Services& services): services(services) {}

  kj::Promise<void> liveTasks(LiveTasksContext context) override {
    services.table.describeLiveTasks(
        context.getResults().initTasks(services.table.liveTaskCount()));
    return kj::READY_NOW;
  }

  kj::Promise<void> reloadPolicies(ReloadPoliciesContext context) override {
    auto errors = services.advisor.reload();
    auto results = context.getResults();
    results.setOk(errors.empty());
    auto list = results.initErrors(errors.size());
    for (size_t i = 0; i < errors.size(); ++i) list.set(i, errors[i]);
    return kj::READY_NOW;
  }

  kj::Promise<void> recommendations(RecommendationsContext context) override {
    capnp::Orphan<capnp::List<proto::TaskRecommendation>> list;
    services.advisor.recommendations(context.getParams().getFlow(),
                                     capnp::Orphanage::getForMessageContaining(
                                         context.getResults()),
                                     list);
    context.getResults().adoptRecommendations(kj::mv(list));
    return kj::READY_NOW;
  }

  kj::Promise<void> artifacts(ArtifactsContext context) override {
    if (context.getParams().getRetryParked()) {
      services.outbox.retryParked(0);
    }
    auto entries = services.outbox.list(100);
    auto list = context.getResults().initArtifacts(entries.size());
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
      list[i].setBody(e.body);
    }
    return kj::READY_NOW;
  }

  kj::Promise<void> recentReports(RecentReportsContext context) override {
    uint32_t limit = context.getParams().getLimit();
    services.table.recentReports(
        limit, context.getResults().initReports(services.table.reportCount(limit)));
    return kj::READY_NOW;
  }

 private:
  Services& services;
};

class SidecarServer final: public proto::Sidecar::Server {
 public:
  SidecarServer(Services& services, PeerCredentials caller)
      : services(services), caller(caller) {}

  kj::Promise<void> openFlowRun(OpenFlowRunContext context) override {
    auto info = context.getParams().getRun();
    if (info.getFlowRunId().size() == 0) refuse(kj::str("openFlowRun: flow_run_id is empty"));
    auto flow = services.table.openFlowRun(info, caller);
    context.getResults().setScope(kj::heap<FlowRunScopeServer>(services, caller, kj::mv(flow)));
    return kj::READY_NOW;
  }

  kj::Promise<void> status(StatusContext context) override {
    auto status = context.getResults().initStatus();
    status.setVersion(TRACER_VERSION);
    status.setUptimeNs((services.clock.now() - services.startedAt) / kj::NANOSECONDS);
    status.setConnectedClients(services.connectedClients);
    services.table.fillStatus(status);
    return kj::READY_NOW;
  }

  kj::Promise<void> admin(AdminContext context) override {
    if (!caller.isRoot()) {
      refuse(kj::str("refused: the Admin interface is for root; the caller is ",
                     caller.describe()));
    }
    context.getResults().setAdmin(kj::heap<AdminServer>(services));
    return kj::READY_NOW;
  }

 private:
  Services& services;
  PeerCredentials caller;
};

}  // namespace

kj::Own<proto::Sidecar::Server> makeSidecarServer(Services& services, PeerCredentials caller) {
  return kj::heap<SidecarServer>(services, caller);
}

}  // namespace tracer
