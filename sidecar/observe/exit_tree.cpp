#include "observe/exit_tree.h"

#include <algorithm>

namespace tracer {

void ExitedWork::add(const ExitedWork& other) {
  cpuNs += other.cpuNs;
  utimeNs += other.utimeNs;
  stimeNs += other.stimeNs;
  runDelayNs += other.runDelayNs;
  rchar += other.rchar;
  wchar += other.wchar;
  readBytes += other.readBytes;
  writeBytes += other.writeBytes;
  peakRssBytes = std::max(peakRssBytes, other.peakRssBytes);
  threads += other.threads;
}

ExitedWork ExitedWork::of(const ExitRecord& r) {
  return ExitedWork{r.cpuNs,  r.utimeNs,   r.stimeNs,    r.runDelayNs,  r.rchar,
                    r.wchar,  r.readBytes, r.writeBytes, r.peakRssBytes, 1};
}

void ExitTree::open(uint32_t slot, pid_t tgid, pid_t tid, pid_t parentTgid, bool ownsProcess) {
  open_.upsert(slot, Open{tgid, tid, parentTgid, ownsProcess, {}, kj::str(), nullptr},
               [](Open& existing, Open&& replacement) { existing = kj::mv(replacement); });
}

ExitTree::Closed ExitTree::close(uint32_t slot) {
  Closed closed;
  KJ_IF_MAYBE(task, open_.find(slot)) {
    closed.work = task->work;
    closed.unknownWhy = kj::mv(task->unknownWhy);
    closed.ownExit = task->ownExit;
    open_.erase(slot);
  }
  return closed;
}

const ExitedWork* ExitTree::peek(uint32_t slot) const {
  KJ_IF_MAYBE(task, open_.find(slot)) { return &task->work; }
  return nullptr;
}

void ExitTree::markUnknown(Open& task, kj::StringPtr why) {
  if (task.unknownWhy.size() == 0) task.unknownWhy = kj::str(why);
}

void ExitTree::lost(kj::StringPtr why) {
  for (auto& entry: open_) markUnknown(entry.value, why);
}

void ExitTree::add(const ExitRecord& record) {
  for (auto& entry: open_) {
    if (entry.value.tid == record.pid) {  // a task's own thread: its final counters
      entry.value.ownExit = record;
      return;
    }
  }
  // Its own children's work comes with it. Keys are processes (thread-group
  // leaders' ids), so only a leader's record, or any on kernels that do not
  // say, can claim one.
  auto work = ExitedWork::of(record);
  if (record.tgid == 0 || record.tgid == record.pid) {
    KJ_IF_MAYBE(children, pending.find(record.pid)) {
      work.add(*children);
      pending.erase(record.pid);
    }
  }

  kj::Vector<Open*> parents;
  bool ofATasksProcess = false;
  for (auto& entry: open_) {
    auto& task = entry.value;
    if (record.tgid != 0 && record.tgid == task.tgid) {
      ofATasksProcess = true;
      if (task.ownsProcess) {
        task.work.add(work);
      } else {
        markUnknown(task, "a thread of its process exited while it ran: whether the task had "
                          "started it, the /proc collector cannot tell");
      }
    } else if (record.tgid == 0 && record.ppid == task.parentTgid) {
      markUnknown(task, "a thread of its process, or a sibling process, exited while it ran: "
                        "taskstats before version 12 (Linux 5.19) does not tell them apart");
    } else if (record.ppid == task.tgid) {
      parents.add(&task);
    }
  }
  if (ofATasksProcess) return;  // not anyone's child
  if (parents.size() == 1) {
    parents[0]->work.add(work);
    return;
  }
  for (auto* task: parents) {
    markUnknown(*task, "a child process of its process exited while other tasks of that process "
                       "ran: the /proc collector cannot tell whose it was");
  }
  if (!parents.empty()) return;
  // Some other process's child: held until its parent's own record, in case
  // that parent was a task's.
  KJ_IF_MAYBE(held, pending.find(record.ppid)) {
    held->add(work);
  } else if (pending.size() < PENDING_PARENTS_MAX_ENTRIES) {
    pending.insert(record.ppid, work);
  } else {
    lost("more processes had children exit than the exit records can be held for "
         "(PENDING_PARENTS_MAX_ENTRIES)");
  }
}

}  // namespace tracer
