#include "observe/bpf_collector.h"

#include <bpf/libbpf.h>
#include <kj/debug.h>

#include <cerrno>
#include <cstdarg>
#include <cstring>

#include "task_tracking.h"
#include "task_tracking.skel.h"

namespace tracer {

namespace {

static_assert(sizeof(task_counters) == 24, "task_counters layout is shared with BPF");
static_assert(offsetof(task_counters, spawned) == 0, "task_counters layout is shared with BPF");
static_assert(offsetof(task_counters, execs) == 8, "task_counters layout is shared with BPF");
static_assert(offsetof(task_counters, lost) == 16, "task_counters layout is shared with BPF");

class SkeletonDisposer final: public kj::Disposer {
 public:
  void disposeImpl(void* pointer) const override {
    task_tracking_bpf__destroy(static_cast<task_tracking_bpf*>(pointer));
  }
};
const SkeletonDisposer skeletonDisposer;

// libbpf's own diagnostics (verifier log, missing BTF) are what explains a
// failed load, so they go to our log rather than to a bare stderr.
thread_local Log* libbpfLog = nullptr;
int forwardLibbpfMessage(libbpf_print_level level, const char* format, va_list args) {
  if (libbpfLog == nullptr || level == LIBBPF_DEBUG) return 0;
  char text[1024];
  int n = vsnprintf(text, sizeof(text), format, args);
  while (n > 0 && static_cast<size_t>(n) < sizeof(text) && text[n - 1] == '\n') text[--n] = '\0';
  libbpfLog->debug(kj::str("libbpf: ", text));
  return n;
}

class BpfCollector final: public Collector {
 public:
  explicit BpfCollector(kj::Own<task_tracking_bpf> skeleton): skeleton(kj::mv(skeleton)) {}

  kj::StringPtr name() const override { return "bpf"; }
  kj::StringPtr degradedReason() const override { return ""; }

  void track(uint32_t slot, pid_t hostTid) override {
    task_counters zero{};
    int err = bpf_map__update_elem(skeleton->maps.task_counters, &slot, sizeof(slot), &zero,
                                   sizeof(zero), BPF_NOEXIST);
    KJ_REQUIRE(err == 0, "cannot start counting for the task (too many live tasks?)",
               strerror(-err));
    uint32_t tid = hostTid;
    err = bpf_map__update_elem(skeleton->maps.tracked_threads, &tid, sizeof(tid), &slot,
                               sizeof(slot), BPF_ANY);
    if (err != 0) {
      bpf_map__delete_elem(skeleton->maps.task_counters, &slot, sizeof(slot), 0);
      KJ_FAIL_REQUIRE("cannot track the task's thread (too many tracked threads?)",
                      strerror(-err));
    }
  }

  TaskActivity untrack(uint32_t slot, pid_t hostTid) override {
    uint32_t tid = hostTid;
    // The thread may have moved to another task already; only remove our claim.
    uint32_t current;
    if (bpf_map__lookup_elem(skeleton->maps.tracked_threads, &tid, sizeof(tid), &current,
                             sizeof(current), 0) == 0 && current == slot) {
      bpf_map__delete_elem(skeleton->maps.tracked_threads, &tid, sizeof(tid), 0);
    }
    task_counters counters{};
    bpf_map__lookup_and_delete_elem(skeleton->maps.task_counters, &slot, sizeof(slot),
                                    &counters, sizeof(counters), 0);
    return TaskActivity{counters.spawned, counters.execs, counters.lost};
  }

  uint64_t unattributedLost() override {
    int cpus = libbpf_num_possible_cpus();
    KJ_REQUIRE(cpus > 0, "cannot count CPUs", strerror(-cpus));
    kj::Array<uint64_t> perCpu = kj::heapArray<uint64_t>(cpus);
    uint32_t zero = 0;
    if (bpf_map__lookup_elem(skeleton->maps.unattributed_lost, &zero, sizeof(zero),
                             perCpu.begin(), perCpu.size() * sizeof(uint64_t), 0) != 0) {
      return 0;
    }
    uint64_t total = 0;
    for (auto value: perCpu) total += value;
    return total;
  }

 private:
  kj::Own<task_tracking_bpf> skeleton;
};

kj::Maybe<kj::String> tryLoad(BpfMapSizes sizes, kj::Maybe<kj::Own<task_tracking_bpf>>& out) {
  task_tracking_bpf* raw = task_tracking_bpf__open();
  if (raw == nullptr) return kj::str("opening the BPF object failed: ", strerror(errno));
  kj::Own<task_tracking_bpf> skeleton(raw, skeletonDisposer);
  bpf_map__set_max_entries(skeleton->maps.tracked_threads, sizes.trackedThreads);
  bpf_map__set_max_entries(skeleton->maps.task_counters, sizes.liveTasks);
  if (int err = task_tracking_bpf__load(skeleton.get())) {
    return kj::str("loading BPF programs failed: ", strerror(-err),
                   err == -EPERM ? " (needs root or CAP_BPF + CAP_PERFMON)" : "");
  }
  if (int err = task_tracking_bpf__attach(skeleton.get())) {
    return kj::str("attaching BPF tracepoints failed: ", strerror(-err));
  }
  out = kj::mv(skeleton);
  return nullptr;
}

}  // namespace

kj::Own<Collector> loadCollector(Log& log, BpfMapSizes sizes) {
  libbpfLog = &log;
  libbpf_set_print(forwardLibbpfMessage);
  kj::Maybe<kj::Own<task_tracking_bpf>> loaded;
  KJ_IF_MAYBE(reason, tryLoad(sizes, loaded)) {
    log.warn(kj::str("kernel observer unavailable, serving without it: ", *reason));
    return kj::heap<NoCollector>(kj::mv(*reason));
  }
  log.info("kernel observer loaded (BPF, tracepoints)");
  return kj::heap<BpfCollector>(KJ_ASSERT_NONNULL(kj::mv(loaded)));
}

}  // namespace tracer
