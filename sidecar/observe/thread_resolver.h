#pragma once
// Turns the tid a caller sends (in the caller's PID namespace: flow runs live in
// containers) into a host tid, and decides whether the caller may have it
// attributed: its own threads always; threads of processes of the same uid
// when the caller shares our PID namespace; anything when the caller is root.
// Refusals throw (KJ_REQUIRE) with a message that says who asked for what.

#include <sys/types.h>

#include "rpc/peer_credentials.h"

namespace tracer {

pid_t resolveTaskThread(const PeerCredentials& caller, pid_t tidInCallerNamespace);

}  // namespace tracer
