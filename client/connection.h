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
#include <kj/time.h>
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

// While jobs keep coming, the library's thread looks for more this often
// instead of sleeping until woken (Connection::Wake), and goes to sleep
// after this many looks that found none.
constexpr kj::Duration POLL_INTERVAL = 1 * kj::MILLISECONDS;
constexpr uint32_t EMPTY_POLLS_BEFORE_SLEEP = 2;

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

  // How soon the loop thread must take a job. Waking it (an eventfd write)
  // makes the caller's thread pay an idle CPU's wake-up, the largest part
  // of a task's start or finish (in a virtual machine, an exit to
  // the host); so does arming a timer. A task's start, a finish nobody
  // waits for and a flow run's opening are GATHERED: they wake the thread
  // only when it sleeps until woken, not while it looks for jobs every
  // POLL_INTERVAL (as it does for a while after each job). What a caller
  // waits for is taken NOW.
  enum class Wake { NOW, GATHERED };

  // Hands a job to the loop thread without waiting for it to run: a caller
  // pays a lock and, at most, one eventfd write.
  void post(Job job, Wake wake = Wake::NOW);
  void runLoop(kj::String path);

  pid_t owner;
  PendingRequests pending;  // before the jobs and the thread that hold its tokens
  kj::MutexGuarded<Link> link;
  struct Inbox {
    kj::Vector<Job> jobs;
    // What the loop thread does since it last found no jobs: RUNNING, it
    // has not looked yet (and will, before it waits).
    enum class LoopState { RUNNING, POLLING, SLEEPING } loopState = LoopState::RUNNING;
    bool woken = false;  // the eventfd was written since the loop thread last looked
  };
  kj::MutexGuarded<Inbox> inbox;
  kj::AutoCloseFd wakeup;  // eventfd the loop thread watches for new jobs
  kj::Thread thread;       // last: joined before anything it uses is destroyed
};

}  // namespace tracer::client
