#pragma once
// The capacity a flow run had, for comparing use against allocation. Each of
// CPU and memory comes from the first source that knows it: what the plugin
// declared (work pool job variables), the cgroup limits of the flow-run
// process (v2 cpu.max / memory.max, v1 CFS quota / memory.limit_in_bytes,
// tightest along the hierarchy), or the host. (Policies come later.)

#include <kj/string.h>
#include <sys/types.h>

#include <cstdint>

namespace tracer {

struct Allocation {
  double cpuCores = 0;
  kj::StringPtr cpuSource;  // "declared", "cgroup" or "host"
  uint64_t memoryBytes = 0;
  kj::StringPtr memorySource;
};

// `cgroupRoot` is where cgroup file systems are mounted (/sys/fs/cgroup).
Allocation resolveAllocation(double declaredCores, uint64_t declaredMemory, pid_t hostPid,
                             kj::StringPtr cgroupRoot = "/sys/fs/cgroup");

}  // namespace tracer
