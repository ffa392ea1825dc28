// The C ABI of tracer_client.h over Connection. Every entry point catches
// everything: a C++ exception must never reach Python or a C caller.

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/debug.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>

#include "connection.h"
#include "contract_json.h"
#include "identity.h"
#include "tracer.capnp.h"
#include "tracer_client.h"

using tracer::client::Connection;
using tracer::client::FlowInfo;
using tracer::client::Outcome;

struct tracer_client {
  explicit tracer_client(kj::String path): path(kj::mv(path)) {}
  kj::String path;
  std::atomic<uint64_t> nextId{1};
  // The connection of the process that made it (see connectionOf). A raw
  // pointer because after fork() the child must be able to walk away from the
  // parent's connection without destroying it.
  std::atomic<Connection*> current{nullptr};
};

struct tracer_flow {
  tracer_client& client;
  uint64_t id;
  kj::Own<const FlowInfo> info;  // kept to re-open the run after a reconnect or fork()
};

struct tracer_task {
  Connection& connection;
  uint64_t id;
  kj::Own<const Outcome> started;
  pid_t readOn;  // the thread whose reading its start sent (0: none): its finish sends one too
};

struct tracer_report {
  kj::Own<const Outcome> finished;  // its value: the TaskReport JSON
};

namespace {

thread_local kj::String lastError;

void setError(kj::StringPtr message) { lastError = kj::str(message); }

kj::Duration millis(int ms) { return (ms > 0 ? ms : 0) * kj::MILLISECONDS; }

// How long a flow run's finish may wait to leave the process (see tracer_flow_finish).
constexpr kj::Duration FLOW_FINISH_SEND_WAIT = 1 * kj::SECONDS;

// This process's connection. After fork() the child finds its parent's
// connection, whose thread does not exist here (destroying it would wait for
// that thread forever): the child leaves it alone and opens its own.
Connection& connectionOf(tracer_client& client) {
  pid_t self = tracer::client::currentPid();
  Connection* current = client.current.load(std::memory_order_acquire);
  if (current != nullptr && current->ownerPid() == self) return *current;
  auto fresh = std::make_unique<Connection>(client.path);
  if (client.current.compare_exchange_strong(current, fresh.get())) return *fresh.release();
  return *current;  // another thread of this process got there first
}

template <typename T, typename Func>
T guarded(T onFailure, Func&& func) {
  T result = onFailure;
  KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() { result = func(); })) {
    setError(e->getDescription());
    return onFailure;
  }
  return result;
}

char* copyOut(kj::StringPtr text) { return strdup(text.cStr()); }

int64_t realtimeNs() {
  timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  return int64_t(now.tv_sec) * 1000000000 + now.tv_nsec;
}

template <typename T>
kj::Array<capnp::word> encode(const char* json, kj::FunctionParam<void(typename T::Builder)> complete) {
  KJ_REQUIRE(json != nullptr, "info JSON is NULL");
  capnp::MallocMessageBuilder message;
  auto root = message.initRoot<T>();
  tracer::fromContractJson(json, capnp::toDynamic(root));
  complete(root);
  return capnp::messageToFlatArray(message);
}

uint16_t parseState(const char* state) {
  KJ_REQUIRE(state != nullptr, "state is NULL");
  for (auto enumerant: capnp::Schema::from<tracer::proto::RunState>().getEnumerants()) {
    if (enumerant.getProto().getName() == state) return enumerant.getOrdinal();
  }
  KJ_FAIL_REQUIRE("unknown run state (expected completed, failed, cancelled or crashed)", state);
}

// Waits for an answer; the value on success, else NULL with the error recorded.
char* answer(const Outcome& outcome, int timeoutMs) {
  kj::String text;
  if (outcome.await(millis(timeoutMs), text) == Outcome::Status::OK) return copyOut(text);
  setError(text);
  return nullptr;
}

}  // namespace

extern "C" {

tracer_client* tracer_client_open(const char* socketPath) {
  return guarded<tracer_client*>(nullptr, [&]() {
    const char* path = socketPath;
    if (path == nullptr || *path == '\0') path = getenv("TRACER_SOCKET");
    if (path == nullptr || *path == '\0') path = "/run/tracer/tracer.sock";
    auto client = std::make_unique<tracer_client>(kj::str(path));
    connectionOf(*client);  // start connecting now, in the background
    return client.release();
  });
}

void tracer_client_close(tracer_client* client) {
  if (client == nullptr) return;
  std::unique_ptr<tracer_client> owned(client);
  Connection* connection = client->current.load();
  if (connection != nullptr && connection->ownerPid() == tracer::client::currentPid()) {
    guarded<int>(0, [&]() {
      std::unique_ptr<Connection> closing(connection);
      return 0;
    });
  }
}

int tracer_client_wait_connected(tracer_client* client, int timeoutMs) {
  return guarded<int>(0, [&]() {
    kj::String error;
    if (connectionOf(*client).waitConnected(millis(timeoutMs), error)) return 1;
    setError(error);
    return 0;
  });
}

char* tracer_client_status(tracer_client* client, int timeoutMs) {
  return guarded<char*>(nullptr, [&]() { return answer(*connectionOf(*client).status(), timeoutMs); });
}

char* tracer_client_admin(tracer_client* client, const char* method, const char* paramsJson,
                          int timeoutMs) {
  return guarded<char*>(nullptr, [&]() {
    KJ_REQUIRE(method != nullptr, "method is NULL");
    return answer(*connectionOf(*client).admin(method, paramsJson ? paramsJson : ""), timeoutMs);
  });
}

tracer_flow* tracer_flow_open(tracer_client* client, const char* infoJson) {
  return guarded<tracer_flow*>(nullptr, [&]() {
    auto info = encode<tracer::proto::FlowRunInfo>(infoJson, [](auto run) {
      if (run.getPid() == 0) run.setPid(tracer::client::currentPid());
    });
    auto flow = std::make_unique<tracer_flow>(tracer_flow{
        *client, client->nextId.fetch_add(1), kj::atomicRefcounted<FlowInfo>(kj::mv(info))});
    connectionOf(*client).openFlow(flow->id, *flow->info);
    return flow.release();
  });
}

int tracer_flow_finish(tracer_flow* flow, const char* state, int timeoutMs) {
  if (flow == nullptr) return -1;
  std::unique_ptr<tracer_flow> owned(flow);
  return guarded<int>(-1, [&]() {
    auto outcome = connectionOf(flow->client).finishFlow(flow->id, *flow->info, parseState(state));
    // A flow run's process exits right after its run ends: a finish still
    // queued then is lost, and the run ends as crashed. Writing it takes
    // microseconds; longer only while the library's thread waits for a CPU.
    outcome->awaitSent(FLOW_FINISH_SEND_WAIT);
    kj::String text;
    switch (outcome->await(millis(timeoutMs), text)) {
      case Outcome::Status::OK: return 0;
      case Outcome::Status::PENDING: setError(text); return 1;
      case Outcome::Status::FAILED: break;
    }
    setError(text);
    return -1;
  });
}

tracer_task* tracer_task_start(tracer_flow* flow, const char* infoJson, int tid, int waitMs) {
  return guarded<tracer_task*>(nullptr, [&]() -> tracer_task* {
    KJ_REQUIRE(flow != nullptr, "flow is NULL");
    KJ_REQUIRE(infoJson != nullptr, "info JSON is NULL");
    int self = tracer::client::currentTid();
    tracer::client::TaskStart start{kj::str(infoJson), tid != 0 ? tid : self, realtimeNs(),
                                    static_cast<uint64_t>(millis(waitMs) / kj::NANOSECONDS),
                                    nullptr};
    // Before the reading: in a forked child this starts the library's thread
    // for the child's own connection, which is not the task's doing (read
    // after, a late registration would find the thread's clone and leave the
    // task's totals unknown).
    auto& connection = connectionOf(flow->client);
    // A caller that waits for its registration has it before its task goes on:
    // no mark, which would count the wait as the task's sleep.
    if (start.tid == self) {
      start.reading = waitMs > 0 ? tracer::client::readOwnThread()
                                 : tracer::client::markAndReadOwnThread();
    }
    pid_t readOn = start.reading == nullptr ? 0 : self;
    uint64_t id = flow->client.nextId.fetch_add(1);
    KJ_IF_MAYBE(started, connection.startTask(flow->id, *flow->info, id, kj::mv(start))) {
      auto task =
          std::make_unique<tracer_task>(tracer_task{connection, id, kj::mv(*started), readOn});
      kj::String error;
      if (waitMs > 0 && task->started->await(millis(waitMs), error) == Outcome::Status::FAILED) {
        setError(error);
      }
      return task.release();
    }
    // Not an exception: a wedged sidecar makes this the common path.
    setError(tracer::client::PendingRequests::refusal(
        tracer::client::PendingRequests::Kind::START));
    return nullptr;
  });
}

int tracer_task_status(tracer_task* task) {
  if (task == nullptr) return -1;
  switch (task->started->peek()) {
    case Outcome::Status::OK: return 1;
    case Outcome::Status::PENDING: return 0;
    case Outcome::Status::FAILED: break;
  }
  kj::String error;
  task->started->await(0 * kj::MILLISECONDS, error);
  setError(error);
  return -1;
}

int tracer_task_finish(tracer_task* task, const char* state, tracer_report** report) {
  if (report != nullptr) *report = nullptr;
  if (task == nullptr) return -1;
  std::unique_ptr<tracer_task> owned(task);
  return guarded<int>(-1, [&]() {
    KJ_REQUIRE(task->connection.ownerPid() == tracer::client::currentPid(),
               "this task was started by the parent process; finish it there");
    if (task->started->peek() == Outcome::Status::FAILED) {
      kj::String error;
      task->started->await(0 * kj::MILLISECONDS, error);
      KJ_FAIL_REQUIRE("the task was never registered", error);
    }
    kj::Maybe<tracer::client::OwnReading> end;
    if (task->readOn != 0 && task->readOn == tracer::client::currentTid()) {
      end = tracer::client::readOwnThread();
    }
    auto finished =
        task->connection.finishTask(task->id, parseState(state), report != nullptr, kj::mv(end));
    if (report != nullptr) *report = std::make_unique<tracer_report>(tracer_report{kj::mv(finished)}).release();
    return 0;
  });
}

char* tracer_report_wait(tracer_report* report, int timeoutMs) {
  if (report == nullptr) return nullptr;
  return guarded<char*>(nullptr, [&]() { return answer(*report->finished, timeoutMs); });
}

void tracer_report_free(tracer_report* report) { std::unique_ptr<tracer_report> owned(report); }

unsigned long long tracer_client_dropped(tracer_client* client) {
  if (client == nullptr) return 0;
  Connection* connection = client->current.load();
  return connection != nullptr && connection->ownerPid() == tracer::client::currentPid() ? connection->dropped() : 0;
}

const char* tracer_last_error(void) { return lastError == nullptr ? "" : lastError.cStr(); }

void tracer_free(char* text) { free(text); }

}  // extern "C"
