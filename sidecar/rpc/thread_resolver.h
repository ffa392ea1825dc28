#pragma once
// Turns the tid a caller sends (in the caller's PID namespace: flow runs live in
// containers) into a host tid, and decides whether the caller may have it
// attributed: its own threads always; threads of processes of the same uid
// when the caller shares our PID namespace; anything when the caller is root.
// The caller's own pidfd must still be live once the thread is checked, so
// the thread is not taken for the caller's after the caller's pid went to
// another process (docs/security.md, "Pid reuse").
// Refusals throw with a message that says who asked for what.

#include <sys/types.h>

#include "observe/collector.h"
#include "rpc/caller.h"

namespace tracer {

HostThread resolveTaskThread(const Caller& caller, pid_t tidInCallerNamespace);

}  // namespace tracer
