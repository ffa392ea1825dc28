#pragma once
// A finished task run's record (TaskRow in tracer.capnp) from its TaskReport:
// the only place one is made. The table artifact's rows and the history's
// rows are these, written and read through the same definition.

#include <kj/string.h>

#include "tracer.capnp.h"

namespace tracer {

void fillTaskRow(proto::TaskReport::Reader report, proto::TaskRow::Builder row);
// The cost fields alone: set again when the advice priced the run after its row was made.
void fillRowCost(proto::TaskReport::Reader report, proto::TaskRow::Builder row);

// A run state's name as rows and artifacts show it ("completed", ...).
kj::String stateName(proto::RunState state);

// The kind of the report's most severe finding, or "-".
kj::String topFinding(proto::TaskReport::Reader report);

}  // namespace tracer
