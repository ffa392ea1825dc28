#pragma once
// Every finished task run and flow run, in SQLite under the state directory,
// so recommendations survive restarts. A task's runs are keyed by its
// deployment's id (or its flow, report/run_keys.h) and its task key; only the
// newest `keepRuns` of each are kept.
//
// The schema's version is PRAGMA user_version. Version 0 (before it was set)
// keyed a deployment's runs by its bare *name*, which flows share ("prod"); the
// upgrade to 1 sets those rows aside, and each deployment's first run that
// brings its id takes back the ones its flow recorded (adoptVersion0Runs).
// Version 2 keeps each run's record as its TaskRow (store/run_record.h) in
// contract JSON, the text of its row in the table artifact, where version 1
// had a column per field; the upgrade rewrites version 1's rows so.

#include <deque>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "metrics/metrics_source.h"
#include "metrics/status_part.h"
#include "policy/lru_map.h"
#include "policy/observation.h"
#include "store/run_record.h"
#include "store/sqlite.h"

namespace tracer {

struct TaskHistoryKey {
  std::string key;   // historyKey(): "deployment:<id>", or "flow:<flow name>"
  std::string task;  // task key, or task name when there is none
};

class History final: public MetricsSource, public StatusPart {
 public:
  // Opens (creating if needed) `path`; throws with SQLite's message on failure.
  History(const std::string& path, uint32_t keepRuns);
  ~History() noexcept(false);  // writes what is held, if it can

  // The newest runs of each task it keeps: the most a policy can look at.
  uint32_t runsKept() const { return keepRuns; }
  // Its database, for readers of their own (store/history_reader.h).
  const std::string& path() const { return file; }

  // Runs are held in memory and written in batches: one transaction per
  // flush() (the sampler calls it every second; shutdown too), not one per
  // finished task, which would cost more than observing the task. A SIGKILL
  // loses at most the last second of history; SIGTERM loses nothing.
  // A write that fails (a full disk: SQLITE_FULL) is rolled back whole and
  // throws; its runs stay held and the next flush() writes them, so nothing
  // is lost once the disk has room. At most HELD_RUNS_MAX runs are held: past
  // it the oldest are dropped (counted).
  void flush();
  static constexpr size_t HELD_RUNS_MAX = 100000;

  // The sidecar was watching up to `nowNs` (wall clock), since this
  // history's first such call: the span is written with the next flush(), by
  // an idle history every WATCHED_REWRITE_NS. A rollup over time
  // (report/cost_rollup) says which stretches of its windows nobody watched:
  // runs that finished then are not in the history.
  void watchedUntil(int64_t nowNs);
  static constexpr int64_t WATCHED_REWRITE_NS = 10ll * 1000000000;

  // Whether the last flush() failed, and the runs it holds.
  bool failing() const { return writeFailing; }
  size_t runsHeld() const { return heldTasks.size() + heldFlows.size(); }

  // A run measured in full: its record's contract JSON (a TaskRow,
  // report/task_row) and `run`, observationOf(context, that row), which the
  // caller has made already.
  void recordTask(const TaskHistoryKey& key, const RunContext& context,
                  const policy::Observation& run, kj::StringPtr rowJson);
  void recordFlow(const std::string& key, const std::string& flowRunId, int64_t finishedAtNs,
                  uint64_t wallNs, const std::string& state);

  // The newest `limit` runs of a task, oldest first, with room for one more
  // (the run being advised joins them without a reallocation).
  std::vector<policy::Observation> recent(const TaskHistoryKey& key, uint32_t limit);
  // Every task with history.
  std::vector<TaskHistoryKey> tasks();
  // Tasks whose runs are cached now (at most cachedTasksMax()).
  size_t cachedTasks() const { return cache.size(); }
  size_t cachedTasksMax() const;
  // Whether anything is known about a deployment (or flow) key.
  bool knows(const std::string& key);


  // A run of `flow`'s deployment `deploymentName` arrived with its id, whose
  // key is `key`: the version-0 runs under that name that `flow` recorded
  // become `key`'s, in one transaction (committing the pending batch first).
  // Other flows' runs under the same name stay aside for their own
  // deployments, as do version 0's rows seeded from Prefect, which recorded
  // no flow. Returns how many moved; after the first call for a (flow, name),
  // none.
  size_t adoptVersion0Runs(const std::string& flow, const std::string& deploymentName,
                           const std::string& key);

  // Failed writes, the runs held in memory and those dropped past the cap.
  void renderMetrics(PrometheusText& out) override;
  void fillStatus(proto::SidecarStatus::Builder status) const override;

 private:
  // A run recorded and not yet written.
  struct HeldTask {
    TaskHistoryKey key;
    RunContext context;
    policy::Observation run;
    std::string rowJson;
  };
  struct HeldFlow {
    std::string key, flowRunId, state;
    int64_t finishedAtNs;
    uint64_t wallNs;
  };

  void upgrade(const std::string& path);
  // flush(), writing the watched span if it grew by `unwrittenNs` or more.
  void flushIfWatchedFor(int64_t unwrittenNs);
  void write();
  void dropPastCap();
  std::vector<policy::Observation> load(const TaskHistoryKey& key, uint32_t limit);

  Database db;
  // Prepared once, after the schema: every finished task's row, and the
  // retention of each task written (a flow run of many distinct tasks
  // prepared it once a task, each second).
  kj::Maybe<Statement> insertTaskRun;
  kj::Maybe<Statement> pruneTaskRuns;
  std::string file;
  uint32_t keepRuns;
  std::deque<HeldTask> heldTasks;
  std::deque<HeldFlow> heldFlows;
  // The newest runs of the tasks asked about most recently (held runs
  // included), so advising a finished task does not query SQLite. Task names
  // are the clients', so the cache holds at most CACHED_RUNS runs' worth of
  // tasks (keepRuns each); a task it forgot is read back when next asked about.
  policy::LruMap<std::pair<std::string, std::string>, std::deque<policy::Observation>> cache;
  // The span watched (watchedUntil), how much of it is written, and its row.
  int64_t watchedSinceNs = 0, watchedToNs = 0, watchedWrittenToNs = 0;
  int64_t watchedRow = 0;  // 0: not written yet
  bool writeFailing = false;
  uint64_t writeFailures = 0;
  uint64_t runsDropped = 0;
  // (deployment name, flow) of the version-0 runs still set aside.
  std::set<std::pair<std::string, std::string>> version0Owners;
};

}  // namespace tracer
