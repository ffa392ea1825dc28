// The RPC server as a client reaches it, in-process: a flow run's scope and
// the tasks its client starts and finishes on it by key, over the real
// attribution table with a fake collector and sink.
#include <capnp/capability.h>
#include <capnp/message.h>
#include <catch2/catch.hpp>
#include <kj/async.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <string>

#include "fake_stage.h"
#include "observe/attribution_table.h"
#include "rpc/sidecar_server.h"

using namespace tracer;
using tracer::testing::FakeCollector;
using tracer::testing::FakeSink;

namespace {

// Admin's stages: a task's start and finish never reach them.
class NoAdmin final: public PolicyAdmin, public ArtifactAdmin, public CostAdmin {
 public:
  std::vector<std::string> reload() override { KJ_UNIMPLEMENTED("not in these tests"); }
  void fillStatus(proto::SidecarStatus::Builder) const override {}
  void recommendations(const std::string&, capnp::Orphanage,
                       capnp::Orphan<capnp::List<proto::TaskRecommendation>>&) override {
    KJ_UNIMPLEMENTED("not in these tests");
  }
  std::vector<OutboxEntry> list(size_t) override { KJ_UNIMPLEMENTED("not in these tests"); }
  size_t retryParked() override { KJ_UNIMPLEMENTED("not in these tests"); }
  kj::Promise<kj::Own<capnp::MessageBuilder>> costs(kj::StringPtr, uint64_t, int64_t) override {
    KJ_UNIMPLEMENTED("not in these tests");
  }
};

// One connection's Sidecar capability, for this process (root in these tests,
// or whoever runs them), with `maxScopes` live scopes.
struct Server {
  explicit Server(uint32_t maxScopes = 16)
      : client(makeSidecarServer(
            services,
            kj::refcounted<Caller>(
                PeerIdentity{PeerCredentials{getpid(), getuid(), getgid(), true}, {}, {}}, true,
                maxScopes))) {}

  proto::FlowRunScope::Client open(kj::StringPtr id) {
    auto request = client.openFlowRunRequest();
    request.initRun().setFlowRunId(id);
    request.getRun().setFlowName("etl");
    return request.send().getScope();
  }

  static kj::Promise<void> start(proto::FlowRunScope::Client& scope, uint64_t key,
                                 kj::StringPtr taskName) {
    auto request = scope.startTaskRequest();
    request.setKey(key);
    auto task = request.initTask();
    task.setTaskRunId(kj::str("run-of-", taskName));
    task.setTaskName(taskName);
    task.setTid(static_cast<pid_t>(syscall(SYS_gettid)));
    return request.send().ignoreResult();
  }

  static capnp::RemotePromise<proto::FlowRunScope::FinishTaskResults> finish(
      proto::FlowRunScope::Client& scope, uint64_t key) {
    auto request = scope.finishTaskRequest();
    request.setKey(key);
    request.setState(proto::RunState::COMPLETED);
    request.setReportWanted(true);
    return request.send();
  }

  kj::EventLoop loop;
  kj::WaitScope wait{loop};
  FakeCollector collector;
  FakeSink sink;
  Log log{false};
  AttributionTable table{collector, kj::systemPreciseMonotonicClock(), sink, log};
  NoAdmin admin;
  AccessPolicy access;
  RpcMetrics rpcMetrics{kj::systemPreciseMonotonicClock()};
  Services services{table, table, admin, admin, admin, access, rpcMetrics, log,
                    kj::systemPreciseMonotonicClock(), kj::systemPreciseMonotonicClock().now()};
  proto::Sidecar::Client client;
};

}  // namespace

TEST_CASE("a flow run's tasks are started and finished by the keys their client chose") {
  Server server;
  auto scope = server.open("flow-1");
  Server::start(scope, 1, "extract").wait(server.wait);
  Server::start(scope, 2, "load").wait(server.wait);
  CHECK(server.table.liveTaskCount() == 2);

  CHECK_THROWS_WITH(Server::start(scope, 1, "again").wait(server.wait),
                    Catch::Contains("startTask: key 1 is already a live task of flow run "
                                    "flow-1 on this connection"));
  auto report = Server::finish(scope, 1).wait(server.wait);
  CHECK(report.getReport().getTaskRunId() == "run-of-extract");
  CHECK(server.table.liveTaskCount() == 1);

  for (uint64_t key: {1, 7}) {
    CHECK_THROWS_WITH(Server::finish(scope, key).wait(server.wait),
                      Catch::Contains("finishTask: key " + std::to_string(key) +
                                      " is not a live task of flow run flow-1 on this "
                                      "connection"));
  }
  Server::start(scope, 1, "reused").wait(server.wait);  // a finished task's key is free again
  CHECK(server.table.liveTaskCount() == 2);
  CHECK(server.sink.finishedTasks == std::vector<std::string>{"extract"});
}

TEST_CASE("dropping a flow run's scope ends its unfinished tasks as crashed") {
  Server server;
  {
    auto scope = server.open("flow-1");
    Server::start(scope, 1, "finished").wait(server.wait);
    Server::start(scope, 2, "abandoned").wait(server.wait);
    Server::finish(scope, 1).wait(server.wait);
  }
  server.loop.run();  // the release reaches the server
  CHECK(server.table.liveTaskCount() == 0);
  CHECK(server.sink.finishedTasks == std::vector<std::string>{"finished", "abandoned"});
  CHECK(server.sink.flowState == "crashed");
}

TEST_CASE("a live task holds one of its connection's scopes until it finishes") {
  Server server(3);  // the flow run and two tasks
  auto scope = server.open("flow-1");
  Server::start(scope, 1, "a").wait(server.wait);
  Server::start(scope, 2, "b").wait(server.wait);
  CHECK_THROWS_WITH(Server::start(scope, 3, "c").wait(server.wait),
                    Catch::Contains("refused: task run-of-c: this connection") &&
                        Catch::Contains("already holds 3 live scopes"));
  Server::finish(scope, 2).wait(server.wait);
  CHECK_NOTHROW(Server::start(scope, 3, "c").wait(server.wait));
}
