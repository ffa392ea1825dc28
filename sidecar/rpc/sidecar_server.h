#pragma once
// The Sidecar capability each connection bootstraps, bound to the caller's
// kernel-verified identity. Every server counts and times its calls
// (MeasuredServer) and every scope counts against the caller's limit.

#include <capnp/capability.h>

#include "rpc/caller.h"
#include "rpc/services.h"
#include "tracer.capnp.h"

namespace tracer {

kj::Own<proto::Sidecar::Server> makeSidecarServer(Services& services, kj::Own<Caller> caller);

}  // namespace tracer
