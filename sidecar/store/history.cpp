#include "store/history.h"

#include "store/sqlite.h"

#include <capnp/message.h>

#include <algorithm>
#include <map>
#include <vector>

#include <kj/debug.h>

#include "contract_json.h"

namespace tracer {

namespace {

constexpr int64_t SCHEMA_VERSION = 2;

// Runs the cache may hold: an Observation is some 400 bytes with its names,
// so some 40 MiB when every cached task has keepRuns runs.
constexpr uint32_t CACHED_RUNS = 100000;

// Version 1's task runs, one column per field, as versions 0 and 1 wrote them.
constexpr const char* VERSION_1_TASK_RUNS = R"(CREATE TABLE IF NOT EXISTS task_runs (
    key TEXT NOT NULL, task TEXT NOT NULL, finished_at_ns INTEGER NOT NULL,
    flow TEXT, task_name TEXT, deployment TEXT, work_pool TEXT, tags TEXT,
    wall_ns INTEGER, cpu_ns INTEGER, p95_cores REAL, max_cores REAL,
    runqueue_ns INTEGER, blocked_io_ns INTEGER, sleep_ns INTEGER,
    peak_rss_bytes INTEGER, oom_kills INTEGER, short_lived INTEGER,
    allocated_cores REAL, allocated_bytes INTEGER, work_pool_type TEXT))";

// Version 2: the run's record is its TaskRow as contract JSON, the very text
// of its row in the flow run's table artifact; the other columns are what it
// is found and matched by.
kj::String version2TaskRuns(kj::StringPtr table) {
  return kj::str("CREATE TABLE ", table, R"( (
    key TEXT NOT NULL, task TEXT NOT NULL, finished_at_ns INTEGER NOT NULL,
    flow TEXT, deployment TEXT, work_pool TEXT, work_pool_type TEXT, tags TEXT,
    row TEXT NOT NULL))");
}

// Rewrites a version-1 table of task runs as version 2, in place: each run's
// columns become its TaskRow's JSON (nanoseconds to seconds).
void toVersion2(sqlite3* db, kj::StringPtr table) {
  exec(db, version2TaskRuns(kj::str(table, "_v2")).cStr());
  exec(db, kj::str("INSERT INTO ", table, R"(_v2 SELECT key, task, finished_at_ns, flow,
      deployment, work_pool, work_pool_type, tags,
      json_object('task', task_name, 'wall_s', wall_ns / 1e9, 'cpu_s', cpu_ns / 1e9,
                  'p95_cores', p95_cores, 'max_cores', max_cores,
                  'runqueue_wait_s', runqueue_ns / 1e9, 'blocked_io_s', blocked_io_ns / 1e9,
                  'sleep_s', sleep_ns / 1e9, 'peak_rss_bytes', peak_rss_bytes,
                  'oom_kills', oom_kills, 'short_lived', short_lived,
                  'allocated_cores', allocated_cores, 'allocated_bytes', allocated_bytes)
      FROM )", table).cStr());
  exec(db, kj::str("DROP TABLE ", table).cStr());
  exec(db, kj::str("ALTER TABLE ", table, "_v2 RENAME TO ", table).cStr());
}

std::string joinedTags(const std::vector<std::string>& tags) {
  std::string joined;
  for (auto& tag: tags) joined += (joined.empty() ? "" : ",") + tag;
  return joined;
}

std::vector<std::string> splitTags(const std::string& joined) {
  std::vector<std::string> tags;
  for (size_t start = 0; start < joined.size();) {
    size_t comma = joined.find(',', start);
    if (comma == std::string::npos) comma = joined.size();
    tags.push_back(joined.substr(start, comma - start));
    start = comma + 1;
  }
  return tags;
}

}  // namespace

History::History(const std::string& path, uint32_t keepRuns)
    : db(openDatabase(path)),
      file(path),
      keepRuns(keepRuns),
      cache(cachedTasksMax()) {
  upgrade(path);
  // What tracerctl costs reads by time (a database of any version since 0).
  exec(db.get(), "CREATE INDEX IF NOT EXISTS task_runs_by_time ON task_runs (finished_at_ns)");
  exec(db.get(), "CREATE INDEX IF NOT EXISTS flow_runs_by_time ON flow_runs (finished_at_ns)");
  // When a sidecar was watching (watchedUntil): one row per sidecar's life.
  // A history from before it has none, so all before its first is unwatched.
  exec(db.get(), R"(CREATE TABLE IF NOT EXISTS watched (
            since_ns INTEGER NOT NULL, until_ns INTEGER NOT NULL))");
  Statement aside(db.get(), "SELECT DISTINCT key, flow FROM version0_task_runs WHERE flow != ''");
  while (aside.step()) version0Owners.emplace(aside.text(0), aside.text(1));
  insertTaskRun.emplace(db.get(), "INSERT INTO task_runs VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)");
  // Retention: the newest keepRuns runs of a task.
  pruneTaskRuns.emplace(db.get(), R"(DELETE FROM task_runs WHERE key = ?1 AND task = ?2 AND rowid NOT IN
      (SELECT rowid FROM task_runs WHERE key = ?1 AND task = ?2
       ORDER BY finished_at_ns DESC LIMIT ?3))");
}

void History::upgrade(const std::string& path) {
  int64_t version = [&]() {
    Statement read(db.get(), "PRAGMA user_version");  // finalized before any DROP TABLE
    read.step();
    return read.integer(0);
  }();
  KJ_REQUIRE(version <= SCHEMA_VERSION,
             kj::str(path, " has history schema version ", version, ", newer than this ",
                     "tracer-sidecar's ", SCHEMA_VERSION, ": a newer sidecar wrote it"));
  if (version == SCHEMA_VERSION) return;
  Transaction transaction(db.get());
  // A new database starts as version 1, empty, and takes the same steps.
  if (version < 2) exec(db.get(), VERSION_1_TASK_RUNS);
  if (version < 1) {
    // Version 0's keys were "flow:<name>" (unchanged since) or a bare
    // deployment name: those rows wait aside, same columns, until their
    // deployment's id is known. A new database gets the table empty. flow_runs
    // rows keep their keys: they record no flow, so no deployment can claim them.
    exec(db.get(), R"(CREATE TABLE version0_task_runs AS
            SELECT * FROM task_runs WHERE key NOT GLOB 'flow:*')");
    exec(db.get(), "DELETE FROM task_runs WHERE key NOT GLOB 'flow:*'");
  }
  if (version < 2) {
    toVersion2(db.get(), "task_runs");
    toVersion2(db.get(), "version0_task_runs");
  }
  exec(db.get(), "CREATE INDEX IF NOT EXISTS task_runs_by_task ON task_runs (key, task, finished_at_ns)");
  exec(db.get(), R"(CREATE TABLE IF NOT EXISTS flow_runs (
            key TEXT NOT NULL, flow_run_id TEXT, finished_at_ns INTEGER NOT NULL,
            wall_ns INTEGER, state TEXT))");
  exec(db.get(), kj::str("PRAGMA user_version = ", SCHEMA_VERSION).cStr());
  transaction.commit();
}

History::~History() noexcept(false) {
  // What it still holds is written if the disk has room by now; if not, it is
  // lost with the process (the failures were counted and logged as they came).
  // The watched span's last seconds too: this sidecar watched until its stop.
  (void)kj::runCatchingExceptions([this]() { flushIfWatchedFor(1); });
}

void History::watchedUntil(int64_t nowNs) {
  if (watchedSinceNs == 0) watchedSinceNs = nowNs;
  watchedToNs = std::max(watchedToNs, nowNs);
}

void History::flush() { flushIfWatchedFor(WATCHED_REWRITE_NS); }

void History::flushIfWatchedFor(int64_t unwrittenNs) {
  bool watchedDue = watchedToNs - watchedWrittenToNs >= unwrittenNs;
  if (runsHeld() == 0 && !watchedDue) return;
  KJ_IF_MAYBE(e, kj::runCatchingExceptions([this]() { write(); })) {
    ++writeFailures;
    writeFailing = true;
    kj::throwFatalException(kj::mv(*e));
  }
  heldTasks.clear();
  heldFlows.clear();
  writeFailing = false;
}

void History::write() {
  // All or nothing: a failed statement or COMMIT rolls the transaction back
  // (Transaction's destructor), leaving no half-open transaction behind.
  Transaction transaction(db.get());
  // Of a task's runs held, only its newest keepRuns can outlast the retention
  // below, in this same transaction: the others are not written (a mapped
  // task's thousand runs in a second were each inserted, then deleted).
  std::map<std::pair<std::string, std::string>, std::vector<size_t>> byTask;
  for (size_t i = 0; i < heldTasks.size(); ++i) {
    byTask[std::make_pair(heldTasks[i].key.key, heldTasks[i].key.task)].push_back(i);
  }
  std::vector<bool> outlasting(heldTasks.size(), true);
  for (auto& entry: byTask) {
    auto& runs = entry.second;
    if (runs.size() <= keepRuns) continue;
    std::nth_element(runs.begin(), runs.begin() + keepRuns, runs.end(), [&](size_t a, size_t b) {
      return heldTasks[a].context.finishedAtNs > heldTasks[b].context.finishedAtNs;
    });
    for (size_t j = keepRuns; j < runs.size(); ++j) outlasting[runs[j]] = false;
  }
  for (size_t i = 0; i < heldTasks.size(); ++i) {
    if (!outlasting[i]) continue;
    auto& held = heldTasks[i];
    auto& insert = KJ_ASSERT_NONNULL(insertTaskRun).reset();
    insert.bind(1, held.key.key).bind(2, held.key.task).bind(3, held.context.finishedAtNs)
        .bind(4, held.context.flow).bind(5, held.context.deployment)
        .bind(6, held.context.workPool).bind(7, held.context.workPoolType)
        .bind(8, joinedTags(held.context.tags)).bind(9, held.rowJson);
    insert.step();
  }
  Statement insertFlow(db.get(), "INSERT INTO flow_runs VALUES (?1, ?2, ?3, ?4, ?5)");
  for (auto& flow: heldFlows) {
    insertFlow.reset().bind(1, flow.key).bind(2, flow.flowRunId).bind(3, flow.finishedAtNs)
        .bind(4, int64_t(flow.wallNs)).bind(5, flow.state).step();
  }
  // Retention, for each task recorded since the last write.
  for (auto& entry: byTask) {
    KJ_ASSERT_NONNULL(pruneTaskRuns).reset().bind(1, entry.first.first)
        .bind(2, entry.first.second).bind(3, int64_t(keepRuns)).step();
  }
  int64_t row = watchedRow;
  if (watchedSinceNs != 0 && row == 0) {
    Statement insert(db.get(), "INSERT INTO watched VALUES (?1, ?2)");
    insert.bind(1, watchedSinceNs).bind(2, watchedToNs).step();
    row = sqlite3_last_insert_rowid(db.get());
  } else if (row != 0) {
    Statement update(db.get(), "UPDATE watched SET until_ns = ?1 WHERE rowid = ?2");
    update.bind(1, watchedToNs).bind(2, row).step();
  }
  transaction.commit();
  watchedRow = row;
  watchedWrittenToNs = watchedToNs;
}

void History::dropPastCap() {
  while (runsHeld() > HELD_RUNS_MAX) {
    if (!heldTasks.empty()) {
      heldTasks.pop_front();
    } else {
      heldFlows.pop_front();
    }
    ++runsDropped;
  }
}

void History::recordTask(const TaskHistoryKey& key, const RunContext& context,
                         const policy::Observation& run, kj::StringPtr rowJson) {
  heldTasks.push_back(HeldTask{key, context, run, rowJson.cStr()});
  dropPastCap();
  if (auto* cached = cache.find(std::make_pair(key.key, key.task))) {
    cached->push_back(run);
    while (cached->size() > keepRuns) cached->pop_front();
  }
}

void History::recordFlow(const std::string& key, const std::string& flowRunId,
                         int64_t finishedAtNs, uint64_t wallNs, const std::string& state) {
  heldFlows.push_back(HeldFlow{key, flowRunId, state, finishedAtNs, wallNs});
  dropPastCap();
}

std::vector<policy::Observation> History::recent(const TaskHistoryKey& key, uint32_t limit) {
  auto id = std::make_pair(key.key, key.task);
  auto* cached = cache.find(id);
  if (cached == nullptr) {
    auto runs = load(key, keepRuns);
    std::deque<policy::Observation> newest(runs.begin(), runs.end());
    // Runs not written yet are newer than any that were.
    for (auto& held: heldTasks) {
      if (held.key.key == key.key && held.key.task == key.task) newest.push_back(held.run);
    }
    while (newest.size() > keepRuns) newest.pop_front();
    cached = &cache.put(id, kj::mv(newest));
  }
  auto& runs = *cached;
  size_t take = std::min<size_t>(limit, runs.size());
  std::vector<policy::Observation> newest;
  newest.reserve(take + 1);
  newest.insert(newest.end(), runs.end() - take, runs.end());
  return newest;
}

std::vector<policy::Observation> History::load(const TaskHistoryKey& key, uint32_t limit) {
  Statement query(db.get(), R"(SELECT * FROM (SELECT finished_at_ns, flow, deployment, work_pool,
      work_pool_type, tags, row FROM task_runs WHERE key = ?1 AND task = ?2
      ORDER BY finished_at_ns DESC LIMIT ?3) ORDER BY finished_at_ns ASC)");
  query.bind(1, key.key).bind(2, key.task).bind(3, int64_t(limit));
  std::vector<policy::Observation> runs;
  capnp::MallocMessageBuilder message(256);
  while (query.step()) {
    RunContext context{query.text(1), query.text(2), query.text(3), query.text(4),
                       splitTags(query.text(5)), query.integer(0)};
    auto row = message.initRoot<proto::TaskRow>();
    fromContractJson(query.text(6), capnp::toDynamic(row));
    runs.push_back(observationOf(context, row.asReader()));
  }
  return runs;
}

size_t History::adoptVersion0Runs(const std::string& flow, const std::string& deploymentName,
                                  const std::string& key) {
  auto owner = std::make_pair(deploymentName, flow);
  if (version0Owners.count(owner) == 0) return 0;
  flush();
  Transaction transaction(db.get());
  Statement claim(db.get(), "UPDATE version0_task_runs SET key = ?1 WHERE key = ?2 AND flow = ?3");
  claim.bind(1, key).bind(2, deploymentName).bind(3, flow).step();
  size_t moved = sqlite3_changes(db.get());
  Statement copy(db.get(), "INSERT INTO task_runs SELECT * FROM version0_task_runs WHERE key = ?1");
  copy.bind(1, key).step();
  Statement drop(db.get(), "DELETE FROM version0_task_runs WHERE key = ?1");
  drop.bind(1, key).step();
  transaction.commit();
  version0Owners.erase(owner);
  // Runs of `key` cached before now would miss the adopted ones. (There are
  // none when its first run asks, as it does; else each task's next run
  // prunes it back to keepRuns.)
  cache.eraseIf([&](const std::pair<std::string, std::string>& id) { return id.first == key; });
  return moved;
}

size_t History::cachedTasksMax() const { return std::max<uint32_t>(1, CACHED_RUNS / keepRuns); }

std::vector<TaskHistoryKey> History::tasks() {
  std::set<std::pair<std::string, std::string>> ids;
  Statement query(db.get(), "SELECT DISTINCT key, task FROM task_runs");
  while (query.step()) ids.emplace(query.text(0), query.text(1));
  for (auto& held: heldTasks) ids.emplace(held.key.key, held.key.task);
  std::vector<TaskHistoryKey> keys;
  for (auto& [key, task]: ids) keys.push_back(TaskHistoryKey{key, task});
  return keys;
}

bool History::knows(const std::string& key) {
  for (auto& held: heldTasks) {
    if (held.key.key == key) return true;
  }
  Statement query(db.get(), "SELECT 1 FROM task_runs WHERE key = ?1 LIMIT 1");
  query.bind(1, key);
  return query.step();
}

void History::renderMetrics(PrometheusText& out) {
  out.single("tracer_history_write_failures_total", "counter",
             "History writes that failed (a full disk) and were rolled back; their runs stay "
             "held in memory for the next write.", writeFailures);
  out.single("tracer_history_runs_held_in_memory", "gauge",
             "Finished runs the history holds in memory, not yet written.", uint64_t(runsHeld()));
  out.single("tracer_history_runs_dropped_total", "counter",
             "Runs dropped unwritten: held past the in-memory cap while writes failed.",
             runsDropped);
}

void History::fillStatus(proto::SidecarStatus::Builder status) const {
  status.setHistoryWriteFailures(writeFailures);
  status.setHistoryRunsHeld(runsHeld());
  status.setHistoryRunsDropped(runsDropped);
}

}  // namespace tracer
