#include "policy/quantity.h"

#include <cmath>
#include <cstdlib>
#include <cstring>

namespace tracer::policy {

namespace {

// A non-negative decimal number at the start of `text`; `rest` is what follows.
std::optional<double> leadingNumber(const std::string& text, std::string& rest) {
  if (text.empty() || !(isdigit(static_cast<unsigned char>(text[0])) || text[0] == '.')) {
    return std::nullopt;
  }
  char* end;
  double value = strtod(text.c_str(), &end);
  if (end == text.c_str() || !std::isfinite(value)) return std::nullopt;
  rest = end;
  return value;
}

}  // namespace

std::optional<uint64_t> parseBytes(const std::string& text, std::string& error) {
  static const struct {
    const char* suffix;
    double factor;
  } units[] = {{"", 1},          {"Ki", 1024.0},  {"Mi", 1048576.0}, {"Gi", 1073741824.0},
               {"Ti", 1099511627776.0}, {"k", 1e3}, {"M", 1e6},      {"G", 1e9}, {"T", 1e12}};
  std::string rest;
  auto number = leadingNumber(text, rest);
  if (number) {
    for (auto& unit: units) {
      if (rest == unit.suffix) {
        if (*number != std::floor(*number)) {
          error = "'" + text + "' must be a whole number" +
                  (*unit.suffix ? std::string(" of ") + unit.suffix : std::string(" of bytes")) +
                  " (use a smaller unit)";
          return std::nullopt;
        }
        double bytes = *number * unit.factor;
        if (bytes > 1.8e19) {
          error = "'" + text + "' is too large";
          return std::nullopt;
        }
        return static_cast<uint64_t>(bytes);
      }
    }
  }
  error = "'" + text + "' is not a byte quantity (expected e.g. 512Mi, 2Gi, 1G or 1048576)";
  return std::nullopt;
}

std::optional<uint64_t> parseDuration(const std::string& text, std::string& error) {
  static const struct {
    const char* suffix;
    double ns;
  } units[] = {{"ms", 1e6},         {"s", 1e9},           {"m", 60e9},
               {"h", 3600e9},       {"d", 24 * 3600e9},   {"w", 7 * 24 * 3600e9}};
  std::string rest;
  auto number = leadingNumber(text, rest);
  if (number) {
    for (auto& unit: units) {
      if (rest != unit.suffix) continue;
      double ns = *number * unit.ns;
      if (ns > 1.8e19) {
        error = "'" + text + "' is too long";
        return std::nullopt;
      }
      return static_cast<uint64_t>(ns);
    }
  }
  error = "'" + text + "' is not a duration (expected e.g. 500ms, 60s, 5m, 1h, 7d or 2w)";
  return std::nullopt;
}

std::optional<double> parseCores(const std::string& text, std::string& error) {
  std::string rest;
  auto number = leadingNumber(text, rest);
  if (number && rest.empty()) return *number;
  if (number && rest == "m" && *number == std::floor(*number)) return *number / 1000;
  error = "'" + text + "' is not a CPU quantity (expected cores like 0.5, or millicores like 500m)";
  return std::nullopt;
}

}  // namespace tracer::policy
