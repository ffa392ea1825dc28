// A process's RSS read through its kept-open statm: fresh at every read, and
// never once the process is gone.
#include "process_rss.h"

#include <catch2/catch.hpp>
#include <kj/debug.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstring>

#include <kj/vector.h>

namespace tracer {
namespace {

constexpr size_t TOUCHED = 64 << 20;

size_t openDescriptors() {
  size_t count = 0;
  for (int fd = 0; fd < 4096; ++fd) count += fcntl(fd, F_GETFD) >= 0;
  return count;
}

TEST_CASE("a kept-open statm reads the process's RSS as it is now") {
  ProcessRss rss;
  size_t descriptors = openDescriptors();
  uint64_t before = KJ_ASSERT_NONNULL(rss.bytesOf(getpid()));
  CHECK(openDescriptors() == descriptors + 1);  // kept open, and read again below
  void* block = mmap(nullptr, TOUCHED, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  REQUIRE(block != MAP_FAILED);
  memset(block, 1, TOUCHED);
  uint64_t touched = KJ_ASSERT_NONNULL(rss.bytesOf(getpid()));
  munmap(block, TOUCHED);
  uint64_t after = KJ_ASSERT_NONNULL(rss.bytesOf(getpid()));
  CHECK(touched >= before + TOUCHED - (1 << 20));
  CHECK(after <= touched - TOUCHED + (1 << 20));
  CHECK(openDescriptors() == descriptors + 1);
}

TEST_CASE("past the most kept open, one is let go for each new process") {
  ProcessRss rss;
  size_t descriptors = openDescriptors();
  kj::Vector<pid_t> children;
  for (size_t i = 0; i <= ProcessRss::KEPT_OPEN_MOST; ++i) {
    pid_t child = fork();
    REQUIRE(child >= 0);
    if (child == 0) {
      pause();  // until killed
      _exit(0);
    }
    children.add(child);
  }
  for (auto child: children) CHECK(rss.bytesOf(child) != nullptr);
  CHECK(openDescriptors() == descriptors + ProcessRss::KEPT_OPEN_MOST);
  for (auto child: children) {
    kill(child, SIGKILL);
    waitpid(child, nullptr, 0);
  }
  for (auto child: children) CHECK(rss.bytesOf(child) == nullptr);
  CHECK(openDescriptors() == descriptors);  // the gone ones let go
}

TEST_CASE("a process whose statm was kept open reads as gone once it is reaped") {
  int ready[2], release[2];
  REQUIRE(pipe(ready) == 0);
  REQUIRE(pipe(release) == 0);
  pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    close(release[1]);
    void* block = mmap(nullptr, TOUCHED, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (block != MAP_FAILED) memset(block, 1, TOUCHED);
    char byte = 1;
    (void)!write(ready[1], &byte, 1);
    (void)!read(release[0], &byte, 1);  // until the parent closes its end
    _exit(0);
  }
  close(release[0]);
  close(ready[1]);
  char byte;
  REQUIRE(read(ready[0], &byte, 1) == 1);
  ProcessRss rss;
  CHECK(KJ_ASSERT_NONNULL(rss.bytesOf(child)) >= TOUCHED);
  close(release[1]);
  REQUIRE(waitpid(child, nullptr, 0) == child);
  CHECK(rss.bytesOf(child) == nullptr);
  close(ready[0]);
}

}  // namespace
}  // namespace tracer
