#include "store/outbox.h"

namespace tracer {

Outbox::Outbox(const std::string& path): db(openDatabase(path)) {
  exec(db.get(), R"(CREATE TABLE IF NOT EXISTS outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT, type TEXT, flow_run_id TEXT,
        status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT DEFAULT '',
        created_at_ns INTEGER, next_attempt_ns INTEGER, body TEXT NOT NULL))");
  exec(db.get(), "CREATE INDEX IF NOT EXISTS outbox_due ON outbox (status, next_attempt_ns)");
  // Added after the first release: an outbox written before has neither.
  addColumnIfMissing("artifact_id", "TEXT NOT NULL DEFAULT ''");
  addColumnIfMissing("in_flight", "INTEGER NOT NULL DEFAULT 0");
  addColumnIfMissing("live", "INTEGER NOT NULL DEFAULT 0");
  addColumnIfMissing("revision", "INTEGER NOT NULL DEFAULT 0");
  addColumnIfMissing("prefect_id", "TEXT NOT NULL DEFAULT ''");
}

void Outbox::addColumnIfMissing(const char* name, const char* definition) {
  Statement columns(db.get(), "SELECT COUNT(*) FROM pragma_table_info('outbox') WHERE name = ?1");
  columns.bind(1, std::string(name));
  if (columns.step() && columns.integer(0) > 0) return;
  exec(db.get(), (std::string("ALTER TABLE outbox ADD COLUMN ") + name + " " + definition).c_str());
}

int64_t Outbox::add(const std::string& key, const std::string& type,
                    const std::string& flowRunId, const std::string& artifactId,
                    const std::string& body, const std::string& status, int64_t nowNs) {
  Statement insert(db.get(), R"(INSERT INTO outbox (key, type, flow_run_id, status, created_at_ns,
                                 next_attempt_ns, body, artifact_id)
                                 VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6, ?7))");
  insert.bind(1, key).bind(2, type).bind(3, flowRunId).bind(4, status).bind(5, nowNs)
      .bind(6, body).bind(7, artifactId).step();
  return sqlite3_last_insert_rowid(db.get());
}

void Outbox::putLive(const std::string& flowRunId, const std::string& artifactId,
                     const std::string& body, const std::string& status, int64_t nowNs) {
  Statement update(db.get(), R"(UPDATE outbox SET body = ?2, status = ?3, next_attempt_ns = ?4,
                                 revision = revision + 1, attempts = 0, last_error = ''
                                 WHERE flow_run_id = ?1 AND live = 1)");
  update.bind(1, flowRunId).bind(2, body).bind(3, status).bind(4, nowNs).step();
  if (sqlite3_changes(db.get()) > 0) return;
  Statement insert(db.get(), R"(INSERT INTO outbox (key, type, flow_run_id, status, created_at_ns,
                                 next_attempt_ns, body, artifact_id, live)
                                 VALUES ('', 'markdown', ?1, ?2, ?3, ?3, ?4, ?5, 1))");
  insert.bind(1, flowRunId).bind(2, status).bind(3, nowNs).bind(4, body).bind(5, artifactId)
      .step();
}

std::vector<OutboxEntry> Outbox::select(const char* sql, int64_t bind1, int64_t bind2) {
  Statement query(db.get(), sql);
  query.bind(1, bind1).bind(2, bind2);
  std::vector<OutboxEntry> entries;
  while (query.step()) {
    OutboxEntry e;
    e.id = query.integer(0);
    e.key = query.text(1);
    e.type = query.text(2);
    e.flowRunId = query.text(3);
    e.status = query.text(4);
    e.attempts = query.integer(5);
    e.lastError = query.text(6);
    e.createdAtNs = query.integer(7);
    e.nextAttemptNs = query.integer(8);
    e.body = query.text(9);
    e.artifactId = query.text(10);
    e.inFlight = query.integer(11) != 0;
    e.live = query.integer(12) != 0;
    e.revision = query.integer(13);
    e.prefectId = query.text(14);
    entries.push_back(std::move(e));
  }
  return entries;
}

constexpr const char* COLUMNS =
    "id, key, type, flow_run_id, status, attempts, last_error, created_at_ns, next_attempt_ns, "
    "body, artifact_id, in_flight, live, revision, prefect_id";

std::vector<OutboxEntry> Outbox::due(int64_t nowNs, size_t limit) {
  auto sql = std::string("SELECT ") + COLUMNS +
             " FROM outbox WHERE status = 'pending' AND next_attempt_ns <= ?1 ORDER BY id LIMIT ?2";
  return select(sql.c_str(), nowNs, int64_t(limit));
}

std::optional<int64_t> Outbox::nextAttemptNs() {
  Statement query(db.get(),
                  "SELECT MIN(next_attempt_ns), COUNT(*) FROM outbox WHERE status = 'pending'");
  if (query.step() && query.integer(1) > 0) return query.integer(0);
  return std::nullopt;
}

void Outbox::markInFlight(int64_t id) {
  Statement update(db.get(), "UPDATE outbox SET in_flight = 1 WHERE id = ?1");
  update.bind(1, id).step();
}

void Outbox::delivered(const OutboxEntry& entry, const std::string& prefectId) {
  Statement update(db.get(), R"(UPDATE outbox SET
        status = CASE WHEN revision = ?2 THEN 'delivered' ELSE status END,
        prefect_id = CASE WHEN ?3 != '' THEN ?3 ELSE prefect_id END,
        attempts = attempts + 1, last_error = '', in_flight = 0 WHERE id = ?1)");
  update.bind(1, entry.id).bind(2, entry.revision).bind(3, prefectId).step();
}

void Outbox::retryLater(int64_t id, int64_t atNs, const std::string& error, bool answered) {
  Statement update(db.get(), "UPDATE outbox SET attempts = attempts + 1, next_attempt_ns = ?2, "
                             "last_error = ?3, in_flight = in_flight AND NOT ?4 WHERE id = ?1");
  update.bind(1, id).bind(2, atNs).bind(3, error).bind(4, int64_t(answered)).step();
}

void Outbox::park(int64_t id, const std::string& error) {
  Statement update(db.get(), "UPDATE outbox SET status = 'parked', attempts = attempts + 1, "
                             "last_error = ?2, in_flight = 0 WHERE id = ?1");
  update.bind(1, id).bind(2, error).step();
}

size_t Outbox::retryParked(int64_t nowNs) {
  Statement update(db.get(), "UPDATE outbox SET status = 'pending', next_attempt_ns = ?1 "
                             "WHERE status = 'parked'");
  update.bind(1, nowNs).step();
  return sqlite3_changes(db.get());
}

size_t Outbox::prune(int64_t beforeNs) {
  Statement remove(db.get(), "DELETE FROM outbox WHERE status IN ('delivered', 'local') "
                             "AND created_at_ns < ?1");
  remove.bind(1, beforeNs).step();
  return sqlite3_changes(db.get());
}

std::map<std::string, uint64_t> Outbox::countsByStatus() {
  Statement query(db.get(), "SELECT status, COUNT(*) FROM outbox GROUP BY status");
  std::map<std::string, uint64_t> counts;
  while (query.step()) counts[query.text(0)] = query.integer(1);
  return counts;
}

std::vector<OutboxEntry> Outbox::list(size_t limit) {
  auto sql = std::string("SELECT ") + COLUMNS + " FROM outbox WHERE ?1 = ?1 ORDER BY id DESC LIMIT ?2";
  return select(sql.c_str(), 0, int64_t(limit));
}

void Outbox::renderMetrics(PrometheusText& out) {
  auto counts = countsByStatus();
  out.family("tracer_outbox_artifacts", "gauge", "Artifacts in the outbox, by status.");
  for (auto state: {"local", "pending", "delivered", "parked"}) {
    auto found = counts.find(state);
    out.sample("tracer_outbox_artifacts", {{"status", state}},
               uint64_t(found == counts.end() ? 0 : found->second));
  }
}

}  // namespace tracer
