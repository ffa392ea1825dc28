#pragma once
// "Where the time went" in a flow run's markdown artifact: each task's thread
// time split into on-CPU, waiting for a CPU, blocked on disk and asleep by
// cause (network, lock, child, timer, pipe, other), as a mermaid pie of the
// whole run and a table of its tasks.

#include <kj/array.h>
#include <kj/string.h>

#include "tracer.capnp.h"

namespace tracer {

// `shown`: which of `tasks` get a row (the markdown's longest task runs).
kj::String timeSplitSection(kj::ArrayPtr<const proto::TaskReport::Reader> tasks,
                            kj::ArrayPtr<const bool> shown);

}  // namespace tracer
