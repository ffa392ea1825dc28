// The heap's freed pages go back to the kernel: the pages of blocks freed
// between blocks still in use, which free() alone keeps.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "ops/freed_memory.h"

namespace {

// This process's anonymous resident memory, in bytes.
long residentAnonymous() {
  std::ifstream status("/proc/self/status");
  std::string field;
  long kib = -1;
  while (status >> field) {
    if (field == "RssAnon:") status >> kib;
  }
  return kib * 1024;
}

}  // namespace

TEST_CASE("freed blocks below blocks in use go back to the kernel, and only past the bound") {
  constexpr size_t BLOCK = 1024, BLOCKS = 64 * 1024;  // 64 MiB
  std::vector<void*> blocks(BLOCKS);
  for (auto& block: blocks) {
    block = malloc(BLOCK);
    for (size_t at = 0; at < BLOCK; at += 64) static_cast<volatile char*>(block)[at] = 1;
  }
  // Every 16th kept: 60 MiB free, none of it at the top of the heap.
  for (size_t i = 0; i < BLOCKS; ++i) {
    if (i % 16 != 0) free(blocks[i]);
  }
  CHECK_FALSE(tracer::returnFreedMemory(size_t(1) << 40));  // not that much free
  long before = residentAnonymous();
  CHECK(tracer::returnFreedMemory(8 << 20));
  long after = residentAnonymous();
  CHECK(before - after >= 32l << 20);
  for (size_t i = 0; i < BLOCKS; i += 16) free(blocks[i]);
}
