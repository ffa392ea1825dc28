"""What `tracerctl costs` costs on a large history: the rollup reads every
run of the window from the history on the sidecar's event loop, so while it
runs the sidecar answers nothing else. Prints, for each history size, how
long `tracerctl costs --since 30d --by task` took and the longest a status
call waited meanwhile.

    cost_bench.py [BUILD_DIR]
    RUNS (default "20000,100000,400000"): task runs in the history, each size
    its own sidecar; 200 runs per task (the history's default), 20 tasks per
    deployment, one flow run footprint per 20 task runs.

The rows are copies of real ones: a sidecar observes one flow run of a task,
and its history rows (the task's and the flow run's footprint) are written
again under other deployments, tasks and times, as the advisor writes them.
"""

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

if len(sys.argv) > 1:
    os.environ["TRACER_BUILD_DIR"] = sys.argv[1]
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))

# sidecar first: it puts the plugin on sys.path.
from sidecar import Sidecar, WORKLOAD, wait_until  # noqa: E402
from prefect_tracer.client import SidecarClient  # noqa: E402

SIZES = [int(n) for n in os.environ.get("RUNS", "20000,100000,400000").split(",")]
RUNS_PER_TASK = 200
TASKS_PER_DEPLOYMENT = 20
TASK_RUNS_PER_FLOW_RUN = 20
WINDOW_NS = 30 * 24 * 3600 * 10**9
STATUS_EVERY = 0.01


def real_rows(directory: Path) -> list[tuple]:
    """The history rows of one observed flow run of one task: (task, row)."""
    sidecar = Sidecar(directory, debug=False).start()
    client = SidecarClient(str(sidecar.socket), start_wait_ms=2000, finish_wait_ms=2000,
                           connect_wait_ms=2000)
    try:
        with client.flow_run(flow_run_id=str(uuid.uuid4()), flow_name="etl",
                             deployment_id=str(uuid.uuid4()), deployment_name="nightly",
                             cpu_cores=2, memory_bytes=1 << 30) as flow:
            with flow.task(task_run_id=str(uuid.uuid4()), task_name="transform"):
                subprocess.run([str(WORKLOAD), "live", "20"], check=True)
    finally:
        client.close()
        sidecar.stop()
    with sqlite3.connect(sidecar.state_dir / "history.db") as db:
        rows = db.execute("SELECT * FROM task_runs").fetchall()
    assert len(rows) == 2, rows  # the task's and the flow run's footprint
    return rows


def fill(state_dir: Path, template: list[tuple], task_runs: int) -> None:
    task_row = next(r for r in template if r[1] != "(flow run)")
    flow_row = next(r for r in template if r[1] == "(flow run)")
    now = time.time_ns()
    tasks = max(1, task_runs // RUNS_PER_TASK)
    rows, flow_runs = [], []
    for t in range(tasks):
        deployment = f"deployment:{uuid.UUID(int=t // TASKS_PER_DEPLOYMENT)}"
        name = f"task-{t % TASKS_PER_DEPLOYMENT}"
        for r in range(RUNS_PER_TASK):
            at = now - (r + 1) * WINDOW_NS // (RUNS_PER_TASK + 1)
            record = json.loads(task_row[8])
            record.update(task=name, task_run_id=str(uuid.uuid4()))
            rows.append((deployment, name, at, *task_row[3:8], json.dumps(record)))
            if t % TASKS_PER_DEPLOYMENT == 0 and r % (RUNS_PER_TASK // 10) == 0:
                for _ in range(TASKS_PER_DEPLOYMENT // TASK_RUNS_PER_FLOW_RUN * 10):
                    rows.append((deployment, "(flow run)", at, *flow_row[3:]))
                    flow_runs.append((deployment, str(uuid.uuid4()), at, 10**9, "completed"))
    with sqlite3.connect(state_dir / "history.db") as db:
        db.execute("DELETE FROM task_runs")
        db.execute("DELETE FROM flow_runs")
        db.executemany("INSERT INTO task_runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        db.executemany("INSERT INTO flow_runs VALUES (?, ?, ?, ?, ?)", flow_runs)


class StatusWatch(threading.Thread):
    """Status calls one after another: the longest wait is the sidecar's stall."""

    def __init__(self, socket: Path) -> None:
        super().__init__(daemon=True)
        self.client = SidecarClient(str(socket), connect_wait_ms=2000)
        self.longest = 0.0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            began = time.monotonic()
            self.client.status(timeout_ms=60000)
            self.longest = max(self.longest, time.monotonic() - began)
            time.sleep(STATUS_EVERY)


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="cost-bench-"))
    try:
        template = real_rows(work / "template")
        print(f"== tracerctl costs --since 30d --by task, on the sidecar's event loop "
              f"({os.cpu_count()} cores, kernel {os.uname().release}) ==")
        for size in SIZES:
            directory = work / f"runs-{size}"
            sidecar = Sidecar(directory, debug=False).start()  # creates the history's tables
            sidecar.stop()
            fill(sidecar.state_dir, template, size)
            sidecar.start(timeout=60)
            watch = StatusWatch(sidecar.socket)
            try:
                watch.start()
                time.sleep(0.5)
                took = []
                for _ in range(3):
                    began = time.monotonic()
                    shown = sidecar.tracerctl("costs", "--since", "30d", "--by", "task", "--json")
                    took.append(time.monotonic() - began)
            finally:
                watch.done.set()
                watch.join()
                watch.client.close()
                sidecar.stop()
            report = json.loads(shown.stdout)
            runs = sum(row["runs"] for row in report["rows"])
            print(f"{size:>7} task runs in the history: {len(report['rows'])} rows listed "
                  f"({report['rows_not_listed']} more counted), {runs} runs in them; costs took "
                  f"{min(took):.2f}-{max(took):.2f} s; the longest status call meanwhile waited "
                  f"{watch.longest:.2f} s")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
