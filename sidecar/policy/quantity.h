#pragma once
// The quantities policy files use, parsed strictly: an error names what was
// expected, so `2GG`, `-1` or `0.5Mi` (where whole bytes are needed) are
// refused rather than guessed at.

#include <cstdint>
#include <optional>
#include <string>

namespace tracer::policy {

// Bytes: an integer with an optional suffix: Ki Mi Gi Ti (1024s) or k M G T (1000s).
// On failure returns nullopt and sets `error`.
std::optional<uint64_t> parseBytes(const std::string& text, std::string& error);

// Durations: a number with ms, s, m, h, d or w ("60s", "1.5h", "7d"). Returns nanoseconds.
std::optional<uint64_t> parseDuration(const std::string& text, std::string& error);

// CPU: cores as a number ("0.25") or Kubernetes millicores ("250m").
std::optional<double> parseCores(const std::string& text, std::string& error);

}  // namespace tracer::policy
