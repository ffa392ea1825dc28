#pragma once
// The fallback collector, used when BPF cannot load (no root, no BTF, an old
// kernel): the registered thread's own counters from /proc, and, where the
// kernel's exit accounting (taskstats) is open to us, what the task's exited
// child processes did (exit_tree.h). Sleeps, sockets, OOM kills and process
// counts it cannot know; without taskstats, nothing a task starts either.
// Those report fields are listed as unknown (JSON null), never given as zero.

#include <kj/memory.h>
#include <kj/one-of.h>

#include "observe/collector.h"
#include "observe/taskstats_exits.h"

namespace tracer {

// `exits` is the open taskstats listener, or why there is none.
kj::Own<Collector> makeProcfsCollector(kj::String reason,
                                       kj::OneOf<kj::Own<TaskstatsExits>, kj::String> exits);

}  // namespace tracer
