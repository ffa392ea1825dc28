#include "prefect/retry_backoff.h"

#include <kj/debug.h>
#include <sys/random.h>

#include <algorithm>

namespace tracer {

namespace {

constexpr int64_t FIRST_RETRY_NS = 1000000000;  // 1 s
constexpr int64_t LONGEST_RETRY_NS = 60 * 1000000000ll;
constexpr uint32_t LAST_DOUBLING = 6;  // 64 s: past the longest

uint64_t kernelSeed() {
  uint64_t seed;
  KJ_SYSCALL(getrandom(&seed, sizeof(seed), 0));
  return seed;
}

}  // namespace

RetryBackoff::RetryBackoff(): generator(kernelSeed()) {}

int64_t RetryBackoff::delayNs(uint32_t failedBefore) {
  int64_t backoff =
      std::min(LONGEST_RETRY_NS, FIRST_RETRY_NS << std::min(failedBefore, LAST_DOUBLING));
  std::uniform_int_distribution<int64_t> jitter(backoff / 2, backoff);
  return jitter(generator);
}

}  // namespace tracer
