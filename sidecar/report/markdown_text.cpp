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

kj::String markdownName(kj::StringPtr text) {
  // ASCII punctuation CommonMark lets a backslash escape: these can start
  // markup, or (':', '.') a GFM autolink ("http://", "www.").
  static constexpr kj::StringPtr SPECIAL = "\\`*_[]<>!#~|:.()&"_kj;
  kj::Vector<char> out(text.size() * 2 + 1);
  for (char c: text) {
    if (c == '\n' || c == '\r') {
      out.add(' ');
      continue;
    }
    if (SPECIAL.findFirst(c) != nullptr) out.add('\\');
    out.add(c);
  }
  out.add('\0');
  return kj::String(out.releaseAsArray());
}

kj::String markdownCode(kj::StringPtr text) {
  kj::Vector<char> out(text.size() + 1);
  for (char c: text) {
    if (c != '`' && c != '\n' && c != '\r') out.add(c);
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
