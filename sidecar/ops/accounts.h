#pragma once
// Users and groups named on the command line ("1000" or "prefect"), resolved
// once at start-up; nullptr when there is no such user or group.

#include <kj/string.h>
#include <sys/types.h>

namespace tracer {

kj::Maybe<uid_t> lookupUser(kj::StringPtr name);
kj::Maybe<gid_t> lookupGroup(kj::StringPtr name);

}  // namespace tracer
