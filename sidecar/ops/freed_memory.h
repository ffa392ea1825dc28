#pragma once
// Gives the heap's freed pages back to the kernel now and then. glibc's
// free() returns memory only from the top of the heap: after a burst (a
// flood of task starts, a flow run of thousands of tasks whose reports were
// kept until it ended), what was freed below blocks still in use stays in the
// sidecar's RSS, 20 MiB and more after a flood. malloc_trim(0) hands those
// pages back; it walks the heap's free blocks, so it runs at most every
// `every`, and only when the heap holds at least `atLeast` unused bytes.

#include <kj/async.h>
#include <kj/time.h>
#include <kj/timer.h>

#include <cstddef>

namespace tracer {

constexpr kj::Duration RETURN_FREED_EVERY = 10 * kj::SECONDS;
constexpr size_t RETURN_FREED_AT_LEAST = 8 << 20;

// Once: whether the heap held at least `atLeast` unused bytes and some of
// its pages went back.
bool returnFreedMemory(size_t atLeast);

// Every `every`, until cancelled.
kj::Promise<void> returnFreedMemoryForever(kj::Timer& timer,
                                           kj::Duration every = RETURN_FREED_EVERY,
                                           size_t atLeast = RETURN_FREED_AT_LEAST);

}  // namespace tracer
