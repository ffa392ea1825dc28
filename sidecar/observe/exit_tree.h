#pragma once
// Which task an exited thread's work belongs to, from the kernel's exit
// records alone (taskstats_exits.h): the /proc collector's way to count a
// task's child processes without BPF. A record names only the thread and its
// parent's process, so:
//   - a child process of a process running exactly one task is that task's,
//     and so is every thread of a process a task owns (`tracerctl run`);
//   - children exit before their parent (who waits for them), so what a
//     process's own children did is held by parent until the parent's record
//     comes and travels with it;
//   - where a record could be of several tasks, or of a thread the task may
//     have started in its own process, each task it could be of gets its
//     descendants' totals marked unknown, with the reason.
// What it cannot see at all: a descendant whose parent exited first (it is
// re-parented away from the task), and children of the task's process started
// by a thread that is not a task's while one task runs (counted in that task).

#include <kj/map.h>
#include <kj/string.h>
#include <sys/types.h>

#include <cstdint>

#include "observe/taskstats_exits.h"

namespace tracer {

// Live pending parents at most: one entry per process that has had a child
// exit and has not exited itself. Past this, records are not held and every
// open task's descendants become unknown.
constexpr size_t PENDING_PARENTS_MAX_ENTRIES = 65536;

struct ExitedWork {
  uint64_t cpuNs = 0, utimeNs = 0, stimeNs = 0, runDelayNs = 0;
  uint64_t rchar = 0, wchar = 0, readBytes = 0, writeBytes = 0;
  uint64_t peakRssBytes = 0;  // the largest of its processes' peaks
  uint64_t threads = 0;       // exit records summed

  void add(const ExitedWork& other);
  static ExitedWork of(const ExitRecord& record);
};

class ExitTree {
 public:
    // From now on, child processes of `tgid` count for `slot` (and, if the task
  // owns the process, its other threads); `tid` is the task's own thread,
  // `parentTgid` its process's parent.
  void open(uint32_t slot, pid_t tgid, pid_t tid, pid_t parentTgid, bool ownsProcess);

  struct Closed {
    ExitedWork work;
    kj::String unknownWhy;  // empty when `work` is all its descendants did
    kj::Maybe<ExitRecord> ownExit;  // the task's own thread's, if it has exited
  };
  Closed close(uint32_t slot);
  const ExitedWork* peek(uint32_t slot) const;

  void add(const ExitRecord& record);
  // The kernel dropped records: no open task can know its descendants' totals.
  void lost(kj::StringPtr why);

  size_t pendingParents() const { return pending.size(); }

 private:
  struct Open {
    pid_t tgid, tid, parentTgid;
    bool ownsProcess;
    ExitedWork work;
    kj::String unknownWhy;
    kj::Maybe<ExitRecord> ownExit;
  };
  void markUnknown(Open& task, kj::StringPtr why);

  kj::HashMap<uint32_t, Open> open_;
  kj::HashMap<pid_t, ExitedWork> pending;  // exited children's work, by their parent's tgid
};

}  // namespace tracer
