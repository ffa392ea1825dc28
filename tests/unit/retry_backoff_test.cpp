// The delivery's retry waits: their range, and that sidecars started alike
// (the same binary, the same state) do not retry in lockstep.

#include <catch2/catch.hpp>
#include <kj/debug.h>
#include <sys/wait.h>
#include <unistd.h>

#include <vector>

#include "prefect/retry_backoff.h"

using namespace tracer;

namespace {

constexpr size_t DRAWS = 8;
constexpr int64_t SECOND_NS = 1000000000;

// The waits a freshly started process draws, made in a child forked from
// this one: every child starts from the same memory, as every node's sidecar
// starts from the same binary.
std::vector<int64_t> drawsOfAFreshProcess() {
  int pipeEnds[2];
  KJ_SYSCALL(pipe(pipeEnds));
  pid_t child;
  KJ_SYSCALL(child = fork());
  if (child == 0) {
    close(pipeEnds[0]);
    RetryBackoff backoff;
    int64_t waits[DRAWS];
    for (auto& wait: waits) wait = backoff.delayNs(6);
    bool written = write(pipeEnds[1], waits, sizeof(waits)) == ssize_t(sizeof(waits));
    _exit(written ? 0 : 1);
  }
  close(pipeEnds[1]);
  std::vector<int64_t> waits(DRAWS);
  ssize_t got = read(pipeEnds[0], waits.data(), DRAWS * sizeof(int64_t));
  close(pipeEnds[0]);
  int status = 0;
  KJ_SYSCALL(waitpid(child, &status, 0));
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
  REQUIRE(got == ssize_t(DRAWS * sizeof(int64_t)));
  return waits;
}

}  // namespace

TEST_CASE("a retry waits between half and all of a backoff doubling from 1 s to 60 s") {
  RetryBackoff backoff;
  for (int i = 0; i < 100; ++i) {
    auto first = backoff.delayNs(0);
    CHECK(first >= SECOND_NS / 2);
    CHECK(first <= SECOND_NS);
    auto third = backoff.delayNs(2);
    CHECK(third >= 2 * SECOND_NS);
    CHECK(third <= 4 * SECOND_NS);
    auto late = backoff.delayNs(40);
    CHECK(late >= 30 * SECOND_NS);
    CHECK(late <= 60 * SECOND_NS);
  }
}

TEST_CASE("two sidecars started alike draw different retry waits") {
  // Each wait is one of 30e9 values: equal sequences mean a shared seed.
  CHECK(drawsOfAFreshProcess() != drawsOfAFreshProcess());
}
