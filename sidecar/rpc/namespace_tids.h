#pragma once
// A caller's threads by their tid in its own PID namespace (a flow run in a
// container), mapped to host tids. Finding one in /proc means reading every
// thread's status for its NSpid, on each task start: so a scan keeps what it
// read of every thread, and a kept entry is checked with one read (its thread
// may have exited and its tid gone to another) before it is trusted.

#include <kj/map.h>
#include <sys/types.h>

#include <cstdint>

namespace tracer {

class NamespaceTids {
 public:
  // A process with more threads than this is scanned each time a tid is missing.
  static constexpr size_t MAX_KEPT = 65536;

  // The host tid of the thread of process `pid` (host pid) whose tid in its
  // innermost namespace is `tid`; nullptr if there is none.
  kj::Maybe<pid_t> hostTid(pid_t pid, pid_t tid);
  // How often all of a process's threads were read.
  uint64_t scans() const { return scanCount; }

 private:
  kj::HashMap<pid_t, pid_t> kept;  // tid in the caller's namespace -> host tid
  uint64_t scanCount = 0;
};

}  // namespace tracer
