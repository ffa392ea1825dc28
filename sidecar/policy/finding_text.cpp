#include "policy/finding_text.h"

#include <algorithm>
#include <cstdio>

namespace tracer::policy {

std::string fixed(double value, int decimals) {
  char text[64];
  snprintf(text, sizeof(text), "%.*f", decimals, value);
  return text;
}

std::string percent(double share) { return fixed(share * 100, 0) + "%"; }

std::string mib(uint64_t bytes) { return fixed(bytes / 1048576.0, 0) + " MiB"; }

std::string seconds(uint64_t ns) { return fixed(ns / 1e9, 2) + " s"; }

double share(uint64_t part, uint64_t whole) {
  return whole == 0 ? 0 : std::min(1.0, double(part) / double(whole));
}

}  // namespace tracer::policy
