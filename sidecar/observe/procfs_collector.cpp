#include "observe/procfs_collector.h"

#include <kj/debug.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>

#include "observe/exit_tree.h"
#include "proc_files.h"
#include "process_rss.h"

namespace tracer {

namespace {

// Not seen without BPF.
const kj::StringPtr UNKNOWN[] = {
    "sched.blocked_io_ns", "sched.sleep_ns",  "sched.sleep_by_cause", "net.tx_bytes",
    "net.rx_bytes",        "net.endpoints",   "net.other_endpoints",
    "proc.spawned",        "proc.execs",      "proc.short_lived",  "proc.max_concurrent",
    "proc.top",            "proc.outliving",  "memory.oom_kills",  "memory.own_peak_rss_bytes",
};

// With children whose work is not all counted: also their share of these.
void addDescendantsUnknown(TaskTotals& totals, kj::String why) {
  for (auto field: FIELDS_WITH_DESCENDANTS) totals.unknown.add(field);
  totals.unknownWhy.add(kj::mv(why));
}

// The most an exit record misses of its thread's CPU: its last slice (up to a
// scheduler tick, 10 ms at the coarsest HZ) and the unmapping of its memory
// (14 ms a process measured under emulation, a fraction of a millisecond on
// hardware). The reaped total is believed only within this (a child that
// exited before the task and was reaped during it is not the task's).
constexpr uint64_t MAX_MISSED_PER_EXIT_NS = 50 * 1000 * 1000;
// Where what the exit records can miss is more than this share of a task's
// CPU, its CPU is unknown, not a part shown as the whole.
constexpr double CPU_UNCERTAINTY_MAX = 0.02;

// How much a counter grew: a client's reading of its own CPU clock can be
// ahead of what schedstat shows for a running thread.
uint64_t grown(uint64_t now, uint64_t then) { return now > then ? now - then : 0; }

// Processes and threads whose exit records were read lately, at most: past
// this the oldest times are forgotten, and a reading from before that is
// taken to have missed an exit.
constexpr size_t RECENT_EXITS_MAX_ENTRIES = 16384;

// CLOCK_MONOTONIC now minus CLOCK_BOOTTIME now: /proc's start times are on
// the clock that counts suspend.
int64_t boottimeMinusMonotonicNs() {
  timespec mono, boot;
  clock_gettime(CLOCK_MONOTONIC, &mono);
  clock_gettime(CLOCK_BOOTTIME, &boot);
  return (int64_t(boot.tv_sec) - mono.tv_sec) * 1000000000 + (boot.tv_nsec - mono.tv_nsec);
}

// The processes a thread has started and that are still running.
kj::Vector<pid_t> childrenOf(pid_t tgid, pid_t tid) {
  kj::Vector<pid_t> children;
  KJ_IF_MAYBE(text, readProcFile(kj::str("/proc/", tgid, "/task/", tid, "/children"))) {
    const char* at = text->cStr();
    char* end;
    for (long pid = strtol(at, &end, 10); end != at; pid = strtol(at, &end, 10)) {
      children.add(static_cast<pid_t>(pid));
      at = end;
    }
  }
  return children;
}

class ProcfsCollector final: public Collector {
 public:
  ProcfsCollector(kj::String reason, kj::Maybe<kj::Own<TaskstatsExits>> exits)
      : reason(kj::mv(reason)), exits(kj::mv(exits)) {
    for (auto field: UNKNOWN) unknown.add(field);
    if (this->exits == nullptr) {
      for (auto field: FIELDS_WITH_DESCENDANTS) {
        bool listed = false;
        for (auto known: UNKNOWN) listed = listed || known == field;
        if (!listed) unknown.add(field);
      }
    }
  }

  kj::StringPtr name() const override { return "procfs"; }
  kj::StringPtr degradedReason() const override { return reason; }
  kj::ArrayPtr<const kj::StringPtr> unknownFields() const override { return unknown; }
  bool tellsSwitchesBeforeFollowed() const override { return false; }

  kj::Promise<void> run(ExitListener&) override {
    KJ_IF_MAYBE(listener, exits) { return pump(**listener); }
    return kj::NEVER_DONE;
  }

  // Children the thread started since the reading are followed as if
  // started after the registration (through their exit records); a thread
  // or process of its process that exited meanwhile could have been the
  // task's, and its record went by unattributed.
  // /proc sees no marks: a task counts from its client's reading.
  kj::Maybe<uint32_t> claimMarkedStart(HostThread, uint32_t) override { return nullptr; }
  kj::Own<Permit> allowStartMarks(pid_t) override { return kj::heap<Permit>(); }

  Unfollowed track(uint32_t slot, HostThread thread, kj::Maybe<const ClientReading&> reading,
                   bool ownsProcess, kj::Maybe<uint32_t> outer, uid_t) override {
    KJ_IF_MAYBE(listener, exits) { readExits(**listener); }  // the exits before this, first
    pid_t hostTid = thread.tid, tgid = thread.tgid;
    pid_t parent = 0;
    KJ_IF_MAYBE(status, readProcFile(kj::str("/proc/", hostTid, "/status"))) {
      auto parents = statusNumbers(*status, "PPid");
      if (parents.size() > 0) parent = parents[0];
    }
    auto now = readThreadCounters(tgid, hostTid);
    auto ticks = readCpuTicks(tgid, hostTid);
    KJ_REQUIRE(now != nullptr && ticks != nullptr, "the task's thread is gone", hostTid);
    auto& latest = KJ_ASSERT_NONNULL(now);
    ThreadCounters baseline = latest;
    kj::Vector<pid_t> childrenBefore;
    Unfollowed unfollowed;
    KJ_IF_MAYBE(r, reading) {
      baseline = r->counters;
      int64_t readAtBoottime = int64_t(r->atMonotonicNs) + boottimeMinusMonotonicNs();
      for (auto child: childrenOf(tgid, hostTid)) {
        // To a tick: a child that started within one of the reading is the task's.
        KJ_IF_MAYBE(started, readStartBoottimeNs(child)) {
          if (int64_t(*started + clockTickNs()) < readAtBoottime) childrenBefore.add(child);
        }
      }
      unfollowed.startedThreadOrProcess =
          exits == nullptr || r->atMonotonicNs <= exitsForgottenBeforeNs;
      KJ_IF_MAYBE(last, lastExitOf.find(tgid)) {
        unfollowed.startedThreadOrProcess |= *last >= r->atMonotonicNs;
      }
      // Sockets are not seen here at all: net.* are unknown in every report.
    } else {
      childrenBefore = childrenOf(tgid, hostTid);
    }
    auto& t = KJ_ASSERT_NONNULL(ticks);
    KJ_IF_MAYBE(o, outer) {
      // The outer task's thread counters stop where this one's start, until
      // finish() hands the thread back.
      KJ_IF_MAYBE(outerTask, tracked.find(*o)) {
        outerTask->latest = baseline;
        outerTask->latestTicks = t;
        outerTask->suspended = true;
      }
    }
    tracked.insert(slot, Tracked{hostTid, tgid, baseline, latest, t, t, kj::mv(childrenBefore),
                                 readReapedChildrenTicks(tgid)});
    tree.open(slot, tgid, hostTid, parent, ownsProcess);
    return unfollowed;
  }

  TaskTotals finish(uint32_t slot, pid_t, kj::Maybe<const ClientReading&> end,
                    kj::Maybe<uint32_t> outer) override {
    TaskTotals totals;
    KJ_IF_MAYBE(listener, exits) { readExits(**listener); }  // its children's records first
    auto closed = tree.close(slot);
    KJ_IF_MAYBE(t, tracked.find(slot)) {
      // Exit records whose CPU nothing made up for: each may be short.
      uint64_t uncertainExits = closed.ownExit == nullptr ? 0 : 1;
      if (closed.unknownWhy.size() == 0 && !completeFromReaped(*t, closed.work)) {
        uncertainExits += closed.work.threads;
      }
      refresh(*t);
      KJ_IF_MAYBE(exited, closed.ownExit) { finalFrom(*t, *exited); }
      // The thread's own reading as the task ended: it has run on since.
      KJ_IF_MAYBE(e, end) { t->latest = e->counters; }
      auto& k = totals.kernel;
      const auto& children = closed.work;
      k.runtime_ns = grown(t->latest.runtimeNs, t->baseline.runtimeNs) + children.cpuNs;
      k.run_delay_ns = grown(t->latest.runDelayNs, t->baseline.runDelayNs) + children.runDelayNs;
      // In nanoseconds, as the children's: only their proportion is used.
      k.utime_raw =
          grown(t->latestTicks.utime, t->baselineTicks.utime) * clockTickNs() + children.utimeNs;
      k.stime_raw =
          grown(t->latestTicks.stime, t->baselineTicks.stime) * clockTickNs() + children.stimeNs;
      k.rchar = grown(t->latest.rchar, t->baseline.rchar) + children.rchar;
      k.wchar = grown(t->latest.wchar, t->baseline.wchar) + children.wchar;
      k.read_bytes = grown(t->latest.readBytes, t->baseline.readBytes) + children.readBytes;
      k.write_bytes = grown(t->latest.writeBytes, t->baseline.writeBytes) + children.writeBytes;
      uint64_t exitedPeak = children.peakRssBytes;
      KJ_IF_MAYBE(exited, closed.ownExit) {
        exitedPeak = std::max(exitedPeak, exited->peakRssBytes);
      }
      k.max_rss_pages = exitedPeak / sysconf(_SC_PAGESIZE);
      KJ_IF_MAYBE(bytes, rss.bytesOf(t->tgid)) { totals.registeredRssBytes = *bytes; }
      if (closed.unknownWhy.size() > 0) {
        addDescendantsUnknown(totals, kj::mv(closed.unknownWhy));
      } else if (startedAChildStillRunning(*t)) {
        addDescendantsUnknown(totals, kj::str("a process it started was still running as it "
                                              "finished: the /proc collector counts children "
                                              "only as they exit"));
      } else if (uncertainExits * MAX_MISSED_PER_EXIT_NS > CPU_UNCERTAINTY_MAX * k.runtime_ns) {
        for (auto field: {"cpu.user_ns", "cpu.system_ns", "cpu.avg_cores", "cpu.p95_cores",
                          "cpu.max_cores"}) {
          totals.unknown.add(field);
        }
        totals.unknownWhy.add(kj::str(
            "the CPU of ", uncertainExits, " exited threads is what their exit records say, each "
            "short by its last slice and its memory's unmapping, and nothing the task's process "
            "reaped makes up for it (its caller reaps it): more than ",
            CPU_UNCERTAINTY_MAX * 100, " % of its ", k.runtime_ns / 1000000,
            " ms could be missing"));
      } else if (children.cpuNs > 0) {
        totals.unknown.add("cpu.p95_cores");
        totals.unknown.add("cpu.max_cores");
        totals.unknownWhy.add(kj::str("its children's CPU time is counted as they exit, not as "
                                      "they run: its per-second peaks are not known"));
      }
      KJ_IF_MAYBE(o, outer) {
        KJ_IF_MAYBE(outerTask, tracked.find(*o)) {
          // It counts again from here: its baseline moves past this task's time.
          resumeAfter(*outerTask, t->latest, t->latestTicks);
        }
      }
      tracked.erase(slot);
    }
    return totals;
  }

  void release(uint32_t) override {}
  TaskTotals lingering(uint32_t) override { return {}; }
  ThreadWait currentWait(pid_t) override { return {"unknown", 0}; }

  kj::HashMap<uint32_t, TaskSample> sample() override {
    kj::HashMap<uint32_t, TaskSample> samples;
    for (auto& entry: tracked) {
      refresh(entry.value);
      TaskSample sample;
      sample.cpuNs = grown(entry.value.latest.runtimeNs, entry.value.baseline.runtimeNs);
      if (auto* children = tree.peek(entry.key)) sample.cpuNs += children->cpuNs;
      KJ_IF_MAYBE(bytes, rss.bytesOf(entry.value.tgid)) { sample.rssBytes = *bytes; }
      samples.insert(entry.key, sample);
    }
    return samples;
  }

  uint64_t unattributedLost() override { return lostBursts; }

  CollectorLoad load() override {
    CollectorLoad load;
    load.trackedThreads = tracked.size();
    for (auto& entry: tracked) {
      if (entry.value.tid == entry.value.tgid) ++load.trackedProcesses;
    }
    KJ_IF_MAYBE(listener, exits) { load.exitEvents = (*listener)->recordsRead(); }
    return load;
  }

 private:
  struct Tracked {
    pid_t tid;
    pid_t tgid;
    ThreadCounters baseline;
    ThreadCounters latest;  // the last values seen: all we have once the thread is gone
    CpuTicks baselineTicks;  // only for the user/system split: from its registration
    CpuTicks latestTicks;
    kj::Vector<pid_t> childrenAtStart;  // already running as the task began: not the task's
    kj::Maybe<CpuTicks> reapedAtStart;   // its process's children's CPU so far
    bool suspended = false;  // a task nested in it has the thread: `latest` is where it stopped
  };

  kj::Promise<void> pump(TaskstatsExits& listener) {
    return listener.whenReadable().then([this, &listener]() {
      readExits(listener);
      return pump(listener);
    });
  }

  void readExits(TaskstatsExits& listener) {
    auto now = monotonicNowNs();
    bool complete = listener.drain([&](const ExitRecord& record) {
      noteExitOf(record.tgid, now);
      noteExitOf(record.ppid, now);
      tree.add(record);
    });
    if (!complete) {
      ++lostBursts;
      tree.lost("the kernel dropped exit records (the sidecar read them too slowly)");
    }
  }

  void noteExitOf(pid_t tgid, uint64_t now) {
    if (tgid == 0) return;  // a record of taskstats < 12 does not name its process
    if (lastExitOf.size() >= RECENT_EXITS_MAX_ENTRIES && lastExitOf.find(tgid) == nullptr) {
      lastExitOf.clear();
      exitsForgottenBeforeNs = now;
    }
    lastExitOf.upsert(tgid, now, [](uint64_t& old, uint64_t latest) { old = latest; });
  }

  static uint64_t monotonicNowNs() {
    timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return uint64_t(now.tv_sec) * 1000000000 + now.tv_nsec;
  }

  // Each exit record misses its thread's last slice (up to a scheduler tick)
  // and the unmapping of its memory. What the task's process has reaped
  // meanwhile has them, to a clock tick for each of user and system time:
  // where that is more, by no more than the exit records can have missed, it
  // is the children's CPU. Returns whether the children's CPU is now within
  // two ticks of the truth (or nothing exited).
  static bool completeFromReaped(const Tracked& t, ExitedWork& children) {
    if (children.threads == 0) return true;
    KJ_IF_MAYBE(before, t.reapedAtStart) {
      KJ_IF_MAYBE(now, readReapedChildrenTicks(t.tgid)) {
        uint64_t user = grown(now->utime, before->utime) * clockTickNs();
        uint64_t system = grown(now->stime, before->stime) * clockTickNs();
        uint64_t missable = children.threads * MAX_MISSED_PER_EXIT_NS;
        // More than the records can have missed: a child that was not the
        // task's (a zombie from before it) is in the reaped total.
        if (user + system > children.cpuNs + missable) return false;
        // The reaped total is within two ticks of the truth, the records are
        // at most the truth: the larger is within two ticks of it.
        if (user + system > children.cpuNs) {
          children.cpuNs = user + system;
          children.utimeNs = user;
          children.stimeNs = system;
        }
        return true;
      }
    }
    return false;
  }

  bool startedAChildStillRunning(const Tracked& t) {
    for (auto child: childrenOf(t.tgid, t.tid)) {
      bool before = false;
      for (auto old: t.childrenAtStart) before = before || old == child;
      if (!before) return true;
    }
    return false;
  }

  // The thread has exited: its last counters, exact, from its exit record.
  static void finalFrom(Tracked& t, const ExitRecord& exited) {
    t.latest = ThreadCounters{exited.cpuNs,     exited.runDelayNs, exited.rchar,
                              exited.wchar,     exited.readBytes,  exited.writeBytes};
    t.latestTicks = CpuTicks{exited.utimeNs / clockTickNs(), exited.stimeNs / clockTickNs()};
  }

  // A suspended task's thread counts for it again from `now` (where the
  // nested task's count ended): what it spent suspended is taken off.
  static void resumeAfter(Tracked& t, const ThreadCounters& now, const CpuTicks& nowTicks) {
    auto skip = [](uint64_t& base, uint64_t now, uint64_t stoppedAt) { base += grown(now, stoppedAt); };
    skip(t.baseline.runtimeNs, now.runtimeNs, t.latest.runtimeNs);
    skip(t.baseline.runDelayNs, now.runDelayNs, t.latest.runDelayNs);
    skip(t.baseline.rchar, now.rchar, t.latest.rchar);
    skip(t.baseline.wchar, now.wchar, t.latest.wchar);
    skip(t.baseline.readBytes, now.readBytes, t.latest.readBytes);
    skip(t.baseline.writeBytes, now.writeBytes, t.latest.writeBytes);
    skip(t.baselineTicks.utime, nowTicks.utime, t.latestTicks.utime);
    skip(t.baselineTicks.stime, nowTicks.stime, t.latestTicks.stime);
    t.latest = now;
    t.latestTicks = nowTicks;
    t.suspended = false;
  }

  void refresh(Tracked& t) {
    if (t.suspended) return;  // its counters stopped where its nested task's began
    KJ_IF_MAYBE(now, readThreadCounters(t.tgid, t.tid)) { t.latest = *now; }
    KJ_IF_MAYBE(now, readCpuTicks(t.tgid, t.tid)) { t.latestTicks = *now; }
  }

  kj::String reason;
  kj::Maybe<kj::Own<TaskstatsExits>> exits;
  kj::Vector<kj::StringPtr> unknown;
  ExitTree tree;
  kj::HashMap<uint32_t, Tracked> tracked;
  ProcessRss rss;
  uint64_t lostBursts = 0;
  // When an exit record of each process's thread or child was last read
  // (CLOCK_MONOTONIC), and before when such times were forgotten.
  kj::HashMap<pid_t, uint64_t> lastExitOf;
  uint64_t exitsForgottenBeforeNs = 0;
};

}  // namespace

kj::Own<Collector> makeProcfsCollector(kj::String reason,
                                       kj::OneOf<kj::Own<TaskstatsExits>, kj::String> exits) {
  KJ_SWITCH_ONEOF(exits) {
    KJ_CASE_ONEOF(listener, kj::Own<TaskstatsExits>) {
      return kj::heap<ProcfsCollector>(
          kj::str(reason, "; exited children counted from taskstats v", listener->version()),
          kj::mv(listener));
    }
    KJ_CASE_ONEOF(whyNot, kj::String) {
      return kj::heap<ProcfsCollector>(
          kj::str(reason, "; ", whyNot, ": the CPU, I/O and memory of anything a task starts "
                  "cannot be counted"),
          nullptr);
    }
  }
  KJ_UNREACHABLE;
}

}  // namespace tracer
