// Attaches timing_floor.bpf.c, a program that does nothing, and keeps it
// attached until killed (tests/bench/program_costs.sh): its cost a run is the
// floor every timed program pays.
#include <cstdio>
#include <unistd.h>

#include "timing_floor.skel.h"

int main() {
  timing_floor_bpf* skeleton = timing_floor_bpf__open_and_load();
  if (skeleton == nullptr || timing_floor_bpf__attach(skeleton) != 0) {
    fprintf(stderr, "timing_floor: cannot load or attach its program (root? tp_btf?)\n");
    return 1;
  }
  puts("attached");
  fflush(stdout);
  pause();  // detached by the kernel when the process dies
}
