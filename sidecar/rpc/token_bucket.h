#pragma once
// A rate limit as a token bucket: `rate` tokens a second, holding at most one
// second's worth, so a client may burst up to a second of its rate and then
// keeps to it.

#include <kj/time.h>

namespace tracer {

class TokenBucket {
 public:
  TokenBucket(double rate, kj::TimePoint now): rate(rate), tokens(rate), refilledAt(now) {}

  void take() { tokens -= 1; }
  // How long from `now` until a token is there: 0 if one is.
  kj::Duration waitAt(kj::TimePoint now);

 private:
  double rate;
  double tokens;
  kj::TimePoint refilledAt;
};

}  // namespace tracer
