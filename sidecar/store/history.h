#pragma once
// Every finished task run and flow run, in SQLite under the state directory,
// so recommendations survive restarts. A task's runs are keyed by its
// deployment (or "flow:<name>" without one) and its task key; only the newest
// `keepRuns` of each are kept.


#include <deque>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "policy/observation.h"
#include "store/sqlite.h"

namespace tracer {

struct TaskHistoryKey {
  std::string key;   // deployment, or "flow:<flow name>"
  std::string task;  // task key, or task name when there is none
};

class History {
 public:
  // Opens (creating if needed) `path`; throws with SQLite's message on failure.
  History(const std::string& path, uint32_t keepRuns);
  ~History();  // commits what is pending

  // Runs are written in batches: one transaction per flush() (the sampler
  // calls it every second; shutdown too), not one per finished task, which
  // would cost more than observing the task. A SIGKILL loses at most the
  // last second of history; SIGTERM loses nothing.
  void flush();

  void recordTask(const TaskHistoryKey& key, const policy::Observation& run);
  void recordFlow(const std::string& key, const std::string& flowRunId, int64_t finishedAtNs,
                  uint64_t wallNs, const std::string& state);

  // The newest `limit` runs of a task, oldest first.
  std::vector<policy::Observation> recent(const TaskHistoryKey& key, uint32_t limit);
  // Every task with history.
  std::vector<TaskHistoryKey> tasks();
  // Whether anything is known about a deployment (or flow) key.
  bool knows(const std::string& key);

 private:
  void beginBatch();
  std::vector<policy::Observation> load(const TaskHistoryKey& key, uint32_t limit);

  Database db;
  uint32_t keepRuns;
  bool batchOpen = false;
  // The newest runs of each task asked about, so advising a finished task
  // does not query SQLite; runs recorded since the last flush, for pruning.
  std::map<std::pair<std::string, std::string>, std::deque<policy::Observation>> cache;
  std::set<std::pair<std::string, std::string>> touched;
};

}  // namespace tracer
