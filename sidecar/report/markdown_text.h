#pragma once
// Text that goes into the markdown artifacts' tables.

#include <kj/string.h>
#include <stdint.h>

namespace tracer {

// A table cell: no character that breaks the row ('|' escaped, newlines as spaces).
kj::String markdownCell(kj::StringPtr text);
// Nanoseconds as seconds with two decimals ("1.25").
kj::String inSeconds(uint64_t ns);

}  // namespace tracer
