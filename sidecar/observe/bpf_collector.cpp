#include "observe/bpf_collector.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <kj/debug.h>
#include <kj/one-of.h>
#include <kj/vector.h>

#include <cerrno>
#include <cstdarg>
#include <cstring>
#include <malloc.h>
#include <sys/mman.h>
#include <string>
#include <time.h>
#include <unistd.h>

#include "memory.skel.h"
#include "network.skel.h"
#include "observe/ended_task_notes.h"
#include "observe/endpoint_report.h"
#include "observe/kernel_btf.h"
#include "observe/kernel_symbols.h"
#include "proc_files.h"
#include "process_rss.h"
#include "process_lifecycle.h"
#include "process_lifecycle.skel.h"
#include "scheduling.skel.h"
#include "task_start.h"
#include "task_start.skel.h"
#include "task_state.h"

namespace tracer {

namespace {

// Layouts shared with BPF (bpf/task_state.h, bpf/process_lifecycle.h).
static_assert(sizeof(thread_state) == 168, "thread_state layout is shared with BPF");
static_assert(offsetof(thread_state, switches_before_followed) == 160,
              "thread_state layout is shared with BPF");
static_assert(offsetof(thread_state, woke_unseen) == 120, "thread_state layout is shared with BPF");
static_assert(offsetof(thread_state, off_endpoint) == 128, "thread_state layout is shared with BPF");
static_assert(sizeof(endpoint_key) == 28, "endpoint_key layout is shared with BPF");
static_assert(offsetof(endpoint_key, addr) == 8, "endpoint_key layout is shared with BPF");
static_assert(sizeof(endpoint_use) == 32, "endpoint_use layout is shared with BPF");
static_assert(sizeof(endpoint_index) == 8, "endpoint_index layout is shared with BPF");
static_assert(offsetof(thread_state, runtime) == 16, "thread_state layout is shared with BPF");
static_assert(offsetof(thread_state, charged) == 88, "thread_state layout is shared with BPF");
static_assert(offsetof(thread_state, hiwater_base) == 96, "thread_state layout is shared with BPF");
static_assert(offsetof(thread_state, last_socket) == 112, "thread_state layout is shared with BPF");
static_assert(offsetof(thread_state, off_cause) == 12, "thread_state layout is shared with BPF");
static_assert(offsetof(thread_state, owner) == 156, "thread_state layout is shared with BPF");
static_assert((UNTRACKED_NOTE_SLOTS & (UNTRACKED_NOTE_SLOTS - 1)) == 0 &&
                  (UNTRACKED_KINDS & (UNTRACKED_KINDS - 1)) == 0,
              "the BPF side masks slots and kinds with these: powers of two");
static_assert(offsetof(untracked_note, times) == 8 && sizeof(untracked_note) == 24 &&
                  sizeof(untracked_times) == 16,
              "untracked_note layout is shared with BPF (and per-CPU values: 8-byte aligned)");
static_assert(sizeof(task_counters) == (23 + SLEEP_CAUSES) * 8,
              "task_counters layout is shared with BPF");
static_assert(offsetof(task_counters, own_rss_pages) == (20 + SLEEP_CAUSES) * 8,
              "task_counters layout is shared with BPF");
static_assert(offsetof(task_counters, endpoints) == (22 + SLEEP_CAUSES) * 8,
              "task_counters layout is shared with BPF");
static_assert(offsetof(task_counters, sleep_by_cause_ns) == 20 * 8,
              "task_counters layout is shared with BPF");
static_assert(offsetof(task_counters, tx_bytes) == 10 * 8, "task_counters layout is shared with BPF");
static_assert(offsetof(task_counters, lost) == 19 * 8, "task_counters layout is shared with BPF");
static_assert(sizeof(thread_exit_event) == 40, "thread_exit_event layout is shared with BPF");
static_assert(offsetof(thread_exit_event, comm) == 24, "thread_exit_event layout is shared with BPF");
static_assert(sizeof(start_mark) == 64, "start_mark layout is shared with BPF");
static_assert(offsetof(start_mark, runtime) == 16, "start_mark layout is shared with BPF");

// Slots set aside for marked starts (bpf/task_start.bpf.c) count from here,
// apart from the attribution table's, which count from 1: neither is reused.
constexpr uint32_t MARKED_SLOTS_FROM = 0x80000000u;
// A mark no registration has claimed in this long is released: a start its
// client dropped (its queue to a stopped sidecar full), or a process that
// marked a start and never registered it. Long enough for a sidecar stopped
// for a while to catch up with the registrations queued meanwhile.
constexpr uint64_t START_CLAIM_NS = 60ull * 1000 * 1000 * 1000;
// Exits of a marked slot's threads held until its registration claims it.
constexpr size_t HELD_EXITS_MAX = 256;

// The maps every program shares (bpf/tracked.bpf.h), created by the first one.
constexpr const char* SHARED_MAPS[] = {
    "threads",          "task_counters", "exit_events",     "unattributed_lost", "endpoints",
    "endpoint_lists",   "threads_by_owner", "maybe_tracked", "untracked_notes",  "untracked_evicted"};

// Linux's largest pid_max on 64-bit machines (PID_MAX_LIMIT), for a pid_max
// that cannot be read.
constexpr uint32_t PID_MAX_LIMIT = 4u << 20;

// maybe_tracked's entries (bpf/tracked.bpf.h): a byte for each tid up to
// pid_max, as it is now (raised later, the tids past it go unfiltered).
uint32_t tidFilterBlocks() {
  uint32_t pidMax = PID_MAX_LIMIT;
  KJ_IF_MAYBE(text, readProcFile("/proc/sys/kernel/pid_max")) {
    pidMax = kj::max(1u, static_cast<uint32_t>(strtoul(text->cStr(), nullptr, 10)));
  }
  return (kj::min(pidMax, PID_MAX_LIMIT) + TID_FILTER_BLOCK - 1) / TID_FILTER_BLOCK;
}

// thread_state.owner: 0 for root, then one index for each other uid as it
// first registers a task or connects a process, up to the last, which every
// uid past those shares (their forks are held to one quota together).
constexpr uint32_t SHARED_OWNER = THREAD_OWNERS_MAX_ENTRIES - 1;

template <typename Skeleton, void (*destroy)(Skeleton*)>
class SkeletonDisposer final: public kj::Disposer {
 public:
  void disposeImpl(void* pointer) const override { destroy(static_cast<Skeleton*>(pointer)); }
  static const SkeletonDisposer instance;
};
template <typename Skeleton, void (*destroy)(Skeleton*)>
const SkeletonDisposer<Skeleton, destroy> SkeletonDisposer<Skeleton, destroy>::instance;

// libbpf's own diagnostics (verifier log, missing BTF) explain a failed load,
// so they go to our log, and the verifier's last word goes into the one line
// that says why a concern did not load. libbpf's print hook takes no context:
// hence globals, set before the first load.
Log* libbpfLog = nullptr;
kj::String lastVerifierWord;

// The line of a verifier log that says why: its last, less the statistics.
kj::String verdictOf(const std::string& log) {
  std::string verdict;
  size_t at = 0;
  while (at < log.size()) {
    size_t end = log.find('\n', at);
    if (end == std::string::npos) end = log.size();
    std::string line = log.substr(at, end - at);
    if (!line.empty() && line.rfind("processed ", 0) != 0 &&
        line.rfind("verification time", 0) != 0 && line.rfind("stack depth", 0) != 0 &&
        line.find("-- END PROG LOAD LOG --") == std::string::npos) {
      verdict = line;
    }
    at = end + 1;
  }
  return kj::str(verdict.c_str());
}

int forwardLibbpfMessage(libbpf_print_level level, const char* format, va_list args) {
  if (libbpfLog == nullptr || level == LIBBPF_DEBUG) return 0;
  va_list measuring;
  va_copy(measuring, args);
  int n = vsnprintf(nullptr, 0, format, measuring);
  va_end(measuring);
  if (n <= 0) return n;
  std::string text(n, '\0');
  vsnprintf(&text[0], n + 1, format, args);
  size_t firstLine = text.find('\n');
  if (firstLine != std::string::npos &&
      text.rfind("-- BEGIN PROG LOAD LOG --", firstLine) != std::string::npos) {
    lastVerifierWord = verdictOf(text.substr(firstLine + 1));
  }
  while (!text.empty() && text.back() == '\n') text.pop_back();
  libbpfLog->debug(kj::str("libbpf: ", text.c_str()));
  return n;
}

kj::String errorText(int err) {
  return kj::str(strerror(-err), err == -EPERM ? " (needs root, or CAP_BPF and CAP_PERFMON; "
                                                 "with those, the kernel refuses this kind of "
                                                 "program)"
                                               : "");
}

// Opens, wires to the shared maps (when `shared` is given), loads and attaches
// one concern's programs. Returns the loaded skeleton or the reason it failed.
template <typename Skeleton, Skeleton* (*open)(), int (*load)(Skeleton*),
          int (*attach)(Skeleton*), void (*destroy)(Skeleton*)>
kj::OneOf<kj::Own<Skeleton>, kj::String> loadConcern(
    kj::StringPtr concern, kj::Maybe<bpf_object&> shared,
    kj::FunctionParam<void(Skeleton&)> configure) {
  Skeleton* raw = open();
  if (raw == nullptr) return kj::str(concern, ": opening the BPF object failed: ", strerror(errno));
  kj::Own<Skeleton> skeleton(raw, SkeletonDisposer<Skeleton, destroy>::instance);
  configure(*skeleton);
  KJ_IF_MAYBE(owner, shared) {
    for (const char* name: SHARED_MAPS) {
      int fd = bpf_object__find_map_fd_by_name(owner, name);
      bpf_map* map = bpf_object__find_map_by_name(skeleton->obj, name);
      if (map != nullptr) {
        if (int err = bpf_map__reuse_fd(map, fd)) {
          return kj::str(concern, ": sharing map ", name, " failed: ", errorText(err));
        }
      }
    }
  }
  lastVerifierWord = nullptr;
  if (int err = load(skeleton.get())) {
    auto verifier = lastVerifierWord.size() > 0 ? kj::str(" (verifier: ", lastVerifierWord, ")")
                                                : kj::str();
    return kj::str(concern, ": loading BPF programs failed: ", errorText(err), verifier);
  }
  if (int err = attach(skeleton.get())) {
    return kj::str(concern, ": attaching tracepoints failed: ", errorText(err));
  }
  return kj::mv(skeleton);
}

class BpfCollector final: public Collector {
 public:
  BpfCollector(Log& log, kj::UnixEventPort& events, kj::Own<process_lifecycle_bpf> lifecycle,
               kj::Own<scheduling_bpf> scheduling, kj::Maybe<kj::Own<network_bpf>> network,
               kj::Maybe<kj::Own<memory_bpf>> memory, kj::Maybe<kj::Own<task_start_bpf>> starts,
               kj::String degraded, kj::Array<kj::StringPtr> unknown)
      : log(log),
        events(events),
        lifecycle(kj::mv(lifecycle)),
        scheduling(kj::mv(scheduling)),
        network(kj::mv(network)),
        memory(kj::mv(memory)),
        starts(kj::mv(starts)),
        degraded(kj::mv(degraded)),
        unknown(kj::mv(unknown)),
        threads(this->lifecycle->maps.threads),
        counters(this->lifecycle->maps.task_counters),
        endpoints(this->lifecycle->maps.endpoints),
        endpointLists(this->lifecycle->maps.endpoint_lists),
        notesPerCpu(kj::heapArray<untracked_note>(possibleCpus())),
        evictedPerCpu(kj::heapArray<untracked_times>(possibleCpus())) {
    // The kernel's count of each owner's forked threads, shared with it: the
    // sidecar takes a thread off it when it takes that thread's entry out.
    void* counts = mmap(nullptr, OWNER_COUNTS_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED,
                        bpf_map__fd(this->lifecycle->maps.threads_by_owner), 0);
    KJ_REQUIRE(counts != MAP_FAILED, "cannot map the threads-by-owner counts", strerror(errno));
    ownerCounts = static_cast<int64_t*>(counts);
    // The kernel's byte per tid that says a thread may be tracked: set here
    // before a registered thread's entry is made.
    tidFlagCount = size_t(bpf_map__max_entries(this->lifecycle->maps.maybe_tracked)) *
                   TID_FILTER_BLOCK;
    void* flags = mmap(nullptr, tidFlagCount, PROT_READ | PROT_WRITE, MAP_SHARED,
                       bpf_map__fd(this->lifecycle->maps.maybe_tracked), 0);
    KJ_REQUIRE(flags != MAP_FAILED, "cannot map the tracked-thread filter", strerror(errno));
    tidFlags = static_cast<uint8_t*>(flags);
    setAsideStartSlots();
  }

  ~BpfCollector() noexcept(false) {
    if (exits != nullptr) ring_buffer__free(exits);
    munmap(ownerCounts, OWNER_COUNTS_BYTES);
    munmap(tidFlags, tidFlagCount);
  }

  kj::StringPtr name() const override { return "bpf"; }
  kj::StringPtr degradedReason() const override { return degraded; }
  kj::ArrayPtr<const kj::StringPtr> unknownFields() const override { return unknown; }
  bool tellsSwitchesBeforeFollowed() const override { return true; }

  kj::Promise<void> run(ExitListener& exitListener) override {
    listener = &exitListener;
    exits = ring_buffer__new(bpf_map__fd(lifecycle->maps.exit_events), onExitEvent, this, nullptr);
    KJ_REQUIRE(exits != nullptr, "cannot open the exit-event ring buffer", strerror(errno));
    observer = kj::heap<kj::UnixEventPort::FdObserver>(
        events, bpf_map__fd(lifecycle->maps.exit_events),
        kj::UnixEventPort::FdObserver::OBSERVE_READ);
    return pump();
  }

  kj::Maybe<uint32_t> claimMarkedStart(HostThread thread, uint32_t mark) override {
    if (mark == 0) return nullptr;
    KJ_IF_MAYBE(s, starts) {
      uint32_t tid = thread.tid;
      thread_state state;
      if (bpf_map__lookup_elem(threads, &tid, sizeof(tid), &state, sizeof(state), 0) != 0 ||
          state.slot < MARKED_SLOTS_FROM) {
        return nullptr;
      }
      uint32_t slot = state.slot;
      start_mark found;
      // Another start's (its registration was dropped) is left to track(),
      // which takes the thread over and learns from it what went unseen.
      if (bpf_map__lookup_elem((*s)->maps.start_marks, &slot, sizeof(slot), &found,
                               sizeof(found), 0) != 0 ||
          found.tid != tid || found.cookie != mark) {
        return nullptr;
      }
      // Out of the map: a claimed mark is not released.
      bpf_map__delete_elem((*s)->maps.start_marks, &slot, sizeof(slot), 0);
      claimed.insert(slot, found);
      ++startMarksClaimed;
      setAsideStartSlots();
      return slot;
    }
    return nullptr;
  }

  kj::Own<Permit> allowStartMarks(pid_t process) override {
    return kj::heap<MarkingPermit>(*this, process);
  }

  // Follows every clone of the thread itself, so whether the task owns its
  // process does not matter here.
  Unfollowed track(uint32_t slot, HostThread thread, kj::Maybe<const ClientReading&> reading,
                   bool, kj::Maybe<uint32_t> outer, uid_t uid) override {
    KJ_IF_MAYBE(mark, claimed.find(slot)) {
      // The kernel has counted the thread since the mark, just before its
      // client's reading: the count starts at the reading instead (a
      // correction at the totals), and nothing went unseen.
      KJ_IF_MAYBE(r, reading) {
        thread_state atReading{}, atMark{};
        countFrom(atReading, r->counters);
        atMark.runtime = mark->runtime;
        atMark.run_delay = mark->run_delay;
        atMark.rchar = mark->rchar;
        atMark.wchar = mark->wchar;
        atMark.read_bytes = mark->read_bytes;
        atMark.write_bytes = mark->write_bytes;
        correct(slot, atReading, atMark);
        hiwaterBases.insert(slot, r->processHiwaterBytes / sysconf(_SC_PAGESIZE));
      }
      claimed.erase(slot);
      endedTaskNotes.forget(thread.tid);  // followed from the mark, before any of it
      Unfollowed followed;
      followed.followed = true;
      return followed;
    }
    pid_t hostTid = thread.tid;
    thread_state state{};
    state.slot = slot;
    state.flags = THREAD_BASELINE_PENDING | THREAD_REGISTERED;
    // Not counted: live tasks per uid bound registered threads. What it forks is.
    state.owner = ownerOf(uid);
    KJ_REQUIRE(baseline(state, thread, reading), "the thread has exited", hostTid);
    task_counters zero{};
    int err = bpf_map__update_elem(counters, &slot, sizeof(slot), &zero, sizeof(zero), BPF_NOEXIST);
    KJ_REQUIRE(err == 0, "cannot start counting for the task (too many live tasks?)",
               strerror(-err));
    uint32_t tid = hostTid;
    thread_state outerState;
    bool suspending = false;
    // A mark nobody claimed (another start's, or one the kernel took after
    // its registration gave up on it): the thread counted for that slot since,
    // so what it did there is what this task did not see. Taken out first, as
    // an outer task's entry is below.
    thread_state unclaimed;
    bool markedBefore = false;
    bool present;  // the thread had an entry (most have none: then one lookup)
    KJ_IF_MAYBE(o, outer) {
      // Taken out first, so the state read is the last the kernel charged the
      // outer task (a switch between a read and an overwrite would be counted
      // twice: a sidecar preempted there let a guest's thread run 45 ms). What
      // the thread starts or sends before the insert below is in the
      // untracked maps, read after it.
      present = bpf_map__lookup_elem(threads, &tid, sizeof(tid), &outerState,
                                     sizeof(outerState), 0) == 0;
      suspending = present && outerState.slot == *o && takeThread(tid, outerState);
    } else {
      present = bpf_map__lookup_elem(threads, &tid, sizeof(tid), &unclaimed,
                                     sizeof(unclaimed), 0) == 0;
      markedBefore = present && unclaimed.slot >= MARKED_SLOTS_FROM && takeThread(tid, unclaimed);
    }
    if (present && !suspending && !markedBefore) {
      // A thread another task's thread forked (a worker of a pool), counted
      // for its owner: taken out, and off that count, rather than overwritten.
      // (Read again: the entry may have changed since. One made since the
      // first read, when the thread had none, is not looked for: it would be
      // a mark of a later start, never counted, or, if another thread of the
      // process exec'd meanwhile and moved its entry to this tid, the end of
      // this thread anyway.)
      thread_state forked;
      if (bpf_map__lookup_elem(threads, &tid, sizeof(tid), &forked, sizeof(forked), 0) == 0 &&
          (forked.flags & THREAD_COUNTED)) {
        takeThread(tid, forked);
      }
    }
    if (suspending) outerState.flags &= ~THREAD_COUNTED;  // off its count if it was (takeThread)
    if (tid < tidFlagCount) __atomic_store_n(&tidFlags[tid], 1, __ATOMIC_RELEASE);
    err = bpf_map__update_elem(threads, &tid, sizeof(tid), &state, sizeof(state), BPF_ANY);
    if (err != 0) {
      if (suspending) {
        bpf_map__update_elem(threads, &tid, sizeof(tid), &outerState, sizeof(outerState),
                             BPF_ANY);
      }
      bpf_map__delete_elem(counters, &slot, sizeof(slot), 0);
      if (markedBefore) releaseMarked(unclaimed.slot);
      KJ_FAIL_REQUIRE("cannot track the task's thread (too many tracked threads?)",
                      strerror(-err));
    }
    if (markedBefore) releaseMarked(unclaimed.slot);
    if (suspending) {
      // The outer task's counting stops where this one's starts: what the
      // kernel charged it past that (or not yet) is set right at its totals.
      correct(outerState.slot, outerState, state);
      suspended.upsert(outerState.slot, outerState,
                       [](thread_state& old, thread_state latest) { old = latest; });
    }
    // Looked up once the thread is tracked: whatever it does from here on is
    // counted, whatever it did before is in these maps.
    // Tracked for the outer task meanwhile: its own state has the times.
    Unfollowed unfollowed;
    KJ_IF_MAYBE(r, reading) {
      untracked_times untracked = untrackedTimes(tid);
      unfollowed.startedThreadOrProcess =
          untracked.at[UNTRACKED_CLONE] >= r->atMonotonicNs ||
          (suspending && outerState.last_clone >= r->atMonotonicNs) ||
          (markedBefore && unclaimed.last_clone >= r->atMonotonicNs);
      if (network != nullptr) {
        unfollowed.usedSocket =
            untracked.at[UNTRACKED_SOCKET] >= r->atMonotonicNs ||
            (suspending && outerState.last_socket >= r->atMonotonicNs) ||
            (markedBefore && unclaimed.last_socket >= r->atMonotonicNs);
      }
    }
    endedTaskNotes.forget(tid);  // from here on, what it does counts for this task
    return unfollowed;
  }

  TaskTotals finish(uint32_t slot, pid_t hostTid, kj::Maybe<const ClientReading&> end,
                    kj::Maybe<uint32_t> outer) override {
    // Remove our claim (unless the thread has moved on to another task), or
    // hand the thread back to the outer task, and charge what it ran since it
    // was last charged, up to the task's end.
    uint32_t tid = hostTid;
    thread_state state;
    bool mine = bpf_map__lookup_elem(threads, &tid, sizeof(tid), &state, sizeof(state), 0) == 0 &&
                state.slot == slot;
    // Where the thread's count for this task ends, if it `stops` here. A
    // plain value, not a kj::Maybe: GCC takes the Maybe's unset storage for
    // uninitialized once countFrom() is inlined.
    ThreadCounters stop{};
    bool stops = false;
    if (mine) {
      KJ_IF_MAYBE(e, end) {
        stop = e->counters;
        stops = true;
      } else KJ_IF_MAYBE(now, readThreadCounters(state.tgid, hostTid)) {
        stop = *now;
        stops = true;
      }
    }
    // Taken out first, so `state` is the last the kernel charged this task
    // (as at track()).
    if (mine) {
      mine = takeThread(tid, state);
      stops = stops && mine;  // it moved on meanwhile: nothing of it ends here
    }
    bool handedBack = false;
    KJ_IF_MAYBE(o, outer) {
      KJ_IF_MAYBE(resumed, suspended.find(*o)) {
        if (stops) {
          // From exactly where this task's count ends.
          thread_state back = *resumed;
          back.flags = THREAD_BASELINE_PENDING | THREAD_REGISTERED |
                       (resumed->flags & THREAD_FOLLOWED);
          if (!(resumed->flags & THREAD_FOLLOWED) && (state.flags & THREAD_FOLLOWED)) {
            // The thread had not switched between the outer task's
            // registration and this one's: its count then is this one's.
            back.switches_before_followed = state.switches_before_followed;
            back.flags |= THREAD_FOLLOWED;
          }
          back.off_since = 0;
          countFrom(back, stop);
          handedBack = bpf_map__update_elem(threads, &tid, sizeof(tid), &back, sizeof(back),
                                            BPF_ANY) == 0;
        }
        suspended.erase(*o);
      }
    }
    if (mine && !handedBack) {
      // Untracked from here on: the thread's next task learns from these maps
      // whether it cloned or used a socket since its reading, and that may
      // have been just now, counted in this task.
      noteAtTaskEnd(tid, state);
    }
    suspended.erase(slot);  // it ended before a task nested in it did (a crashed client)
    if (exits != nullptr) ring_buffer__consume(exits);  // their exits first
    deliverHeldExits(slot);
    TaskTotals totals = lingering(slot);
    if (stops) {
      // The kernel may have charged past the client's reading at the end
      // already (a switch after it): that is taken off. Our own reading
      // (schedstat) can lag the CPU clock a baseline came from: not below it.
      bool exact = end != nullptr;
      auto& k = totals.kernel;
      auto add = [exact](unsigned long long& total, uint64_t endsAt, uint64_t charged) {
        int64_t by = int64_t(endsAt) - int64_t(charged);
        if (by < 0 && !exact) return;
        total = by < 0 && uint64_t(-by) > total ? 0 : total + by;
      };
      add(k.runtime_ns, stop.runtimeNs, state.runtime);
      add(k.run_delay_ns, stop.runDelayNs, state.run_delay);
      add(k.rchar, stop.rchar, state.rchar);
      add(k.wchar, stop.wchar, state.wchar);
      add(k.read_bytes, stop.readBytes, state.read_bytes);
      add(k.write_bytes, stop.writeBytes, state.write_bytes);
      KJ_IF_MAYBE(base, hiwaterBases.find(slot)) { state.hiwater_base = *base; }
      totals.wokeUnseenNs = state.woke_unseen;
      if (state.flags & THREAD_FOLLOWED) {
        totals.switchesBeforeFollowed = state.switches_before_followed;
      } else KJ_IF_MAYBE(e, end) {
        // It has not switched since its registration: what it did before its
        // end reading went unseen, and nothing after that is its task's.
        totals.switchesBeforeFollowed = e->voluntarySwitches;
      }
      totals.registeredRssBytes = peakSince(state, end);
      KJ_IF_MAYBE(e, end) {
        // Counted here, or (between taking this task's entry out and handing
        // the thread back) not at all: either way not the outer task's.
        untracked_times between = handedBack ? untrackedTimes(tid) : untracked_times{};
        totals.pastEnd.startedThreadOrProcess =
            state.last_clone >= e->atMonotonicNs ||
            between.at[UNTRACKED_CLONE] >= e->atMonotonicNs;
        totals.pastEnd.usedSocket = false;
        if (network != nullptr) {
          totals.pastEnd.usedSocket = state.last_socket >= e->atMonotonicNs ||
                                      between.at[UNTRACKED_SOCKET] >= e->atMonotonicNs;
        }
      }
    }
    return totals;
  }

  ThreadWait currentWait(pid_t hostTid) override {
    static const kj::StringPtr SLEEP_CAUSE_NAMES[SLEEP_CAUSES] = {"other", "network", "lock",
                                                                   "child", "timer", "pipe"};
    uint32_t tid = hostTid;
    thread_state state{};
    if (bpf_map__lookup_elem(threads, &tid, sizeof(tid), &state, sizeof(state), 0) != 0 ||
        state.off_since == 0) {
      return {"", 0};
    }
    if (state.flags & THREAD_OFF_BLOCKED) return {"disk", state.off_since};
    uint32_t cause = state.off_cause & ~SLEEP_WAIT_SET;
    return {cause < SLEEP_CAUSES ? SLEEP_CAUSE_NAMES[cause] : kj::StringPtr("other"),
            state.off_since, cause == SLEEP_NETWORK ? state.off_endpoint : endpoint_key{}};
  }

  TaskTotals lingering(uint32_t slot) override {
    // The kernel keeps the count of the task's spawned processes still alive:
    // no walk over the threads map (whose cost grows with its size, not its use).
    TaskTotals totals;
    bpf_map__lookup_elem(counters, &slot, sizeof(slot), &totals.kernel, sizeof(totals.kernel), 0);
    applyCorrection(slot, totals.kernel);
    totals.outlivingProcesses = processes_alive(&totals.kernel);
    totals.endpointsUnlisted = totals.kernel.endpoints > ENDPOINTS_PER_TASK;
    forEachEndpoint(slot, totals.kernel.endpoints, [&](const endpoint_key& key) {
      endpoint_use use;
      if (bpf_map__lookup_elem(endpoints, &key, sizeof(key), &use, sizeof(use), 0) == 0) {
        totals.endpoints.add(EndpointTotals{key, use});
      }
    });
    return totals;
  }

  void release(uint32_t slot) override {
    dropCounters(slot);
    corrections.erase(slot);
    suspended.erase(slot);
    hiwaterBases.erase(slot);
    heldExits.erase(slot);
  }

  kj::HashMap<uint32_t, TaskSample> sample() override {
    if (exits != nullptr) ring_buffer__consume(exits);  // exits are only signalled in bulk
    releaseUnclaimedMarks();
    setAsideStartSlots();
    kj::Vector<uint32_t> claimedHeld;
    for (auto& held: heldExits) {
      if (hiwaterBases.find(held.key) != nullptr) claimedHeld.add(held.key);
    }
    for (auto slot: claimedHeld) deliverHeldExits(slot);
    kj::HashMap<uint32_t, TaskSample> samples;
    kj::HashMap<uint32_t, kj::Vector<pid_t>> processes;  // slot -> tgids seen
    forEachThread([&](uint32_t tid, const thread_state& state) {
      auto& sample = samples.findOrCreate(state.slot, [&]() {
        return kj::HashMap<uint32_t, TaskSample>::Entry{state.slot, TaskSample{}};
      });
      // A thread asleep was charged as it went off-CPU (the switch that set
      // off_since): it has run nothing since. Only threads on a CPU or
      // runnable have run what the kernel has not charged yet, so only theirs
      // is read from /proc: most of a worker's threads sleep at any moment.
      if (state.off_since == 0) {
        KJ_IF_MAYBE(runtime, readRuntimeNs(tid)) {
          if (*runtime > state.runtime) sample.cpuNs += *runtime - state.runtime;
        }
      }
      if (state.tgid != 0 && (tid == state.tgid || (state.flags & THREAD_REGISTERED))) {
        auto& tgids = processes.findOrCreate(state.slot, [&]() {
          return kj::HashMap<uint32_t, kj::Vector<pid_t>>::Entry{state.slot, {}};
        });
        bool seen = false;
        for (auto known: tgids) seen = seen || known == static_cast<pid_t>(state.tgid);
        if (!seen) tgids.add(state.tgid);
      }
    });
    for (auto& entry: samples) {
      task_counters k{};
      uint32_t slot = entry.key;
      if (bpf_map__lookup_elem(counters, &slot, sizeof(slot), &k, sizeof(k), 0) == 0) {
        applyCorrection(slot, k);
        entry.value.cpuNs += k.runtime_ns;
      }
      KJ_IF_MAYBE(tgids, processes.find(slot)) {
        for (auto tgid: *tgids) {
          KJ_IF_MAYBE(bytes, rss.bytesOf(tgid)) { entry.value.rssBytes += *bytes; }
        }
      }
    }
    return samples;
  }

  uint64_t unattributedLost() override { return perCpuSum(lifecycle->maps.unattributed_lost); }

  CollectorLoad load() override {
    CollectorLoad load;
    forEachThread([&](uint32_t tid, const thread_state& state) {
      ++load.trackedThreads;
      if (tid == state.tgid) ++load.trackedProcesses;
    });
    load.exitEvents = exitEvents;
    load.startMarksClaimed = startMarksClaimed;
    load.startMarksReleased = startMarksReleased;
    KJ_IF_MAYBE(s, starts) { load.startMarksRefused = perCpuSum((*s)->maps.start_marks_refused); }
    load.threadsOverQuota = perCpuSum(lifecycle->maps.threads_over_quota);
    return load;
  }

 private:
  // Where the thread's task starts counting: its client's reading as the task
  // began, or ours now. The kernel updates these from the thread's next switch
  // on; work it did before the registration reached us (a busy sidecar, a
  // client that did not wait) is not lost. The process's memory high-water
  // mark as the task began is its client's, or ours to read (an earlier client).
  static bool baseline(thread_state& state, HostThread thread,
                       kj::Maybe<const ClientReading&> reading) {
    ThreadCounters counters;
    uint64_t page = sysconf(_SC_PAGESIZE);
    KJ_IF_MAYBE(given, reading) {
      counters = given->counters;
      state.hiwater_base = given->processHiwaterBytes / page;
    } else KJ_IF_MAYBE(now, readThreadCounters(thread.tgid, thread.tid)) {
      counters = *now;
    } else {
      return false;
    }
    countFrom(state, counters);
    state.tgid = thread.tgid;
    if (state.hiwater_base > 0) return true;
    KJ_IF_MAYBE(hwm, readHiwaterBytes(thread.tgid)) {
      state.hiwater_base = *hwm / page;
      return true;
    }
    return false;
  }

  // What the kernel charged a task whose thread was handed to a nested task
  // (track() with `outer`), against where its count should have stopped:
  // signed, as the kernel charges at switches, before or after that point.
  struct Correction {
    int64_t runtime = 0, runDelay = 0, rchar = 0, wchar = 0, readBytes = 0, writeBytes = 0;
  };

  // The outer task's count stops at `nested`'s baseline; it had been charged to `charged`.
  void correct(uint32_t slot, const thread_state& charged, const thread_state& nested) {
    auto& c = corrections.findOrCreate(
        slot, [&]() { return kj::HashMap<uint32_t, Correction>::Entry{slot, Correction{}}; });
    auto by = [](uint64_t stop, uint64_t at) { return int64_t(stop) - int64_t(at); };
    c.runtime += by(nested.runtime, charged.runtime);
    c.runDelay += by(nested.run_delay, charged.run_delay);
    c.rchar += by(nested.rchar, charged.rchar);
    c.wchar += by(nested.wchar, charged.wchar);
    c.readBytes += by(nested.read_bytes, charged.read_bytes);
    c.writeBytes += by(nested.write_bytes, charged.write_bytes);
  }

  void applyCorrection(uint32_t slot, task_counters& k) const {
    KJ_IF_MAYBE(c, corrections.find(slot)) {
      auto apply = [](unsigned long long& total, int64_t by) {
        total = by < 0 && uint64_t(-by) > total ? 0 : total + by;
      };
      apply(k.runtime_ns, c->runtime);
      apply(k.run_delay_ns, c->runDelay);
      apply(k.rchar, c->rchar);
      apply(k.wchar, c->wchar);
      apply(k.read_bytes, c->readBytes);
      apply(k.write_bytes, c->writeBytes);
    }
  }

  // The thread's counters are charged to its task from `now` on.
  static void countFrom(thread_state& state, const ThreadCounters& now) {
    state.runtime = now.runtimeNs;
    state.run_delay = now.runDelayNs;
    state.rchar = now.rchar;
    state.wchar = now.wchar;
    state.read_bytes = now.readBytes;
    state.write_bytes = now.writeBytes;
  }

  // Takes an entry out of a hash map with its last value: one system call
  // where the kernel has lookup-and-delete for hash maps (Linux 5.14);
  // before, a lookup then a delete, where a kernel update in between is lost.
  static bool takeEntry(const bpf_map* map, const void* key, size_t keySize, void* value,
                        size_t valueSize) {
    int err = bpf_map__lookup_and_delete_elem(map, key, keySize, value, valueSize, 0);
    if (err == 0) return true;
    constexpr int KERNEL_ENOTSUPP = 524;  // the kernel's own, which bpf() can pass on
    if (err != -EINVAL && err != -KERNEL_ENOTSUPP && err != -EOPNOTSUPP) return false;
    return bpf_map__lookup_elem(map, key, keySize, value, valueSize, 0) == 0 &&
           bpf_map__delete_elem(map, key, keySize, 0) == 0;
  }

  // Takes a thread's entry out of the map and returns its last state (a
  // switch between the two calls of the fallback goes uncharged). A counted
  // thread goes off its owner's count: whoever's delete succeeds (the
  // kernel's at the thread's death, or this) takes it off.
  bool takeThread(uint32_t tid, thread_state& state) {
    if (!takeEntry(threads, &tid, sizeof(tid), &state, sizeof(state))) return false;
    uncount(state);
    return true;
  }

  // A counted thread's entry left the map: one fewer for its owner. Never
  // below zero (the kernel's check-then-subtract can be, which counts as none).
  void uncount(const thread_state& state) {
    if (!(state.flags & THREAD_COUNTED) || state.owner >= THREAD_OWNERS_MAX_ENTRIES) return;
    int64_t* count = &ownerCounts[state.owner];
    int64_t held = __atomic_load_n(count, __ATOMIC_RELAXED);
    while (held > 0 && !__atomic_compare_exchange_n(count, &held, held - 1, false,
                                                    __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
    }
  }

  // The uid's index in the kernel's counts (thread_state.owner).
  uint32_t ownerOf(uid_t uid) {
    if (uid == 0) return 0;
    KJ_IF_MAYBE(known, owners.find(uid)) { return *known; }
    if (nextOwner == SHARED_OWNER) {
      if (!ownersShared) {
        ownersShared = true;
        log.warn(kj::str("uid ", uid, " and every new uid after it share one count of tracked "
                         "threads (--max-tracked-threads-per-uid): the kernel counts ",
                         SHARED_OWNER - 1, " uids apart"));
      }
      return SHARED_OWNER;
    }
    owners.insert(uid, nextOwner);
    return nextOwner++;
  }

  // Our note of a thread whose task ended: when it last cloned and used a
  // socket while it was tracked.
  void noteAtTaskEnd(uint32_t tid, const thread_state& state) {
    untracked_times tracked{};
    tracked.at[UNTRACKED_CLONE] = state.last_clone;
    tracked.at[UNTRACKED_SOCKET] = state.last_socket;
    endedTaskNotes.raise(tid, tracked);
  }

  // When an untracked thread last cloned and used a socket (0: not lately),
  // exactly: the newest of the kernel's note on each CPU, of those it moved
  // out (bpf/tracked.bpf.h), and of ours from the thread's last task. The
  // notes first: one moved out meanwhile is then in untracked_evicted (the
  // kernel writes it there first).
  untracked_times untrackedTimes(uint32_t tid) {
    auto& maps = lifecycle->maps;
    untracked_times last = endedTaskNotes.of(tid);
    uint32_t slot = tid & (UNTRACKED_NOTE_SLOTS - 1);
    if (bpf_map__lookup_elem(maps.untracked_notes, &slot, sizeof(slot), notesPerCpu.begin(),
                             notesPerCpu.size() * sizeof(untracked_note), 0) == 0) {
      for (auto& note: notesPerCpu) {
        if (note.tid == tid) raiseTimes(last, note.times);
      }
    }
    if (bpf_map__lookup_elem(maps.untracked_evicted, &tid, sizeof(tid), evictedPerCpu.begin(),
                             evictedPerCpu.size() * sizeof(untracked_times), 0) == 0) {
      for (auto& times: evictedPerCpu) raiseTimes(last, times);
    }
    return last;
  }

  // The registered thread's process's RSS: its high-water mark if that grew
  // during the task (a peak reached and freed again), else its RSS now. The
  // mark as the task ended is its client's, or ours to read (an earlier client).
  uint64_t peakSince(const thread_state& state, kj::Maybe<const ClientReading&> end) {
    uint64_t page = sysconf(_SC_PAGESIZE);
    kj::Maybe<uint64_t> hiwater;
    KJ_IF_MAYBE(e, end) {
      if (e->processHiwaterBytes > 0) hiwater = e->processHiwaterBytes;
    }
    if (hiwater == nullptr) hiwater = readHiwaterBytes(state.tgid);
    KJ_IF_MAYBE(hwm, hiwater) {
      if (*hwm > state.hiwater_base * page) return *hwm;
    }
    KJ_IF_MAYBE(bytes, rss.bytesOf(state.tgid)) { return *bytes; }
    return 0;
  }

  // Every tracked thread, in batches of THREAD_BATCH: the sampler reads them
  // all each second, and one by one that is two system calls a thread.
  // Where the kernel refuses a batch (batch lookups need 5.6), the walk goes
  // on one by one from the last thread it had: both go bucket by bucket.
  static constexpr uint32_t THREAD_BATCH = 1024;
  template <typename Func>
  void forEachThread(Func&& func) {
    int fd = bpf_map__fd(threads);
    uint32_t from = 0, next = 0, key = 0;
    uint32_t* previous = nullptr;  // the last thread visited
    for (bool first = true;; first = false) {
      uint32_t count = THREAD_BATCH;
      int failed = bpf_map_lookup_batch(fd, first ? nullptr : &from, &next, batchKeys.begin(),
                                        batchStates.begin(), &count, nullptr);
      bool last = failed != 0 && errno == ENOENT;
      if (failed != 0 && !last) count = 0;  // what it filled is not to be trusted
      for (uint32_t i = 0; i < count; ++i) func(batchKeys[i], batchStates[i]);
      if (count > 0) {
        key = batchKeys[count - 1];
        previous = &key;
      }
      if (last) return;
      if (failed != 0) break;
      from = next;
    }
    uint32_t following;
    thread_state state;
    while (bpf_map__get_next_key(threads, previous, &following, sizeof(following)) == 0) {
      key = following;
      previous = &key;
      if (bpf_map__lookup_elem(threads, &key, sizeof(key), &state, sizeof(state), 0) == 0) {
        func(key, state);
      }
    }
  }
  kj::Array<uint32_t> batchKeys = kj::heapArray<uint32_t>(THREAD_BATCH);
  kj::Array<thread_state> batchStates = kj::heapArray<thread_state>(THREAD_BATCH);

  // A connected process's leave to mark starts: the kernel's map has it
  // while any of the process's connections lasts.
  class MarkingPermit final: public Permit {
   public:
    MarkingPermit(BpfCollector& collector, pid_t process): collector(collector), process(process) {
      KJ_IF_MAYBE(s, collector.starts) {
        auto& held = collector.markingConnections.findOrCreate(process, [&]() {
          return kj::HashMap<pid_t, uint32_t>::Entry{process, 0};
        });
        if (held++ == 0) {
          // Whose its marked threads are, and so the threads they fork: the
          // process's effective uid (its connection's), root's if unreadable.
          uint32_t tgid = process;
          uint32_t owner = 0;
          KJ_IF_MAYBE(status, readProcFile(kj::str("/proc/", process, "/status"))) {
            auto uids = statusNumbers(*status, "Uid");
            if (uids.size() >= 2) owner = collector.ownerOf(static_cast<uid_t>(uids[1]));
          }
          bpf_map__update_elem((*s)->maps.marking_processes, &tgid, sizeof(tgid), &owner,
                               sizeof(owner), BPF_ANY);
        }
      }
    }
    ~MarkingPermit() noexcept(false) {
      KJ_IF_MAYBE(held, collector.markingConnections.find(process)) {
        if (--*held > 0) return;
        collector.markingConnections.erase(process);
        KJ_IF_MAYBE(s, collector.starts) {
          uint32_t tgid = process;
          bpf_map__delete_elem((*s)->maps.marking_processes, &tgid, sizeof(tgid), 0);
        }
      }
    }
    KJ_DISALLOW_COPY(MarkingPermit);

   private:
    BpfCollector& collector;
    pid_t process;
  };

  // The one count of a per-CPU array of one entry, summed over the CPUs.
  static size_t possibleCpus() {
    int cpus = libbpf_num_possible_cpus();
    KJ_REQUIRE(cpus > 0, "cannot count CPUs", strerror(-cpus));
    return cpus;
  }

  static uint64_t perCpuSum(bpf_map* map) {
    auto perCpu = kj::heapArray<uint64_t>(possibleCpus());
    uint32_t zero = 0;
    if (bpf_map__lookup_elem(map, &zero, sizeof(zero), perCpu.begin(),
                             perCpu.size() * sizeof(uint64_t), 0) != 0) {
      return 0;
    }
    uint64_t total = 0;
    for (auto value: perCpu) total += value;
    return total;
  }

  // Fills the kernel's queue of slots for marked starts up to its size.
  void setAsideStartSlots() {
    KJ_IF_MAYBE(s, starts) {
      int fd = bpf_map__fd((*s)->maps.start_slots);
      while (bpf_map_update_elem(fd, nullptr, &nextStartSlot, BPF_ANY) == 0) ++nextStartSlot;
    }
  }

  // A marked slot nobody will claim: its mark, its counts and its held
  // exits go. Threads it started meanwhile count on into nothing (lost,
  // counted) until they exit.
  // Calls `each` with every endpoint on `slot`'s list, once each (a race in
  // the kernel can list one twice), given the task's count of its entries
  // (task_counters.endpoints): the list has no gaps, and may run past the
  // count (two CPUs raising it at once), not past ENDPOINTS_PER_TASK.
  void forEachEndpoint(uint32_t slot, uint64_t listed,
                       kj::FunctionParam<void(const endpoint_key&)> each) {
    if (listed == 0) return;  // no syscall for the tasks that used no socket
    kj::Vector<endpoint_key> seen;
    for (uint32_t index = 0; index < ENDPOINTS_PER_TASK; ++index) {
      endpoint_index at{slot, index};
      endpoint_key key;
      if (bpf_map__lookup_elem(endpointLists, &at, sizeof(at), &key, sizeof(key), 0) != 0) break;
      bool twice = false;
      for (auto& earlier: seen) twice = twice || memcmp(&earlier, &key, sizeof(key)) == 0;
      if (twice) continue;
      seen.add(key);
      each(key);
    }
  }

  // Takes a slot's counters out of the map, then its endpoints and its list
  // of them (which the kernel adds to only through the counters).
  void dropCounters(uint32_t slot) {
    task_counters k{};
    if (!takeEntry(counters, &slot, sizeof(slot), &k, sizeof(k))) return;
    forEachEndpoint(slot, k.endpoints, [&](const endpoint_key& key) {
      bpf_map__delete_elem(endpoints, &key, sizeof(key), 0);
    });
    for (uint32_t index = 0; k.endpoints > 0 && index < ENDPOINTS_PER_TASK; ++index) {
      endpoint_index at{slot, index};
      if (bpf_map__delete_elem(endpointLists, &at, sizeof(at), 0) != 0) break;
    }
  }

  void releaseMarked(uint32_t slot) {
    KJ_IF_MAYBE(s, starts) {
      bpf_map__delete_elem((*s)->maps.start_marks, &slot, sizeof(slot), 0);
    }
    dropCounters(slot);
    heldExits.erase(slot);
    ++startMarksReleased;
  }

  void releaseUnclaimedMarks() {
    KJ_IF_MAYBE(s, starts) {
      auto* marks = (*s)->maps.start_marks;
      timespec now;
      clock_gettime(CLOCK_MONOTONIC, &now);
      uint64_t nowNs = uint64_t(now.tv_sec) * 1000000000 + now.tv_nsec;
      kj::Vector<std::pair<uint32_t, start_mark>> stale;
      uint32_t key, next;
      uint32_t* previous = nullptr;
      while (bpf_map__get_next_key(marks, previous, &next, sizeof(next)) == 0) {
        key = next;
        previous = &key;
        start_mark mark;
        if (bpf_map__lookup_elem(marks, &key, sizeof(key), &mark, sizeof(mark), 0) == 0 &&
            mark.at + START_CLAIM_NS < nowNs) {
          stale.add(key, mark);
        }
      }
      for (auto& [slot, mark]: stale) {
        // Its thread, if it still counts for it, goes back to untracked.
        uint32_t tid = mark.tid;
        thread_state state;
        if (bpf_map__lookup_elem(threads, &tid, sizeof(tid), &state, sizeof(state), 0) == 0 &&
            state.slot == slot) {
          takeThread(tid, state);
        }
        releaseMarked(slot);
      }
    }
  }

  // Exits held for a marked slot until its task was live to take them.
  void deliverHeldExits(uint32_t slot) {
    KJ_IF_MAYBE(held, heldExits.find(slot)) {
      auto exits = kj::mv(*held);
      heldExits.erase(slot);
      for (auto& e: exits) listener->threadExited(ThreadExit{slot, e.isLeader, e.cpuNs, e.comm});
    }
  }

  // Edge-triggered: each wake-up drains the ring buffer completely.
  kj::Promise<void> pump() {
    return observer->whenBecomesReadable().then([this]() {
      ring_buffer__consume(exits);
      return pump();
    });
  }

  static int onExitEvent(void* context, void* data, size_t size) {
    auto* self = static_cast<BpfCollector*>(context);
    if (size < sizeof(thread_exit_event) || self->listener == nullptr) return 0;
    auto* event = static_cast<const thread_exit_event*>(data);
    ++self->exitEvents;
    char comm[sizeof(event->comm) + 1] = {};
    memcpy(comm, event->comm, sizeof(event->comm));
    if (event->slot >= MARKED_SLOTS_FROM && self->hiwaterBases.find(event->slot) == nullptr) {
      // A marked slot's, before its registration claimed it: held for its task.
      auto& held = self->heldExits.findOrCreate(event->slot, [&]() {
        return kj::HashMap<uint32_t, kj::Vector<HeldExit>>::Entry{event->slot, {}};
      });
      if (held.size() < HELD_EXITS_MAX) {
        held.add(HeldExit{event->is_leader != 0, event->cpu_ns, kj::heapString(comm)});
      }
      return 0;
    }
    self->listener->threadExited(
        ThreadExit{event->slot, event->is_leader != 0, event->cpu_ns, kj::StringPtr(comm)});
    return 0;
  }

  Log& log;
  kj::UnixEventPort& events;
  kj::Own<process_lifecycle_bpf> lifecycle;  // owns the shared maps
  kj::Own<scheduling_bpf> scheduling;
  kj::Maybe<kj::Own<network_bpf>> network;
  kj::Maybe<kj::Own<memory_bpf>> memory;
  kj::Maybe<kj::Own<task_start_bpf>> starts;  // none where fentry cannot attach
  ProcessRss rss;
  kj::String degraded;
  kj::Array<kj::StringPtr> unknown;
  bpf_map* threads;
  bpf_map* counters;
  bpf_map* endpoints;
  bpf_map* endpointLists;
  EndedTaskNotes endedTaskNotes;  // ours, beside the kernel's notes below
  // A per-CPU entry of untracked_notes and of untracked_evicted, as read.
  kj::Array<untracked_note> notesPerCpu;
  kj::Array<untracked_times> evictedPerCpu;
  ring_buffer* exits = nullptr;
  uint64_t exitEvents = 0;
  // Tasks whose thread a nested task has now, as their thread was then.
  kj::HashMap<uint32_t, thread_state> suspended;
  kj::HashMap<uint32_t, Correction> corrections;
  // Marked starts: the next slot to set aside; claimed marks until their
  // track(); the claiming tasks' process high-water marks at their readings
  // (pages; the kernel's entry, made at the mark, has none), whose presence
  // also says a marked slot was claimed; exits held until then.
  uint32_t nextStartSlot = MARKED_SLOTS_FROM;
  kj::HashMap<pid_t, uint32_t> markingConnections;  // connections of each marking process
  kj::HashMap<uint32_t, start_mark> claimed;
  kj::HashMap<uint32_t, uint64_t> hiwaterBases;
  struct HeldExit {
    bool isLeader;
    uint64_t cpuNs;
    kj::String comm;
  };
  kj::HashMap<uint32_t, kj::Vector<HeldExit>> heldExits;
  uint64_t startMarksClaimed = 0;
  uint64_t startMarksReleased = 0;
  // Each owner's count of forked threads, the kernel's threads_by_owner
  // mapped; the owner index of each uid seen, and the next one free.
  static constexpr size_t OWNER_COUNTS_BYTES = THREAD_OWNERS_MAX_ENTRIES * sizeof(int64_t);
  int64_t* ownerCounts = nullptr;
  // maybe_tracked mapped: a byte per tid, which the kernel clears at its death.
  uint8_t* tidFlags = nullptr;
  size_t tidFlagCount = 0;
  kj::HashMap<uid_t, uint32_t> owners;
  uint32_t nextOwner = 1;
  bool ownersShared = false;  // said so once
  kj::Own<kj::UnixEventPort::FdObserver> observer;
  ExitListener* listener = nullptr;
};

}  // namespace

kj::Maybe<kj::Own<Collector>> loadBpfCollector(Log& log, kj::UnixEventPort& events, BpfSettings settings,
                                    kj::String& whyNot) {
  libbpfLog = &log;
  libbpf_set_print(forwardLibbpfMessage);
  kj::Own<KernelBtf> kernel;
  KJ_IF_MAYBE(loaded, KernelBtf::load(whyNot)) {
    kernel = kj::mv(*loaded);
  } else {
    return nullptr;
  }
  // Which variant of each program this kernel's tracepoints can take, and
  // what that costs, said once at load.
  kj::Vector<kj::String> variants;
  auto arguments = [&](kj::StringPtr tracepoint) {
    return kernel->tracepointArguments(tracepoint).orDefault(0);
  };
  bool exitSaysGroupDead = arguments("sched_process_exit") >= 2;  // Linux 6.16+
  if (!exitSaysGroupDead) {
    variants.add(kj::str("sched_process_exit has no group_dead: a process's last thread is "
                         "found from signal->live"));
  }
  bool switchSaysPrevState = arguments("sched_switch") >= 4;  // Linux 5.18+
  if (!switchSaysPrevState) {
    variants.add(kj::str("sched_switch has no prev_state: the state is read from the task"));
  }

  auto lifecycle = loadConcern<process_lifecycle_bpf, process_lifecycle_bpf__open,
                               process_lifecycle_bpf__load, process_lifecycle_bpf__attach,
                               process_lifecycle_bpf__destroy>(
      "process lifecycle", nullptr, [&](process_lifecycle_bpf& skeleton) {
        bpf_map__set_max_entries(skeleton.maps.threads, settings.threadsMaxEntries);
        bpf_map__set_max_entries(skeleton.maps.maybe_tracked, tidFilterBlocks());
        bpf_map__set_max_entries(skeleton.maps.task_counters, settings.tasksMaxEntries);
        skeleton.rodata->short_lived_ns = settings.shortLivedNs;
        skeleton.rodata->max_threads_per_uid = settings.threadsPerUid;
        bpf_program__set_autoload(skeleton.progs.handle_exit, exitSaysGroupDead);
        bpf_program__set_autoload(skeleton.progs.handle_exit_without_group_dead, !exitSaysGroupDead);
        bpf_map__set_autocreate(skeleton.maps.dead_processes, !exitSaysGroupDead);
      });
  if (lifecycle.is<kj::String>()) {
    whyNot = kj::mv(lifecycle.get<kj::String>());
    return nullptr;
  }
  auto& shared = *lifecycle.get<kj::Own<process_lifecycle_bpf>>()->obj;
  auto hrtimerWakeup = kernelSymbolAddress("hrtimer_wakeup").orDefault(0);
  if (hrtimerWakeup == 0) {
    variants.add(kj::str("no hrtimer_wakeup in /proc/kallsyms: a poll, select or epoll wait ",
                         "that its timeout ends counts by its descriptors, not as a timer"));
  }
  auto scheduling = loadConcern<scheduling_bpf, scheduling_bpf__open, scheduling_bpf__load,
                                scheduling_bpf__attach, scheduling_bpf__destroy>(
      "scheduling", shared, [&](scheduling_bpf& skeleton) {
        bpf_program__set_autoload(skeleton.progs.handle_switch, switchSaysPrevState);
        bpf_program__set_autoload(skeleton.progs.handle_switch_without_prev_state,
                                  !switchSaysPrevState);
        skeleton.rodata->hrtimer_wakeup_fn = hrtimerWakeup;
        bpf_program__set_autoload(skeleton.progs.handle_hrtimer_expire, hrtimerWakeup != 0);
      });
  if (scheduling.is<kj::String>()) {
    whyNot = kj::mv(scheduling.get<kj::String>());
    return nullptr;
  }

  // Network and OOM observation are worth having without each other.
  kj::Vector<kj::String> degraded;
  kj::Vector<kj::StringPtr> unknown;
  kj::Maybe<kj::Own<network_bpf>> network;
  bool socketTracepoints = arguments("sock_send_length") > 0 && arguments("sock_recv_length") > 0;
  if (!socketTracepoints) {
    variants.add(kj::str("no sock_send_length/sock_recv_length: socket bytes from fexit on "
                         "inet_sendmsg, inet6_sendmsg, inet_recvmsg, inet6_recvmsg"));
  }
  auto loadedNetwork = loadConcern<network_bpf, network_bpf__open, network_bpf__load,
                                   network_bpf__attach, network_bpf__destroy>(
      "network", shared, [&](network_bpf& skeleton) {
        for (auto program: {skeleton.progs.handle_send, skeleton.progs.handle_recv}) {
          bpf_program__set_autoload(program, socketTracepoints);
        }
        for (auto program: {skeleton.progs.handle_inet_send, skeleton.progs.handle_inet6_send,
                            skeleton.progs.handle_inet_recv, skeleton.progs.handle_inet6_recv}) {
          bpf_program__set_autoload(program, !socketTracepoints);
        }
      });
  if (loadedNetwork.is<kj::String>()) {
    degraded.add(kj::mv(loadedNetwork.get<kj::String>()));
    unknown.add("net.tx_bytes");
    unknown.add("net.rx_bytes");
    for (auto field: ENDPOINT_FIELDS) unknown.add(field);
  } else {
    network = kj::mv(loadedNetwork.get<kj::Own<network_bpf>>());
  }
  kj::Maybe<kj::Own<memory_bpf>> memory;
  uint32_t victimArguments = arguments("mark_victim");
  if (victimArguments == 1) variants.add(kj::str("mark_victim passes a pid, not the task"));
  uint32_t rssArguments = arguments("rss_stat");  // 3 up to 6.1 (the count), 2 from 6.2
  if (rssArguments == 3) {
    variants.add(kj::str("rss_stat passes the counter: a thread's own memory arrives in its "
                         "batches of 64 faults"));
  }
  auto loadedMemory = loadConcern<memory_bpf, memory_bpf__open, memory_bpf__load,
                                  memory_bpf__attach, memory_bpf__destroy>(
      "memory", shared, [&](memory_bpf& skeleton) {
        bpf_program__set_autoload(skeleton.progs.handle_oom_victim, victimArguments >= 2);
        bpf_program__set_autoload(skeleton.progs.handle_oom_victim_pid, victimArguments == 1);
        bpf_program__set_autoload(skeleton.progs.handle_rss_stat_with_count, rssArguments == 3);
        bpf_program__set_autoload(skeleton.progs.handle_rss_stat, rssArguments == 2);
      });
  if (rssArguments != 2 && rssArguments != 3) unknown.add("memory.own_peak_rss_bytes");
  if (loadedMemory.is<kj::String>()) {
    degraded.add(kj::mv(loadedMemory.get<kj::String>()));
    unknown.add("memory.oom_kills");
    unknown.add("memory.own_peak_rss_bytes");
  } else {
    memory = kj::mv(loadedMemory.get<kj::Own<memory_bpf>>());
  }
  // Without marks a late registration still counts from its client's
  // reading: only what the kernel counts as it happens is unknown meanwhile.
  kj::Maybe<kj::Own<task_start_bpf>> starts;
  kj::Maybe<kj::String> noStarts;
  if (settings.withoutStartMarks) {
    noStarts = kj::str("--without-start-marks");
  } else {
    auto loadedStarts = loadConcern<task_start_bpf, task_start_bpf__open, task_start_bpf__load,
                                    task_start_bpf__attach, task_start_bpf__destroy>(
        "task start marks", shared, [](task_start_bpf&) {});
    if (loadedStarts.is<kj::String>()) {
      noStarts = kj::mv(loadedStarts.get<kj::String>());
    } else {
      starts = kj::mv(loadedStarts.get<kj::Own<task_start_bpf>>());
    }
  }
  KJ_IF_MAYBE(why, noStarts) {
    variants.add(kj::str("no marked task starts (", *why, "): what a task does before its ",
                         "registration reaches the sidecar is counted from its client's ",
                         "reading, its sleeps, sockets and children unknown"));
  }
  for (auto& reason: degraded) log.warn(kj::str("kernel observer degraded: ", reason));
  for (auto& variant: variants) log.info(kj::str("kernel observer: ", variant));
  log.info(kj::str("kernel observer loaded (BPF: process lifecycle, scheduling, network, memory",
                   starts == nullptr ? "" : ", task start marks", ")"));
  auto collector = kj::Own<Collector>(kj::heap<BpfCollector>(log, events, kj::mv(lifecycle.get<kj::Own<process_lifecycle_bpf>>()),
                                kj::mv(scheduling.get<kj::Own<scheduling_bpf>>()),
                                kj::mv(network), kj::mv(memory), kj::mv(starts),
                                kj::strArray(degraded, "; "),
                                unknown.releaseAsArray()));
  // Loading parsed the kernel's BTF once per concern (megabytes each, freed
  // since): hand that memory back rather than keep it resident for good.
  malloc_trim(0);
  return collector;
}

}  // namespace tracer
