#pragma once
// Queries over time of the history, read-only, on a connection of their own:
// a rollup over hundreds of thousands of runs (report/cost_rollup) takes
// seconds, so it runs on a thread of its own while the sidecar goes on
// writing through History (WAL: readers and the writer do not wait for each
// other). They read what is written, within a second of a run's finish
// (History::flush()), each within (fromNs, toNs] of the wall clock.

#include <kj/array.h>
#include <kj/string.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "store/history.h"
#include "store/sqlite.h"

namespace tracer {

// A run as the history keeps it, and where it is filed: what a rollup over
// time (report/cost_rollup) reads.
struct StoredRun {
  TaskHistoryKey key;
  std::string flow, deployment;  // names in that run, for people
  int64_t finishedAtNs = 0;
  // What was asked of its TaskRow (runsFinishedBetween): the values at the
  // paths, as a JSON array; empty if the row is not JSON.
  std::string values;
};

// How many runs the history keeps of a task, and the oldest one's finish: a
// task that keeps runsKept() of them has lost those before that.
struct KeptRuns {
  TaskHistoryKey key;
  uint32_t count = 0;
  int64_t oldestNs = 0;
};

// Flow runs' footprints are filed as tasks (policy::FLOW_RUN_TASK) beside
// the task runs: a query over time asks for one kind or the other.
enum class RunKind { TASK_RUNS, FLOW_RUN_FOOTPRINTS };

class HistoryReader {
 public:
  // `keepRuns`: the history's --history-runs (History::runsKept()).
  HistoryReader(const std::string& path, uint32_t keepRuns);

  uint32_t runsKept() const { return keepRuns; }

  // The runs of `kind` that finished then, oldest first, each with the
  // values at `paths` (two or more JSON paths into its row, "$.cost_used"):
  // SQLite reads them, some 30 times faster than decoding each row here.
  std::vector<StoredRun> runsFinishedBetween(RunKind kind, int64_t fromNs, int64_t toNs,
                                             kj::ArrayPtr<const kj::String> paths);
  // The finish of each flow run (History::recordFlow) then, by key.
  std::vector<std::pair<std::string, int64_t>> flowRunsFinishedBetween(int64_t fromNs,
                                                                       int64_t toNs);
  // What is kept of every task of `kind`.
  std::vector<KeptRuns> keptRuns(RunKind kind);
  // The spans a sidecar watched (History::watchedUntil) that overlap
  // (fromNs, toNs], as (since, until), by their start.
  std::vector<std::pair<int64_t, int64_t>> watchedBetween(int64_t fromNs, int64_t toNs);
  // The newest run written under a deployment (or flow) key, of any task.
  kj::Maybe<StoredRun> latestRun(const std::string& key);

 private:
  Database db;
  uint32_t keepRuns;
};

}  // namespace tracer
