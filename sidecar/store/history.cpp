#include "store/history.h"

#include "store/sqlite.h"

#include <kj/debug.h>

namespace tracer {

namespace {

constexpr int64_t SCHEMA_VERSION = 1;

}  // namespace

History::History(const std::string& path, uint32_t keepRuns)
    : db(openDatabase(path)), keepRuns(keepRuns) {
  upgrade(path);
  Statement aside(db.get(), "SELECT DISTINCT key, flow FROM version0_task_runs WHERE flow != ''");
  while (aside.step()) version0Owners.emplace(aside.text(0), aside.text(1));
  insertTaskRun.emplace(db.get(), R"(INSERT INTO task_runs VALUES
      (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20,
       ?21))");
}

void History::upgrade(const std::string& path) {
  Statement read(db.get(), "PRAGMA user_version");
  read.step();
  int64_t version = read.integer(0);
  KJ_REQUIRE(version <= SCHEMA_VERSION,
             kj::str(path, " has history schema version ", version, ", newer than this ",
                     "tracer-sidecar's ", SCHEMA_VERSION, ": a newer sidecar wrote it"));
  Transaction transaction(db.get());
  exec(db.get(), R"(CREATE TABLE IF NOT EXISTS task_runs (
            key TEXT NOT NULL, task TEXT NOT NULL, finished_at_ns INTEGER NOT NULL,
            flow TEXT, task_name TEXT, deployment TEXT, work_pool TEXT, tags TEXT,
            wall_ns INTEGER, cpu_ns INTEGER, p95_cores REAL, max_cores REAL,
            runqueue_ns INTEGER, blocked_io_ns INTEGER, sleep_ns INTEGER,
            peak_rss_bytes INTEGER, oom_kills INTEGER, short_lived INTEGER,
            allocated_cores REAL, allocated_bytes INTEGER, work_pool_type TEXT))");
  exec(db.get(), "CREATE INDEX IF NOT EXISTS task_runs_by_task ON task_runs (key, task, finished_at_ns)");
  exec(db.get(), R"(CREATE TABLE IF NOT EXISTS flow_runs (
            key TEXT NOT NULL, flow_run_id TEXT, finished_at_ns INTEGER NOT NULL,
            wall_ns INTEGER, state TEXT))");
  if (version < 1) {
    // Version 0's keys were "flow:<name>" (unchanged since) or a bare
    // deployment name: those rows wait aside, same columns, until their
    // deployment's id is known. A new database gets the table empty. flow_runs
    // rows keep their keys: they record no flow, so no deployment can claim them.
    exec(db.get(), R"(CREATE TABLE version0_task_runs AS
            SELECT * FROM task_runs WHERE key NOT GLOB 'flow:*')");
    exec(db.get(), "DELETE FROM task_runs WHERE key NOT GLOB 'flow:*'");
  }
  exec(db.get(), kj::str("PRAGMA user_version = ", SCHEMA_VERSION).cStr());
  transaction.commit();
}

History::~History() {
  if (batchOpen) sqlite3_exec(db.get(), "COMMIT", nullptr, nullptr, nullptr);
}

void History::beginBatch() {
  if (batchOpen) return;
  exec(db.get(), "BEGIN");
  batchOpen = true;
}

void History::flush() {
  if (!batchOpen) return;
  // Retention: the newest keepRuns runs of each task recorded since the last flush.
  for (auto& id: touched) {
    Statement prune(db.get(), R"(DELETE FROM task_runs WHERE key = ?1 AND task = ?2 AND rowid NOT IN
        (SELECT rowid FROM task_runs WHERE key = ?1 AND task = ?2
         ORDER BY finished_at_ns DESC LIMIT ?3))");
    prune.bind(1, id.first).bind(2, id.second).bind(3, int64_t(keepRuns)).step();
  }
  touched.clear();
  batchOpen = false;
  exec(db.get(), "COMMIT");
}

void History::recordTask(const TaskHistoryKey& key, const policy::Observation& r) {
  beginBatch();
  std::string tags;
  for (auto& tag: r.tags) tags += (tags.empty() ? "" : ",") + tag;
  auto& insert = KJ_ASSERT_NONNULL(insertTaskRun).reset();
  insert.bind(1, key.key).bind(2, key.task).bind(3, r.finishedAtNs).bind(4, r.flow)
      .bind(5, r.task).bind(6, r.deployment).bind(7, r.workPool).bind(8, tags)
      .bind(9, int64_t(r.wallNs)).bind(10, int64_t(r.cpuNs)).bind(11, r.p95Cores)
      .bind(12, r.maxCores).bind(13, int64_t(r.runqueueNs)).bind(14, int64_t(r.blockedIoNs))
      .bind(15, int64_t(r.sleepNs)).bind(16, int64_t(r.peakRssBytes))
      .bind(17, int64_t(r.oomKills)).bind(18, int64_t(r.shortLived)).bind(19, r.allocatedCores)
      .bind(20, int64_t(r.allocatedBytes)).bind(21, r.workPoolType);
  insert.step();
  auto id = std::make_pair(key.key, key.task);
  touched.insert(id);
  auto cached = cache.find(id);
  if (cached != cache.end()) {
    cached->second.push_back(r);
    while (cached->second.size() > keepRuns) cached->second.pop_front();
  }
}

void History::recordFlow(const std::string& key, const std::string& flowRunId,
                         int64_t finishedAtNs, uint64_t wallNs, const std::string& state) {
  Statement insert(db.get(), "INSERT INTO flow_runs VALUES (?1, ?2, ?3, ?4, ?5)");
  insert.bind(1, key).bind(2, flowRunId).bind(3, finishedAtNs).bind(4, int64_t(wallNs))
      .bind(5, state).step();
}

std::vector<policy::Observation> History::recent(const TaskHistoryKey& key, uint32_t limit) {
  auto id = std::make_pair(key.key, key.task);
  auto cached = cache.find(id);
  if (cached == cache.end()) {
    auto runs = load(key, keepRuns);
    cached = cache.emplace(id, std::deque<policy::Observation>(runs.begin(), runs.end())).first;
  }
  auto& runs = cached->second;
  size_t take = std::min<size_t>(limit, runs.size());
  return std::vector<policy::Observation>(runs.end() - take, runs.end());
}

std::vector<policy::Observation> History::load(const TaskHistoryKey& key, uint32_t limit) {
  Statement query(db.get(), R"(SELECT * FROM (SELECT finished_at_ns, flow, task_name, deployment,
      work_pool, tags, wall_ns, cpu_ns, p95_cores, max_cores, runqueue_ns, blocked_io_ns,
      sleep_ns, peak_rss_bytes, oom_kills, short_lived, allocated_cores, allocated_bytes,
      work_pool_type FROM task_runs WHERE key = ?1 AND task = ?2 ORDER BY finished_at_ns DESC LIMIT ?3)
      ORDER BY finished_at_ns ASC)");
  query.bind(1, key.key).bind(2, key.task).bind(3, int64_t(limit));
  std::vector<policy::Observation> runs;
  while (query.step()) {
    policy::Observation r;
    r.finishedAtNs = query.integer(0);
    r.flow = query.text(1);
    r.task = query.text(2);
    r.deployment = query.text(3);
    r.workPool = query.text(4);
    std::string tags = query.text(5);
    for (size_t start = 0; start < tags.size();) {
      size_t comma = tags.find(',', start);
      if (comma == std::string::npos) comma = tags.size();
      r.tags.push_back(tags.substr(start, comma - start));
      start = comma + 1;
    }
    r.wallNs = query.integer(6);
    r.cpuNs = query.integer(7);
    r.p95Cores = query.real(8);
    r.maxCores = query.real(9);
    r.runqueueNs = query.integer(10);
    r.blockedIoNs = query.integer(11);
    r.sleepNs = query.integer(12);
    r.peakRssBytes = query.integer(13);
    r.oomKills = query.integer(14);
    r.shortLived = query.integer(15);
    r.allocatedCores = query.real(16);
    r.allocatedBytes = query.integer(17);
    r.workPoolType = query.text(18);
    runs.push_back(std::move(r));
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
  cache.erase(cache.lower_bound({key, ""}), cache.lower_bound({key + '\0', ""}));
  return moved;
}

std::vector<TaskHistoryKey> History::tasks() {
  Statement query(db.get(), "SELECT DISTINCT key, task FROM task_runs ORDER BY key, task");
  std::vector<TaskHistoryKey> keys;
  while (query.step()) keys.push_back(TaskHistoryKey{query.text(0), query.text(1)});
  return keys;
}

}  // namespace tracer

namespace tracer {

bool History::knows(const std::string& key) {
  Statement query(db.get(), "SELECT 1 FROM task_runs WHERE key = ?1 LIMIT 1");
  query.bind(1, key);
  return query.step();
}

}  // namespace tracer
