#include "observe/allocation.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "proc_files.h"

namespace tracer {

namespace {

bool exists(kj::StringPtr path) {
  struct stat info;
  return stat(path.cStr(), &info) == 0;
}

// The path of `pid`'s cgroup in the hierarchy whose controller list holds
// `controller` ("" = the v2 unified hierarchy).
kj::Maybe<kj::String> cgroupPath(pid_t pid, kj::StringPtr controller) {
  KJ_IF_MAYBE(text, readProcFile(kj::str("/proc/", pid, "/cgroup"))) {
    const char* line = text->cStr();
    while (*line != '\0') {
      const char* end = strchr(line, '\n');
      if (end == nullptr) end = line + strlen(line);
      const char* first = strchr(line, ':');
      const char* second = first ? strchr(first + 1, ':') : nullptr;
      if (second != nullptr && second < end) {
        auto list = kj::heapString(first + 1, second - first - 1);
        bool match = false;
        if (controller.size() == 0) {
          match = list.size() == 0;
        } else {
          for (char* token = strtok(list.begin(), ","); token; token = strtok(nullptr, ",")) {
            match = match || controller == token;
          }
        }
        if (match) return kj::heapString(second + 1, end - second - 1);
      }
      line = *end ? end + 1 : end;
    }
  }
  return nullptr;
}

// Calls `limitAt(dir)` from the cgroup up to the root; keeps the smallest limit.
template <typename Func>
kj::Maybe<double> tightest(kj::StringPtr mount, kj::StringPtr path, Func&& limitAt) {
  kj::Maybe<double> best;
  auto dir = kj::str(path);
  for (;;) {
    KJ_IF_MAYBE(limit, limitAt(kj::str(mount, dir))) {
      KJ_IF_MAYBE(b, best) {
        if (*limit < *b) best = *limit;
      } else {
        best = *limit;
      }
    }
    KJ_IF_MAYBE(slash, dir.findLast('/')) {
      if (dir.size() <= 1) break;
      dir = kj::heapString(dir.begin(), *slash == 0 ? 1 : *slash);
    } else {
      break;
    }
  }
  return best;
}

kj::Maybe<double> readNumber(kj::StringPtr path) {
  KJ_IF_MAYBE(text, readProcFile(path)) {
    if (text->startsWith("max")) return nullptr;
    char* end;
    double value = strtod(text->cStr(), &end);
    if (end != text->cStr()) return value;
  }
  return nullptr;
}

kj::StringPtr unifiedMount(kj::StringPtr root, kj::String& storage) {
  if (exists(kj::str(root, "/cgroup.controllers"))) return root;
  storage = kj::str(root, "/unified");
  return storage;
}

kj::Maybe<double> cgroupCores(pid_t pid, kj::StringPtr root) {
  KJ_IF_MAYBE(path, cgroupPath(pid, "")) {
    kj::String storage;
    auto mount = unifiedMount(root, storage);
    auto cores = tightest(mount, *path, [](kj::String dir) -> kj::Maybe<double> {
      KJ_IF_MAYBE(text, readProcFile(kj::str(dir, "/cpu.max"))) {
        if (text->startsWith("max")) return nullptr;
        char* end;
        double quota = strtod(text->cStr(), &end);
        double period = strtod(end, nullptr);
        if (period > 0) return quota / period;
      }
      return nullptr;
    });
    if (cores != nullptr) return cores;
  }
  for (kj::StringPtr controller: {"cpu", "cpu,cpuacct"}) {
    KJ_IF_MAYBE(path, cgroupPath(pid, "cpu")) {
      auto mount = kj::str(root, "/", controller);
      if (!exists(mount)) continue;
      return tightest(mount, *path, [](kj::String dir) -> kj::Maybe<double> {
        auto quota = readNumber(kj::str(dir, "/cpu.cfs_quota_us"));
        auto period = readNumber(kj::str(dir, "/cpu.cfs_period_us"));
        KJ_IF_MAYBE(q, quota) {
          KJ_IF_MAYBE(p, period) {
            if (*q > 0 && *p > 0) return *q / *p;
          }
        }
        return nullptr;
      });
    }
  }
  return nullptr;
}

kj::Maybe<double> cgroupMemory(pid_t pid, kj::StringPtr root, uint64_t hostBytes) {
  KJ_IF_MAYBE(path, cgroupPath(pid, "")) {
    kj::String storage;
    auto mount = unifiedMount(root, storage);
    auto bytes = tightest(mount, *path, [](kj::String dir) {
      return readNumber(kj::str(dir, "/memory.max"));
    });
    if (bytes != nullptr) return bytes;
  }
  KJ_IF_MAYBE(path, cgroupPath(pid, "memory")) {
    auto bytes = tightest(kj::str(root, "/memory"), *path, [&](kj::String dir) -> kj::Maybe<double> {
      // v1 says "no limit" with a huge number (PAGE_COUNTER_MAX pages).
      KJ_IF_MAYBE(limit, readNumber(kj::str(dir, "/memory.limit_in_bytes"))) {
        if (*limit < static_cast<double>(hostBytes)) return *limit;
      }
      return nullptr;
    });
    if (bytes != nullptr) return bytes;
  }
  return nullptr;
}

uint64_t hostMemoryBytes() {
  KJ_IF_MAYBE(meminfo, readProcFile("/proc/meminfo")) {
    auto kib = statusNumbers(kj::str("\n", *meminfo), "MemTotal");
    if (kib.size() > 0) return static_cast<uint64_t>(kib[0]) * 1024;
  }
  return 0;
}

}  // namespace

Allocation resolveAllocation(double declaredCores, uint64_t declaredMemory, pid_t hostPid,
                             kj::StringPtr cgroupRoot) {
  Allocation allocation;
  uint64_t hostBytes = hostMemoryBytes();
  if (declaredCores > 0) {
    allocation.cpuCores = declaredCores;
    allocation.cpuSource = "declared";
  } else KJ_IF_MAYBE(cores, cgroupCores(hostPid, cgroupRoot)) {
    allocation.cpuCores = *cores;
    allocation.cpuSource = "cgroup";
  } else {
    allocation.cpuCores = sysconf(_SC_NPROCESSORS_ONLN);
    allocation.cpuSource = "host";
  }
  if (declaredMemory > 0) {
    allocation.memoryBytes = declaredMemory;
    allocation.memorySource = "declared";
  } else KJ_IF_MAYBE(bytes, cgroupMemory(hostPid, cgroupRoot, hostBytes)) {
    allocation.memoryBytes = static_cast<uint64_t>(*bytes);
    allocation.memorySource = "cgroup";
  } else {
    allocation.memoryBytes = hostBytes;
    allocation.memorySource = "host";
  }
  return allocation;
}

}  // namespace tracer
