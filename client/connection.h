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

#include <atomic>

#include "outcome.h"
#include "own_thread.h"
#include "pending_requests.h"

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

// A task's start as its caller's thread knows it. The rest of its
// TaskRunInfo is the caller's JSON, parsed on the loop thread: the caller's
// thread pays for the reading and a hand-off, nothing more.
struct TaskStart {
  kj::String infoJson;
  pid_t tid;            // the thread to attribute unless the JSON names one
  int64_t startTimeNs;  // the caller's CLOCK_REALTIME, unless the JSON has one
  uint64_t waitNs;      // how long the caller waits for the answer
  kj::Maybe<OwnReading> reading;  // the calling thread's, when tid is the caller
};

class Connection {
 public:
  explicit Connection(kj::StringPtr socketPath);
  ~Connection() noexcept(false);
  KJ_DISALLOW_COPY(Connection);

  pid_t ownerPid() const { return owner; }
  bool waitConnected(kj::Duration timeout, kj::String& error) const;

  // Each returns at once; the Outcome says how the sidecar answered (at once,
  // failed, past MAX_PENDING_CALLS unanswered calls).
  kj::Own<const Outcome> status();
  // An Admin method by its contract name, params and results as contract JSON.
  kj::Own<const Outcome> admin(kj::StringPtr method, kj::StringPtr paramsJson);
  void openFlow(uint64_t flowId, const FlowInfo& info);
  kj::Own<const Outcome> finishFlow(uint64_t flowId, const FlowInfo& info, uint16_t state);
  // Null when MAX_PENDING_STARTS starts are unanswered (dropped, counted).
  kj::Maybe<kj::Own<const Outcome>> startTask(uint64_t flowId, const FlowInfo& flowInfo,
                                              uint64_t taskId, TaskStart start);
  // The Outcome holds the report's JSON only when it is wanted.
  // `end`: the thread's reading as the task ended, when it is the task's thread.
  kj::Own<const Outcome> finishTask(uint64_t taskId, uint16_t state, bool reportWanted,
                                    kj::Maybe<OwnReading> end);
  // Starts and flow runs dropped so far because the sidecar had not answered
  // earlier ones.
  uint64_t dropped() const { return pending.dropped(); }

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
  PendingRequests pending;  // before the jobs and the thread that hold its tokens
  kj::MutexGuarded<Link> link;
  kj::MutexGuarded<kj::Vector<Job>> inbox;
  kj::AutoCloseFd wakeup;  // eventfd the loop thread watches for new jobs
  kj::Thread thread;       // last: joined before anything it uses is destroyed
};

}  // namespace tracer::client
