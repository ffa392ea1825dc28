#include "rpc/token_bucket.h"

#include <kj/common.h>

namespace tracer {

kj::Duration TokenBucket::waitAt(kj::TimePoint now) {
  tokens = kj::min(rate, tokens + rate * (double((now - refilledAt) / kj::NANOSECONDS) / 1e9));
  refilledAt = now;
  if (tokens >= 1) return 0 * kj::NANOSECONDS;
  return int64_t((1 - tokens) / rate * 1e9) * kj::NANOSECONDS;
}

}  // namespace tracer
