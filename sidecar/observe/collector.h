#pragma once
// What attributes kernel activity to tasks. The BPF collector sees everything
// a task's threads and descendants do; the /proc collector, used when BPF
// cannot load, sees the registered thread and the child processes it can
// attribute from their exit records, and says which report fields it cannot
// know.

#include <kj/async.h>
#include <kj/map.h>
#include <kj/string.h>
#include <kj/vector.h>
#include <sys/types.h>

#include <cstdint>

#include "proc_files.h"
#include "task_state.h"

namespace tracer {

// A tracked thread ran for the last time (one per thread, leaders flagged).
struct ThreadExit {
  uint32_t slot;
  bool isLeader;
  uint64_t cpuNs;
  kj::StringPtr comm;  // its process's command name
};

class ExitListener {
 public:
  virtual void threadExited(const ThreadExit& exit) = 0;
};

// Every report field whose total includes what the task started: unknown
// whenever some of that could not be followed.
inline const kj::StringPtr FIELDS_WITH_DESCENDANTS[] = {
    "cpu.user_ns",           "cpu.system_ns",   "cpu.avg_cores",         "cpu.p95_cores",
    "cpu.max_cores",         "sched.runqueue_wait_ns", "sched.blocked_io_ns", "sched.sleep_ns",
    "sched.sleep_by_cause",
    "io.read_bytes",         "io.write_bytes",  "io.rchar",              "io.wchar",
    "net.tx_bytes",          "net.rx_bytes",    "net.endpoints",         "net.other_endpoints",
    "memory.peak_rss_bytes", "memory.oom_kills",
    "memory.own_peak_rss_bytes",
    "proc.spawned",          "proc.execs",      "proc.short_lived",      "proc.max_concurrent",
    "proc.top",              "proc.outliving",
};

// A task's thread as the host sees it: its tid and its process's, both in
// the sidecar's PID namespace (the RPC side resolves and checks them).
struct HostThread {
  pid_t tid;
  pid_t tgid;
};

// What a thread did between its client's reading and its registration that
// only a collector following it counts as it happens. The collector says
// true where it cannot tell.
struct Unfollowed {
  bool startedThreadOrProcess = false;  // its descendants' share is unknown
  bool usedSocket = false;              // its socket bytes are unknown
  // The kernel followed the thread from before its reading (a marked start,
  // claimMarkedStart()): nothing went unseen, its sleep included.
  bool followed = false;
};

// One endpoint of a task (task_state.h): which, and what the task did with it.
struct EndpointTotals {
  endpoint_key key;
  endpoint_use use;
};

// A task's totals when it finishes: the kernel's counters (task_state.h) with
// the registered thread's last, not yet charged slice included.
struct TaskTotals {
  task_counters kernel{};
  uint32_t outlivingProcesses = 0;  // descendants still running at finish
  uint64_t registeredRssBytes = 0;  // RSS of the registered thread's process at finish
  // Its endpoints, as many as its table in the kernel holds (ENDPOINTS_PER_TASK);
  // endpointsUnlisted: the use of some others is in its totals only.
  kj::Vector<EndpointTotals> endpoints;
  bool endpointsUnlisted = false;
  // What this task's totals lack beyond the collector's unknownFields(): the
  // report fields, and one line per cause.
  kj::Vector<kj::StringPtr> unknown;
  kj::Vector<kj::String> unknownWhy;
  // What the thread did after its client's reading at the end and before the
  // finish reached the collector: counted in these totals, not the task's.
  Unfollowed pastEnd;
  // When the registered thread first woke from a sleep it was in before the
  // collector followed it (ns, CLOCK_MONOTONIC; 0: none, or not known): the
  // sleep's time until then went uncounted.
  uint64_t wokeUnseenNs = 0;
  // The registered thread's count of voluntary switches where the collector
  // began to follow it, or where its task ended if that came first (start
  // and finish in one turn): against its client's reading at start, whether
  // it slept unseen. Null where the collector does not know (see
  // Collector::tellsSwitchesBeforeFollowed()).
  kj::Maybe<uint64_t> switchesBeforeFollowed;
};

struct ThreadWait {
  kj::StringPtr on;        // "" while running or runnable
  uint64_t sinceNs = 0;    // CLOCK_MONOTONIC
  endpoint_key endpoint{};  // on the network: its socket's endpoint (family 0: none)
};

// What the 1 s sampler sees of a live task.
struct TaskSample {
  uint64_t cpuNs = 0;     // CPU so far, running threads included
  uint64_t rssBytes = 0;  // resident memory of the task's processes now
};

// A thread's own reading as its task began (TaskRunInfo.baseline), taken on
// the thread by the client library.
struct ClientReading {
  uint64_t atMonotonicNs = 0;  // on the sidecar's clock
  ThreadCounters counters{};
  uint64_t voluntarySwitches = 0;    // the thread's own count (ru_nvcsw)
  uint64_t processHiwaterBytes = 0;  // 0: not read (a client of an earlier version)
};

// What the collector holds right now, for /metrics.
struct CollectorLoad {
  uint64_t trackedThreads = 0;    // registered threads and everything they started
  uint64_t trackedProcesses = 0;  // of which thread-group leaders
  uint64_t exitEvents = 0;        // thread exits read from the kernel so far
  // Marked starts (claimMarkedStart()): claimed by their registration, released
  // unclaimed, refused by the kernel (no slot set aside was left).
  uint64_t startMarksClaimed = 0;
  uint64_t startMarksReleased = 0;
  uint64_t startMarksRefused = 0;
  // Forks not tracked: their uid's tracked threads held --max-tracked-threads-per-uid.
  uint64_t threadsOverQuota = 0;
};

// Held while what it stands for lasts; dropping it ends that.
class Permit {
 public:
  virtual ~Permit() noexcept(false) = default;
};

class Collector {
 public:
  virtual ~Collector() noexcept(false) = default;

  virtual kj::StringPtr name() const = 0;
  // Empty when the collector sees everything it should; otherwise why not.
  virtual kj::StringPtr degradedReason() const = 0;
  // Report fields (dotted contract names) this collector cannot know.
  virtual kj::ArrayPtr<const kj::StringPtr> unknownFields() const = 0;
  // Whether finish() tells, while the thread is still the task's, its
  // voluntary switches before the collector followed it
  // (TaskTotals.switchesBeforeFollowed); where not, they are asked of the
  // kernel as the registration arrives.
  virtual bool tellsSwitchesBeforeFollowed() const = 0;

  // Delivers thread exits to `listener` as they happen, until cancelled.
  virtual kj::Promise<void> run(ExitListener& listener) = 0;

  // The slot the kernel has counted `thread` for since its client marked its
  // task's start (ThreadBaseline.startMark `mark`), if it has: the task takes
  // that slot, and track() then counts from the client's reading with nothing
  // unfollowed. Nothing where the collector cannot see marks, or the kernel
  // did not take this one (no slot left, the thread counted for a task already).
  virtual kj::Maybe<uint32_t> claimMarkedStart(HostThread thread, uint32_t mark) = 0;
  // Lets `process` (a connected client's tgid, in the sidecar's PID
  // namespace) mark its tasks' starts while the permit lives: the kernel
  // ignores every other process's marks, so nobody who cannot reach the
  // sidecar's socket puts threads in its maps.
  virtual kj::Own<Permit> allowStartMarks(pid_t process) = 0;

  // Starts attributing `thread` and everything it forks from now on to `slot`,
  // counting from `reading` (the thread's own, as its task began, sent by its
  // client), or from now if there is none. `ownsProcess`: the task is its
  // process's only one (every thread of it is the task's). `outer`: the slot
  // the thread counts for now, of a task this one is called inside; it stops
  // counting for it where this one starts (and counts for it again when this
  // one finishes). `uid`: the registering caller's, whose quota of tracked
  // threads the ones the thread forks count against (root's: none).
  // Returns what the thread did since the reading that only following it
  // would have counted.
  virtual Unfollowed track(uint32_t slot, HostThread thread,
                           kj::Maybe<const ClientReading&> reading, bool ownsProcess,
                           kj::Maybe<uint32_t> outer, uid_t uid) = 0;
  // Stops attributing `hostTid` (a pooled thread moves on) and returns the
  // slot's totals; pending exits reach the listener first. `end`: the
  // thread's own reading as its task ended (finish is one-way: the thread has
  // run on since), where its count stops; without it, the count stops now.
  // `outer`: the slot the thread was counting for before this one (see
  // track()), which counts it again from exactly where this one stops.
  virtual TaskTotals finish(uint32_t slot, pid_t hostTid, kj::Maybe<const ClientReading&> end,
                            kj::Maybe<uint32_t> outer) = 0;
  // Forgets a finished slot once nothing of it is running any more; until then
  // its descendants keep counting (lingering()).
  virtual void release(uint32_t slot) = 0;
  // The current counters of a finished slot whose descendants outlived it, and
  // how many are still running.
  virtual TaskTotals lingering(uint32_t slot) = 0;

  virtual kj::HashMap<uint32_t, TaskSample> sample() = 0;

  // What a tracked thread is waiting on right now (the live view): a sleep's
  // cause ("network", "lock", ...; "disk" for D state) and since when (ns,
  // CLOCK_MONOTONIC); nothing while it runs or waits for a CPU. "unknown"
  // where the collector cannot tell.
  virtual ThreadWait currentWait(pid_t hostTid) = 0;

  // Events that could not be charged to any task.
  virtual uint64_t unattributedLost() = 0;

  // Walks what is tracked: meant for a scrape every few seconds, not a hot path.
  virtual CollectorLoad load() = 0;
};

}  // namespace tracer
