#pragma once
// A directory of its own under /tmp for a test's state files, removed with
// everything in it afterwards.

#include <stdlib.h>

#include <string>

namespace tracer::testing {

struct TempDirectory {
  TempDirectory() {
    char pattern[] = "/tmp/tracer-unit-XXXXXX";
    path = mkdtemp(pattern);
  }
  ~TempDirectory() { (void)system(("rm -rf '" + path + "'").c_str()); }
  std::string file(const char* name) const { return path + "/" + name; }

  std::string path;
};

}  // namespace tracer::testing
