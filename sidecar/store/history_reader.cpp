#include "store/history_reader.h"

#include "policy/observation.h"

namespace tracer {

HistoryReader::HistoryReader(const std::string& path, uint32_t keepRuns)
    : db(openReadOnly(path)), keepRuns(keepRuns) {}

namespace {

// The SQL condition that picks the runs of `kind` from task_runs.
const char* taskOfKind(RunKind kind) {
  return kind == RunKind::FLOW_RUN_FOOTPRINTS ? "task = ?1" : "task != ?1";
}

// Columns key, task, flow, deployment, finished_at_ns and, if asked for, values.
StoredRun storedRun(Statement& query, bool withValues) {
  return StoredRun{TaskHistoryKey{query.text(0), query.text(1)}, query.text(2), query.text(3),
                   query.integer(4), withValues ? query.text(5) : ""};
}

}  // namespace

std::vector<StoredRun> HistoryReader::runsFinishedBetween(RunKind kind, int64_t fromNs, int64_t toNs,
                                                    kj::ArrayPtr<const kj::String> paths) {
  // json_extract with two or more paths answers a JSON array of their values.
  KJ_REQUIRE(paths.size() >= 2, "runsFinishedBetween reads two or more paths");
  kj::Vector<kj::String> parameters;
  for (auto i: kj::indices(paths)) parameters.add(kj::str("?", i + 4));
  Statement query(db.get(), kj::str(R"(SELECT key, task, flow, deployment, finished_at_ns,
      CASE WHEN json_valid(row) THEN json_extract(row, )", kj::strArray(parameters, ", "), R"() END
      FROM task_runs WHERE )", taskOfKind(kind), R"( AND finished_at_ns > ?2
      AND finished_at_ns <= ?3 ORDER BY finished_at_ns ASC)").cStr());
  query.bind(1, std::string(policy::FLOW_RUN_TASK)).bind(2, fromNs).bind(3, toNs);
  for (auto i: kj::indices(paths)) query.bind(i + 4, paths[i]);
  std::vector<StoredRun> runs;
  while (query.step()) runs.push_back(storedRun(query, true));
  return runs;
}

std::vector<std::pair<std::string, int64_t>> HistoryReader::flowRunsFinishedBetween(int64_t fromNs,
                                                                              int64_t toNs) {
  Statement query(db.get(), R"(SELECT key, finished_at_ns FROM flow_runs
      WHERE finished_at_ns > ?1 AND finished_at_ns <= ?2)");
  query.bind(1, fromNs).bind(2, toNs);
  std::vector<std::pair<std::string, int64_t>> runs;
  while (query.step()) runs.emplace_back(query.text(0), query.integer(1));
  return runs;
}

std::vector<KeptRuns> HistoryReader::keptRuns(RunKind kind) {
  Statement query(db.get(), kj::str(R"(SELECT key, task, COUNT(*), MIN(finished_at_ns)
      FROM task_runs WHERE )", taskOfKind(kind), " GROUP BY key, task").cStr());
  query.bind(1, std::string(policy::FLOW_RUN_TASK));
  std::vector<KeptRuns> kept;
  while (query.step()) {
    kept.push_back(KeptRuns{TaskHistoryKey{query.text(0), query.text(1)},
                            uint32_t(query.integer(2)), query.integer(3)});
  }
  return kept;
}

std::vector<std::pair<int64_t, int64_t>> HistoryReader::watchedBetween(int64_t fromNs,
                                                                      int64_t toNs) {
  Statement query(db.get(), R"(SELECT since_ns, until_ns FROM watched
      WHERE until_ns > ?1 AND since_ns < ?2 ORDER BY since_ns)");
  query.bind(1, fromNs).bind(2, toNs);
  std::vector<std::pair<int64_t, int64_t>> spans;
  while (query.step()) spans.emplace_back(query.integer(0), query.integer(1));
  return spans;
}

kj::Maybe<StoredRun> HistoryReader::latestRun(const std::string& key) {
  Statement query(db.get(), R"(SELECT key, task, flow, deployment, finished_at_ns
      FROM task_runs WHERE key = ?1 ORDER BY finished_at_ns DESC LIMIT 1)");
  query.bind(1, key);
  if (!query.step()) return nullptr;
  return storedRun(query, false);
}

}  // namespace tracer
