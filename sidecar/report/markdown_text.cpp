#include "report/markdown_text.h"

#include <kj/vector.h>

#include <cstdio>

namespace tracer {

kj::String markdownCell(kj::StringPtr text) {
  kj::Vector<char> out(text.size() + 1);
  for (char c: text) {
    if (c == '|') {
      out.addAll(kj::StringPtr("\\|"));
    } else {
      out.add(c == '\n' ? ' ' : c);
    }
  }
  out.add('\0');
  return kj::String(out.releaseAsArray());
}

kj::String inSeconds(uint64_t ns) {
  char text[32];
  snprintf(text, sizeof(text), "%.2f", ns / 1e9);
  return kj::str(text);
}

}  // namespace tracer
