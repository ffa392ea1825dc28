#pragma once
// /metrics: how long the sidecar has served and who is connected.

#include "metrics/metrics_source.h"
#include "rpc/services.h"

namespace tracer {

class ServingMetrics final: public MetricsSource {
 public:
  explicit ServingMetrics(const Services& services): services(services) {}
  void renderMetrics(PrometheusText& out) override;

 private:
  const Services& services;
};

}  // namespace tracer
