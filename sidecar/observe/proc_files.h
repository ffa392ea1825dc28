#pragma once
// Reading /proc: the kernel's per-thread accounting as files. Every reader
// returns nullptr when the thread or process is gone (it may exit between any
// two reads): callers decide what a vanished thread means.

#include <kj/string.h>
#include <kj/vector.h>
#include <sys/types.h>

#include <cstdint>

namespace tracer {

// /proc files report size 0, so they are read until EOF rather than by size.
kj::Maybe<kj::String> readProcFile(kj::StringPtr path);

// Values of a "Key:\tv1\tv2..." line of /proc/*/status.
kj::Vector<long> statusNumbers(kj::StringPtr status, kj::StringPtr key);

// One thread's counters, from /proc/<tgid>/task/<tid>/{schedstat,io,stat}.
struct ThreadCounters {
  uint64_t runtimeNs;   // se.sum_exec_runtime, up to date for a running thread
  uint64_t runDelayNs;  // sched_info.run_delay
  uint64_t rchar, wchar, readBytes, writeBytes;
  uint64_t utimeTicks, stimeTicks;  // clock ticks (USER_HZ)
};
kj::Maybe<ThreadCounters> readThreadCounters(pid_t tgid, pid_t tid);

// Just the CPU time, for the 1 s sampler: /proc/<tid>/schedstat.
kj::Maybe<uint64_t> readRuntimeNs(pid_t tid);

// Resident set size of a process, from /proc/<pid>/statm.
kj::Maybe<uint64_t> readRssBytes(pid_t pid);

}  // namespace tracer
