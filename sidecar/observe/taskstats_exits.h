#pragma once
// The kernel's own exit accounting (taskstats over generic netlink): one
// record per thread as it exits, with its exact CPU time, run-queue delay,
// I/O bytes and its process's peak RSS. Root in the initial namespaces only
// (CAP_NET_ADMIN); works without BPF, BTF or kprobes on every kernel we
// support. The /proc collector uses it to count what a task's exited child
// processes did.

#include <kj/async-unix.h>
#include <kj/function.h>
#include <kj/io.h>
#include <kj/one-of.h>
#include <sys/types.h>

#include <cstdint>

namespace tracer {

struct ExitRecord {
  pid_t pid = 0;   // the thread that exited
  pid_t ppid = 0;  // the process (thread group) of its parent; a thread's
                   // parent is its process's parent
  pid_t tgid = 0;  // its process; 0 where the kernel does not say (taskstats < v12)
  uint64_t cpuNs = 0;  // se.sum_exec_runtime: exact
  uint64_t utimeNs = 0, stimeNs = 0;  // tick-based, only for the user/system split
  uint64_t runDelayNs = 0;            // waiting for a CPU
  uint64_t rchar = 0, wchar = 0, readBytes = 0, writeBytes = 0;
  uint64_t peakRssBytes = 0;  // its process's high-water RSS
};

class TaskstatsExits {
 public:
  // Registers for every CPU's exit records; the reason in one line if the
  // kernel refuses.
  static kj::OneOf<kj::Own<TaskstatsExits>, kj::String> open(kj::UnixEventPort& events);

  TaskstatsExits(kj::UnixEventPort& events, kj::AutoCloseFd fd, uint16_t family,
                 kj::String cpus, uint16_t version);
  ~TaskstatsExits() noexcept(false);
  KJ_DISALLOW_COPY(TaskstatsExits);

  uint16_t version() const { return kernelVersion; }
  kj::Promise<void> whenReadable();
  // Every record queued so far, without waiting. Returns false if the kernel
  // dropped records since the last call (a full receive buffer).
  bool drain(kj::FunctionParam<void(const ExitRecord&)> each);
  uint64_t recordsRead() const { return read; }

 private:
  kj::AutoCloseFd fd;  // closed after the observer that watches it
  uint16_t family;
  kj::String cpus;
  uint16_t kernelVersion;
  uint64_t read = 0;
  kj::UnixEventPort::FdObserver observer;
};

}  // namespace tracer
