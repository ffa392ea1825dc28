#pragma once
// A finished task run as the history keeps it: its record (a TaskRow, the
// same definition as a row of the flow run's table artifact) and where it ran.
// observationOf() is the one mapping from a record to what the policy engine
// reads: local runs (runs/advisor), runs read back from history.db and runs
// seeded from other nodes' artifacts (prefect/history_seeder) all pass here.

#include <cstdint>
#include <string>
#include <vector>

#include "policy/observation.h"
#include "tracer.capnp.h"

namespace tracer {

// Where a task run ran and when it finished: what its history row is found
// and its policy matched by.
struct RunContext {
  std::string flow, deployment, workPool;
  std::string workPoolType;  // kubernetes, ecs, docker, process: the form recommendations take
  std::vector<std::string> tags;
  int64_t finishedAtNs = 0;  // wall clock (CLOCK_REALTIME)
};

policy::Observation observationOf(const RunContext& context, proto::TaskRow::Reader row);

}  // namespace tracer
