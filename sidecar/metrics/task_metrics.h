#pragma once
// Totals of finished task runs for /metrics, per (flow, task) name: runs by
// end state, CPU, waiting, I/O, network, processes, OOM kills, and cost used
// and allocated (flow runs' footprints too). Task run ids
// would mint a series per run, so they never become labels; names are capped
// at `maxSeries` pairs, and runs of any further pair are summed under
// flow="other", task="other" so nothing is dropped.

#include <cstdint>
#include <map>
#include <string>
#include <tuple>
#include <utility>

#include "metrics/metrics_source.h"
#include "tracer.capnp.h"

namespace tracer {

class TaskMetrics final: public MetricsSource {
 public:
  explicit TaskMetrics(uint32_t maxSeries): maxSeries(maxSeries) {}

  void add(kj::StringPtr flowName, proto::TaskReport::Reader report);
  // A flow run's footprint (what its processes used together): its cost
  // only, under task="(flow run)", the figure a flow's cost is summed from.
  void addFootprint(kj::StringPtr flowName, proto::TaskReport::Reader footprint);
  void renderMetrics(PrometheusText& out) override;

 private:
  static constexpr uint32_t STATES = 4;  // proto::RunState's enumerants

  struct Totals {
    uint64_t runs[STATES] = {};
    uint64_t cpuNs = 0, runqueueWaitNs = 0, blockedIoNs = 0;
    uint64_t readBytes = 0, writeBytes = 0, txBytes = 0, rxBytes = 0;
    uint64_t processes = 0, oomKills = 0;
  };

  struct CostTotals {
    double used = 0, allocated = 0;
  };
  void addCost(kj::StringPtr flowName, proto::TaskReport::Reader report);

  uint32_t maxSeries;
  std::map<std::pair<std::string, std::string>, Totals> byName;  // (flow, task)
  // (flow, task, currency), capped at maxSeries as byName is.
  std::map<std::tuple<std::string, std::string, std::string>, CostTotals> costs;
};

}  // namespace tracer
