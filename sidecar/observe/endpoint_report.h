#pragma once
// A task's endpoints in its report (TaskReport.net.endpoints and
// otherEndpoints) from the collector's totals.

#include "observe/collector.h"
#include "tracer.capnp.h"

namespace tracer {

// Endpoints listed in a report, at most: the ones waited on longest.
constexpr size_t REPORTED_ENDPOINTS = 10;

// The report fields the endpoints fill: unknown together.
inline const kj::StringPtr ENDPOINT_FIELDS[] = {"net.endpoints", "net.other_endpoints"};

// Which endpoint `key` is, into `out` (its address, port, listening).
void describeEndpoint(const endpoint_key& key, proto::Endpoint::Builder out);

// otherEndpoints: what the listed endpoints do not hold of the task's
// network wait (sched.sleep_by_cause.network_ns) and socket bytes.
void fillEndpoints(proto::TaskReport::Builder report, const TaskTotals& totals);

}  // namespace tracer
