#include "rpc/thread_resolver.h"

#include <kj/debug.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include "proc_files.h"
#include "ops/refuse.h"

namespace tracer {

HostThread resolveTaskThread(const Caller& caller, pid_t tid) {
  auto& credentials = caller.credentials();
  if (tid <= 0) refuse(kj::str("task tid ", tid, " is not a thread id"));
  pid_t hostTid = tid;
  if (!credentials.sameNamespaceAsSidecar) {
    KJ_IF_MAYBE(host, caller.namespaceTids().hostTid(credentials.pid, tid)) {
      hostTid = *host;
    } else {
      refuse(kj::str("refused: tid ", tid, " is not a thread of the calling process (",
                     credentials.describe(), "), and a caller in another PID namespace may ",
                     "only register its own threads"));
    }
  }
  // No pidfd of the thread is held meanwhile: it would not keep its tid from
  // another thread (a pid's number is freed when its task is reaped, whoever
  // holds its pidfd); the map entry is written in this same turn, and a tid
  // is handed out again only after the pid space has wrapped around.
  // Whether the thread is in the caller's thread group: tgkill with no
  // signal sends nothing, and succeeds only if it is (one system call, where
  // /proc/<pid>/task/<tid> is a path to walk). A refusal to signal (no
  // CAP_KILL for another uid's thread, a seccomp filter, an LSM) proves
  // nothing either way: then the path says.
  bool own = syscall(SYS_tgkill, credentials.pid, hostTid, 0) == 0 ||
             ((errno == EPERM || errno == EACCES) &&
              access(kj::str("/proc/", credentials.pid, "/task/", hostTid).cStr(), F_OK) == 0);
  // Only now is /proc/<caller pid> known to have been the caller all along.
  caller.requireStillRunning();
  if (own) return HostThread{hostTid, credentials.pid};
  if (!credentials.sameNamespaceAsSidecar) {
    refuse(kj::str("refused: thread ", tid, " of the calling process (", credentials.describe(),
                   ") exited while it was being registered"));
  }
  KJ_IF_MAYBE(status, readProcFile(kj::str("/proc/", hostTid, "/status"))) {
    auto uids = statusNumbers(*status, "Uid");
    auto tgid = statusNumbers(*status, "Tgid");
    if (tgid.size() > 0) {
      HostThread thread{hostTid, static_cast<pid_t>(tgid[0])};
      if (credentials.isRoot()) return thread;
      bool sameUid = uids.size() >= 2 && uids[0] == static_cast<long>(credentials.uid) &&
                     uids[1] == static_cast<long>(credentials.uid);
      if (!sameUid) {
        refuse(kj::str("refused: tid ", tid, " belongs to process ", thread.tgid, " of uid ",
                       uids.size() ? uids[0] : -1, "; the caller (", credentials.describe(),
                       ") may only register its own threads or processes of its own uid"));
      }
      return thread;
    }
  }
  refuse(kj::str("no thread with tid ", tid, " (caller ", credentials.describe(), ")"));
}

}  // namespace tracer
