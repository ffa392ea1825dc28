#pragma once
// Turns the tid a caller sends (in the caller's PID namespace: flow runs live in
// containers) into a host tid, and decides whether the caller may have it
// attributed: its own threads always; threads of processes of the same uid
// when the caller shares our PID namespace; anything when the caller is root.
// The thread is pinned with a pidfd while it is checked and the caller's own
// pidfd must still be live, so a pid or tid reused in the meantime is never
// taken for the one that was asked about.
// Refusals throw with a message that says who asked for what.

#include <sys/types.h>

#include "observe/collector.h"
#include "rpc/caller.h"

namespace tracer {

HostThread resolveTaskThread(const Caller& caller, pid_t tidInCallerNamespace);

}  // namespace tracer
