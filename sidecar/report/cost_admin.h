#pragma once
// What the Admin interface asks of the costs the history holds: their rollup
// over a window of time. The serving side (rpc/) holds this, not the history
// behind it.

#include <capnp/message.h>
#include <kj/async.h>
#include <kj/string.h>

#include <cstdint>

#include "tracer.capnp.h"

namespace tracer {

// The longest window asked for: both windows have to lie after the start of
// int64 nanoseconds' 292-year range. tracerctl checks it too, to refuse it in
// its own words.
constexpr uint64_t COSTS_SINCE_NS_MAX = 100ull * 365 * 24 * 3600 * 1000000000;

class CostAdmin {
 public:
  virtual ~CostAdmin() noexcept(false) = default;

  // Admin.costs (capnp/tracer.capnp): by "deployment" (or empty), "flow" or
  // "task"; sinceNs 0 is 7 days, nowNs 0 the wall clock. Anything else is
  // refused in one sentence (ops/refuse.h), before this returns. Answers a
  // message whose root is the CostReport.
  virtual kj::Promise<kj::Own<capnp::MessageBuilder>> costs(kj::StringPtr by, uint64_t sinceNs,
                                                            int64_t nowNs) = 0;
};

}  // namespace tracer
