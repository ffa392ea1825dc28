#pragma once
// Loads a directory of policy files. Every problem is collected (not just the
// first) as `file:line:col: message`, so `tracerctl policy check` shows a
// policy repository's CI everything to fix in one run.

#include <cstdint>
#include <string>
#include <vector>

#include "policy/policy.h"

namespace tracer::policy {

struct Diagnostic {
  std::string file;
  int line = 0;    // 1-based; 0 when the problem is the file or set as a whole
  int column = 0;  // 1-based
  std::string message;

  std::string text() const;
};

struct LoadResult {
  PolicySet set;
  std::vector<Diagnostic> errors;
  bool ok() const { return errors.empty(); }
};

// The most runs of each task a sidecar's history keeps (its --history-runs at most).
constexpr uint32_t HISTORY_RUNS_MAX = 100000;

// `historyRunsKept`: the runs of each task the history keeps (the sidecar's
// --history-runs). A policy asking for more (history.runs or min_runs) would
// never get them, and is refused. Without a sidecar's (tracerctl policy
// check), the most any sidecar keeps.

// Loads DIR/*.yaml (and *.yml) in name order.
LoadResult loadPolicyDirectory(const std::string& directory,
                               uint32_t historyRunsKept = HISTORY_RUNS_MAX);
// Loads the given files, in that order.
LoadResult loadPolicyFiles(const std::vector<std::string>& paths,
                           uint32_t historyRunsKept = HISTORY_RUNS_MAX);
// Loads one document held in memory (for tests and the fuzzer).
LoadResult loadPolicyText(const std::string& name, const std::string& text,
                          uint32_t historyRunsKept = HISTORY_RUNS_MAX);

}  // namespace tracer::policy
