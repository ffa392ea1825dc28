#include "connection.h"

#include <capnp/rpc-twoparty.h>
#include <capnp/serialize.h>
#include <kj/async-io.h>
#include <kj/debug.h>
#include <kj/map.h>
#include <signal.h>
#include <unistd.h>

#include "contract_json.h"
#include "tracer.capnp.h"

namespace tracer::client {

namespace {

constexpr kj::Duration FIRST_RETRY = 50 * kj::MILLISECONDS;
constexpr kj::Duration MAX_RETRY = 2 * kj::SECONDS;

capnp::FlatArrayMessageReader readerOf(kj::ArrayPtr<const capnp::word> words) {
  return capnp::FlatArrayMessageReader(words);
}

// The error branch of a request: the sidecar's refusal or the lost connection.
auto failInto(kj::Own<const Outcome> outcome) {
  return [outcome = kj::mv(outcome)](kj::Exception&& e) {
    outcome->fail(kj::str(e.getDescription()));
  };
}

}  // namespace

// Everything that lives on the event-loop thread. Only that thread touches it.
class Loop final: private kj::TaskSet::ErrorHandler {
 public:
  Loop(kj::AsyncIoContext& io, kj::String path, kj::MutexGuarded<Connection::Link>& link)
      : io(io), path(kj::mv(path)), link(link), requests(*this) {}

  kj::Promise<void> maintain() {
    return kj::evalNow([this]() {
             return io.provider->getNetwork().parseAddress(kj::str("unix:", path));
           })
        .then([](kj::Own<kj::NetworkAddress> address) {
          auto connecting = address->connect();
          return connecting.attach(kj::mv(address));
        })
        .then(
            [this](kj::Own<kj::AsyncIoStream> stream) {
              auto& session = sessionSlot.emplace(kj::mv(stream));
              retryDelay = FIRST_RETRY;
              setLink(true, kj::str("connected"));
              return session.client.onDisconnect().then(
                  []() { return kj::str("the sidecar closed the connection"); },
                  [](kj::Exception&& e) { return kj::str(e.getDescription()); });
            },
            [](kj::Exception&& e) { return kj::str(e.getDescription()); })
        .then([this](kj::String reason) {
          // Scopes of the old session are gone with it; flows re-open on demand.
          sessionSlot = nullptr;
          flows.clear();
          tasks.clear();
          setLink(false, kj::str("cannot reach the sidecar at ", path, ": ", reason));
          auto delay = retryDelay;
          retryDelay = kj::min(retryDelay * 2, MAX_RETRY);
          return io.provider->getTimer().afterDelay(delay).then([this]() { return maintain(); });
        });
  }

  void status(kj::Own<const Outcome> outcome) {
    KJ_IF_MAYBE(sidecar, connected(*outcome)) {
      requests.add(sidecar->statusRequest().send().then(
          [outcome = outcome->addRef()](auto response) {
            outcome->succeed(toContractJson(capnp::toDynamic(response.getStatus())));
          },
          failInto(outcome->addRef())));
    }
  }

  void liveTasks(kj::Own<const Outcome> outcome) {
    KJ_IF_MAYBE(sidecar, connected(*outcome)) {
      requests.add(sidecar->adminRequest().send().getAdmin().liveTasksRequest().send().then(
          [outcome = outcome->addRef()](auto response) {
            outcome->succeed(toContractJson(capnp::toDynamic(response)));
          },
          failInto(outcome->addRef())));
    }
  }

  void openFlow(uint64_t flowId, kj::ArrayPtr<const capnp::word> info) {
    if (sessionSlot != nullptr) flowScope(flowId, info);
  }

  void finishFlow(uint64_t flowId, kj::ArrayPtr<const capnp::word> info, uint16_t state,
                  kj::Own<const Outcome> outcome) {
    if (connected(*outcome) == nullptr) return;
    auto scope = flowScope(flowId, info);
    flows.erase(flowId);
    auto request = scope.finishRequest();
    request.setState(static_cast<proto::RunState>(state));
    requests.add(request.send().then([outcome = outcome->addRef()](auto) { outcome->succeed(); },
                                     failInto(outcome->addRef())));
  }

  void startTask(uint64_t flowId, kj::ArrayPtr<const capnp::word> flowInfo, uint64_t taskId,
                 kj::ArrayPtr<const capnp::word> taskInfo, kj::Own<const Outcome> outcome) {
    if (connected(*outcome) == nullptr) return;
    auto request = flowScope(flowId, flowInfo).startTaskRequest();
    request.setTask(readerOf(taskInfo).getRoot<proto::TaskRunInfo>());
    auto response = request.send();
    // Pipelined: finish() can be sent before the start is even acknowledged.
    tasks.insert(taskId, response.getScope());
    requests.add(response.then([outcome = outcome->addRef()](auto) { outcome->succeed(); },
                               failInto(outcome->addRef())));
  }

  void finishTask(uint64_t taskId, uint16_t state, kj::Own<const Outcome> outcome) {
    kj::Maybe<capnp::Request<proto::TaskScope::FinishParams, proto::TaskScope::FinishResults>>
        maybeRequest;
    KJ_IF_MAYBE(scope, tasks.find(taskId)) { maybeRequest = scope->finishRequest(); }
    KJ_IF_MAYBE(request, maybeRequest) {
      tasks.erase(taskId);
      request->setState(static_cast<proto::RunState>(state));
      requests.add(request->send().then(
          [outcome = outcome->addRef()](auto response) {
            outcome->succeed(toContractJson(capnp::toDynamic(response.getReport())));
          },
          failInto(outcome->addRef())));
    } else {
      outcome->fail(kj::str("the task's registration was lost with its connection to the sidecar"));
    }
  }

 private:
  struct Session {
    explicit Session(kj::Own<kj::AsyncIoStream> stream)
        : stream(kj::mv(stream)),
          client(*this->stream),
          sidecar(client.bootstrap().castAs<proto::Sidecar>()) {}
    kj::Own<kj::AsyncIoStream> stream;
    capnp::TwoPartyClient client;
    proto::Sidecar::Client sidecar;
  };

  kj::Maybe<proto::Sidecar::Client&> connected(const Outcome& outcome) {
    KJ_IF_MAYBE(session, sessionSlot) { return session->sidecar; }
    outcome.fail(kj::str(link.lockShared()->lastError));
    return nullptr;
  }

  // The flow run's scope on the current session, opened (pipelined) if needed.
  proto::FlowRunScope::Client flowScope(uint64_t flowId, kj::ArrayPtr<const capnp::word> info) {
    KJ_IF_MAYBE(scope, flows.find(flowId)) { return *scope; }
    auto& session = KJ_ASSERT_NONNULL(sessionSlot);
    auto request = session.sidecar.openFlowRunRequest();
    request.setRun(readerOf(info).getRoot<proto::FlowRunInfo>());
    auto response = request.send();
    proto::FlowRunScope::Client scope = response.getScope();
    requests.add(response.ignoreResult());
    flows.insert(flowId, scope);
    return scope;
  }

  void setLink(bool connected, kj::String message) {
    auto locked = link.lockExclusive();
    locked->connected = connected;
    locked->lastError = kj::mv(message);
  }

  void taskFailed(kj::Exception&& exception) override {}  // each request reports via its Outcome

  kj::AsyncIoContext& io;
  kj::String path;
  kj::MutexGuarded<Connection::Link>& link;
  kj::Maybe<Session> sessionSlot;
  kj::Duration retryDelay = FIRST_RETRY;
  kj::HashMap<uint64_t, proto::FlowRunScope::Client> flows;
  kj::HashMap<uint64_t, proto::TaskScope::Client> tasks;
  kj::TaskSet requests;
};

Connection::Connection(kj::StringPtr socketPath)
    : owner(getpid()), thread([this, path = kj::str(socketPath)]() mutable {
        runLoop(kj::mv(path));
      }) {
  startup.when([](const Startup& s) { return s.loop != nullptr; },
               [this](const Startup& s) {
                 executor = &KJ_ASSERT_NONNULL(s.executor);
                 loop = s.loop;
               });
}

Connection::~Connection() noexcept(false) {
  // Ending the loop thread: fulfil its stop promise from its own thread.
  executor->executeSync([this]() { stopFulfiller->fulfill(); });
}

void Connection::runLoop(kj::String path) {
  // The host process (Python) handles signals; this thread never should.
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, nullptr);

  auto io = kj::setupAsyncIo();
  Loop state(io, kj::mv(path), link);
  auto stop = kj::newPromiseAndFulfiller<void>();
  stopFulfiller = kj::mv(stop.fulfiller);
  auto maintaining = state.maintain().eagerlyEvaluate(nullptr);
  {
    auto locked = startup.lockExclusive();
    locked->executor = kj::getCurrentThreadExecutor();
    locked->loop = &state;
  }
  stop.promise.wait(io.waitScope);
}

template <typename Func>
void Connection::post(Func&& func) {
  executor->executeSync([&]() { func(*loop); });
}

bool Connection::waitConnected(kj::Duration timeout, kj::String& error) const {
  return link.when([](const Link& l) { return l.connected; },
                   [&](const Link& l) {
                     if (!l.connected) error = kj::str(l.lastError);
                     return l.connected;
                   },
                   timeout);
}

kj::Own<const Outcome> Connection::status() {
  auto outcome = kj::atomicRefcounted<Outcome>();
  post([&](Loop& loop) { loop.status(outcome->addRef()); });
  return outcome;
}

kj::Own<const Outcome> Connection::liveTasks() {
  auto outcome = kj::atomicRefcounted<Outcome>();
  post([&](Loop& loop) { loop.liveTasks(outcome->addRef()); });
  return outcome;
}

void Connection::openFlow(uint64_t flowId, kj::ArrayPtr<const capnp::word> info) {
  post([&](Loop& loop) { loop.openFlow(flowId, info); });
}

kj::Own<const Outcome> Connection::finishFlow(uint64_t flowId,
                                              kj::ArrayPtr<const capnp::word> info,
                                              uint16_t state) {
  auto outcome = kj::atomicRefcounted<Outcome>();
  post([&](Loop& loop) { loop.finishFlow(flowId, info, state, outcome->addRef()); });
  return outcome;
}

kj::Own<const Outcome> Connection::startTask(uint64_t flowId,
                                             kj::ArrayPtr<const capnp::word> flowInfo,
                                             uint64_t taskId,
                                             kj::ArrayPtr<const capnp::word> taskInfo) {
  auto outcome = kj::atomicRefcounted<Outcome>();
  post([&](Loop& loop) { loop.startTask(flowId, flowInfo, taskId, taskInfo, outcome->addRef()); });
  return outcome;
}

kj::Own<const Outcome> Connection::finishTask(uint64_t taskId, uint16_t state) {
  auto outcome = kj::atomicRefcounted<Outcome>();
  post([&](Loop& loop) { loop.finishTask(taskId, state, outcome->addRef()); });
  return outcome;
}

}  // namespace tracer::client
