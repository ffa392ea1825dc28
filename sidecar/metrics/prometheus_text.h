#pragma once
// Writes Prometheus text exposition format (version 0.0.4): a family's HELP and
// TYPE lines, then its samples, with label values escaped as the format says.

#include <kj/string.h>
#include <kj/vector.h>

#include <cstdint>
#include <initializer_list>
#include <utility>

namespace tracer {

class PrometheusText {
 public:
  using Label = std::pair<kj::StringPtr, kj::StringPtr>;

  void family(kj::StringPtr name, kj::StringPtr type, kj::StringPtr help);
  void sample(kj::StringPtr name, std::initializer_list<Label> labels, uint64_t value);
  void sample(kj::StringPtr name, std::initializer_list<Label> labels, double value);
  // A family with one unlabelled sample: the common case.
  void single(kj::StringPtr name, kj::StringPtr type, kj::StringPtr help, uint64_t value);

  kj::String finish();

 private:
  kj::String series(kj::StringPtr name, std::initializer_list<Label> labels);

  kj::Vector<kj::String> lines;
};

}  // namespace tracer
