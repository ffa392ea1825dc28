"""What a live task costs the sidecar in memory, with nothing else per task:
one client connection, TASKS live tasks (default 4,000, under the sidecar's
4,096 scopes per connection) started one-way from this one thread, so no
thread of its own, no process, no sampling of its own work. Prints the
growth of the sidecar's anonymous memory (RssAnon, /proc/PID/status) per
task; load_bench.py has the same with a thread and work per task.

    task_memory.py [BUILD_DIR]
"""

import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

if len(sys.argv) > 1:
    os.environ["TRACER_BUILD_DIR"] = sys.argv[1]
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))

# sidecar first: it puts the plugin on sys.path.
from sidecar import Sidecar, wait_until  # noqa: E402
from prefect_tracer.client import SidecarClient  # noqa: E402

TASKS = int(os.environ.get("TASKS", "4000"))
# One-way starts past 1,024 unanswered are dropped by the client: pace them.
BATCH = 500


def anonymous_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1])
    raise RuntimeError("no RssAnon in /proc/PID/status")


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="task-memory-") as work:
        sidecar = Sidecar(Path(work), debug=False).start()
        pid = sidecar.process.pid
        client = SidecarClient(str(sidecar.socket), start_wait_ms=0, finish_wait_ms=0,
                               connect_wait_ms=5000)
        try:
            flow = client.open_flow_run(flow_run_id=str(uuid.uuid4()), flow_name="memory")
            wait_until(lambda: client.status()["live_flow_runs"] == 1, what="the flow run")
            time.sleep(1)
            before = anonymous_kib(pid)
            scopes = []
            for i in range(TASKS):
                scopes.append(flow.start_task(task_run_id=str(uuid.uuid4()), task_name="t"))
                if i % BATCH == BATCH - 1:
                    time.sleep(0.3)
            wait_until(lambda: client.status()["live_tasks"] == TASKS, timeout=60,
                       what=f"{TASKS} live tasks")
            time.sleep(2)  # past a sampling tick
            grown = anonymous_kib(pid) - before
            print(f"== a live task's memory: {TASKS} tasks on one connection, one thread "
                  f"(kernel {os.uname().release}) ==")
            print(f"sidecar RssAnon +{grown / 1024:.1f} MiB: {grown * 1024 / TASKS:.0f} bytes "
                  f"a live task; {client.dropped()} starts dropped")
            for scope in scopes:
                scope.finish()
            flow.finish()
        finally:
            client.close()
            sidecar.stop()


if __name__ == "__main__":
    main()
