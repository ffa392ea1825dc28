#pragma once
// The Sidecar capability each connection bootstraps, bound to the caller's
// kernel-verified credentials.

#include <capnp/capability.h>

#include "rpc/peer_credentials.h"
#include "rpc/services.h"
#include "tracer.capnp.h"

namespace tracer {

kj::Own<proto::Sidecar::Server> makeSidecarServer(Services& services, PeerCredentials caller);

}  // namespace tracer
