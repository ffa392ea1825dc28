#pragma once
// The calling process's and thread's ids without a system call each time: a
// task's start and finish ask for them several times, and glibc caches
// neither (getpid() no more since 2.25). They change under a running thread
// only in a fork()ed child, where a pthread_atfork handler forgets them. A
// child made by a raw clone(), which runs no such handlers, would keep its
// parent's: the library would then use its parent's connection, whose thread
// is not there, and its tasks would run unobserved (never blocked).

#include <sys/types.h>

namespace tracer::client {

pid_t currentPid();
pid_t currentTid();

}  // namespace tracer::client
