#pragma once
// A small tmpfs of a test's own (mounting it takes root, as the suite runs),
// that fill() fills to the last byte and makeRoom() empties again: what a
// state directory on a full disk sees (ENOSPC, SQLite's SQLITE_FULL).

#include <fcntl.h>
#include <sys/mount.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "temp_directory.h"

namespace tracer::testing {

struct FullDisk {
  explicit FullDisk(size_t bytes) {
    auto options = "size=" + std::to_string(bytes);
    bool mounted = mount("tmpfs", where.path.c_str(), "tmpfs", 0, options.c_str()) == 0;
    INFO("mounting a tmpfs needs root: " << strerror(errno));
    REQUIRE(mounted);
  }
  ~FullDisk() { umount2(where.path.c_str(), MNT_DETACH); }

  std::string file(const char* name) const { return where.file(name); }

  // Writes a filler file until the tmpfs has no byte left.
  void fill() {
    int fd = open(file("filler").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    REQUIRE(fd >= 0);
    std::vector<char> block(4096, 'x');
    for (size_t size = block.size(); size > 0;) {
      if (write(fd, block.data(), size) < 0) size /= 2;
    }
    close(fd);
  }
  void makeRoom() { unlink(file("filler").c_str()); }

  TempDirectory where;
};

}  // namespace tracer::testing
