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

// Fills `c` from the text of a thread's schedstat and io files.
void parseCounters(kj::StringPtr schedstat, kj::StringPtr io, ThreadCounters& c);

// A clock tick (USER_HZ) in nanoseconds: the unit of /proc's times.
uint64_t clockTickNs();

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

// When a process started, in nanoseconds of CLOCK_BOOTTIME, to a clock tick
// (USER_HZ): field 22 of /proc/<pid>/stat.
kj::Maybe<uint64_t> readStartBoottimeNs(pid_t pid);

// How often a thread has left a CPU of its own accord (slept or blocked):
// voluntary_ctxt_switches of /proc/<tid>/status.
kj::Maybe<uint64_t> readVoluntarySwitches(pid_t tid);

// Just the CPU time, for the 1 s sampler: /proc/<tid>/schedstat.
kj::Maybe<uint64_t> readRuntimeNs(pid_t tid);

// A process's peak resident set size: VmHWM of /proc/<pid>/status.
kj::Maybe<uint64_t> readHiwaterBytes(pid_t pid);

// A process's resident memory now and at its most (VmRSS, VmHWM of
// /proc/<pid>/status; both 0 for a zombie, which holds none).
struct ProcessMemory {
  uint64_t rssBytes, hiwaterBytes;
};
kj::Maybe<ProcessMemory> readProcessMemory(pid_t pid);

// A process's CPU time in clock ticks: its own threads' (exited ones
// included) with that of the children it has waited for (utime + cutime,
// stime + cstime of /proc/<pid>/stat).
kj::Maybe<CpuTicks> readProcessTreeTicks(pid_t pid);

// The children of a process: each of its threads' /proc/<pid>/task/<tid>/children
// (a child is listed under the thread that forked it). nullptr when the
// process is gone or the kernel lacks the file (CONFIG_PROC_CHILDREN).
kj::Maybe<kj::Vector<pid_t>> readChildPids(pid_t pid);

}  // namespace tracer
