#pragma once
// /metrics: runs live and ended, what the collector tracks and loses, and the
// report fields it cannot know here, with the reason.

#include "metrics/metrics_source.h"
#include "observe/attribution_table.h"

namespace tracer {

class ObserverMetrics final: public MetricsSource {
 public:
  ObserverMetrics(AttributionTable& table, Collector& collector)
      : table(table), collector(collector) {}
  void renderMetrics(PrometheusText& out) override;

 private:
  AttributionTable& table;
  Collector& collector;
};

}  // namespace tracer
