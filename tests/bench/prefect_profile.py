"""Where the sidecar's CPU goes in a real Prefect: the bench's flow of 1,000
no-op tasks (prefect_bench_flows.py) runs RUNS times with the plugin against a
real `prefect server start` and a real sidecar, first alone, then while perf
records the sidecar's calls (DWARF unwinding) and counts its system calls.
Prints, per task, the sidecar's CPU in both (perf's unwinding is charged to
the sidecar), its wake-ups and preemptions (/proc/PID/task/*/status), its
system calls, then the share of its samples under each stage
(sidecar_stages.awk). Needs perf (Debian: linux-perf); asserts nothing.

  TRACER_BUILD_DIR=build RUNS=3 build/venv/prefect-3.9.1-otel-1.45.2/bin/python \\
      tests/bench/prefect_profile.py
"""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "support"))
sys.path.insert(0, str(HERE))

from prefect_bench import run  # noqa: E402
from prefect_server import PrefectServer  # noqa: E402
from process_usage import context_switches, cpu_seconds  # noqa: E402
from sidecar import Sidecar  # noqa: E402

RUNS = int(os.environ.get("RUNS", "3"))
FLOW = "noop-1000"
COUNTED = ("raw_syscalls:sys_enter", "syscalls:sys_enter_bpf")


def counts(path):
    """perf stat's CSV (-x,): event name -> count."""
    found = {}
    for line in path.read_text().splitlines():
        fields = line.split(",")
        if len(fields) > 2 and fields[0].isdigit():
            found[fields[2]] = int(fields[0])
    return found


def measured(server, sidecar, env):
    """The flow bodies' seconds, and per task over RUNS runs: the sidecar's CPU
    seconds and its (voluntary, involuntary) context switches."""
    pid = sidecar.process.pid
    tasks_before = sidecar.status()["finished_tasks"]
    cpu_before, switches_before = cpu_seconds(pid), context_switches(pid)
    bodies = [run(server, FLOW, **env)[2] for _ in range(RUNS)]
    server.wait_idle()  # the last flow run's artifacts are built and sent
    cpu = cpu_seconds(pid) - cpu_before
    tasks = max(sidecar.status()["finished_tasks"] - tasks_before, 1)
    per_task = [(after - before) / tasks
                for after, before in zip(context_switches(pid), switches_before)]
    return bodies, cpu / tasks, per_task, tasks


def main():
    if shutil.which("perf") is None:
        raise SystemExit(f"{sys.argv[0]}: needs perf (apt-get install linux-perf)")
    with tempfile.TemporaryDirectory(prefix="tracer-prefect-profile-") as work:
        work = Path(work)
        server = PrefectServer(work).start()
        sidecar = Sidecar(work / "sidecar", debug=False).start()
        env = {"PREFECT_PLUGINS_ENABLED": "true", "TRACER_SOCKET": str(sidecar.socket)}
        perf = []
        try:
            run(server, FLOW, **env)  # the server, the page cache and the history warm
            alone = measured(server, sidecar, env)
            pid = str(sidecar.process.pid)
            perf.append(subprocess.Popen(
                ["perf", "record", "-F", "2000", "--call-graph", "dwarf,16384", "-p", pid,
                 "-o", str(work / "perf.data")], stderr=subprocess.DEVNULL))
            perf.append(subprocess.Popen(
                ["perf", "stat", "-x,", "-e", ",".join(COUNTED), "-o", str(work / "calls.csv"),
                 "-p", pid]))
            profiled = measured(server, sidecar, env)
        finally:
            for process in perf:  # SIGINT: perf writes what it has and exits
                process.send_signal(signal.SIGINT)
                process.wait()
            sidecar.stop()
            server.stop()
        report = subprocess.run(
            ["perf", "report", "-i", str(work / "perf.data"), "--children", "--sort", "symbol",
             "-g", "none", "--stdio"], capture_output=True, text=True).stdout
        stages = subprocess.run(["awk", "-f", str(HERE / "sidecar_stages.awk")], input=report,
                                capture_output=True, text=True, check=True).stdout
        calls = counts(work / "calls.csv")
    import prefect
    print(f"== the sidecar in a real Prefect {prefect.__version__}: {RUNS} runs of {FLOW} with "
          f"the plugin, {os.cpu_count()} cores, kernel {os.uname().release}, perf at 2 kHz ==")
    for what, (bodies, cpu, (woken, preempted), tasks) in (("alone", alone),
                                                           ("under perf", profiled)):
        print(f"  {what:10} flow bodies {' '.join(f'{b:.2f}' for b in sorted(bodies))} s; per "
              f"task of {tasks}: sidecar CPU {cpu * 1e6:.0f} us, {woken:.2f} sleeps ended by a "
              f"wake-up, {preempted:.2f} preemptions")
    tasks = profiled[3]
    print(f"  under perf, per task: {calls.get(COUNTED[0], 0) / tasks:.1f} system calls, of "
          f"which bpf() {calls.get(COUNTED[1], 0) / tasks:.1f}")
    print(stages, end="")


if __name__ == "__main__":
    main()
