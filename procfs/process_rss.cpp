#include "process_rss.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>

#include <kj/string.h>

namespace tracer {

namespace {

// statm's second field, resident pages, in bytes; nullptr if the read fails.
kj::Maybe<uint64_t> readStatm(int fd) {
  char text[128];
  ssize_t n = pread(fd, text, sizeof(text) - 1, 0);
  if (n <= 0) return nullptr;
  text[n] = '\0';
  char* end;
  strtoull(text, &end, 10);  // size
  return strtoull(end, nullptr, 10) * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
}

}  // namespace

kj::Maybe<uint64_t> ProcessRss::bytesOf(pid_t pid) {
  KJ_IF_MAYBE(fd, kept.find(pid)) {
    auto bytes = readStatm(fd->get());
    if (bytes == nullptr) kept.erase(pid);  // gone: its pid may be another's now
    return bytes;
  }
  int fd = open(kj::str("/proc/", pid, "/statm").cStr(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return nullptr;
  kj::AutoCloseFd owned(fd);
  auto bytes = readStatm(fd);
  if (bytes != nullptr) {
    if (kept.size() >= KEPT_OPEN_MOST) {
      pid_t evicted = kept.begin()->key;
      kept.erase(evicted);
    }
    kept.insert(pid, kj::mv(owned));
  }
  return bytes;
}

}  // namespace tracer
