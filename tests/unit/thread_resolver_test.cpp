// Which threads a caller may have attributed, against the real /proc.
#include <catch2/catch.hpp>
#include <sys/syscall.h>
#include <unistd.h>

#include <thread>

#include "observe/thread_resolver.h"

using tracer::PeerCredentials;
using tracer::resolveTaskThread;

namespace {

pid_t currentTid() { return static_cast<pid_t>(syscall(SYS_gettid)); }

PeerCredentials self(uid_t uid) { return PeerCredentials{getpid(), uid, 0, true}; }

}  // namespace

TEST_CASE("a caller may register each of its own threads") {
  CHECK(resolveTaskThread(self(1000), currentTid()) == currentTid());
  pid_t other = 0;
  std::thread worker([&]() { other = currentTid(); });
  worker.join();
  // The worker is gone: its tid is no longer a thread of ours.
  CHECK_THROWS_WITH(resolveTaskThread(self(1000), other), Catch::Contains("no thread with tid"));
}

TEST_CASE("a non-root caller may not register another user's process") {
  // pid 1 belongs to root; the caller claims to be uid 1000.
  CHECK_THROWS_WITH(resolveTaskThread(self(1000), 1),
                    Catch::Contains("refused: tid 1 belongs to process 1 of uid 0") &&
                        Catch::Contains("caller (pid " + std::to_string(getpid()) + " uid 1000)"));
}

TEST_CASE("root may register any thread in its PID namespace") {
  CHECK(resolveTaskThread(self(0), 1) == 1);
}

TEST_CASE("a caller in another PID namespace may only register its own threads") {
  PeerCredentials contained{getpid(), 0, 0, false};
  CHECK_THROWS_WITH(resolveTaskThread(contained, 1),
                    Catch::Contains("a caller in another PID namespace"));
}

TEST_CASE("nonsense tids are refused") {
  CHECK_THROWS_WITH(resolveTaskThread(self(0), 0), Catch::Contains("is not a thread id"));
  CHECK_THROWS_WITH(resolveTaskThread(self(0), -5), Catch::Contains("is not a thread id"));
}
