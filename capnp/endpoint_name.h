#pragma once
// How an endpoint (tracer.capnp, Endpoint) is written wherever a person reads
// it: a finding, a table artifact's row, tracerctl.

#include <kj/string.h>

#include "tracer.capnp.h"

namespace tracer {

// "10.0.3.7:5432", "[2001:db8::1]:443"; a listening socket's ends in " (listening)".
kj::String endpointName(proto::Endpoint::Reader endpoint);

}  // namespace tracer
