#pragma once
// The calling thread's reading of itself as its task starts, taken on that
// thread by the client library: the sidecar measures the task from here,
// however late the (one-way) registration reaches it. Cheap enough for every
// task: a task's start and finish cost the caller ~20 us in all.

#include <kj/common.h>
#include <sys/types.h>

#include <cstdint>

#include "proc_files.h"

namespace tracer::client {

struct OwnReading {
  uint64_t atMonotonicNs;
  pid_t tid;
  ThreadCounters counters;
  uint64_t voluntarySwitches;    // getrusage(RUSAGE_THREAD).ru_nvcsw
  uint64_t processHiwaterBytes;  // its process's high-water RSS
  uint32_t startMark;            // the mark it left in the kernel just before (0: none)
};

// Threads of a process that keep their two /proc files open between tasks,
// at most: past this a thread opens them for each reading (some 5 us more),
// so a process of many threads does not spend its file descriptors on us.
constexpr uint32_t CACHED_READERS_MAX = 64;

// Null where procfs cannot say (the sidecar then reads the thread itself).
kj::Maybe<OwnReading> readOwnThread();

// The reading as a task starts: first a mark in the kernel (a prctl option no
// kernel knows, which fails having done nothing; the sidecar's BPF program,
// where the kernel lets it attach, starts counting the thread there), then
// the reading. However late the registration, nothing the thread does from
// here goes uncounted.
kj::Maybe<OwnReading> markAndReadOwnThread();

}  // namespace tracer::client
