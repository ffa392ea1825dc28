#pragma once
// The kernel observer: bpf/*.bpf.c loaded through their skeletons, sharing one
// set of maps, kept in step with the registered tasks.

#include <kj/async-unix.h>
#include <kj/memory.h>

#include "observe/collector.h"
#include "ops/log.h"

namespace tracer {

struct BpfSettings {
  uint32_t threadsMaxEntries;
  uint32_t tasksMaxEntries;
  uint64_t shortLivedNs;
  // Threads one uid's tracked threads may have forked and not yet ended
  // (root's are not counted); past it a fork is not tracked. 0: no quota.
  uint64_t threadsPerUid = 0;
  // Leave the fentry program that marks task starts unloaded, where the
  // kernel could take it (--without-start-marks).
  bool withoutStartMarks = false;
};

// The BPF collector, or nothing and (in whyNot) the reason it could not load.
kj::Maybe<kj::Own<Collector>> loadBpfCollector(Log& log, kj::UnixEventPort& events, BpfSettings settings,
                                    kj::String& whyNot);

}  // namespace tracer
