#pragma once
// Resident set sizes of the processes the sidecar reads again and again (at
// every task's finish, and each second for its live tasks).

#include <kj/io.h>
#include <kj/map.h>
#include <sys/types.h>

#include <cstdint>

namespace tracer {

// Keeps each process's /proc/<pid>/statm open and reads it with pread from
// offset 0, which has the kernel render it afresh: one system call a read,
// where opening the path costs an open, two reads and a close. A descriptor
// stays bound to the process it was opened for: once that process is gone
// its read fails, and the answer is that the process is gone, even if its
// pid is another's by now (the next read opens the path again).
class ProcessRss {
 public:
  // The process's RSS (0 for a zombie, which holds none), or nullptr when it
  // is gone.
  kj::Maybe<uint64_t> bytesOf(pid_t pid);

  // At most this many stay open, one evicted for each past it: they come out
  // of the descriptors the sidecar keeps for itself (docs/deployment.md).
  static constexpr size_t KEPT_OPEN_MOST = 64;

 private:
  kj::HashMap<pid_t, kj::AutoCloseFd> kept;
};

}  // namespace tracer
