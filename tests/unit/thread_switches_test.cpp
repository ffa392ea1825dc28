// A thread's voluntary context switches, against the kernel's own count (getrusage).
#include "observe/thread_switches.h"

#include <catch2/catch.hpp>
#include <kj/debug.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <thread>

#include "proc_files.h"

namespace tracer {
namespace {

uint64_t ownVoluntarySwitches() {
  rusage usage{};
  getrusage(RUSAGE_THREAD, &usage);
  return uint64_t(usage.ru_nvcsw);
}

TEST_CASE("a thread's voluntary switches are the kernel's count of them, by taskstats as root") {
  ThreadSwitches switches;
  // Tests run as root in the initial namespaces: taskstats, not /proc.
  CHECK(switches.source() == "taskstats");
  pid_t self = syscall(SYS_gettid);
  for (int i = 0; i < 3; ++i) {
    uint64_t before = ownVoluntarySwitches();
    CHECK(KJ_ASSERT_NONNULL(switches.voluntary(self)) == before);
    CHECK(KJ_ASSERT_NONNULL(readVoluntarySwitches(self)) == before);
    usleep(1000);  // a sleep: one more
    CHECK(KJ_ASSERT_NONNULL(switches.voluntary(self)) > before);
  }
  // Another thread's, which sleeps until it has been read.
  pid_t other = 0;
  uint64_t counted = 0;
  std::thread sleeper([&]() {
    other = syscall(SYS_gettid);
    for (int i = 0; i < 5; ++i) usleep(1000);
    counted = ownVoluntarySwitches();
  });
  sleeper.join();  // gone: neither source has it
  CHECK(counted >= 5);
  CHECK(switches.voluntary(other) == nullptr);
}

TEST_CASE("a thread that does not exist has no count") {
  ThreadSwitches switches;
  CHECK(switches.voluntary(0x3fffffff) == nullptr);
}

}  // namespace
}  // namespace tracer
