"""The sidecar's footprint, idle and under load. Prints figures; asserts nothing
(shared, noisy machines).

    load_bench.py [BUILD_DIR]
    LOAD_SECONDS (default 60), IDLE_SECONDS (default 10), CLIENTS (50), TASKS (20 per client)

1. Idle: a sidecar started as run.sh starts it (no --debug), nothing connected:
   its CPU (utime+stime from /proc/PID/stat, % of one core) over IDLE_SECONDS
   (with the nanosecond figure from /proc/PID/task/*/schedstat beside it: a
   10 ms tick is 0.1 % of 10 s), its VmRSS and VmHWM (/proc/PID/status), and
   how much of the RSS is file pages (RssFile: the binary and the shared
   libraries it touched, shared with other processes that map them).
2. Load: CLIENTS Python processes, each holding TASKS live tasks (one per
   thread: 50 x 20 = 1,000 live), each task's thread working in short bursts so
   BPF events flow (CPU, a small file written and read back, now and then a
   /bin/true subprocess); after the ramp every thread cycles: it finishes its
   task after 4-12 s and starts the next one, and each client's flow run
   rotates every 20 s (tests/support/load_clients.py). For LOAD_SECONDS: the
   sidecar's CPU % and VmRSS sampled every second, latency measured by the
   clients around SidecarClient's start_task() (one-way, as the plugin's: JSON,
   the binding, the thread's own reading and the hand-off) and around finish() plus
   reading the report (the Cap'n Proto round trip), p50/p99 over every call in
   the window, errors, the sidecar's events_lost, and the tasks whose reports
   have fields unknown because they did something before their registration
   reached the sidecar.
"""

import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

if len(sys.argv) > 1:
    os.environ["TRACER_BUILD_DIR"] = sys.argv[1]
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))

# sidecar first: it puts the plugin on sys.path.
from sidecar import SIDECAR, accepts_connections, python_env, wait_until  # noqa: E402
from process_usage import cpu_seconds  # noqa: E402
from load_clients import LoadClients, percentile  # noqa: E402
from prefect_tracer.client import SidecarClient  # noqa: E402

LOAD_SECONDS = float(os.environ.get("LOAD_SECONDS", "60"))
IDLE_SECONDS = float(os.environ.get("IDLE_SECONDS", "10"))
CLIENTS = int(os.environ.get("CLIENTS", "50"))
TASKS = int(os.environ.get("TASKS", "20"))
MIB = 1024 * 1024
# How long the observer's status calls may wait: behind 10,000 live tasks
# cycling on 2 cores (or under emulation) the sidecar answers in seconds.
STATUS_WAIT_MS = 30000


def scheduled_seconds(pid: int) -> float:
    """CPU time in ns from /proc/PID/task/*/schedstat: finer than stat's ticks,
    for the idle figure (a 10 ms tick is 0.1 % of 10 s)."""
    return sum(int((task / "schedstat").read_text().split()[0])
               for task in Path(f"/proc/{pid}/task").iterdir()) / 1e9


def machine_busy() -> tuple[int, int]:
    """(busy, total) jiffies of all cores, from /proc/stat."""
    values = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle, iowait
    return sum(values) - idle, sum(values)


def memory(pid: int) -> dict[str, int]:
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
            values[name] = int(rest.split()[0]) * 1024
    return values


class Sampler(threading.Thread):
    """Every second: the sidecar's CPU over the last second, its VmRSS, its live tasks."""

    def __init__(self, pid: int, status) -> None:
        super().__init__(daemon=True)
        self.pid, self.status = pid, status
        self.cpu, self.rss, self.live = [], [], []
        self.done = threading.Event()

    def run(self) -> None:
        last_at, last_cpu = time.monotonic(), cpu_seconds(self.pid)
        while not self.done.wait(1.0):
            now, cpu = time.monotonic(), cpu_seconds(self.pid)
            self.cpu.append((cpu - last_cpu) / (now - last_at) * 100)
            last_at, last_cpu = now, cpu
            self.rss.append(memory(self.pid)["VmRSS"])
            status = self.status()
            if status:
                self.live.append(status["live_tasks"])


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="load-bench-"))
    socket = work / "tracer.sock"
    log = open(work / "sidecar.log", "wb")
    sidecar = subprocess.Popen([str(SIDECAR), "--socket", str(socket), "--state-dir",
                                str(work / "state")], stderr=log)
    clients = None
    try:
        wait_until(lambda: accepts_connections(socket) or sidecar.poll() is not None,
                   what="the sidecar to listen")
        if sidecar.poll() is not None:
            raise SystemExit(f"the sidecar exited at start:\n{(work / 'sidecar.log').read_text()}")
        pid = sidecar.pid

        # 1. Idle.
        time.sleep(2)  # past start-up (BPF load, first samples)
        began, cpu_before = time.monotonic(), cpu_seconds(pid)
        scheduled_before = scheduled_seconds(pid)
        time.sleep(IDLE_SECONDS)
        idle_seconds = time.monotonic() - began
        idle_cpu = (cpu_seconds(pid) - cpu_before) / idle_seconds * 100
        idle_scheduled = (scheduled_seconds(pid) - scheduled_before) / idle_seconds * 100
        idle_memory = memory(pid)

        # 2. Load.
        observer = SidecarClient(str(socket), start_wait_ms=5000, finish_wait_ms=5000,
                                 connect_wait_ms=5000)
        ramp_began = time.monotonic()
        # One-way starts, as the plugin's.
        clients = LoadClients(socket, work / "clients", clients=CLIENTS, tasks=TASKS,
                              env=python_env(), start_wait_ms=0)
        registered = clients.wait_ready(timeout=300)
        ramp_seconds = time.monotonic() - ramp_began
        live_at_ready = observer.status(STATUS_WAIT_MS)["live_tasks"]
        memory_at_ready = memory(pid)

        sampler = Sampler(pid, lambda: observer.status(STATUS_WAIT_MS))
        clients.go()
        went, cpu_at_go, busy_at_go = time.monotonic(), cpu_seconds(pid), machine_busy()
        sampler.start()
        time.sleep(LOAD_SECONDS)
        stopped, cpu_at_stop, busy_at_stop = time.monotonic(), cpu_seconds(pid), machine_busy()
        sampler.done.set()
        sampler.join()
        status_under_load = observer.status(STATUS_WAIT_MS)
        load_cpu = (cpu_at_stop - cpu_at_go) / (stopped - went) * 100
        loadavg = os.getloadavg()
        machine = (busy_at_stop[0] - busy_at_go[0]) / max(1, busy_at_stop[1] - busy_at_go[1]) * 100

        clients.stop(timeout=300)
        status = observer.status(STATUS_WAIT_MS)
        final_memory = memory(pid)
        observer.close()
        sidecar.send_signal(signal.SIGTERM)
        exit_status = sidecar.wait(timeout=30)
        # Whether the kernel followed each thread from its task's start mark (fentry).
        marked = "task start marks)" in (work / "sidecar.log").read_text()
    finally:
        if clients is not None:
            clients.kill()
        if sidecar.poll() is None:
            sidecar.kill()
            sidecar.wait()
        log.close()
        shutil.rmtree(work, ignore_errors=True)

    starts = clients.latencies("start", went, stopped)
    finishes = clients.latencies("finish", went, stopped)
    errors = clients.errors()
    tasks_done = sum(1 for row in clients.rows() if row[5])
    client_cpu = clients.total("cpu_seconds")

    def ms(value: float) -> str:
        return f"{value * 1000:.2f} ms"

    print(f"== footprint: {CLIENTS} client processes x {TASKS} live tasks, {LOAD_SECONDS:.0f} s "
          f"({os.cpu_count()} cores, kernel {os.uname().release}, marked task starts "
          f"{'on' if marked else 'off'}) ==")
    print(f"{'':<34} {'CPU % of a core':>16} {'VmRSS':>10} {'VmHWM':>10}")
    print(f"{'idle, ' + format(IDLE_SECONDS, '.0f') + ' s, no clients':<34} {idle_cpu:>15.2f}% "
          f"{idle_memory['VmRSS'] / MIB:>6.1f} MiB {idle_memory['VmHWM'] / MIB:>6.1f} MiB"
          f"   (schedstat: {idle_scheduled:.3f}% of a core)")
    print(f"{f'{live_at_ready} tasks live (before cycling)':<34} {'':>16} "
          f"{memory_at_ready['VmRSS'] / MIB:>6.1f} MiB {memory_at_ready['VmHWM'] / MIB:>6.1f} MiB")
    print(f"{'  of which file pages (binary, libraries)':<34} {'':>16} "
          f"{idle_memory['RssFile'] / MIB:>6.1f} MiB (idle), "
          f"{memory_at_ready['RssFile'] / MIB:.1f} MiB ({live_at_ready} live)")
    print(f"{'under load, mean over the window':<34} {load_cpu:>15.2f}% "
          f"{max(sampler.rss) / MIB:>6.1f} MiB {final_memory['VmHWM'] / MIB:>6.1f} MiB"
          f"   (VmRSS: max of 1 s samples; VmHWM: at the end)")
    median_cpu = f"p50 {statistics.median(sampler.cpu):.1f}"
    print(f"{'under load, 1 s samples':<34} {median_cpu:>11} max {max(sampler.cpu):.1f}")
    quarters = [sampler.rss[min(len(sampler.rss) - 1, len(sampler.rss) * q // 4)] for q in range(5)]
    print(f"{'VmRSS at 0, 1/4 ... 4/4 of the window':<34} "
          + " ".join(f"{value / MIB:.1f}" for value in quarters) + " MiB")
    print("RPC, client-side through SidecarClient (Python, the binding, C ABI), calls made in the window:")
    print(f"  start   n={len(starts):<6} p50 {ms(percentile(starts, 50)):>9}  "
          f"p99 {ms(percentile(starts, 99)):>9}  max {ms(max(starts))}")
    print(f"  finish  n={len(finishes):<6} p50 {ms(percentile(finishes, 50)):>9}  "
          f"p99 {ms(percentile(finishes, 99)):>9}  max {ms(max(finishes))}")
    print(f"tasks: {registered} registered at the ramp ({ramp_seconds:.1f} s), live during the "
          f"window min {min(sampler.live)} max {max(sampler.live)}; {tasks_done} reports; "
          f"sidecar finished {status['finished_tasks']}, crashed {status['crashed_tasks']}, "
          f"flow runs finished {status['finished_flow_runs']}")
    print(f"one-way starts: {clients.total('late')} of {tasks_done} reports with fields unknown "
          f"because the task did something before its registration reached the sidecar "
          f"({clients.total('late_started')} had started a process; late_tasks "
          f"{status['late_tasks']}), {clients.total('dropped')} starts dropped")
    print(f"errors {len(errors)}; events_lost {status_under_load['events_lost']} under load, "
          f"{status['events_lost']} at the end; lost in the reports "
          f"{clients.total('report_events_lost')}; BPF saw {clients.total('execs')} execs in "
          f"the reports; sidecar exit on SIGTERM {exit_status}")
    print(f"machine: all {os.cpu_count()} cores {machine:.0f}% busy during the window (everything "
          f"running, not only this benchmark); the clients used "
          f"{client_cpu / (stopped - ramp_began) * 100:.0f}% of a core over their life; "
          f"load average {loadavg[0]:.1f}")
    for sample in errors[:5]:
        print(f"  error: {sample[1]}: {sample[2]}")
    print(f"targets: idle CPU < 0.5 % of a core: {'met' if idle_cpu < 0.5 else 'MISSED'}; "
          f"RSS < 64 MiB with 1,000 live tasks: "
          + ("(not run: " + f"{CLIENTS * TASKS:,}" + " live)" if CLIENTS * TASKS != 1000 else
             "met" if max(sampler.rss + [memory_at_ready['VmRSS']]) < 64 * MIB else "MISSED")
          + "; RSS < 32 MiB with 10,000 live tasks: "
          + ("(not run: " + f"{CLIENTS * TASKS:,}" + " live)" if CLIENTS * TASKS != 10000 else
             "met" if memory_at_ready["VmRSS"] < 32 * MIB else "MISSED"))


if __name__ == "__main__":
    main()
