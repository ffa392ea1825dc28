"""Many client processes at once: every task accounted for, no errors."""

import json
import subprocess
import sys

from sidecar import python_env, wait_until

CLIENTS = 200
TASKS_PER_CLIENT = 50

WORKER = """
import json, sys
from prefect_tracer.client import SidecarClient
socket, index, tasks = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
client = SidecarClient(socket, start_wait_ms=30000, finish_wait_ms=30000, connect_wait_ms=30000)
reports, errors = 0, []
with client.flow_run(flow_run_id=f"flow-{index}", flow_name="load") as flow:
    for n in range(tasks):
        with flow.task(task_run_id=f"task-{index}-{n}", task_name="t") as task:
            pass
        if task.report is not None and task.report["task_run_id"] == f"task-{index}-{n}":
            reports += 1
        else:
            errors.append(task.error)
print(json.dumps({"reports": reports, "errors": errors[:3]}))
"""


def test_200_concurrent_clients_50_tasks_each(sidecar):
    env = python_env()
    children = [
        subprocess.Popen([sys.executable, "-c", WORKER, str(sidecar.socket), str(i),
                          str(TASKS_PER_CLIENT)], stdout=subprocess.PIPE, text=True, env=env)
        for i in range(CLIENTS)
    ]
    results = []
    for child in children:
        out, _ = child.communicate(timeout=300)
        assert child.returncode == 0
        results.append(json.loads(out))

    assert [r["errors"] for r in results if r["errors"]] == []
    assert sum(r["reports"] for r in results) == CLIENTS * TASKS_PER_CLIENT
    # A client waits 100 ms for its flow run's finish, then exits: the
    # sidecar may still be storing the last runs' artifacts.
    last = {}

    def every_flow_run_finished():
        last.update(sidecar.status())
        return dict(last) if last["finished_flow_runs"] == CLIENTS else None

    try:
        status = wait_until(every_flow_run_finished, timeout=60, what=f"{CLIENTS} flow runs finished")
    except AssertionError as timeout:
        crashed = [line for line in sidecar.log().splitlines() if "flow run crashed" in line]
        raise AssertionError(f"{timeout}; last status: {last}; sidecar log: {crashed}") from None
    assert status["finished_tasks"] == CLIENTS * TASKS_PER_CLIENT
    assert status["crashed_tasks"] == 0 and status["crashed_flow_runs"] == 0
    assert status["live_tasks"] == 0
    assert status["events_lost"] == 0
