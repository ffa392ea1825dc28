#include "observe/procfs_collector.h"

#include <kj/debug.h>
#include <unistd.h>

#include "proc_files.h"

namespace tracer {

namespace {

const kj::StringPtr UNKNOWN[] = {
    "sched.blocked_io_ns", "sched.sleep_ns",  "net.tx_bytes",      "net.rx_bytes",
    "proc.spawned",        "proc.execs",      "proc.short_lived",  "proc.max_concurrent",
    "proc.top",            "proc.outliving",  "memory.oom_kills",
};

// How much a counter grew: a client's reading of its own CPU clock can be
// ahead of what schedstat shows for a running thread.
uint64_t grown(uint64_t now, uint64_t then) { return now > then ? now - then : 0; }

class ProcfsCollector final: public Collector {
 public:
  explicit ProcfsCollector(kj::String reason): reason(kj::mv(reason)) {}

  kj::StringPtr name() const override { return "procfs"; }
  kj::StringPtr degradedReason() const override { return reason; }
  kj::ArrayPtr<const kj::StringPtr> unknownFields() const override { return UNKNOWN; }

  kj::Promise<void> run(ExitListener&) override { return kj::NEVER_DONE; }

  void track(uint32_t slot, pid_t hostTid, kj::Maybe<const ThreadCounters&> started) override {
    pid_t tgid = hostTid;
    KJ_IF_MAYBE(status, readProcFile(kj::str("/proc/", hostTid, "/status"))) {
      auto numbers = statusNumbers(*status, "Tgid");
      if (numbers.size() > 0) tgid = numbers[0];
    }
    auto now = readThreadCounters(tgid, hostTid);
    auto ticks = readCpuTicks(tgid, hostTid);
    KJ_REQUIRE(now != nullptr && ticks != nullptr, "the task's thread is gone", hostTid);
    auto& latest = KJ_ASSERT_NONNULL(now);
    ThreadCounters baseline = latest;
    KJ_IF_MAYBE(given, started) { baseline = *given; }
    auto& t = KJ_ASSERT_NONNULL(ticks);
    tracked.insert(slot, Tracked{hostTid, tgid, baseline, latest, t, t});
  }

  bool clonedSince(pid_t, uint64_t) override { return true; }  // nothing here sees clones

  TaskTotals finish(uint32_t slot, pid_t hostTid) override {
    TaskTotals totals;
    KJ_IF_MAYBE(t, tracked.find(slot)) {
      refresh(*t);
      auto& k = totals.kernel;
      k.runtime_ns = grown(t->latest.runtimeNs, t->baseline.runtimeNs);
      k.run_delay_ns = grown(t->latest.runDelayNs, t->baseline.runDelayNs);
      k.utime_raw = grown(t->latestTicks.utime, t->baselineTicks.utime);
      k.stime_raw = grown(t->latestTicks.stime, t->baselineTicks.stime);
      k.rchar = grown(t->latest.rchar, t->baseline.rchar);
      k.wchar = grown(t->latest.wchar, t->baseline.wchar);
      k.read_bytes = grown(t->latest.readBytes, t->baseline.readBytes);
      k.write_bytes = grown(t->latest.writeBytes, t->baseline.writeBytes);
      KJ_IF_MAYBE(rss, readRssBytes(t->tgid)) { totals.registeredRssBytes = *rss; }
      tracked.erase(slot);
    }
    return totals;
  }

  void release(uint32_t) override {}
  TaskTotals lingering(uint32_t) override { return {}; }

  kj::HashMap<uint32_t, TaskSample> sample() override {
    kj::HashMap<uint32_t, TaskSample> samples;
    for (auto& entry: tracked) {
      refresh(entry.value);
      TaskSample sample;
      sample.cpuNs = grown(entry.value.latest.runtimeNs, entry.value.baseline.runtimeNs);
      KJ_IF_MAYBE(rss, readRssBytes(entry.value.tgid)) { sample.rssBytes = *rss; }
      samples.insert(entry.key, sample);
    }
    return samples;
  }

  uint64_t unattributedLost() override { return 0; }

  // Only registered threads are tracked here; there are no kernel exit events.
  CollectorLoad load() override {
    CollectorLoad load;
    load.trackedThreads = tracked.size();
    for (auto& entry: tracked) {
      if (entry.value.tid == entry.value.tgid) ++load.trackedProcesses;
    }
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
  };

  void refresh(Tracked& t) {
    KJ_IF_MAYBE(now, readThreadCounters(t.tgid, t.tid)) { t.latest = *now; }
    KJ_IF_MAYBE(now, readCpuTicks(t.tgid, t.tid)) { t.latestTicks = *now; }
  }

  kj::String reason;
  kj::HashMap<uint32_t, Tracked> tracked;
};

}  // namespace

kj::Own<Collector> makeProcfsCollector(kj::String reason) {
  return kj::heap<ProcfsCollector>(kj::mv(reason));
}

}  // namespace tracer
