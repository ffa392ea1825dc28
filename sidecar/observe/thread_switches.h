#pragma once
// A thread's count of voluntary context switches (nvcsw), which says whether
// it slept between its client's reading and its registration. Asked of the
// kernel's taskstats where the sidecar may (about a third of what reading
// /proc/<tid>/status costs, which formats some 50 lines to give it: on a host
// without marked starts that read was a tenth of a busy intake), else read
// from /proc.

#include <kj/common.h>
#include <kj/one-of.h>
#include <kj/string.h>
#include <sys/types.h>

#include <cstdint>

#include "observe/taskstats_netlink.h"

namespace tracer {

class ThreadSwitches {
 public:
  ThreadSwitches();

  // Null if the thread is gone.
  kj::Maybe<uint64_t> voluntary(pid_t tid);
  // "taskstats", or why /proc instead.
  kj::StringPtr source() const;

 private:
  // Taskstats' answer for one thread; null if it gives none.
  kj::Maybe<uint64_t> query(pid_t tid);

  kj::OneOf<TaskstatsSocket, kj::String> taskstats;  // or why not
  uint32_t sequence = 0;
};

}  // namespace tracer
