#pragma once
// A piece of the sidecar that shows itself in `tracerctl status`, as a
// MetricsSource does on /metrics: each fills its own fields of SidecarStatus.

#include "tracer.capnp.h"

namespace tracer {

class StatusPart {
 public:
  virtual ~StatusPart() noexcept(false) = default;
  virtual void fillStatus(proto::SidecarStatus::Builder status) const = 0;
};

}  // namespace tracer
