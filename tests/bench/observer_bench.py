"""The observer's cost and its capture, side by side in one run. Prints figures;
asserts nothing (shared, noisy machines).

1. Overhead: each workload run with no sidecar, with the sidecar running but
   the workload not tracked, and tracked (registered before exec). Medians of
   ROUNDS runs, interleaved, and who goes first alternating, so drifting
   machine load hits all three alike; with the cost per context switch.
2. Exec storm: /bin/true as fast as possible, tracked: rate and events lost.
3. Capture: a task whose CPU is spent in short-lived subprocesses, measured
   by Tracer and by what users run today, each in its best configuration:
   a psutil poller at 0.5 s that also reads the CPU of the children the
   process has reaped (children_user, children_system), `pidstat -u -T CHILD`
   at 1 s (the task with its reaped children), and Snakemake's own benchmark
   directive (SNAKEMAKE: its executable; skipped, saying so, without it);
   each against the kernel's rusage of the same run.
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

from compare_observers import context_switches  # noqa: E402
from prefect_tracer.client import SidecarClient  # noqa: E402
from sidecar import WORKLOAD, Sidecar, observe_command  # noqa: E402

ROUNDS = int(os.environ.get("ROUNDS", "5"))
# Which parts to run: overhead, exec, capture (default: all).
SECTIONS = os.environ.get("OBSERVER_SECTIONS", "overhead exec capture").split()
WORKLOADS = {
    "context-switch ping-pong": ["pingpong", "80000"],
    "exec storm (/bin/true)": ["execstorm", "2000"],
    "small-read syscall loop": ["reads", "4000000"],
    "loopback TCP (3 GB)": ["tcp", "3000"],
}


def timed(argv):
    """Wall time, and the workload's own CPU time (user + system, from wait4):
    the hooks run on its threads and are charged to it, while the time it
    waits for a CPU (most of a shared machine's noise) is not."""
    started = time.perf_counter()
    process = subprocess.Popen(argv)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    assert process.returncode == 0, argv
    return time.perf_counter() - started, usage.ru_utime + usage.ru_stime


def timed_tracked(flow, argv):
    started = time.perf_counter()
    report, usage, status = observe_command(flow, argv, "bench")
    assert status == 0
    return time.perf_counter() - started, usage.cpu_ns / 1e9, report


def overhead(directory):
    # name -> how -> [(wall, cpu) of each round]
    times = {name: {"none": [], "untracked": [], "tracked": []} for name in WORKLOADS}
    switches = {name: [] for name in WORKLOADS}  # in the no-sidecar runs

    def without_sidecar():
        for name, args in WORKLOADS.items():
            before = context_switches()
            times[name]["none"].append(timed([str(WORKLOAD), *args]))
            switches[name].append(context_switches() - before)

    for round_ in range(ROUNDS):
        # Who goes first alternates: the first run of a round is often slower.
        if round_ % 2 == 0:
            without_sidecar()
        sidecar = Sidecar(directory, debug=False).start()
        client = SidecarClient(str(sidecar.socket), start_wait_ms=5000, finish_wait_ms=5000,
                               connect_wait_ms=5000)
        with client.flow_run(flow_run_id=f"bench-{time.time_ns()}", flow_name="bench") as flow:
            for name, args in WORKLOADS.items():
                for how in (("untracked", "tracked") if round_ % 4 < 2 else
                            ("tracked", "untracked")):
                    if how == "untracked":
                        times[name][how].append(timed([str(WORKLOAD), *args]))
                    else:
                        times[name][how].append(timed_tracked(flow, [str(WORKLOAD), *args])[:2])
        client.close()
        sidecar.stop()
        if round_ % 2 == 1:
            without_sidecar()
    print(f"== overhead: median of {ROUNDS} interleaved rounds each, {os.cpu_count()} cores, "
          f"kernel {os.uname().release}; ns/switch: the extra time over the context switches "
          f"/proc/stat counted in the no-sidecar runs; cpu: the workload's own user + system "
          f"time, which the hooks are charged to ==")
    print(f"{'workload':<34} {'no sidecar':>11} {'untracked':>11} {'tracked':>11} "
          f"{'untracked/none (rounds)':>25} {'ns/switch':>10} {'tracked/none (rounds)':>23} "
          f"{'ns/switch':>10}")
    for name, runs in times.items():
        per_run = statistics.median(switches[name])
        for measure, index in (("wall", 0), ("cpu", 1)):
            of = {k: [run[index] for run in runs[k]] for k in ("none", "untracked", "tracked")}
            none, untracked, tracked = (statistics.median(of[k])
                                        for k in ("none", "untracked", "tracked"))

            def ratio(how, median):
                # Each round's against its own no-sidecar run: how far rounds spread.
                rounds = [run / alone for run, alone in zip(of[how], of["none"])]
                return f"{median / none:.3f} ({min(rounds):.3f}-{max(rounds):.3f})"

            print(f"{name + ', ' + measure:<34} {none:>10.3f}s {untracked:>10.3f}s "
                  f"{tracked:>10.3f}s {ratio('untracked', untracked):>25} "
                  f"{(untracked - none) / per_run * 1e9:>10.0f} {ratio('tracked', tracked):>23} "
                  f"{(tracked - none) / per_run * 1e9:>10.0f}   ({per_run:,} switches)")


def exec_storm(flow):
    elapsed, _, report = timed_tracked(flow, [str(WORKLOAD), "execstorm", "20000"])
    print("== exec storm, tracked ==")
    print(f"{report['proc']['execs'] - 1} execs in {elapsed:.2f} s = "
          f"{(report['proc']['execs'] - 1) / elapsed:,.0f} execs/s; "
          f"proc.spawned {report['proc']['spawned']}, events.lost {report['events']['lost']}")


def psutil_poller(pid, stop, result):
    """Every 0.5 s, as Snakemake's benchmark directive polls: the process's
    CPU with that of the children it has reaped, and its live descendants'.
    The last complete reading is the answer."""
    import psutil

    try:
        root = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return
    while not stop.is_set():
        try:
            times = root.cpu_times()
            total = times.user + times.system + times.children_user + times.children_system
            for child in root.children(recursive=True):
                try:
                    child_times = child.cpu_times()
                    total += child_times.user + child_times.system
                except psutil.NoSuchProcess:
                    pass  # reaped meanwhile: in children_* at the next reading
            result["psutil"] = total
        except psutil.NoSuchProcess:
            break
        time.sleep(0.5)


CAPTURE = ["spawn", "400", "5", "15"]  # 400 subprocesses of 5-15 ms


def snakemake_capture():
    """The same workload as a Snakemake rule with a `benchmark:` directive: its
    cpu_time column against the kernel's rusage of that run (the workload
    under a wrapper that reports its children's)."""
    snakemake = os.environ.get("SNAKEMAKE")
    if not snakemake:
        return None
    with tempfile.TemporaryDirectory() as work:
        rusage = Path(work) / "rusage"
        (Path(work) / "wrapper.py").write_text(
            "import resource, subprocess\n"
            f"subprocess.run({[str(Path(WORKLOAD).resolve()), *CAPTURE]!r}, check=True)\n"
            "children = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
            "own = resource.getrusage(resource.RUSAGE_SELF)\n"
            f"open({str(rusage)!r}, 'w').write(str(children.ru_utime + children.ru_stime"
            " + own.ru_utime + own.ru_stime))\n")
        (Path(work) / "Snakefile").write_text(
            "rule capture:\n"
            "    output: 'done'\n"
            "    benchmark: 'benchmark.tsv'\n"
            f"    shell: '{sys.executable} wrapper.py && touch {{output}}'\n")
        ran = subprocess.run([snakemake, "--cores", "1", "--quiet", "--directory", work,
                              "--snakefile", str(Path(work) / "Snakefile")],
                             capture_output=True, text=True)
        assert ran.returncode == 0, ran.stdout + ran.stderr
        header, values = (Path(work) / "benchmark.tsv").read_text().splitlines()[:2]
        row = dict(zip(header.split("\t"), values.split("\t")))
        return float(row["cpu_time"]), float(rusage.read_text())


def capture(flow):
    pollers, seen = {}, {}
    stop = threading.Event()
    pidstat_out = tempfile.TemporaryFile(mode="w+")

    def start_watchers(pid):
        pollers["psutil"] = threading.Thread(target=psutil_poller, args=(pid, stop, seen))
        pollers["psutil"].start()
        pollers["pidstat"] = subprocess.Popen(["pidstat", "-u", "-T", "CHILD", "-p", str(pid),
                                               "1"],
                                              stdout=pidstat_out, text=True,
                                              env=dict(os.environ, LC_ALL="C"))

    report, usage, status = observe_command(flow, [str(WORKLOAD), *CAPTURE], "capture",
                                             before_exec=start_watchers)
    stop.set()
    pollers["psutil"].join()
    pollers["pidstat"].terminate()
    pollers["pidstat"].wait()
    pidstat_out.seek(0)
    pidstat_cpu = 0.0
    for line in pidstat_out:
        # time UID PID usr-ms system-ms guest-ms Command: each interval's own
        fields = line.split()
        if len(fields) == 7 and fields[2].isdigit() and fields[3].isdigit():
            pidstat_cpu += (int(fields[3]) + int(fields[4])) / 1000.0
    truth = usage.cpu_ns / 1e9
    ours = (report["cpu"]["user_ns"] + report["cpu"]["system_ns"]) / 1e9
    print(f"== capture: CPU of a task spent in {CAPTURE[1]} subprocesses of "
          f"{CAPTURE[2]}-{CAPTURE[3]} ms ==")
    print(f"{'observer':<52} {'CPU seen':>9} {'true CPU':>9} {'share':>8}")
    rows = [("tracer (bpf)", ours, truth),
            ("psutil poller, 0.5 s, with children_user/system", seen.get("psutil", 0), truth),
            ("pidstat -u -T CHILD, 1 s", pidstat_cpu, truth)]
    snakemake = snakemake_capture()
    for name, seen, real in rows + ([("snakemake benchmark: cpu_time", *snakemake)]
                                     if snakemake else []):
        print(f"{name:<52} {seen:8.3f}s {real:8.3f}s {seen / real:8.1%}")
    if snakemake is None:
        print("snakemake benchmark: not run (set SNAKEMAKE to its executable; "
              "tests/bench/run.sh installs it)")


def main():
    import faulthandler
    faulthandler.dump_traceback_later(int(os.environ.get("BENCH_TRACEBACK_AFTER", "100000")))
    print(f"settings: ROUNDS={ROUNDS} OBSERVER_SECTIONS=\"{' '.join(SECTIONS)}\" "
          f"SNAKEMAKE={os.environ.get('SNAKEMAKE', '')}; {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as directory:
        if "overhead" in SECTIONS:
            overhead(Path(directory))
        sidecar = Sidecar(Path(directory), debug=False).start()
        client = SidecarClient(str(sidecar.socket), start_wait_ms=5000, finish_wait_ms=5000,
                               connect_wait_ms=5000)
        with client.flow_run(flow_run_id="bench-capture", flow_name="bench") as flow:
            if "exec" in SECTIONS:
                exec_storm(flow)
            if "capture" in SECTIONS:
                capture(flow)
        client.close()
        sidecar.stop()


if __name__ == "__main__":
    main()
