#include "metrics/prometheus_text.h"

#include <cstdio>

namespace tracer {

namespace {

kj::String escaped(kj::StringPtr value) {
  kj::Vector<char> out(value.size() + 1);
  for (char c: value) {
    if (c == '\\' || c == '"') {
      out.add('\\');
      out.add(c);
    } else if (c == '\n') {
      out.add('\\');
      out.add('n');
    } else {
      out.add(c);
    }
  }
  out.add('\0');
  return kj::String(out.releaseAsArray());
}

}  // namespace

void PrometheusText::family(kj::StringPtr name, kj::StringPtr type, kj::StringPtr help) {
  lines.add(kj::str("# HELP ", name, " ", help));
  lines.add(kj::str("# TYPE ", name, " ", type));
}

kj::String PrometheusText::series(kj::StringPtr name, std::initializer_list<Label> labels) {
  if (labels.size() == 0) return kj::str(name);
  kj::Vector<kj::String> parts;
  for (auto& label: labels) parts.add(kj::str(label.first, "=\"", escaped(label.second), "\""));
  return kj::str(name, "{", kj::strArray(parts, ","), "}");
}

void PrometheusText::sample(kj::StringPtr name, std::initializer_list<Label> labels,
                            uint64_t value) {
  lines.add(kj::str(series(name, labels), " ", value));
}

void PrometheusText::sample(kj::StringPtr name, std::initializer_list<Label> labels,
                            double value) {
  char text[32];
  snprintf(text, sizeof(text), "%.9g", value);
  lines.add(kj::str(series(name, labels), " ", text));
}

void PrometheusText::single(kj::StringPtr name, kj::StringPtr type, kj::StringPtr help,
                            uint64_t value) {
  family(name, type, help);
  sample(name, {}, value);
}

kj::String PrometheusText::finish() {
  lines.add(kj::str(""));
  return kj::strArray(lines, "\n");
}

}  // namespace tracer
