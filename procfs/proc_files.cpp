#include "proc_files.h"

#include <dirent.h>
#include <fcntl.h>
#include <kj/io.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <ctime>

namespace tracer {

kj::Maybe<kj::String> readProcFile(kj::StringPtr path) {
  int fd = open(path.cStr(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return nullptr;
  kj::AutoCloseFd owned(fd);
  kj::Vector<char> text(1024);
  char buffer[4096];
  ssize_t n;
  while ((n = read(fd, buffer, sizeof(buffer))) > 0) text.addAll(buffer, buffer + n);
  if (n < 0) return nullptr;
  text.add('\0');
  return kj::String(text.releaseAsArray());
}

kj::Vector<long> statusNumbers(kj::StringPtr status, kj::StringPtr key) {
  kj::Vector<long> numbers;
  auto needle = kj::str("\n", key, ":");
  const char* found = strstr(status.cStr(), needle.cStr());
  if (found == nullptr) return numbers;
  const char* p = found + needle.size();
  for (;;) {
    while (*p == ' ' || *p == '\t') ++p;
    char* end;
    long value = strtol(p, &end, 10);
    if (end == p) break;
    numbers.add(value);
    p = end;
  }
  return numbers;
}

namespace {

uint64_t field(kj::StringPtr text, kj::StringPtr key) {
  const char* found = strstr(text.cStr(), key.cStr());
  return found == nullptr ? 0 : strtoull(found + key.size(), nullptr, 10);
}

// Two consecutive tick counts of the text of a .../stat file, from field `first` on.
kj::Maybe<CpuTicks> ticksIn(kj::StringPtr stat, int first) {
  // Fields after the command name, which may itself hold spaces and ')'.
  KJ_IF_MAYBE(close, stat.findLast(')')) {
    const char* p = stat.cStr() + *close + 2;
    for (int i = 3; i < first; ++i) {
      p = strchr(p, ' ');
      if (p == nullptr) return nullptr;
      ++p;
    }
    char* next;
    CpuTicks ticks;
    ticks.utime = strtoull(p, &next, 10);
    ticks.stime = strtoull(next, nullptr, 10);
    return ticks;
  }
  return nullptr;
}

kj::Maybe<CpuTicks> ticksAt(kj::StringPtr path, int first) {
  KJ_IF_MAYBE(stat, readProcFile(path)) { return ticksIn(*stat, first); }
  return nullptr;
}

}  // namespace

void parseCounters(kj::StringPtr schedstat, kj::StringPtr io, ThreadCounters& c) {
  char* end;
  c.runtimeNs = strtoull(schedstat.cStr(), &end, 10);
  c.runDelayNs = strtoull(end, nullptr, 10);
  c.rchar = field(io, "rchar: ");
  c.wchar = field(io, "wchar: ");
  c.readBytes = field(io, "read_bytes: ");
  c.writeBytes = field(io, "write_bytes: ");
}

kj::Maybe<ThreadCounters> readThreadCounters(pid_t tgid, pid_t tid) {
  auto base = kj::str("/proc/", tgid, "/task/", tid);
  KJ_IF_MAYBE(schedstat, readProcFile(kj::str(base, "/schedstat"))) {
    KJ_IF_MAYBE(io, readProcFile(kj::str(base, "/io"))) {
      ThreadCounters c{};
      parseCounters(*schedstat, *io, c);
      return c;
    }
  }
  return nullptr;
}

uint64_t clockTickNs() { return 1000000000 / sysconf(_SC_CLK_TCK); }

kj::Maybe<CpuTicks> readCpuTicks(pid_t tgid, pid_t tid) {
  return ticksAt(kj::str("/proc/", tgid, "/task/", tid, "/stat"), 14);  // utime, stime
}

kj::Maybe<CpuTicks> readReapedChildrenTicks(pid_t tgid) {
  return ticksAt(kj::str("/proc/", tgid, "/stat"), 16);  // cutime, cstime
}

kj::Maybe<uint64_t> readStartBoottimeNs(pid_t pid) {
  KJ_IF_MAYBE(start, ticksAt(kj::str("/proc/", pid, "/stat"), 22)) {  // starttime, vsize
    return start->utime * clockTickNs();
  }
  return nullptr;
}

kj::Maybe<uint64_t> readVoluntarySwitches(pid_t tid) {
  KJ_IF_MAYBE(status, readProcFile(kj::str("/proc/", tid, "/status"))) {
    auto switches = statusNumbers(*status, "voluntary_ctxt_switches");
    if (switches.size() > 0) return uint64_t(switches[0]);
  }
  return nullptr;
}

kj::Maybe<uint64_t> readHiwaterBytes(pid_t pid) {
  KJ_IF_MAYBE(status, readProcFile(kj::str("/proc/", pid, "/status"))) {
    auto kib = statusNumbers(*status, "VmHWM");
    if (kib.size() > 0) return uint64_t(kib[0]) * 1024;
  }
  return nullptr;
}

kj::Maybe<uint64_t> readRuntimeNs(pid_t tid) {
  KJ_IF_MAYBE(schedstat, readProcFile(kj::str("/proc/", tid, "/schedstat"))) {
    return strtoull(schedstat->cStr(), nullptr, 10);
  }
  return nullptr;
}

kj::Maybe<ProcessMemory> readProcessMemory(pid_t pid) {
  KJ_IF_MAYBE(status, readProcFile(kj::str("/proc/", pid, "/status"))) {
    auto rss = statusNumbers(*status, "VmRSS");
    auto hiwater = statusNumbers(*status, "VmHWM");
    return ProcessMemory{rss.size() > 0 ? uint64_t(rss[0]) * 1024 : 0,
                         hiwater.size() > 0 ? uint64_t(hiwater[0]) * 1024 : 0};
  }
  return nullptr;
}

kj::Maybe<CpuTicks> readProcessTreeTicks(pid_t pid) {
  KJ_IF_MAYBE(stat, readProcFile(kj::str("/proc/", pid, "/stat"))) {
    KJ_IF_MAYBE(own, ticksIn(*stat, 14)) {       // utime, stime
      KJ_IF_MAYBE(reaped, ticksIn(*stat, 16)) {  // cutime, cstime
        return CpuTicks{own->utime + reaped->utime, own->stime + reaped->stime};
      }
    }
  }
  return nullptr;
}

kj::Maybe<kj::Vector<pid_t>> readChildPids(pid_t pid) {
  auto tasks = kj::str("/proc/", pid, "/task");
  DIR* dir = opendir(tasks.cStr());
  if (dir == nullptr) return nullptr;
  KJ_DEFER(closedir(dir));
  kj::Vector<pid_t> children;
  bool listed = false;
  while (auto* entry = readdir(dir)) {
    if (entry->d_name[0] < '0' || entry->d_name[0] > '9') continue;
    KJ_IF_MAYBE(text, readProcFile(kj::str(tasks, "/", entry->d_name, "/children"))) {
      listed = true;
      const char* p = text->cStr();
      char* end;
      for (long child = strtol(p, &end, 10); end != p; child = strtol(p, &end, 10)) {
        children.add(static_cast<pid_t>(child));
        p = end;
      }
    }
  }
  if (!listed) return nullptr;
  return kj::mv(children);
}

}  // namespace tracer
