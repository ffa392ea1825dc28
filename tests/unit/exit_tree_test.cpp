// The /proc collector's attribution of exit records (observe/exit_tree.h):
// records as taskstats sends them, children before their parents.

#include <catch2/catch.hpp>
#include <kj/debug.h>

#include <string>

#include "observe/exit_tree.h"

using tracer::ExitRecord;
using tracer::ExitTree;

namespace {

constexpr pid_t WORKER = 100;      // the process running tasks
constexpr pid_t TASK_THREAD = 101;  // a task's thread in it
constexpr pid_t LAUNCHER = 10;     // the worker's parent

// A thread's exit record: `tgid` 0 as on kernels before taskstats v12.
ExitRecord exited(pid_t pid, pid_t ppid, uint64_t cpuNs, pid_t tgid = 0) {
  ExitRecord record;
  record.pid = pid;
  record.ppid = ppid;
  record.tgid = tgid;
  record.cpuNs = cpuNs;
  record.writeBytes = cpuNs / 10;
  record.peakRssBytes = cpuNs * 2;
  return record;
}

}  // namespace

TEST_CASE("a child process of a one-task process is the task's, its own children with it") {
  ExitTree tree;
  tree.open(1, WORKER, TASK_THREAD, LAUNCHER, false);
  tree.add(exited(300, 200, 7));      // a grandchild: its parent 200 is not known yet
  tree.add(exited(200, WORKER, 5));   // the child, after its own children
  tree.add(exited(400, 999, 1000));   // the child of a process not known to be the task's
  CHECK(tree.pendingParents() == 1);  // held by its parent 999...
  tree.add(exited(999, WORKER, 3));   // ... which turns out to be the task's child
  CHECK(tree.pendingParents() == 0);
  tree.add(exited(600, 1, 1));        // anyone's: not the task's
  auto closed = tree.close(1);
  CHECK(closed.unknownWhy == "");
  CHECK(closed.work.cpuNs == 7 + 5 + 1000 + 3);
  CHECK(closed.work.writeBytes == 100);  // 1000 / 10; the others' round to 0
  CHECK(closed.work.peakRssBytes == 2000);  // the largest peak, not a sum
}

TEST_CASE("the task's own thread's record is its final reading, not a child's") {
  ExitTree tree;
  tree.open(1, WORKER, TASK_THREAD, LAUNCHER, false);
  tree.add(exited(TASK_THREAD, LAUNCHER, 50, WORKER));
  auto closed = tree.close(1);
  CHECK(closed.work.cpuNs == 0);
  REQUIRE(closed.ownExit != nullptr);
  CHECK(KJ_ASSERT_NONNULL(closed.ownExit).cpuNs == 50);
}

TEST_CASE("a child of a process running two tasks is unknown to both") {
  ExitTree tree;
  tree.open(1, WORKER, TASK_THREAD, LAUNCHER, false);
  tree.open(2, WORKER, TASK_THREAD + 1, LAUNCHER, false);
  tree.add(exited(200, WORKER, 5));
  for (uint32_t slot: {1u, 2u}) {
    auto closed = tree.close(slot);
    CHECK(closed.unknownWhy.size() > 0);
    CHECK(std::string(closed.unknownWhy.cStr()).find("other tasks of that process") != std::string::npos);
  }
}

TEST_CASE("another thread of the task's process: the task's if it owns the process") {
  ExitTree tree;
  tree.open(1, WORKER, TASK_THREAD, LAUNCHER, false);
  tree.open(2, 500, 500, LAUNCHER, true);
  tree.add(exited(102, LAUNCHER, 5, WORKER));  // taskstats v12+: the record names its process
  tree.add(exited(502, LAUNCHER, 9, 500));
  auto shared = tree.close(1);
  CHECK(std::string(shared.unknownWhy.cStr()).find("whether the task had started it") != std::string::npos);
  auto owned = tree.close(2);
  CHECK(owned.unknownWhy == "");
  CHECK(owned.work.cpuNs == 9);
  CHECK(tree.pendingParents() == 0);  // a thread is nobody's child
}

TEST_CASE("before taskstats v12 a thread and a sibling process look alike: unknown") {
  ExitTree tree;
  tree.open(1, 500, 500, LAUNCHER, true);
  tree.add(exited(502, LAUNCHER, 9));
  auto closed = tree.close(1);
  CHECK(std::string(closed.unknownWhy.cStr()).find("before version 12") != std::string::npos);
  CHECK(closed.work.cpuNs == 0);
}

TEST_CASE("dropped records leave every open task's descendants unknown") {
  ExitTree tree;
  tree.open(1, WORKER, TASK_THREAD, LAUNCHER, false);
  tree.add(exited(200, WORKER, 5));
  tree.lost("the kernel dropped exit records");
  auto closed = tree.close(1);
  CHECK(closed.unknownWhy == "the kernel dropped exit records");
  tree.open(2, WORKER, TASK_THREAD, LAUNCHER, false);  // a later task starts clean
  CHECK(tree.close(2).unknownWhy == "");
}
