#include "rpc/namespace_tids.h"

#include <dirent.h>
#include <kj/debug.h>

#include <cstdlib>

#include "proc_files.h"

namespace tracer {

namespace {

// The thread's tid in its innermost PID namespace, from its NSpid line.
kj::Maybe<pid_t> innermostTid(pid_t pid, kj::StringPtr hostTid) {
  KJ_IF_MAYBE(status, readProcFile(kj::str("/proc/", pid, "/task/", hostTid, "/status"))) {
    auto nspids = statusNumbers(*status, "NSpid");
    if (nspids.size() > 0) return static_cast<pid_t>(nspids.back());
  }
  return nullptr;
}

}  // namespace

kj::Maybe<pid_t> NamespaceTids::hostTid(pid_t pid, pid_t tid) {
  KJ_IF_MAYBE(known, kept.find(tid)) {
    KJ_IF_MAYBE(now, innermostTid(pid, kj::str(*known))) {
      if (*now == tid) return *known;
    }
    kept.erase(tid);
  }
  DIR* dir = opendir(kj::str("/proc/", pid, "/task").cStr());
  if (dir == nullptr) return nullptr;
  KJ_DEFER(closedir(dir));
  ++scanCount;
  if (kept.size() >= MAX_KEPT) kept.clear();
  kj::Maybe<pid_t> found;
  while (auto* entry = readdir(dir)) {
    if (entry->d_name[0] < '0' || entry->d_name[0] > '9') continue;
    KJ_IF_MAYBE(inner, innermostTid(pid, entry->d_name)) {
      pid_t host = static_cast<pid_t>(atoi(entry->d_name));
      if (kept.size() < MAX_KEPT) kept.upsert(*inner, host, [](pid_t& old, pid_t now) { old = now; });
      if (*inner == tid) found = host;
    }
  }
  return found;
}

}  // namespace tracer
