#pragma once
// Findings about one run, each with its severity, the numbers that back it and
// the policy whose thresholds produced it. Single-run findings need no
// history; `slower_than_usual` compares with the median of earlier runs.

#include <kj/array.h>

#include <string>
#include <utility>
#include <vector>

#include "policy/observation.h"
#include "policy/policy.h"

namespace tracer::policy {

struct Finding {
  std::string kind;      // cpu_over_allocation, memory_pressure, io_bound, ...
  std::string severity;  // info, warning, critical
  std::string summary;   // one sentence a platform engineer can act on
  std::vector<std::pair<std::string, std::string>> evidence;
  std::string policy;
};

// What a run is. A flow run's allocation is shared by all its tasks, so use
// against allocation (cpu_over_allocation, memory_over_allocation and
// memory_pressure near the limit) is judged on its footprint, what its
// processes used together; a task run gets the rest, and memory_pressure
// for the OOM kills among its own processes.
enum class Scope { TASK_RUN, FLOW_RUN };

// `earlier`: previous runs of the same task (or flow run footprint), oldest first.
std::vector<Finding> detect(const Policy& policy, const Observation& run,
                            kj::ArrayPtr<const Observation> earlier,
                            Scope scope = Scope::TASK_RUN);

// Each finding's thresholds as the policy sets them, one line each ("kind:
// key value, ...", or "kind: off"), as the policy file spells them.
std::vector<std::string> describeFindingRules(const FindingRules& rules);

// Whether a finding of `severity` is at least `threshold` (info < warning <
// critical); an empty threshold (off) is never reached.
bool atLeast(const std::string& severity, const std::string& threshold);

}  // namespace tracer::policy
