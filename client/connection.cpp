#include "connection.h"

#include <capnp/dynamic.h>
#include <capnp/rpc-twoparty.h>
#include <capnp/serialize.h>
#include <kj/async-io.h>
#include <kj/async-unix.h>
#include <kj/debug.h>
#include <kj/map.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>

#include <cerrno>
#include <cstring>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>

#include "buffered_message_stream.h"
#include "contract_json.h"
#include "identity.h"
#include "tracer.capnp.h"

namespace tracer::client {

namespace {

constexpr kj::Duration FIRST_RETRY = 50 * kj::MILLISECONDS;
constexpr kj::Duration MAX_RETRY = 2 * kj::SECONDS;

capnp::FlatArrayMessageReader readerOf(kj::ArrayPtr<const capnp::word> words) {
  return capnp::FlatArrayMessageReader(words);
}

// A status or Admin call's token; none past MAX_PENDING_CALLS, its outcome failed.
kj::Maybe<kj::Own<PendingRequests::Token>> takeCall(PendingRequests& pending,
                                                    const Outcome& outcome) {
  auto call = pending.take(PendingRequests::Kind::CALL);
  if (call == nullptr) outcome.fail(PendingRequests::refusal(PendingRequests::Kind::CALL));
  return call;
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
  Loop(kj::AsyncIoContext& io, kj::String path, kj::MutexGuarded<Connection::Link>& link,
       PendingRequests& pending)
      : io(io), path(kj::mv(path)), link(link), pending(pending), requests(*this) {}

  // Connects, and reconnects with backoff whenever the session ends. While an
  // attempt is under way, requests wait for it; between attempts they fail at
  // once (fail-open: a caller never waits out our backoff).
  kj::Promise<void> maintain() {
    auto started = kj::newPromiseAndFulfiller<void>();
    attempt = started.promise.fork();
    attemptDone = kj::mv(started.fulfiller);
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
              endAttempt();
              return session.ended().catch_(
                  [](kj::Exception&& e) { return kj::str(e.getDescription()); });
            },
            [](kj::Exception&& e) { return kj::str(e.getDescription()); })
        .then([this](kj::String reason) {
          // Scopes of the old session are gone with it; flows re-open on demand.
          sessionSlot = nullptr;
          flows.clear();
          tasks.clear();
          setLink(false, kj::str("cannot reach the sidecar at ", path, ": ", reason));
          endAttempt();
          auto delay = retryDelay;
          retryDelay = kj::min(retryDelay * 2, MAX_RETRY);
          return io.provider->getTimer().afterDelay(delay).then([this]() { return maintain(); });
        });
  }

  void stop() { stopping = true; }
  bool stopped() const { return stopping; }

  // `call` stands for the call until the sidecar has answered it.
  void status(kj::Own<const Outcome> outcome, kj::Own<PendingRequests::Token> call) {
    whenConnected(kj::mv(outcome), [this, call = kj::mv(call)](
                                       auto& sidecar, kj::Own<const Outcome> outcome) mutable {
      answer(sidecar.statusRequest().send(), kj::mv(outcome),
             [](auto& response) { return toContractJson(capnp::toDynamic(response.getStatus())); },
             kj::mv(call));
    });
  }

  // Any Admin method, by its contract name ("recent_reports"), through Cap'n
  // Proto's dynamic API: its params from JSON, its whole results as JSON. A
  // method added to tracer.capnp is reachable here without another line.
  void admin(kj::String method, kj::String paramsJson, kj::Own<const Outcome> outcome,
             kj::Own<PendingRequests::Token> call) {
    auto schema = capnp::Schema::from<proto::Admin>();
    kj::Maybe<capnp::InterfaceSchema::Method> found;
    kj::Vector<kj::String> names;
    for (auto candidate: schema.getMethods()) {
      auto name = camelToSnake(candidate.getProto().getName());
      if (name == method) found = candidate;
      names.add(kj::mv(name));
    }
    KJ_IF_MAYBE(m, found) {
      whenConnected(kj::mv(outcome), [this, schema, m = *m, paramsJson = kj::mv(paramsJson),
                                      call = kj::mv(call)](
                                         auto& sidecar, kj::Own<const Outcome> outcome) mutable {
        auto admin = sidecar.adminRequest().send().getAdmin().template castAs<capnp::DynamicCapability>(schema);
        auto request = admin.newRequest(m);
        KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() {
                      if (paramsJson.size() > 0) fromContractJson(paramsJson, request);
                    })) {
          outcome->fail(kj::str("invalid params: ", e->getDescription()));
          return;
        }
        answer(request.send(), kj::mv(outcome),
               [](auto& response) { return toContractJson(response); }, kj::mv(call));
      });
    } else {
      outcome->fail(kj::str("no Admin method \"", method, "\" (one of: ",
                            kj::strArray(names, ", "), ")"));
    }
  }

  // Announced now within MAX_PENDING_FLOW_RUNS, else by its first task's
  // start or with its finish.
  void openFlow(uint64_t flowId, kj::Own<const FlowInfo> info) {
    whenConnected(kj::atomicRefcounted<Outcome>(),
                  [this, flowId, info = kj::mv(info)](auto&, kj::Own<const Outcome>) {
                    KJ_IF_MAYBE(announcing, pending.take(PendingRequests::Kind::FLOW_RUN)) {
                      flowScope(flowId, *info, kj::mv(*announcing));
                    }
                  });
  }

  void finishFlow(uint64_t flowId, kj::Own<const FlowInfo> info, uint16_t state,
                  kj::Own<const Outcome> outcome) {
    whenConnected(kj::mv(outcome), [this, flowId, info = kj::mv(info), state](
                                       auto&, kj::Own<const Outcome> outcome) {
      // A run announced on this session always gets its finish; one not yet
      // announced is, with it, within MAX_PENDING_FLOW_RUNS, else never.
      kj::Maybe<kj::Own<PendingRequests::Token>> announcing;
      if (flows.find(flowId) == nullptr) {
        announcing = pending.take(PendingRequests::Kind::FLOW_RUN);
        if (announcing == nullptr) {
          pending.countDropped();
          outcome->fail(PendingRequests::refusal(PendingRequests::Kind::FLOW_RUN));
          return;
        }
      }
      auto request = flowScope(flowId, *info, kj::mv(announcing)).finishRequest();
      flows.erase(flowId);
      request.setState(static_cast<proto::RunState>(state));
      requests.add(request.send().then([outcome = outcome->addRef()](auto) { outcome->succeed(); },
                                       failInto(outcome->addRef())));
      KJ_IF_MAYBE(session, sessionSlot) {
        requests.add(session->flushed().then(
            [outcome = outcome->addRef()]() { outcome->markSent(); },
            [](kj::Exception&&) {}));  // a failed send fails the request above
      }
    });
  }

  // `unanswered` stands for the start until the sidecar has answered it (or
  // it failed): the bound on what a stopped sidecar can make us hold.
  void startTask(uint64_t flowId, kj::Own<const FlowInfo> flowInfo, uint64_t taskId,
                 TaskStart start, kj::Own<const Outcome> outcome,
                 kj::Own<PendingRequests::Token> unanswered) {
    whenConnected(kj::mv(outcome), [this, flowId, flowInfo = kj::mv(flowInfo), taskId,
                                    start = kj::mv(start), unanswered = kj::mv(unanswered)](
                                       auto&, kj::Own<const Outcome> outcome) mutable {
      // A run it announces is bounded by the starts.
      auto scope = flowScope(flowId, *flowInfo, nullptr);
      auto request = scope.startTaskRequest();
      KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() { fill(request.initTask(), start); })) {
        outcome->fail(kj::str("invalid task info: ", e->getDescription()));
        return;
      }
      request.setKey(taskId);
      // The task lives on its flow run's scope (which it keeps while it is
      // live): its finish follows its start on the same capability, in order.
      tasks.insert(taskId, scope);
      requests.add(request.send()
                       .then([outcome = outcome->addRef()](auto) { outcome->succeed(); },
                             [this, taskId, fail = failInto(outcome->addRef())](
                                 kj::Exception&& e) mutable {
                               tasks.erase(taskId);  // its finish is then not sent
                               fail(kj::mv(e));
                             })
                       .attach(kj::mv(unanswered)));
    });
  }

  void finishTask(uint64_t taskId, uint16_t state, bool reportWanted, kj::Maybe<OwnReading> end,
                  kj::Own<const Outcome> outcome) {
    whenConnected(kj::mv(outcome), [this, taskId, state, reportWanted, end](
                                       auto&, kj::Own<const Outcome> outcome) {
      kj::Maybe<capnp::Request<proto::FlowRunScope::FinishTaskParams,
                               proto::FlowRunScope::FinishTaskResults>>
          maybeRequest;
      KJ_IF_MAYBE(scope, tasks.find(taskId)) { maybeRequest = scope->finishTaskRequest(); }
      KJ_IF_MAYBE(request, maybeRequest) {
        tasks.erase(taskId);
        request->setKey(taskId);
        request->setState(static_cast<proto::RunState>(state));
        request->setReportWanted(reportWanted);
        KJ_IF_MAYBE(reading, end) { setReading(request->initEnd(), *reading); }
        requests.add(request->send().then(
            [outcome = outcome->addRef(), reportWanted](auto response) {
              if (!reportWanted) return outcome->succeed();
              outcome->succeed(toContractJson(capnp::toDynamic(response.getReport())));
            },
            failInto(outcome->addRef())));
      } else {
        outcome->fail(kj::str("the task is not registered with the sidecar: its start was "
                              "refused, or lost with its connection"));
      }
    });
  }

 private:
  struct Session {
    explicit Session(kj::Own<kj::AsyncIoStream> stream)
        : stream(kj::mv(stream)),
          messages(*this->stream),
          network(messages, capnp::rpc::twoparty::Side::CLIENT),
          rpc(capnp::makeRpcClient(network)),
          sidecar(bootstrap()) {}
    // Resolves once every message sent so far is in the socket. Cap'n Proto
    // hands a sent message to the stream a turn or more later, so the stream
    // alone could call a finish sent before it has it (and the process, then
    // exiting, loses it). Rejected if the session ends first.
    kj::Promise<void> flushed() { return flushing.wrap(untilFlushed()); }
    // Why the session ended: the sidecar's reason when it refused us (it
    // aborts with one before closing), else that it closed.
    kj::Promise<kj::String> ended() {
      return network.onDisconnect().then([this]() {
        return sidecar.whenResolved().then(
            []() { return kj::str("the sidecar closed the connection"); },
            [](kj::Exception&& e) { return kj::str(e.getDescription()); });
      });
    }

    kj::Own<kj::AsyncIoStream> stream;
    BufferedMessageStream messages;
    capnp::TwoPartyVatNetwork network;
    capnp::RpcSystem<capnp::rpc::twoparty::VatId> rpc;
    proto::Sidecar::Client sidecar;
    // Last, so destroyed first: drops the flushes under way (they read the
    // network and the stream) before either goes.
    kj::Canceler flushing;

   private:
    kj::Promise<void> untilFlushed() {
      if (network.getCurrentQueueCount() > 0) {
        return kj::evalLater([this]() { return untilFlushed(); });
      }
      return messages.whenSent();
    }

    proto::Sidecar::Client bootstrap() {
      capnp::word scratch[4];
      memset(scratch, 0, sizeof(scratch));
      capnp::MallocMessageBuilder message(scratch);
      auto vatId = message.getRoot<capnp::rpc::twoparty::VatId>();
      vatId.setSide(capnp::rpc::twoparty::Side::SERVER);
      return rpc.bootstrap(vatId).castAs<proto::Sidecar>();
    }
  };

  // The caller's JSON, then what its thread knew: the thread to attribute,
  // the start time, and the thread's own reading if the task is on it.
  static void fill(proto::TaskRunInfo::Builder task, const TaskStart& start) {
    fromContractJson(start.infoJson, capnp::toDynamic(task));
    if (task.getTid() == 0) task.setTid(start.tid);
    if (task.getStartTimeNs() == 0) task.setStartTimeNs(start.startTimeNs);
    task.setStartWaitNs(start.waitNs);
    KJ_IF_MAYBE(reading, start.reading) {
      if (task.getTid() != reading->tid || task.hasBaseline()) return;
      setReading(task.initBaseline(), *reading);
    }
  }

  static void setReading(proto::ThreadBaseline::Builder out, const OwnReading& reading) {
    out.setAtMonotonicNs(reading.atMonotonicNs);
    out.setRuntimeNs(reading.counters.runtimeNs);
    out.setRunDelayNs(reading.counters.runDelayNs);
    out.setRchar(reading.counters.rchar);
    out.setWchar(reading.counters.wchar);
    out.setReadBytes(reading.counters.readBytes);
    out.setWriteBytes(reading.counters.writeBytes);
    out.setVoluntarySwitches(reading.voluntarySwitches);
    out.setProcessHiwaterBytes(reading.processHiwaterBytes);
    out.setStartMark(reading.startMark);
  }

  // Settles `outcome` with the response turned into JSON, or with the error.
  template <typename Response, typename ToJson>
  void answer(kj::Promise<Response>&& promise, kj::Own<const Outcome> outcome, ToJson toJson,
              kj::Own<PendingRequests::Token> call) {
    requests.add(promise
                     .then([outcome = outcome->addRef(), toJson](
                               auto response) { outcome->succeed(toJson(response)); },
                           failInto(outcome->addRef()))
                     .attach(kj::mv(call)));
  }

  // Runs `op` on the current session: now, after the connection attempt under
  // way, or not at all (the outcome then fails with the reason).
  template <typename Op>
  void whenConnected(kj::Own<const Outcome> outcome, Op&& op) {
    KJ_IF_MAYBE(session, sessionSlot) {
      op(session->sidecar, kj::mv(outcome));
      return;
    }
    KJ_IF_MAYBE(pending, attempt) {
      requests.add(pending->addBranch().then(
          [this, outcome = kj::mv(outcome), op = kj::fwd<Op>(op)]() mutable {
            KJ_IF_MAYBE(session, sessionSlot) {
              op(session->sidecar, kj::mv(outcome));
            } else {
              outcome->fail(kj::str(link.lockShared()->lastError));
            }
          }));
      return;
    }
    outcome->fail(kj::str(link.lockShared()->lastError));
  }

  // The flow run's scope on the current session, opened (pipelined) if
  // needed; `announcing` stands for the opening until it is answered.
  proto::FlowRunScope::Client flowScope(uint64_t flowId, const FlowInfo& info,
                                        kj::Maybe<kj::Own<PendingRequests::Token>> announcing) {
    KJ_IF_MAYBE(scope, flows.find(flowId)) { return *scope; }
    auto& session = KJ_ASSERT_NONNULL(sessionSlot);
    auto request = session.sidecar.openFlowRunRequest();
    request.setRun(readerOf(info.words).getRoot<proto::FlowRunInfo>());
    auto response = request.send();
    proto::FlowRunScope::Client scope = response.getScope();
    requests.add(response.ignoreResult().attach(kj::mv(announcing)));
    flows.insert(flowId, scope);
    return scope;
  }

  // Releases the requests that waited for the connection attempt.
  void endAttempt() {
    if (attempt == nullptr) return;
    attemptDone->fulfill();
    attempt = nullptr;
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
  PendingRequests& pending;
  kj::Maybe<Session> sessionSlot;
  kj::Maybe<kj::ForkedPromise<void>> attempt;  // the connection attempt under way
  kj::Own<kj::PromiseFulfiller<void>> attemptDone;
  kj::Duration retryDelay = FIRST_RETRY;
  kj::HashMap<uint64_t, proto::FlowRunScope::Client> flows;
  kj::HashMap<uint64_t, proto::FlowRunScope::Client> tasks;  // a live task's flow run scope
  kj::TaskSet requests;
  bool stopping = false;
};

Connection::Connection(kj::StringPtr socketPath)
    : owner(currentPid()),
      wakeup(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)),
      thread([this, path = kj::str(socketPath)]() mutable { runLoop(kj::mv(path)); }) {
  KJ_REQUIRE(wakeup.get() >= 0, "eventfd failed", strerror(errno));
}

Connection::~Connection() noexcept(false) {
  // Ends the loop thread (the thread member's destructor then joins it).
  post([](Loop& loop) { loop.stop(); });
}

void Connection::post(Job job) {
  bool wasIdle;
  {
    auto jobs = inbox.lockExclusive();
    wasIdle = jobs->empty();
    jobs->add(kj::mv(job));
  }
  if (wasIdle) {
    uint64_t one = 1;
    KJ_SYSCALL(write(wakeup.get(), &one, sizeof(one)));
  }
}

void Connection::runLoop(kj::String path) {
  // The host process (Python) handles signals; this thread never should.
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, nullptr);
  // The tasks' threads come first: woken by a hand-off, this thread should
  // not take the CPU from the task that handed it over. SCHED_BATCH never
  // preempts on wake-up, yet keeps the process's share of the CPU: a niceness
  // of +10 had cost it nine tenths of that, and on a loaded host a flow run's
  // finish then waited seconds for this thread and was lost at exit.
  int policy;
  sched_param param{};
  if (pthread_getschedparam(pthread_self(), &policy, &param) == 0 && policy == SCHED_OTHER) {
    pthread_setschedparam(pthread_self(), SCHED_BATCH, &param);
  }

  auto io = kj::setupAsyncIo();
  Loop loop(io, kj::mv(path), link, pending);
  auto maintaining = loop.maintain().eagerlyEvaluate(nullptr);
  kj::UnixEventPort::FdObserver observer(io.unixEventPort, wakeup.get(),
                                         kj::UnixEventPort::FdObserver::OBSERVE_READ);
  while (!loop.stopped()) {
    uint64_t count;
    if (read(wakeup.get(), &count, sizeof(count)) < 0) {
      // Nothing posted since the last drain: sleep until there is (edge-triggered).
      observer.whenBecomesReadable().wait(io.waitScope);
      continue;
    }
    kj::Vector<Job> jobs;
    {
      auto locked = inbox.lockExclusive();
      jobs = kj::mv(*locked);
      *locked = kj::Vector<Job>();
    }
    for (auto& job: jobs) job(loop);
    io.waitScope.poll();  // let the jobs' requests go out before sleeping
  }
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
  KJ_IF_MAYBE(call, takeCall(pending, *outcome)) {
    post([outcome = outcome->addRef(), call = kj::mv(*call)](Loop& loop) mutable {
      loop.status(kj::mv(outcome), kj::mv(call));
    });
  }
  return outcome;
}

kj::Own<const Outcome> Connection::admin(kj::StringPtr method, kj::StringPtr paramsJson) {
  auto outcome = kj::atomicRefcounted<Outcome>();
  KJ_IF_MAYBE(call, takeCall(pending, *outcome)) {
    post([method = kj::str(method), paramsJson = kj::str(paramsJson),
          outcome = outcome->addRef(), call = kj::mv(*call)](Loop& loop) mutable {
      loop.admin(kj::mv(method), kj::mv(paramsJson), kj::mv(outcome), kj::mv(call));
    });
  }
  return outcome;
}

void Connection::openFlow(uint64_t flowId, const FlowInfo& info) {
  post([flowId, info = info.addRef()](Loop& loop) mutable { loop.openFlow(flowId, kj::mv(info)); });
}

kj::Own<const Outcome> Connection::finishFlow(uint64_t flowId, const FlowInfo& info,
                                              uint16_t state) {
  auto outcome = kj::atomicRefcounted<Outcome>();
  post([flowId, info = info.addRef(), state, outcome = outcome->addRef()](Loop& loop) mutable {
    loop.finishFlow(flowId, kj::mv(info), state, kj::mv(outcome));
  });
  return outcome;
}

kj::Maybe<kj::Own<const Outcome>> Connection::startTask(uint64_t flowId,
                                                        const FlowInfo& flowInfo, uint64_t taskId,
                                                        TaskStart start) {
  KJ_IF_MAYBE(unanswered, pending.take(PendingRequests::Kind::START)) {
    auto outcome = kj::atomicRefcounted<Outcome>();
    post([flowId, flowInfo = flowInfo.addRef(), taskId, start = kj::mv(start),
          outcome = outcome->addRef(), unanswered = kj::mv(*unanswered)](Loop& loop) mutable {
      loop.startTask(flowId, kj::mv(flowInfo), taskId, kj::mv(start), kj::mv(outcome),
                     kj::mv(unanswered));
    });
    return kj::mv(outcome);
  }
  pending.countDropped();
  return nullptr;
}

kj::Own<const Outcome> Connection::finishTask(uint64_t taskId, uint16_t state, bool reportWanted,
                                              kj::Maybe<OwnReading> end) {
  auto outcome = kj::atomicRefcounted<Outcome>();
  post([taskId, state, reportWanted, end, outcome = outcome->addRef()](Loop& loop) mutable {
    loop.finishTask(taskId, state, reportWanted, end, kj::mv(outcome));
  });
  return outcome;
}

}  // namespace tracer::client
