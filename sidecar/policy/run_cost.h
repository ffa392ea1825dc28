#pragma once
// What a run's execution window cost at a policy's prices (docs/policies.md,
// "Cost"): its allocation held for its wall time, what it used of it, and the
// difference. CPU is used as it runs (core-hours of CPU time); memory is priced
// at its peak for the whole window, since a limit has to hold the peak: memory
// under the peak is not capacity a smaller allocation could give back.

#include <string>

#include "policy/observation.h"
#include "policy/policy.h"

namespace tracer::policy {

struct RunCost {
  double allocated = 0;
  double used = 0;
  double waste = 0;  // allocated and not used, CPU and memory each at least 0
};

RunCost runCost(const Prices& prices, const Observation& run);

// The prices that apply on `workPool`, and where they come from, in one line:
// "0.04048 USD per core-hour, 0.004445 USD per GiB-hour (AWS Fargate ...)".
std::string describePrices(const Cost& cost, const std::string& workPool);

// An amount of money: to the cent from 1 up, three significant digits below
// (a short run costs a fraction of a cent): "51.15 USD", "0.0000774 USD".
std::string formatMoney(double amount, const std::string& currency);
// A price as the policy gives it, every digit: "0.04048 USD".
std::string formatPrice(double price, const std::string& currency);

}  // namespace tracer::policy
