#pragma once
// The human form of a TaskReport, in the spirit of `/usr/bin/time -v`.

#include <kj/string.h>

#include "tracer.capnp.h"

namespace tracer {

kj::String reportText(proto::TaskReport::Reader report);
kj::String recommendationText(proto::Recommendation::Reader recommendation);
kj::String humanBytes(uint64_t bytes);
kj::String fixed(double value, int decimals);
kj::String humanDuration(uint64_t ns);

}  // namespace tracer
