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
#include <kj/function.h>
#include <kj/io.h>
#include <kj/thread.h>
#include <kj/vector.h>
#include <sys/types.h>

#include "outcome.h"

namespace tracer::client {

class Loop;

// A FlowRunInfo message, shared by the caller's flow handle and the requests
// queued for it (which may outlive the handle when a caller stops waiting).
class FlowInfo final: public kj::AtomicRefcounted {
 public:
  explicit FlowInfo(kj::Array<capnp::word> words): words(kj::mv(words)) {}
  kj::Own<const FlowInfo> addRef() const { return kj::atomicAddRef(*this); }
  const kj::Array<capnp::word> words;
};

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
  kj::Own<const Outcome> recentReports(uint32_t limit);
  kj::Own<const Outcome> reloadPolicies();
  kj::Own<const Outcome> artifacts(bool retryParked);
  kj::Own<const Outcome> recommendations(kj::StringPtr flow);
  void openFlow(uint64_t flowId, const FlowInfo& info);
  kj::Own<const Outcome> finishFlow(uint64_t flowId, const FlowInfo& info, uint16_t state);
  kj::Own<const Outcome> startTask(uint64_t flowId, const FlowInfo& flowInfo, uint64_t taskId,
                                   kj::Array<capnp::word> taskInfo);
  kj::Own<const Outcome> finishTask(uint64_t taskId, uint16_t state);

  // Shared with the loop thread: whether a session is up, and why not.
  struct Link {
    bool connected = false;
    kj::String lastError = kj::str("not connected yet");
  };

 private:
  using Job = kj::Function<void(Loop&)>;

  // Hands a job to the loop thread without waiting for it to run: a caller
  // pays a lock and, when the loop is idle, one eventfd write.
  void post(Job job);
  void runLoop(kj::String path);

  pid_t owner;
  kj::MutexGuarded<Link> link;
  kj::MutexGuarded<kj::Vector<Job>> inbox;
  kj::AutoCloseFd wakeup;  // eventfd the loop thread watches for new jobs
  kj::Thread thread;       // last: joined before anything it uses is destroyed
};

}  // namespace tracer::client
