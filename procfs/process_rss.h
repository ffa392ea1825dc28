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
// stays bound to the process it was opened for: once that process is gone,
// even if its pid is given to another, the read fails and the path is
// opened again, so a read is never another process's.
class ProcessRss {
 public:
  // The process's RSS, or nullptr when it is gone (as readRssBytes).
  kj::Maybe<uint64_t> bytesOf(pid_t pid);

  // At most this many stay open; past it, all are closed and opened again
  // as needed (they come out of the descriptors the sidecar keeps for itself).
  static constexpr size_t OPEN_MAX = 64;

 private:
  kj::HashMap<pid_t, kj::AutoCloseFd> open;
};

}  // namespace tracer
