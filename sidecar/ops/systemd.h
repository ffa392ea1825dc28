#pragma once
// The two things the sidecar takes from systemd: a listening socket passed by
// socket activation, and readiness / status notifications. Both are harmless
// no-ops when systemd is not our parent.

#include <kj/common.h>
#include <kj/string.h>
#include <kj/time.h>

namespace tracer {

// The listening socket from a .socket unit, if we were socket-activated.
// Throws when systemd passed more than one socket (the unit is misconfigured).
kj::Maybe<int> socketFromSystemd();

// sd_notify(3) with state lines such as "READY=1\nSTATUS=...".
void notifySystemd(kj::StringPtr state);

// How often to send WATCHDOG=1 (half of WatchdogSec), when systemd asked for it.
kj::Maybe<kj::Duration> watchdogInterval();

}  // namespace tracer
