#pragma once
// The little of SQLite the state directory needs: an owned connection (WAL,
// so the history and the outbox can be read while written) and prepared
// statements that finalize themselves. Errors throw with SQLite's message.

#include <kj/debug.h>
#include <sqlite3.h>

#include <memory>
#include <string>

namespace tracer {

// One line saying what failed and SQLite's reason ("database or disk is
// full"), without the check's source text: it goes into log lines.
[[noreturn]] inline void sqliteFailed(const char* what, const char* reason) {
  kj::throwFatalException(
      kj::Exception(kj::Exception::Type::FAILED, __FILE__, __LINE__, kj::str(what, ": ", reason)));
}

struct DatabaseCloser {
  void operator()(sqlite3* db) const { sqlite3_close(db); }
};
using Database = std::unique_ptr<sqlite3, DatabaseCloser>;

// `flags` as sqlite3_open_v2 takes them; waits up to 1 s for a lock.
inline Database openWith(const std::string& path, int flags) {
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
  Database db(raw);
  KJ_REQUIRE(rc == SQLITE_OK, "cannot open the database", path, sqlite3_errmsg(raw));
  sqlite3_busy_timeout(raw, 1000);
  return db;
}

// An existing database, for reading only: a writer elsewhere made it and
// keeps it (WAL, so both go on at once).
inline Database openReadOnly(const std::string& path) {
  return openWith(path, SQLITE_OPEN_READONLY);
}

inline Database openDatabase(const std::string& path) {
  Database db = openWith(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  sqlite3_exec(db.get(), "PRAGMA journal_mode=WAL", nullptr, nullptr, nullptr);
  sqlite3_exec(db.get(), "PRAGMA synchronous=NORMAL", nullptr, nullptr, nullptr);
  return db;
}

inline void exec(sqlite3* db, const char* sql) {
  char* error = nullptr;
  int rc = sqlite3_exec(db, sql, nullptr, nullptr, &error);
  std::string message = error ? error : "";
  sqlite3_free(error);
  if (rc != SQLITE_OK) sqliteFailed("database statement failed", message.c_str());
}

// BEGIN IMMEDIATE ... commit(); rolled back if it goes out of scope before
// commit() (a statement in it threw), so a migration happens whole or not at all.
class Transaction {
 public:
  explicit Transaction(sqlite3* db): db(db) { exec(db, "BEGIN IMMEDIATE"); }
  KJ_DISALLOW_COPY(Transaction);
  ~Transaction() {
    if (!committed) sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
  }
  void commit() {
    exec(db, "COMMIT");
    committed = true;
  }

 private:
  sqlite3* db;
  bool committed = false;
};

// One prepared statement, finalized when it goes out of scope.
class Statement {
 public:
  Statement(sqlite3* db, const char* sql): db(db) {
    int rc = sqlite3_prepare_v2(db, sql, -1, &statement, nullptr);
    KJ_REQUIRE(rc == SQLITE_OK, "cannot prepare a query", sqlite3_errmsg(db));
  }
  ~Statement() { sqlite3_finalize(statement); }

  Statement& bind(int i, kj::StringPtr value) {
    sqlite3_bind_text(statement, i, value.begin(), value.size(), SQLITE_TRANSIENT);
    return *this;
  }
  Statement& bind(int i, const std::string& value) {
    sqlite3_bind_text(statement, i, value.c_str(), value.size(), SQLITE_TRANSIENT);
    return *this;
  }
  Statement& bind(int i, int64_t value) {
    sqlite3_bind_int64(statement, i, value);
    return *this;
  }
  Statement& bind(int i, double value) {
    sqlite3_bind_double(statement, i, value);
    return *this;
  }
  bool step() {
    int rc = sqlite3_step(statement);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) sqliteFailed("query failed", sqlite3_errmsg(db));
    return rc == SQLITE_ROW;
  }
  // Ready to run again with new bindings: a statement kept for a hot path
  // is prepared once.
  Statement& reset() {
    sqlite3_reset(statement);
    sqlite3_clear_bindings(statement);
    return *this;
  }
  int64_t integer(int column) { return sqlite3_column_int64(statement, column); }
  double real(int column) { return sqlite3_column_double(statement, column); }
  std::string text(int column) {
    auto* value = sqlite3_column_text(statement, column);
    return value ? reinterpret_cast<const char*>(value) : "";
  }

 private:
  sqlite3* db;
  sqlite3_stmt* statement = nullptr;
};


}  // namespace tracer
