#include "own_thread.h"

#include <fcntl.h>
#include <kj/io.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <ctime>

#include "identity.h"
#include "task_start.h"

namespace tracer::client {

namespace {

std::atomic<uint32_t> cachedReaders{0};
std::atomic<uint32_t> lastStartMark{0};

kj::AutoCloseFd openOwn(const char* path) {
  return kj::AutoCloseFd(open(path, O_RDONLY | O_CLOEXEC));
}

bool readAll(const kj::AutoCloseFd& fd, kj::ArrayPtr<char> text) {
  if (fd.get() < 0) return false;
  ssize_t n = pread(fd.get(), text.begin(), text.size() - 1, 0);
  if (n <= 0) return false;
  text[n] = '\0';
  return true;
}

// One thread's /proc/thread-self/{schedstat,io}, opened on that thread (the
// path resolves to the opener) and read with pread from offset 0, which has
// the kernel render them afresh.
class ThreadFiles {
 public:
  ~ThreadFiles() {
    if (cached) cachedReaders.fetch_sub(1, std::memory_order_relaxed);
  }

  // `tid`: the calling thread's. A fork()ed child's thread finds its parent
  // thread's files here (and its slot among the cached): it opens its own.
  bool read(pid_t tid, kj::ArrayPtr<char> schedstat, kj::ArrayPtr<char> io) {
    if (owner != tid) adopt(tid);
    if (cached) return readAll(schedstatFd, schedstat) && readAll(ioFd, io);
    return readAll(openOwn(SCHEDSTAT), schedstat) && readAll(openOwn(IO), io);
  }

 private:
  static constexpr const char* SCHEDSTAT = "/proc/thread-self/schedstat";
  static constexpr const char* IO = "/proc/thread-self/io";

  void adopt(pid_t tid) {
    owner = tid;
    if (!cached) {
      cached = cachedReaders.fetch_add(1, std::memory_order_relaxed) < CACHED_READERS_MAX;
      if (!cached) cachedReaders.fetch_sub(1, std::memory_order_relaxed);
    }
    if (cached) {
      schedstatFd = openOwn(SCHEDSTAT);
      ioFd = openOwn(IO);
    }
  }

  pid_t owner = 0;
  bool cached = false;
  kj::AutoCloseFd schedstatFd, ioFd;
};

thread_local ThreadFiles files;

uint64_t nanos(const timespec& t) { return uint64_t(t.tv_sec) * 1000000000 + t.tv_nsec; }

}  // namespace

kj::Maybe<OwnReading> readOwnThread() {
  OwnReading reading{};
  reading.tid = currentTid();
  timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  reading.atMonotonicNs = nanos(now);
  rusage usage;
  if (getrusage(RUSAGE_THREAD, &usage) != 0) return nullptr;
  reading.voluntarySwitches = uint64_t(usage.ru_nvcsw);
  reading.processHiwaterBytes = uint64_t(usage.ru_maxrss) * 1024;  // ru_maxrss: KiB
  char schedstat[128], io[512];
  if (!files.read(reading.tid, schedstat, io)) return nullptr;
  parseCounters(schedstat, io, reading.counters);
  // io's text counts the reads before it, not itself: this reading is not the task's.
  reading.counters.rchar += strlen(io);
  // Its own CPU clock: exact, where schedstat lags a running thread by up to a tick.
  timespec cpu;
  if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu) == 0) reading.counters.runtimeNs = nanos(cpu);
  return reading;
}

kj::Maybe<OwnReading> markAndReadOwnThread() {
  // Only its thread and the registration that names it: any value but 0 will do.
  uint32_t mark = lastStartMark.fetch_add(1, std::memory_order_relaxed) + 1;
  if (mark == 0) mark = lastStartMark.fetch_add(1, std::memory_order_relaxed) + 1;
  prctl(TASK_START_MARK_OPTION, mark, 0, 0, 0);
  KJ_IF_MAYBE(reading, readOwnThread()) {
    reading->startMark = mark;
    return *reading;
  }
  return nullptr;
}

}  // namespace tracer::client
