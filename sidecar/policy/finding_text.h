#pragma once
// Numbers as findings print them, in their summaries and evidence: one
// spelling for every detector ("0.25", "70%", "512 MiB", "1.50 s").

#include <cstdint>
#include <string>

namespace tracer::policy {

std::string fixed(double value, int decimals = 2);
std::string percent(double share);
std::string mib(uint64_t bytes);
std::string seconds(uint64_t ns);

// part / whole, at most 1; 0 when whole is 0 (nothing to be a share of).
double share(uint64_t part, uint64_t whole);

}  // namespace tracer::policy
