#include "observe/sampler.h"

namespace tracer {

kj::Promise<void> sampleForever(AttributionTable& table, kj::Timer& timer) {
  return timer.afterDelay(SAMPLE_INTERVAL).then([&table, &timer]() {
    table.sample();
    return sampleForever(table, timer);
  });
}

}  // namespace tracer
