#pragma once
// The degraded collector, used when BPF cannot load (no root, no BTF, an old
// kernel): it reads the registered thread's own counters from /proc. It cannot
// see descendants, sleeps, sockets or OOM kills; those report fields are
// listed as unknown (JSON null), never given as zero.

#include <kj/memory.h>

#include "observe/collector.h"

namespace tracer {

kj::Own<Collector> makeProcfsCollector(kj::String reason);

}  // namespace tracer
