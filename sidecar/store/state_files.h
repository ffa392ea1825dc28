#pragma once
// The state directory and its SQLite files as the sidecar finds them at
// start: private (0700, files 0600: the history and the artifacts say what
// every tenant's runs did), and readable. A file SQLite cannot read (not a
// database, a corrupt header or schema) is moved aside with one log line and
// started afresh, rather than stopping the sidecar at every start.

#include <kj/string.h>

#include "ops/log.h"

namespace tracer {

// Makes `directory` if missing (0700), and takes group and other access
// away from it if it has any. Returns why it cannot, or an empty string.
kj::String securePrivateDirectory(kj::StringPtr directory, Log& log);

// Readies the SQLite file at `path` for opening: moved aside to
// PATH.corrupt-<UTC time> if SQLite cannot read it (saying what is lost:
// `contents`), created 0600 if missing, made 0600 if it was more open.
void prepareStateFile(kj::StringPtr path, kj::StringPtr contents, Log& log);

}  // namespace tracer
