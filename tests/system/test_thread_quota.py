"""The kernel's thread map is the node's: the threads one uid's tasks start
are tracked up to --max-tracked-threads-per-uid at once; past it a thread is
not tracked and counts as a lost event of its task. Root's are not counted."""

import shutil
import tempfile
import time
from pathlib import Path

import pytest

from sidecar import Sidecar
from test_metrics import free_port, scrape, value
from thread_quota import USER, add_user, start_threads

QUOTA = 16
THREADS = 64


@pytest.fixture
def quota_sidecar():
    add_user()
    # pytest's tmp_path is private to root; the test user needs to reach the socket.
    directory = Path(tempfile.mkdtemp(prefix="tracer-quota-"))
    directory.chmod(0o755)
    port = free_port()
    process = Sidecar(directory, "--socket-group", USER, "--metrics-listen", f"127.0.0.1:{port}",
                      "--max-tracked-threads-per-uid", str(QUOTA)).start()
    process.metrics_port = port
    yield process
    process.stop()
    shutil.rmtree(directory)


def test_a_users_tasks_track_at_most_its_quota_of_threads(quota_sidecar):
    if quota_sidecar.status()["collector"] != "bpf":
        pytest.skip("the quota is the kernel observer's")
    # Each task: QUOTA of its threads tracked, the rest lost; the second task
    # finds its uid's count back at zero, the first task's threads gone.
    for report in start_threads(quota_sidecar.socket, "user", THREADS, as_user=True):
        assert report["state"] == "completed"
        assert report["events"]["lost"] == THREADS - QUOTA, report
    # Root's tasks are not counted.
    for report in start_threads(quota_sidecar.socket, "root", THREADS, as_user=False):
        assert report["events"]["lost"] == 0, report
    time.sleep(1.5)  # metrics are rendered at most once a second
    text = scrape(quota_sidecar.metrics_port)
    assert value(text, "tracer_threads_over_uid_quota_total") == 2 * (THREADS - QUOTA)
    assert value(text, "tracer_tracked_threads") == 0
