// What the sidecar reads from a task's kernel counters (bpf/task_state.h).

#include <catch2/catch.hpp>

#include <climits>

#include "task_state.h"

TEST_CASE("a task's live process count that went below zero reads as none alive") {
  task_counters counters{};
  counters.spawned = 3;
  counters.live_processes = 2;
  CHECK(processes_alive(&counters) == 2);
  counters.live_processes = 3;
  CHECK(processes_alive(&counters) == 3);
  // Two exits past the kernel's check, the count at 1: 1 - 2.
  counters.live_processes = ULLONG_MAX;
  CHECK(processes_alive(&counters) == 0);
}
