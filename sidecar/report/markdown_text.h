#pragma once
// Text that goes into the markdown artifacts' tables.

#include <kj/string.h>
#include <stdint.h>

namespace tracer {

// A table cell: no character that breaks the row ('|' escaped, newlines as spaces).
kj::String markdownCell(kj::StringPtr text);
// A name a client chose (a flow's, a task's, a deployment's), as literal
// text: every character that could start markup (links, images, HTML,
// emphasis, autolinks) backslash-escaped, newlines as spaces; safe in a cell.
kj::String markdownName(kj::StringPtr text);
// Text for inside a code span (`...`): its backquotes and newlines dropped.
kj::String markdownCode(kj::StringPtr text);
// Nanoseconds as seconds with two decimals ("1.25").
kj::String inSeconds(uint64_t ns);

}  // namespace tracer
