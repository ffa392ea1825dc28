#pragma once
// How long an artifact Prefect did not take waits before its next attempt:
// 1 s doubling per attempt up to 60 s, of which a random part between half
// and all. The random part comes from a generator each backoff seeds from the
// kernel's entropy, so the sidecars of many nodes that failed together (a
// Prefect restart) spread their retries; an unseeded one would give every
// node the same sequence and have them all retry in lockstep.

#include <cstdint>
#include <random>

namespace tracer {

class RetryBackoff {
 public:
  RetryBackoff();

  // The wait after a failed attempt that had `failedBefore` failed attempts
  // before it, in ns.
  int64_t delayNs(uint32_t failedBefore);

 private:
  std::mt19937_64 generator;
};

}  // namespace tracer
