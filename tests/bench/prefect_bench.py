"""What the plugin costs a Prefect flow, in a real Prefect: a flow of 1,000
no-op tasks and one of 100 CPU-bound tasks (default ThreadPoolTaskRunner),
each run as `python flow.py` against a real `prefect server start`, without
the plugin and with the plugin and a real sidecar, interleaved ROUNDS times.
Before each run the server is left to finish writing the previous run's
events (PrefectServer.wait_idle): a run that starts while it writes meets
SQLite busy, answered 503, and Prefect's client backs off for up to 30 s,
which would be charged to whichever mode ran next. Which mode goes first
alternates from round to round, for what of the server's work outlasts that
wait. Prints the medians and their ratio (target: <= 1.01), of the flow's wall
time and of its body's (the tasks' part: prefect_bench_flows.py). Asserts nothing.

Run with a venv's python (scripts/python-envs.sh, scripts/build-wheel.sh):
  build/venv/prefect-3.9.1-otel-1.45.2/bin/python tests/bench/prefect_bench.py [BUILD_DIR]
"""

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "support"))

from prefect_server import PrefectServer  # noqa: E402
from process_usage import cpu_seconds  # noqa: E402
from sidecar import Sidecar  # noqa: E402

ROUNDS = int(os.environ.get("ROUNDS", "5"))
FLOWS = ("noop-1000", "cpu-100")


def run(server, flow, **env):
    """(flow wall time measured inside the process, whole process wall time,
    the flow body's wall time: its tasks submitted and their results back)"""
    server.wait_idle()
    started = time.perf_counter()
    result = subprocess.run([sys.executable, str(HERE / "prefect_bench_flows.py"), flow],
                            env=server.env(**env), capture_output=True, text=True, timeout=600)
    process = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{flow} failed:\n{result.stderr[-3000:]}")
    flow_wall, body = map(float, result.stdout.splitlines()[-1].split())
    return flow_wall, process, body


def main():
    with tempfile.TemporaryDirectory(prefix="tracer-prefect-bench-") as work:
        server = PrefectServer(Path(work)).start()
        sidecar = Sidecar(Path(work) / "sidecar", debug=False).start()
        modes = {"without plugin": {"PREFECT_PLUGINS_ENABLED": "false"},
                 "plugin + sidecar": {"PREFECT_PLUGINS_ENABLED": "true",
                                      "TRACER_SOCKET": str(sidecar.socket)}}
        times = {(flow, mode): [] for flow in FLOWS for mode in modes}
        try:
            for flow in FLOWS:  # warm the server and the page cache once
                run(server, flow, **modes["without plugin"])
            for round in range(ROUNDS):
                for flow in FLOWS:
                    # Who goes first alternates: with the plugin always second,
                    # this put it 1.11-1.14x slower on 1,000 no-op tasks on
                    # 2026-12-07, the old ctypes client as much as the binding
                    # (the server's work on a run outlasts wait_idle()).
                    order = list(modes.items())
                    for mode, env in order if round % 2 == 0 else reversed(order):
                        times[(flow, mode)].append(run(server, flow, **env))
            status = sidecar.status()
            sidecar_cpu = cpu_seconds(sidecar.process.pid)
        finally:
            sidecar.stop()
            server.stop()
    import prefect
    import opentelemetry.sdk.version as otel
    print(f"== Prefect flows with and without the plugin (Prefect {prefect.__version__}, "
          f"opentelemetry-sdk {otel.__version__}, {os.cpu_count()} cores, ROUNDS={ROUNDS}, "
          "interleaved, medians) ==")
    for flow in FLOWS:
        base = [statistics.median(t[i] for t in times[(flow, "without plugin")]) for i in (0, 1, 2)]
        traced = [statistics.median(t[i] for t in times[(flow, "plugin + sidecar")]) for i in (0, 1, 2)]
        print(f"{flow:10} flow wall  {base[0]:7.3f} s without, {traced[0]:7.3f} s with: "
              f"ratio {traced[0] / base[0]:.3f}")
        # Each run, sorted: a median of few runs hides how they spread.
        for mode in modes:
            runs = " ".join(f"{t[0]:.2f}" for t in sorted(times[(flow, mode)]))
            print(f"{'':10} runs {mode}: {runs}")
        print(f"{'':10} process    {base[1]:7.3f} s without, {traced[1]:7.3f} s with: "
              f"ratio {traced[1] / base[1]:.3f}")
        # The tasks' part alone: Prefect's end of a run waits on the server in
        # steps of about a second, which the flow's wall time rounds up to.
        # Each round's own ratio too: the two modes of a round run back to back,
        # so what drifts across the rounds (this machine's speed) cancels.
        paired = statistics.median(
            with_[2] / without[2] for with_, without in zip(times[(flow, "plugin + sidecar")],
                                                          times[(flow, "without plugin")]))
        print(f"{'':10} flow body  {base[2]:7.3f} s without, {traced[2]:7.3f} s with: "
              f"ratio {traced[2] / base[2]:.3f}; median of the rounds' ratios {paired:.3f}")
        for mode in modes:
            runs = " ".join(f"{t[2]:.2f}" for t in sorted(times[(flow, mode)], key=lambda t: t[2]))
            print(f"{'':10} body runs {mode}: {runs}")
    print(f"sidecar saw {status['finished_tasks']} tasks in {status['finished_flow_runs']} flow runs, "
          f"{status['crashed_tasks']} crashed, {status['events_lost']} events lost; its CPU "
          f"{sidecar_cpu:.2f} s in all (idle included), "
          f"{sidecar_cpu / max(status['finished_tasks'], 1) * 1e6:.0f} us a task")


if __name__ == "__main__":
    main()
