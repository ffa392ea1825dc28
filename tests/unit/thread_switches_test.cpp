// A thread's voluntary context switches, against the kernel's own count (getrusage).
#include "observe/thread_switches.h"

#include <catch2/catch.hpp>
#include <kj/debug.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

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
}

TEST_CASE("a sidecar that may not ask taskstats reads /proc, and says why") {
  pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    // Not root: taskstats refuses every query.
    bool ok = setgid(65534) == 0 && setuid(65534) == 0;
    ThreadSwitches switches;
    ok = ok && kj::StringPtr(switches.source()).startsWith("taskstats gave no record");
    uint64_t before = ownVoluntarySwitches();
    KJ_IF_MAYBE(count, switches.voluntary(syscall(SYS_gettid))) {
      ok = ok && *count == before;
    } else {
      ok = false;
    }
    _exit(ok ? 0 : 1);
  }
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}

TEST_CASE("a thread that does not exist has no count") {
  ThreadSwitches switches;
  CHECK(switches.voluntary(0x3fffffff) == nullptr);
}

}  // namespace
}  // namespace tracer
