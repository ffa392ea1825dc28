"""The observer's cost and its capture, side by side in one run. Prints figures;
asserts nothing (shared, noisy machines).

1. Overhead: each workload run with no sidecar, with the sidecar running but
   the workload not tracked, and tracked (registered before exec). Medians of
   ROUNDS runs, interleaved so drifting machine load hits all three alike.
2. Exec storm: /bin/true as fast as possible, tracked: rate and events lost.
3. Capture: a task whose CPU is spent in short-lived subprocesses, measured by
   Tracer, by a psutil poller at 0.5 s (as Snakemake's benchmark directive
   does) and by pidstat at 1 s, against the kernel's rusage from wait4.
"""

import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))

from prefect_tracer.client import SidecarClient  # noqa: E402
from sidecar import WORKLOAD, Sidecar, observe_command  # noqa: E402

ROUNDS = int(os.environ.get("ROUNDS", "5"))
WORKLOADS = {
    "context-switch ping-pong": ["pingpong", "80000"],
    "exec storm (/bin/true)": ["execstorm", "2000"],
    "small-read syscall loop": ["reads", "4000000"],
    "loopback TCP (3 GB)": ["tcp", "3000"],
}


def timed(argv):
    started = time.perf_counter()
    subprocess.run(argv, check=True)
    return time.perf_counter() - started


def timed_tracked(flow, argv):
    started = time.perf_counter()
    report, _, status = observe_command(flow, argv, "bench")
    assert status == 0
    return time.perf_counter() - started, report


def overhead(directory):
    times = {name: {"none": [], "untracked": [], "tracked": []} for name in WORKLOADS}
    for _ in range(ROUNDS):
        for name, args in WORKLOADS.items():
            times[name]["none"].append(timed([str(WORKLOAD), *args]))
        sidecar = Sidecar(directory).start()
        client = SidecarClient(str(sidecar.socket), start_wait_ms=5000, finish_wait_ms=5000,
                               connect_wait_ms=5000)
        with client.flow_run(flow_run_id=f"bench-{time.time_ns()}", flow_name="bench") as flow:
            for name, args in WORKLOADS.items():
                times[name]["untracked"].append(timed([str(WORKLOAD), *args]))
                elapsed, _ = timed_tracked(flow, [str(WORKLOAD), *args])
                times[name]["tracked"].append(elapsed)
        client.close()
        sidecar.stop()
    print(f"== overhead: median of {ROUNDS} runs each ==")
    print(f"{'workload':<28} {'no sidecar':>11} {'untracked':>11} {'tracked':>11} "
          f"{'tracked/none':>13} {'untracked/none':>15}")
    for name, runs in times.items():
        none, untracked, tracked = (statistics.median(runs[k])
                                    for k in ("none", "untracked", "tracked"))
        print(f"{name:<28} {none:>10.3f}s {untracked:>10.3f}s {tracked:>10.3f}s "
              f"{tracked / none:>13.3f} {untracked / none:>15.3f}")


def exec_storm(flow):
    elapsed, report = timed_tracked(flow, [str(WORKLOAD), "execstorm", "20000"])
    print("== exec storm, tracked ==")
    print(f"{report['proc']['execs'] - 1} execs in {elapsed:.2f} s = "
          f"{(report['proc']['execs'] - 1) / elapsed:,.0f} execs/s; "
          f"proc.spawned {report['proc']['spawned']}, events.lost {report['events']['lost']}")


def psutil_poller(pid, stop, result):
    """Snakemake-style: every 0.5 s, user+system of the process and its live
    descendants; the last value seen per pid is summed."""
    import psutil

    last = {}
    try:
        root = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return
    while not stop.is_set():
        try:
            for proc in [root] + root.children(recursive=True):
                try:
                    times = proc.cpu_times()
                    last[proc.pid] = times.user + times.system
                except psutil.NoSuchProcess:
                    pass
        except psutil.NoSuchProcess:
            break
        time.sleep(0.5)
    result["psutil"] = sum(last.values())


def capture(flow):
    pollers = {}
    stop = threading.Event()
    pidstat_out = tempfile.TemporaryFile(mode="w+")

    def start_watchers(pid):
        pollers["psutil"] = threading.Thread(target=psutil_poller, args=(pid, stop, pollers))
        pollers["psutil"].start()
        pollers["pidstat"] = subprocess.Popen(["pidstat", "-u", "-p", str(pid), "1"],
                                              stdout=pidstat_out, text=True,
                                              env=dict(os.environ, LC_ALL="C"))

    report, usage, status = observe_command(flow, [str(WORKLOAD), "spawn", "400", "5", "15"],
                                             "capture", before_exec=start_watchers)
    stop.set()
    pollers["psutil"].join()
    pollers["pidstat"].terminate()
    pollers["pidstat"].wait()
    pidstat_out.seek(0)
    pidstat_cpu = 0.0
    for line in pidstat_out:
        fields = line.split()
        if len(fields) >= 9 and fields[-1] == "test_workload" and fields[2].isdigit():
            pidstat_cpu += float(fields[-3]) / 100.0  # %CPU over a 1 s interval
    truth = usage.cpu_ns / 1e9
    ours = (report["cpu"]["user_ns"] + report["cpu"]["system_ns"]) / 1e9
    print("== capture: CPU of a task spent in 400 subprocesses of 5-15 ms ==")
    print(f"kernel rusage (wait4)     {truth:8.3f} s")
    for name, seen in [("tracer (bpf)", ours), ("psutil poller, 0.5 s", pollers.get("psutil", 0)),
                       ("pidstat -u, 1 s", pidstat_cpu)]:
        print(f"{name:<25} {seen:8.3f} s  = {seen / truth:7.1%} of the true CPU time")


def main():
    import faulthandler
    faulthandler.dump_traceback_later(int(os.environ.get("BENCH_TRACEBACK_AFTER", "100000")))
    with tempfile.TemporaryDirectory() as directory:
        overhead(Path(directory))
        sidecar = Sidecar(Path(directory)).start()
        client = SidecarClient(str(sidecar.socket), start_wait_ms=5000, finish_wait_ms=5000,
                               connect_wait_ms=5000)
        with client.flow_run(flow_run_id="bench-capture", flow_name="bench") as flow:
            exec_storm(flow)
            capture(flow)
        client.close()
        sidecar.stop()


if __name__ == "__main__":
    main()
