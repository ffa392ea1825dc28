#pragma once
// The kernel observer: loads bpf/task_tracking.bpf.c through its skeleton and
// keeps its maps in step with registered tasks.

#include <kj/memory.h>

#include "observe/collector.h"
#include "ops/log.h"

namespace tracer {

struct BpfMapSizes {
  uint32_t trackedThreads;
  uint32_t liveTasks;
};

// The BPF collector, or a NoCollector carrying the reason it could not load.
kj::Own<Collector> loadCollector(Log& log, BpfMapSizes sizes);

}  // namespace tracer
