#pragma once
// The human form of a CostReport (tracerctl costs): a table of the rows, what
// makes a row partial or leaves runs out of it under the table, and totals per
// currency that say when they are only a lower bound.

#include <kj/string.h>

#include "tracer.capnp.h"

namespace tracer {

kj::String costText(proto::CostReport::Reader report);

}  // namespace tracer
