#include "policy/run_cost.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace tracer::policy {

namespace {

constexpr double NS_PER_HOUR = 3.6e12;
constexpr double BYTES_PER_GIB = 1ull << 30;

}  // namespace

RunCost runCost(const Prices& prices, const Observation& run) {
  double hours = run.wallNs / NS_PER_HOUR;
  double allocatedCpu = run.allocatedCores * hours * prices.cpuCoreHour;
  double allocatedMemory = run.allocatedBytes / BYTES_PER_GIB * hours * prices.memoryGibHour;
  double usedCpu = run.cpuNs / NS_PER_HOUR * prices.cpuCoreHour;
  double usedMemory = run.peakRssBytes / BYTES_PER_GIB * hours * prices.memoryGibHour;
  // A run that used more than its allocation (no limit held it) wasted none
  // of that resource; it does not make up for the other's waste.
  return RunCost{allocatedCpu + allocatedMemory, usedCpu + usedMemory,
                 std::max(0.0, allocatedCpu - usedCpu) + std::max(0.0, allocatedMemory - usedMemory)};
}

std::string describePrices(const Cost& cost, const std::string& workPool) {
  auto& prices = cost.pricesFor(workPool);
  bool own = &prices != &cost.prices;
  return formatPrice(prices.cpuCoreHour, cost.currency) + " per core-hour, " +
         formatPrice(prices.memoryGibHour, cost.currency) + " per GiB-hour" +
         (own ? " (work pool " + workPool + "'s; " : " (") + cost.source + ")";
}

std::string formatMoney(double amount, const std::string& currency) {
  int places = 2;
  if (amount > 0 && amount < 1) places = std::min(9, 2 - int(std::floor(std::log10(amount))));
  char text[64];
  snprintf(text, sizeof(text), "%.*f %s", places, amount, currency.c_str());
  return text;
}

std::string formatPrice(double price, const std::string& currency) {
  char text[64];
  snprintf(text, sizeof(text), "%g %s", price, currency.c_str());
  return text;
}

}  // namespace tracer::policy
