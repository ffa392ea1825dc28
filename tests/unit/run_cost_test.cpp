// What a run cost, and what the recommendation would save, against
// hand-computed cases (prices 0.04 per core-hour, 0.005 per GiB-hour).
#include <catch2/catch.hpp>

#include "policy/recommendation.h"
#include "policy/run_cost.h"

using namespace tracer::policy;

namespace {

constexpr uint64_t GiB = 1ull << 30;
constexpr uint64_t HOUR_NS = 3600ull * 1000000000;
const Prices PRICES{0.04, 0.005};

// Half an hour on 2 cores and 4 GiB, using 1 core on average and 1 GiB at most.
Observation halfHour() {
  Observation o;
  o.wallNs = HOUR_NS / 2;
  o.cpuNs = HOUR_NS / 2;
  o.peakRssBytes = GiB;
  o.allocatedCores = 2;
  o.allocatedBytes = 4 * GiB;
  return o;
}

}  // namespace

TEST_CASE("a run's cost: its allocation over its wall time, its CPU time, its peak held throughout") {
  auto cost = runCost(PRICES, halfHour());
  // allocated: 2 cores x 0.5 h x 0.04 = 0.04, plus 4 GiB x 0.5 h x 0.005 = 0.01
  CHECK(cost.allocated == Approx(0.05));
  // used: 0.5 core-hours x 0.04 = 0.02, plus 1 GiB x 0.5 h x 0.005 = 0.0025
  CHECK(cost.used == Approx(0.0225));
  // waste: 0.04 - 0.02 of CPU, 0.01 - 0.0025 of memory
  CHECK(cost.waste == Approx(0.0275));
}

TEST_CASE("CPU used past the allocation is no waste, and does not hide the memory's") {
  auto run = halfHour();
  run.cpuNs = 3 * HOUR_NS / 2;  // 3 cores on average, no limit held it to 2
  auto cost = runCost(PRICES, run);
  CHECK(cost.used == Approx(0.0625));  // 1.5 core-hours x 0.04 = 0.06, + 0.0025
  CHECK(cost.waste == Approx(0.0075));  // memory's 0.01 - 0.0025 only, not 0.05 - 0.0625
}

TEST_CASE("a work pool with prices of its own is priced at them; others at the policy's") {
  Cost cost;
  cost.prices = PRICES;
  cost.workPools["gpu-pool"] = Prices{1.0, 0.01};
  CHECK(cost.pricesFor("gpu-pool").cpuCoreHour == 1.0);
  CHECK(cost.pricesFor("default").cpuCoreHour == 0.04);
  // 2 cores x 0.5 h x 1.0 = 1.0, plus 4 GiB x 0.5 h x 0.01 = 0.02
  CHECK(runCost(cost.pricesFor("gpu-pool"), halfHour()).allocated == Approx(1.02));
}

TEST_CASE("the defaults are AWS Fargate's on-demand prices, and they say so") {
  Cost cost;
  CHECK(cost.prices.cpuCoreHour == 0.04048);
  CHECK(cost.prices.memoryGibHour == 0.004445);
  CHECK(cost.currency == "USD");
  CHECK(cost.source.find("Fargate") != std::string::npos);
}

TEST_CASE("the saving a recommendation would bring, per run and at the observed run rate") {
  Policy p;
  p.history = {20, 3};
  p.cpu = CpuRule{95, 0.15, 0.5, 0.1, 0.05};
  p.memory = MemoryRule{0.15, 1.2, 64ull << 20, 64ull << 20, 0.5};
  p.cost.prices = PRICES;
  std::vector<Observation> runs;
  for (int hour = 0; hour < 3; ++hour) {  // an hour long each, finishing an hour apart
    Observation o;
    o.wallNs = HOUR_NS;
    o.cpuNs = HOUR_NS / 2;
    o.p95Cores = 0.5;
    o.peakRssBytes = GiB;
    o.allocatedCores = 2;
    o.allocatedBytes = 4 * GiB;
    o.finishedAtNs = hour * int64_t(HOUR_NS);
    runs.push_back(o);
  }
  auto r = recommend(p, kj::arrayPtr(runs.data(), runs.size()));
  REQUIRE(r.ready);
  CHECK(r.cpuCores == Approx(0.6));             // 0.5 x 1.15 = 0.575, up to 0.05: 0.60
  CHECK(r.memoryBytes == 1216ull << 20);        // 1024 MiB x 1.15 = 1177.6, up to 64 MiB
  // 1 h x (1.4 spare cores x 0.04 + (4096 - 1216) / 1024 = 2.8125 spare GiB x 0.005)
  CHECK(r.wastedCostPerRun == Approx(0.0700625));
  CHECK(r.runsPerMonth == Approx(730));         // 3 runs over 2 h: one an hour, 730 h a month
  CHECK(r.recentAllocatedCost == Approx(0.3));  // 3 x (2 x 0.04 + 4 x 0.005)
  CHECK(r.recentUsedCost == Approx(0.075));     // 3 x (0.5 x 0.04 + 1 x 0.005)

  // All at one moment: no rate to extrapolate from.
  for (auto& run: runs) run.finishedAtNs = 0;
  CHECK(recommend(p, kj::arrayPtr(runs.data(), runs.size())).runsPerMonth == 0);
}
