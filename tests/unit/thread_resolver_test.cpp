// Which threads a caller may have attributed, against the real /proc, whose
// flow runs it may join, and what a caller's pidfd and scope limit refuse.
#include <catch2/catch.hpp>
#include <kj/debug.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <cerrno>
#include <unistd.h>

#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "rpc/thread_resolver.h"
#include "rpc/access_policy.h"

using tracer::Caller;
using tracer::joinRefusal;
using tracer::PeerCredentials;
using tracer::PeerIdentity;
using tracer::resolveTaskThread;

namespace {

pid_t currentTid() { return static_cast<pid_t>(syscall(SYS_gettid)); }

kj::Own<Caller> caller(pid_t pid, uid_t uid, bool sameNamespace = true,
                       kj::AutoCloseFd pidfd = kj::AutoCloseFd(), uint32_t maxScopes = 16) {
  return kj::refcounted<Caller>(
      PeerIdentity{PeerCredentials{pid, uid, 0, sameNamespace}, {}, kj::mv(pidfd)}, uid == 0,
      maxScopes);
}

kj::Own<Caller> self(uid_t uid) { return caller(getpid(), uid); }

}  // namespace

TEST_CASE("a caller may register each of its own threads") {
  auto own = resolveTaskThread(*self(1000), currentTid());
  CHECK(own.tid == currentTid());
  CHECK(own.tgid == getpid());
  pid_t other = 0;
  std::thread worker([&]() { other = currentTid(); });
  worker.join();
  // The worker is gone: its tid is no longer a thread of ours.
  CHECK_THROWS_WITH(resolveTaskThread(*self(1000), other), Catch::Contains("no thread with tid"));
}

TEST_CASE("a sidecar that may not signal a caller's thread still finds it the caller's own") {
  // A child that dropped root may not signal this process's threads (EPERM):
  // the check falls back to /proc, and a caller of uid 1000 may still
  // register its own thread, which the fallback to /proc/<tid>/status would
  // refuse (this process is root's).
  pid_t parent = getpid(), thread = currentTid();
  pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    if (setgid(65534) != 0 || setuid(65534) != 0) _exit(3);
    if (syscall(SYS_tgkill, parent, thread, 0) == 0 || errno != EPERM) _exit(2);
    try {
      _exit(resolveTaskThread(*caller(parent, 1000), thread).tgid == parent ? 0 : 1);
    } catch (...) {
      _exit(1);
    }
  }
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);  // 2: no EPERM to test; 3: could not drop root
}

TEST_CASE("a non-root caller may not register another user's process") {
  // pid 1 belongs to root; the caller claims to be uid 1000.
  CHECK_THROWS_WITH(resolveTaskThread(*self(1000), 1),
                    Catch::Contains("refused: tid 1 belongs to process 1 of uid 0") &&
                        Catch::Contains("caller (pid " + std::to_string(getpid()) + " uid 1000)"));
}

TEST_CASE("root may register any thread in its PID namespace") {
  auto init = resolveTaskThread(*self(0), 1);
  CHECK(init.tid == 1);
  CHECK(init.tgid == 1);
}

TEST_CASE("a caller in another PID namespace may only register its own threads") {
  CHECK_THROWS_WITH(resolveTaskThread(*caller(getpid(), 0, false), 1),
                    Catch::Contains("a caller in another PID namespace"));
}

TEST_CASE("nonsense tids are refused") {
  CHECK_THROWS_WITH(resolveTaskThread(*self(0), 0), Catch::Contains("is not a thread id"));
  CHECK_THROWS_WITH(resolveTaskThread(*self(0), -5), Catch::Contains("is not a thread id"));
}

TEST_CASE("a caller that has exited is refused, whoever has its pid now") {
  pid_t child = fork();
  if (child == 0) _exit(0);
  REQUIRE(child > 0);
  int pidfd = syscall(SYS_pidfd_open, child, 0);
  REQUIRE(pidfd >= 0);
  REQUIRE(waitpid(child, nullptr, 0) == child);
  // The thread asked about is ours, standing in for a process that took the pid.
  auto gone = caller(child, 0, true, kj::AutoCloseFd(pidfd));
  CHECK_THROWS_WITH(resolveTaskThread(*gone, currentTid()),
                    Catch::Contains("the calling process (pid " + std::to_string(child)) &&
                        Catch::Contains("has exited"));
  int livefd = syscall(SYS_pidfd_open, getpid(), 0);
  REQUIRE(livefd >= 0);
  CHECK(resolveTaskThread(*caller(getpid(), 0, true, kj::AutoCloseFd(livefd)), currentTid()).tid ==
        currentTid());
}

TEST_CASE("a connection holds at most its limit of live scopes") {
  auto limited = caller(getpid(), 1000, true, kj::AutoCloseFd(), 2);
  auto first = limited->holdScope("flow run a");
  {
    auto second = limited->holdScope("task b");
    CHECK_THROWS_WITH(limited->holdScope("task c"),
                      Catch::Contains("refused: task c: this connection") &&
                          Catch::Contains("already holds 2 live scopes"));
  }
  CHECK_NOTHROW(limited->holdScope("task c"));  // a scope ended: room again
}

TEST_CASE("only the opener's uid in the opener's PID namespace, or root, may join its flow run") {
  constexpr ino_t HOST = 4026531836, POD = 4026532500;
  PeerCredentials opener{100, 1000, 1000, true, HOST};
  CHECK(joinRefusal("f", PeerCredentials{101, 1000, 1000, true, HOST}, opener) == nullptr);
  CHECK(joinRefusal("f", PeerCredentials{1, 0, 0, true, HOST}, opener) == nullptr);
  CHECK(KJ_ASSERT_NONNULL(joinRefusal("f", PeerCredentials{102, 1001, 1001, true, HOST}, opener)) ==
        "refused: flow run f was opened by uid 1000; the caller (pid 102 uid 1001) may only "
        "join flow runs of its own uid and PID namespace");
  // Another container of the same uid, its root, or a namespace /proc would not name.
  for (auto joiner: {PeerCredentials{103, 1000, 1000, false, POD},
                     PeerCredentials{104, 0, 0, false, POD},
                     PeerCredentials{105, 1000, 1000, true, 0}}) {
    auto why = KJ_ASSERT_NONNULL(joinRefusal("f", joiner, opener));
    CHECK(why.startsWith("refused: flow run f was opened by uid 1000 in another PID namespace"));
  }
  PeerCredentials unknown{106, 1000, 1000, true, 0};
  CHECK(joinRefusal("f", unknown, unknown) != nullptr);
}

TEST_CASE("a caller in another PID namespace has its threads read once, not on every start") {
  // Our own threads, resolved as a namespaced caller's would be (by NSpid).
  auto namespaced = caller(getpid(), 0, false);
  std::vector<pid_t> tids;
  std::mutex lock;
  std::condition_variable changed;
  bool stop = false;
  std::vector<std::thread> workers;
  for (int i = 0; i < 8; ++i) {
    workers.emplace_back([&]() {
      std::unique_lock<std::mutex> held(lock);
      tids.push_back(currentTid());
      changed.notify_all();
      changed.wait(held, [&]() { return stop; });
    });
  }
  {
    std::unique_lock<std::mutex> held(lock);
    changed.wait(held, [&]() { return tids.size() == 8; });
  }
  for (pid_t tid: tids) CHECK(resolveTaskThread(*namespaced, tid).tid == tid);
  CHECK(namespaced->namespaceTids().scans() == 1);
  {
    std::lock_guard<std::mutex> held(lock);
    stop = true;
  }
  changed.notify_all();
  for (auto& worker: workers) worker.join();
  // A kept thread that exited is not trusted: its tid is refused after a rescan.
  CHECK_THROWS_WITH(resolveTaskThread(*namespaced, tids[0]),
                    Catch::Contains("is not a thread of the calling process"));
  CHECK(namespaced->namespaceTids().scans() == 2);
}
