#include "store/state_files.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>

namespace tracer {

namespace {

constexpr mode_t PRIVATE_DIRECTORY = 0700, PRIVATE_FILE = 0600;

// Why SQLite cannot read the database at `path` (its header and schema), or
// nothing if it can.
kj::Maybe<kj::String> unreadable(kj::StringPtr path) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.cStr(), &db, SQLITE_OPEN_READONLY, nullptr);
  if (rc == SQLITE_OK) {
    rc = sqlite3_exec(db, "SELECT count(*) FROM sqlite_master", nullptr, nullptr, nullptr);
  }
  kj::Maybe<kj::String> why;
  if (rc == SQLITE_NOTADB || rc == SQLITE_CORRUPT) why = kj::str(sqlite3_errmsg(db));
  sqlite3_close(db);
  return why;
}

kj::String octal(mode_t mode) {
  char text[8];
  snprintf(text, sizeof(text), "%03o", unsigned(mode & 07777));
  return kj::str(text);
}

kj::String utcStamp() {
  time_t now = time(nullptr);
  struct tm utc;
  gmtime_r(&now, &utc);
  char text[32];
  strftime(text, sizeof(text), "%Y%m%dT%H%M%SZ", &utc);
  return kj::str(text);
}

}  // namespace

kj::String securePrivateDirectory(kj::StringPtr directory, Log& log) {
  if (mkdir(directory.cStr(), PRIVATE_DIRECTORY) != 0 && errno != EEXIST) {
    return kj::str("cannot create ", directory, ": ", strerror(errno));
  }
  struct stat found;
  if (stat(directory.cStr(), &found) != 0 || !S_ISDIR(found.st_mode)) {
    return kj::str(directory, " is not a directory");
  }
  if ((found.st_mode & 0077) != 0) {
    if (chmod(directory.cStr(), PRIVATE_DIRECTORY) != 0) {
      return kj::str("cannot make ", directory, " private (0700): ", strerror(errno));
    }
    log.warn(kj::str("state directory ", directory, " was open to others (mode ",
                     octal(found.st_mode), "): made 0700"));
  }
  return nullptr;
}

void prepareStateFile(kj::StringPtr path, kj::StringPtr contents, Log& log) {
  KJ_IF_MAYBE(why, unreadable(path)) {
    auto aside = kj::str(path, ".corrupt-", utcStamp());
    KJ_SYSCALL(rename(path.cStr(), aside.cStr()), "cannot move the unreadable file aside", path);
    for (auto suffix: {"-wal", "-shm"}) unlink(kj::str(path, suffix).cStr());
    log.error(kj::str(path, " is not a database SQLite can read (", *why, "): moved aside to ",
                      aside, "; starting afresh without ", contents));
  }
  int fd = open(path.cStr(), O_CREAT | O_RDONLY | O_CLOEXEC, PRIVATE_FILE);
  KJ_REQUIRE(fd >= 0, "cannot create the state file", path, strerror(errno));
  struct stat found;
  int statted = fstat(fd, &found);
  if (statted == 0 && (found.st_mode & 0077) != 0) {
    int changed = fchmod(fd, PRIVATE_FILE);
    if (changed == 0) {
      log.warn(kj::str(path, " was open to others (mode ", octal(found.st_mode),
                       "): made 0600"));
    }
  }
  close(fd);
  // SQLite gives the -wal and -shm files it makes the database file's mode;
  // ones left from before are made private too.
  for (auto suffix: {"-wal", "-shm"}) chmod(kj::str(path, suffix).cStr(), PRIVATE_FILE);
}

}  // namespace tracer
