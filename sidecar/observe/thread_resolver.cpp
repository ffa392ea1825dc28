#include "observe/thread_resolver.h"

#include <dirent.h>
#include <kj/debug.h>
#include <unistd.h>

#include <kj/vector.h>

#include <cstdlib>
#include <cstring>

#include "observe/proc_files.h"
#include "ops/refuse.h"

namespace tracer {

namespace {

// The caller's own thread whose innermost-namespace tid is `tid`, if any.
kj::Maybe<pid_t> ownThread(const PeerCredentials& caller, pid_t tid) {
  if (caller.sameNamespaceAsSidecar) {
    // Fast path: the caller's tids are host tids; one syscall says whether it is ours.
    if (access(kj::str("/proc/", caller.pid, "/task/", tid).cStr(), F_OK) != 0) return nullptr;
    return tid;
  }
  DIR* dir = opendir(kj::str("/proc/", caller.pid, "/task").cStr());
  if (dir == nullptr) return nullptr;
  KJ_DEFER(closedir(dir));
  while (auto* entry = readdir(dir)) {
    if (entry->d_name[0] < '0' || entry->d_name[0] > '9') continue;
    KJ_IF_MAYBE(status, readProcFile(kj::str("/proc/", caller.pid, "/task/", entry->d_name,
                                             "/status"))) {
      auto nspids = statusNumbers(*status, "NSpid");
      if (nspids.size() > 0 && nspids.back() == tid) return static_cast<pid_t>(atoi(entry->d_name));
    }
  }
  return nullptr;
}

}  // namespace

pid_t resolveTaskThread(const PeerCredentials& caller, pid_t tid) {
  if (tid <= 0) refuse(kj::str("task tid ", tid, " is not a thread id"));
  KJ_IF_MAYBE(host, ownThread(caller, tid)) { return *host; }

  if (!caller.sameNamespaceAsSidecar) {
    refuse(kj::str("refused: tid ", tid, " is not a thread of the calling process (",
                   caller.describe(), "), and a caller in another PID namespace may only ",
                   "register its own threads"));
  }
  KJ_IF_MAYBE(status, readProcFile(kj::str("/proc/", tid, "/status"))) {
    if (caller.isRoot()) return tid;
    auto uids = statusNumbers(*status, "Uid");
    auto tgid = statusNumbers(*status, "Tgid");
    bool sameUid = uids.size() >= 2 && uids[0] == static_cast<long>(caller.uid) &&
                   uids[1] == static_cast<long>(caller.uid);
    if (!sameUid) {
      refuse(kj::str("refused: tid ", tid, " belongs to process ", tgid.size() ? tgid[0] : -1,
                     " of uid ", uids.size() ? uids[0] : -1, "; the caller (", caller.describe(),
                     ") may only register its own threads or processes of its own uid"));
    }
    return tid;
  }
  refuse(kj::str("no thread with tid ", tid, " (caller ", caller.describe(), ")"));
}

}  // namespace tracer
