#include "ops/freed_memory.h"

#include <malloc.h>

namespace tracer {

bool returnFreedMemory(size_t atLeast) {
  struct mallinfo2 heap = mallinfo2();  // fordblks: the bytes of the heap's free blocks
  if (heap.fordblks < atLeast) return false;
  return malloc_trim(0) == 1;
}

kj::Promise<void> returnFreedMemoryForever(kj::Timer& timer, kj::Duration every,
                                           size_t atLeast) {
  return timer.afterDelay(every).then([&timer, every, atLeast]() {
    returnFreedMemory(atLeast);
    return returnFreedMemoryForever(timer, every, atLeast);
  });
}

}  // namespace tracer
