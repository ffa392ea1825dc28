#include "observe/procfs_collector.h"

#include <kj/debug.h>
#include <unistd.h>

#include "observe/proc_files.h"

namespace tracer {

namespace {

const kj::StringPtr UNKNOWN[] = {
    "sched.blocked_io_ns", "sched.sleep_ns",  "net.tx_bytes",      "net.rx_bytes",
    "proc.spawned",        "proc.execs",      "proc.short_lived",  "proc.max_concurrent",
    "proc.top",            "proc.outliving",  "memory.oom_kills",
};

class ProcfsCollector final: public Collector {
 public:
  explicit ProcfsCollector(kj::String reason): reason(kj::mv(reason)) {}

  kj::StringPtr name() const override { return "procfs"; }
  kj::StringPtr degradedReason() const override { return reason; }
  kj::ArrayPtr<const kj::StringPtr> unknownFields() const override { return UNKNOWN; }

  kj::Promise<void> run(ExitListener&) override { return kj::NEVER_DONE; }

  void track(uint32_t slot, pid_t hostTid) override {
    pid_t tgid = hostTid;
    KJ_IF_MAYBE(status, readProcFile(kj::str("/proc/", hostTid, "/status"))) {
      auto numbers = statusNumbers(*status, "Tgid");
      if (numbers.size() > 0) tgid = numbers[0];
    }
    auto baseline = readThreadCounters(tgid, hostTid);
    KJ_REQUIRE(baseline != nullptr, "the task's thread is gone", hostTid);
    auto& b = KJ_ASSERT_NONNULL(baseline);
    tracked.insert(slot, Tracked{hostTid, tgid, b, b});
  }

  TaskTotals finish(uint32_t slot, pid_t hostTid) override {
    TaskTotals totals;
    KJ_IF_MAYBE(t, tracked.find(slot)) {
      refresh(*t);
      auto& k = totals.kernel;
      k.runtime_ns = t->latest.runtimeNs - t->baseline.runtimeNs;
      k.run_delay_ns = t->latest.runDelayNs - t->baseline.runDelayNs;
      k.utime_raw = t->latest.utimeTicks - t->baseline.utimeTicks;
      k.stime_raw = t->latest.stimeTicks - t->baseline.stimeTicks;
      k.rchar = t->latest.rchar - t->baseline.rchar;
      k.wchar = t->latest.wchar - t->baseline.wchar;
      k.read_bytes = t->latest.readBytes - t->baseline.readBytes;
      k.write_bytes = t->latest.writeBytes - t->baseline.writeBytes;
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
      sample.cpuNs = entry.value.latest.runtimeNs - entry.value.baseline.runtimeNs;
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
  };

  void refresh(Tracked& t) {
    KJ_IF_MAYBE(now, readThreadCounters(t.tgid, t.tid)) { t.latest = *now; }
  }

  kj::String reason;
  kj::HashMap<uint32_t, Tracked> tracked;
};

}  // namespace

kj::Own<Collector> makeProcfsCollector(kj::String reason) {
  return kj::heap<ProcfsCollector>(kj::mv(reason));
}

}  // namespace tracer
