"""Tasks that start many threads at once, for the per-uid quota on tracked
threads (--max-tracked-threads-per-uid): tests/system/test_thread_quota.py
and the kernel matrix (tests/kernels/guest_checks.py)."""

import json
import os
import pwd
import subprocess
import sys
import threading
import time
from pathlib import Path

USER = "tracer-test"  # the non-root user of tests/system/test_permissions.py
HERE = Path(__file__).resolve().parent


def hold_threads(flow, task_run_id: str, n: int) -> dict:
    """One task of `flow` on this thread that starts n threads, all alive at
    once, and ends when they have: its report, once they have exited (their
    last context switch, where the kernel takes them off their uid's count,
    follows within moments of their leaving the process)."""
    before = len(os.listdir("/proc/self/task"))  # a client's own threads too
    with flow.task(task_run_id=task_run_id) as task:
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
    deadline = time.monotonic() + 30
    while len(os.listdir("/proc/self/task")) > before and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    return task.report


# Two such tasks, one after the other, in a process of its own.
SCRIPT = """
import json, sys
from prefect_tracer.client import SidecarClient
from thread_quota import hold_threads
client = SidecarClient(sys.argv[1], start_wait_ms=5000, finish_wait_ms=5000, connect_wait_ms=5000)
with client.flow_run(flow_run_id=sys.argv[2], flow_name="thread-quota") as flow:
    reports = [hold_threads(flow, f"{sys.argv[2]}-{n}", int(sys.argv[3])) for n in range(2)]
print(json.dumps(reports))
"""


def user_exists() -> bool:
    try:
        pwd.getpwnam(USER)
        return True
    except KeyError:
        return False


def add_user():
    if not user_exists():
        subprocess.run(["useradd", "--system", "--user-group", "--no-create-home",
                        "--shell", "/usr/sbin/nologin", USER], check=True)


def start_threads(socket, flow_run_id: str, threads: int, as_user: bool) -> list:
    """The reports of two tasks of hold_threads, run as USER or as root."""
    from sidecar import python_env
    env = python_env()
    env["PYTHONPATH"] = os.pathsep.join([env["PYTHONPATH"], str(HERE)])
    runuser = ["runuser", "-u", USER, "--"] if as_user else []
    result = subprocess.run([*runuser, sys.executable, "-c", SCRIPT, str(socket), flow_run_id,
                             str(threads)],
                            capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)
