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

// One thread's counters, from /proc/<tgid>/task/<tid>/{schedstat,io}.
struct ThreadCounters {
  uint64_t runtimeNs;   // se.sum_exec_runtime (as of the thread's last tick if it is running)
  uint64_t runDelayNs;  // sched_info.run_delay
  uint64_t rchar, wchar, readBytes, writeBytes;
};
kj::Maybe<ThreadCounters> readThreadCounters(pid_t tgid, pid_t tid);

// The calling thread's counters as of now, for a task that starts on it: its
// CPU time from its own clock (exact, where schedstat lags a running thread by
// up to a tick), and rchar without the reads that took this reading.
kj::Maybe<ThreadCounters> readOwnThreadCounters();

// A thread's user and system time in clock ticks (USER_HZ), from .../stat:
// only for splitting CPU time into user and system.
struct CpuTicks {
  uint64_t utime, stime;
};
kj::Maybe<CpuTicks> readCpuTicks(pid_t tgid, pid_t tid);

// The user and system time of a process's children it has waited for (and of
// theirs), in clock ticks: complete, where each child's exit record misses
// its last slice, but only to a tick in total.
kj::Maybe<CpuTicks> readReapedChildrenTicks(pid_t tgid);

// Just the CPU time, for the 1 s sampler: /proc/<tid>/schedstat.
kj::Maybe<uint64_t> readRuntimeNs(pid_t tid);

// Resident set size of a process, from /proc/<pid>/statm.
kj::Maybe<uint64_t> readRssBytes(pid_t pid);

}  // namespace tracer
