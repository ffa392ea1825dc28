"""One user's connections cannot take the sidecar's descriptors from
everyone: with a limit of 1,024 descriptors, a user who opens 2,000
connections gets its per-uid share and is refused the rest, the sidecar keeps
serving root's tasks, and once the user lets go others connect again."""

import json
import subprocess
import sys
import tempfile
import shutil
from pathlib import Path

import pytest

from prefect_tracer.client import SidecarClient
from sidecar import Sidecar, python_env, wait_until

from test_permissions import CALLER, USER, test_user  # noqa: F401  (the fixture)

HOLDER = """
import resource, socket, sys
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
held = []
for _ in range(int(sys.argv[2])):
    s = socket.socket(socket.AF_UNIX)
    s.connect(sys.argv[1])
    held.append(s)
print(len(held), flush=True)
sys.stdin.read()  # held until the test closes stdin
"""


@pytest.fixture
def limited_sidecar(test_user):  # noqa: F811
    directory = Path(tempfile.mkdtemp(prefix="tracer-fds-"))
    directory.chmod(0o755)
    process = Sidecar(directory, "--socket-group", USER,
                      wrapper=("prlimit", "--nofile=1024:1024")).start()
    yield process
    process.stop()
    shutil.rmtree(directory)


def test_a_user_holding_2000_connections_does_not_stop_the_sidecar(limited_sidecar):
    sidecar = limited_sidecar
    holders = [subprocess.Popen(["runuser", "-u", USER, "--", sys.executable, "-c", HOLDER,
                                 str(sidecar.socket), "1000"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
               for _ in range(2)]
    try:
        held = [int(h.stdout.readline()) for h in holders]
        assert held == [1000, 1000]
        assert sidecar.alive(), sidecar.log()[-3000:]
        # The user holds its share; every connection past it was refused.
        status = wait_until(lambda: (s := sidecar.status())["connected_clients"] <= 96 + 1 and s,
                            timeout=10, what="the user's connections to be capped")
        print(status["connected_clients"], "connected")
        log = sidecar.log()
        assert "connections: at most 384 (the last 64 root's), 96 per uid" in log
        assert "holds 96 connections, its most (--max-connections-per-uid)" in log
        # Root's tasks are served meanwhile.
        client = SidecarClient(str(sidecar.socket), start_wait_ms=5000, finish_wait_ms=5000,
                               connect_wait_ms=5000)
        with client.flow_run(flow_run_id="root-run", flow_name="fds") as flow:
            with flow.task(task_run_id="root-task") as task:
                pass
        client.close()
        assert task.report is not None and task.report["state"] == "completed", task.error
    finally:
        for holder in holders:
            holder.stdin.close()
            holder.wait(timeout=30)
    # Let go: the user may connect again and run a task.
    wait_until(lambda: sidecar.status()["connected_clients"] <= 1, timeout=10,
               what="the held connections to close")
    result = subprocess.run(["runuser", "-u", USER, "--", sys.executable, "-c", CALLER,
                             str(sidecar.socket), str(sidecar.process.pid)],
                            capture_output=True, text=True, timeout=60, env=python_env())
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["own"]["state"] == "completed"
    assert sidecar.alive()
