"""What the kernel observer costs on the context-switch path, two builds side
by side in one run: the pipe ping-pong (tests/workloads, every round trip two
sleeps and two wake-ups; or WORKLOAD, e.g. "execstorm 2000" for page faults
and exits) with no sidecar, with each build's sidecar running and the
workload not tracked, and tracked. Rounds interleave the builds, and
who goes first rotates, so drifting machine load hits all alike. Prints medians, each against no
sidecar, and the cost per context switch in nanoseconds (the extra time over
the context switches /proc/stat counted in the no-sidecar runs).

    compare_observers.py BUILD_A BUILD_B      ROUNDS (default 5), WORKLOAD ("pingpong 80000")
"""

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))

# sidecar first: it puts the plugin on sys.path.
from sidecar import WORKLOAD, Sidecar, observe_command  # noqa: E402
from prefect_tracer.client import SidecarClient  # noqa: E402

ROUNDS = int(os.environ.get("ROUNDS", "5"))
WORKLOAD_ARGS = os.environ.get("WORKLOAD", "pingpong 80000").split()
COMMAND = [str(WORKLOAD), *WORKLOAD_ARGS]


def context_switches() -> int:
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("ctxt "):
            return int(line.split()[1])
    raise RuntimeError("no ctxt line in /proc/stat")


def untracked() -> float:
    started = time.perf_counter()
    subprocess.run(COMMAND, check=True)
    return time.perf_counter() - started


def main() -> None:
    builds = [Path(arg).resolve() for arg in sys.argv[1:3]]
    if len(builds) != 2:
        raise SystemExit(__doc__)
    runs = {"none": []}
    for build in builds:
        runs[f"{build} untracked"], runs[f"{build} tracked"] = [], []
    switches = []
    with tempfile.TemporaryDirectory(prefix="compare-observers-") as work:
        for round_ in range(ROUNDS):
            # Who goes first rotates: the first run of a round is often slower.
            order = [None, *builds]
            order = order[round_ % 3:] + order[:round_ % 3]
            for build in order:
                if build is None:
                    before = context_switches()
                    runs["none"].append(untracked())
                    switches.append(context_switches() - before)
                    continue
                sidecar = Sidecar(Path(work) / f"{round_}-{build.name}",
                                  binary=build / "bin" / "tracer-sidecar", debug=False).start()
                client = SidecarClient(str(sidecar.socket), start_wait_ms=5000,
                                       finish_wait_ms=5000, connect_wait_ms=5000)
                with client.flow_run(flow_run_id=f"bench-{time.time_ns()}",
                                     flow_name="bench") as flow:
                    runs[f"{build} untracked"].append(untracked())
                    started = time.perf_counter()
                    observe_command(flow, COMMAND, WORKLOAD_ARGS[0])
                    runs[f"{build} tracked"].append(time.perf_counter() - started)
                client.close()
                sidecar.stop()
    none = statistics.median(runs["none"])
    per_run = statistics.median(switches)
    print(f"== {' '.join(WORKLOAD_ARGS)}, median of {ROUNDS} interleaved "
          f"rounds, {os.cpu_count()} cores, kernel {os.uname().release} ==")
    print(f"{'':<52} {'seconds':>8} {'x none':>7} {'ns/switch':>10}")
    print(f"{'no sidecar':<52} {none:>8.3f} {1:>7.3f} {'':>10}   "
          f"({per_run:,} context switches)")
    for name, times in runs.items():
        if name == "none":
            continue
        median = statistics.median(times)
        print(f"{name:<52} {median:>8.3f} {median / none:>7.3f} "
              f"{(median - none) / per_run * 1e9:>10.0f}")
    # Against no sidecar a running one can even come out faster (the hooks
    # change where the two processes run); tracked against untracked, under
    # the same sidecar, is the cost of following a thread.
    for build in builds:
        tracked = statistics.median(runs[f"{build} tracked"])
        bare = statistics.median(runs[f"{build} untracked"])
        print(f"{build}: tracked over untracked {tracked / bare:.3f}, "
              f"{(tracked - bare) / per_run * 1e9:.0f} ns per switch")


if __name__ == "__main__":
    main()
