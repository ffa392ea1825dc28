#pragma once
// One process's connection to tracer-sidecar: a background thread running a KJ
// event loop that connects, reconnects with backoff when the sidecar goes away,
// and carries requests. Callers hand requests over with `post` (a quick
// cross-thread hand-off, never a wait for the sidecar) and wait on an Outcome
// with their own deadline.
//
// Flow runs are remembered by their FlowRunInfo, so after a reconnect (or in a
// fork()ed child, which gets its own Connection) the next task re-opens its
// flow run on the new session.

#include <capnp/common.h>
#include <kj/array.h>
#include <kj/async.h>
#include <kj/mutex.h>
#include <kj/string.h>
#include <kj/thread.h>
#include <sys/types.h>

#include "outcome.h"

namespace tracer::client {

class Loop;

class Connection {
 public:
  explicit Connection(kj::StringPtr socketPath);
  ~Connection() noexcept(false);
  KJ_DISALLOW_COPY(Connection);

  pid_t ownerPid() const { return owner; }
  bool waitConnected(kj::Duration timeout, kj::String& error) const;

  // Each returns at once; the Outcome says how the sidecar answered.
  kj::Own<const Outcome> status();
  kj::Own<const Outcome> liveTasks();
  void openFlow(uint64_t flowId, kj::ArrayPtr<const capnp::word> info);
  kj::Own<const Outcome> finishFlow(uint64_t flowId, kj::ArrayPtr<const capnp::word> info,
                                    uint16_t state);
  kj::Own<const Outcome> startTask(uint64_t flowId, kj::ArrayPtr<const capnp::word> flowInfo,
                                   uint64_t taskId, kj::ArrayPtr<const capnp::word> taskInfo);
  kj::Own<const Outcome> finishTask(uint64_t taskId, uint16_t state);

  // Shared with the loop thread: whether a session is up, and why not.
  struct Link {
    bool connected = false;
    kj::String lastError = kj::str("not connected yet");
  };

 private:
  struct Startup {
    kj::Maybe<const kj::Executor&> executor;
    Loop* loop = nullptr;
  };

  void runLoop(kj::String path);
  template <typename Func>
  void post(Func&& func);

  pid_t owner;
  kj::MutexGuarded<Link> link;
  kj::MutexGuarded<Startup> startup;
  const kj::Executor* executor = nullptr;
  Loop* loop = nullptr;
  kj::Own<kj::PromiseFulfiller<void>> stopFulfiller;  // used on the loop thread only
  kj::Thread thread;  // last: joined before anything it uses is destroyed
};

}  // namespace tracer::client
