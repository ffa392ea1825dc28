#pragma once
// `tracerctl run -- CMD ARGS...`: runs CMD as a task, registered before it
// execs so nothing it does is missed, and reports what it did. An exact,
// subprocess-aware `/usr/bin/time -v`.

#include <kj/string.h>
#include <kj/vector.h>

#include "tracer_client.h"

namespace tracer {

struct RunOptions {
  kj::String flow = kj::str("tracerctl");
  kj::String name;  // default: the command's basename
  kj::Vector<kj::String> tags;
  bool json = false;
};

// Runs the command and returns the exit status the shell would see.
int runObserved(tracer_client* client, const RunOptions& options,
                kj::ArrayPtr<const kj::StringPtr> command);

}  // namespace tracer
