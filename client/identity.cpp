#include "identity.h"

#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>

namespace tracer::client {

namespace {

std::atomic<pid_t> knownPid{0};
thread_local pid_t knownTid = 0;

// In the child, only the thread that forked exists: its ids and the
// process's are the child's own from here.
void forgetInChild() {
  knownPid.store(0, std::memory_order_relaxed);
  knownTid = 0;
}

// Registered as the library loads, before any fork() it must hear of.
const int forgetsInChild = pthread_atfork(nullptr, nullptr, forgetInChild);

}  // namespace

pid_t currentPid() {
  pid_t pid = knownPid.load(std::memory_order_relaxed);
  if (pid == 0) {
    pid = getpid();
    knownPid.store(pid, std::memory_order_relaxed);
  }
  return pid;
}

pid_t currentTid() {
  if (knownTid == 0) knownTid = static_cast<pid_t>(syscall(SYS_gettid));
  return knownTid;
}

}  // namespace tracer::client
