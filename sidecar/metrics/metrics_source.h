#pragma once
// A piece of the sidecar that shows itself on /metrics: each renders its own
// families, so the endpoint knows none of them and none knows the others.

#include "metrics/prometheus_text.h"

namespace tracer {

class MetricsSource {
 public:
  virtual ~MetricsSource() noexcept(false) = default;
  virtual void renderMetrics(PrometheusText& out) = 0;
};

}  // namespace tracer
