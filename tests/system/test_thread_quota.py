"""The kernel's thread map is the node's: the threads one uid's tasks start
are tracked up to --max-tracked-threads-per-uid at once; past it a thread is
not tracked and counts as a lost event of its task. Root's are not counted."""

import json
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from sidecar import Sidecar, python_env
from test_metrics import free_port, scrape, value

USER = "tracer-test"  # test_permissions.py's

QUOTA = 16
THREADS = 64

# Two tasks one after the other, each starting THREADS threads that are all
# alive at once, then end; between the tasks the threads have exited.
START_THREADS = """
import json, sys, threading, time
from prefect_tracer.client import SidecarClient
client = SidecarClient(sys.argv[1], start_wait_ms=5000, finish_wait_ms=5000, connect_wait_ms=5000)
n = int(sys.argv[3])
reports = []
with client.flow_run(flow_run_id=sys.argv[2], flow_name="thread-quota") as flow:
    for round in range(2):
        with flow.task(task_run_id=f"{sys.argv[2]}-{round}") as task:
            all_started = threading.Barrier(n + 1)
            release = threading.Event()
            def hold():
                all_started.wait()
                release.wait()
            threads = [threading.Thread(target=hold) for _ in range(n)]
            for thread in threads:
                thread.start()
            all_started.wait()
            release.set()
            for thread in threads:
                thread.join()
        reports.append(task.report)
        time.sleep(0.5)  # the threads' last context switches, where they leave the map
print(json.dumps(reports))
"""


@pytest.fixture(scope="module")
def test_user():
    try:
        return pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--user-group", "--no-create-home",
                        "--shell", "/usr/sbin/nologin", USER], check=True)
        return pwd.getpwnam(USER)


@pytest.fixture
def quota_sidecar(test_user):
    directory = Path(tempfile.mkdtemp(prefix="tracer-quota-"))
    directory.chmod(0o755)
    port = free_port()
    process = Sidecar(directory, "--socket-group", USER, "--metrics-listen", f"127.0.0.1:{port}",
                      "--max-tracked-threads-per-uid", str(QUOTA)).start()
    process.metrics_port = port
    yield process
    process.stop()
    shutil.rmtree(directory)


def start_threads(sidecar, flow_run_id, *as_user):
    result = subprocess.run([*as_user, sys.executable, "-c", START_THREADS, str(sidecar.socket),
                             flow_run_id, str(THREADS)],
                            capture_output=True, text=True, timeout=120, env=python_env())
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_a_users_tasks_track_at_most_its_quota_of_threads(quota_sidecar):
    if quota_sidecar.status()["collector"] != "bpf":
        pytest.skip("the quota is the kernel observer's")
    user = start_threads(quota_sidecar, "user", "runuser", "-u", USER, "--")
    # Each task: QUOTA of its threads tracked, the rest lost; the second task
    # finds its uid's count back at zero, the first task's threads gone.
    for report in user:
        assert report["state"] == "completed"
        assert report["events"]["lost"] == THREADS - QUOTA, report
    # Root's tasks are not counted.
    for report in start_threads(quota_sidecar, "root"):
        assert report["events"]["lost"] == 0, report
    time.sleep(1.5)  # metrics are rendered once a second
    text = scrape(quota_sidecar.metrics_port)
    assert value(text, "tracer_threads_over_uid_quota_total") == 2 * (THREADS - QUOTA)
    assert value(text, "tracer_tracked_threads") == 0
