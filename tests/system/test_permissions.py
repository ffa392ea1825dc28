"""Who may register what: checked against the kernel's view of the caller."""

import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from sidecar import Sidecar, python_env, wait_until

USER = "tracer-test"

CALLER = """
import json, sys
from prefect_tracer.client import SidecarClient
client = SidecarClient(sys.argv[1], start_wait_ms=5000, finish_wait_ms=5000, connect_wait_ms=5000)
with client.flow_run(flow_run_id="f", flow_name="perm") as flow:
    with flow.task(task_run_id="own") as own:
        pass
    with flow.task(task_run_id="foreign", tid=int(sys.argv[2])) as foreign:
        pass
print(json.dumps({"own": own.report, "foreign_error": foreign.error, "foreign": foreign.report}))
"""


@pytest.fixture(scope="module")
def test_user():
    try:
        entry = pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--user-group", "--no-create-home",
                        "--shell", "/usr/sbin/nologin", USER], check=True)
        entry = pwd.getpwnam(USER)
    return entry


@pytest.fixture
def shared_sidecar(test_user):
    # pytest's tmp_path is private to root; the test user needs to reach the socket.
    directory = Path(tempfile.mkdtemp(prefix="tracer-perm-"))
    directory.chmod(0o755)
    process = Sidecar(directory, "--socket-group", USER).start()
    yield process
    process.stop()
    shutil.rmtree(directory)


def run_as(user, *command):
    return subprocess.run(["runuser", "-u", user, "--", *command], capture_output=True,
                          text=True, timeout=60, env=python_env())


def test_socket_is_0660_and_group_owned(shared_sidecar, test_user):
    info = os.stat(shared_sidecar.socket)
    assert info.st_mode & 0o777 == 0o660
    assert info.st_gid == test_user.pw_gid


def test_non_root_caller_cannot_register_another_users_thread(shared_sidecar):
    # The sidecar's own (root-owned) main thread is the foreign thread.
    result = run_as(USER, sys.executable, "-c", CALLER, str(shared_sidecar.socket),
                    str(shared_sidecar.process.pid))
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout)
    assert outcome["own"]["state"] == "completed"
    assert outcome["foreign"] is None
    error = outcome["foreign_error"]
    assert f"refused: tid {shared_sidecar.process.pid} belongs to process " \
           f"{shared_sidecar.process.pid} of uid 0" in error
    assert "may only register its own threads or processes of its own uid" in error
    status = shared_sidecar.status()
    assert status["finished_tasks"] == 1  # only the caller's own thread was ever registered


def test_non_root_caller_cannot_use_admin(shared_sidecar):
    from sidecar import TRACERCTL
    result = run_as(USER, str(TRACERCTL), "--socket", str(shared_sidecar.socket), "tasks")
    assert result.returncode != 0
    assert "refused: the Admin interface is for root in the sidecar's PID namespace" in \
        result.stderr


def test_root_may_list_live_tasks(shared_sidecar):
    listing = json.loads(shared_sidecar.tracerctl("tasks", "--json").stdout)
    assert listing == {"tasks": []}


def test_root_of_another_pid_namespace_is_no_admin(shared_sidecar):
    """Root in a container's (or a flow-run pod's) PID namespace is a tenant:
    the other tenants' runs are not its to read."""
    from sidecar import TRACERCTL
    result = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", str(TRACERCTL),
                             "--socket", str(shared_sidecar.socket), "reports"],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert "refused: the Admin interface is for root in the sidecar's PID namespace" in \
        result.stderr, result.stderr


def test_caller_in_its_own_pid_namespace_registers_its_thread(sidecar):
    """tids arrive in the caller's PID namespace and are mapped through NSpid."""
    script = """
import json, subprocess, sys, threading
from prefect_tracer.client import SidecarClient
client = SidecarClient(sys.argv[1], start_wait_ms=5000, finish_wait_ms=5000, connect_wait_ms=5000)
with client.flow_run(flow_run_id="ns", flow_name="ns") as flow:
    with flow.task(task_run_id="ns-task") as task:
        subprocess.run(["/bin/true"], check=True)
        import time
        until = time.thread_time() + 0.3
        while time.thread_time() < until:
            pass
print(json.dumps({"tid": threading.get_native_id(), "report": task.report, "error": task.error}))
"""
    result = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", sys.executable, "-c",
                             script, str(sidecar.socket)],
                            capture_output=True, text=True, timeout=60, env=python_env())
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout)
    assert outcome["tid"] < 10  # really a fresh namespace
    assert outcome["error"] is None
    # The spawn is seen only if the namespaced tid was mapped to the right host thread.
    proc = outcome["report"]["proc"]
    assert (proc["spawned"], proc["execs"]) == (1, 1)
    cpu = outcome["report"]["cpu"]
    assert cpu["user_ns"] + cpu["system_ns"] >= 0.28e9
    assert outcome["report"]["events"]["lost"] == 0


@pytest.fixture
def open_socket_dir(test_user):
    # The socket is reachable by everyone (mode 0666 on a world-searchable
    # directory is not needed: the test user is in the socket's group), so only
    # the sidecar's own access policy stands between the user and the sidecar.
    directory = Path(tempfile.mkdtemp(prefix="tracer-perm-"))
    directory.chmod(0o755)
    yield directory
    shutil.rmtree(directory)


def test_a_user_outside_the_allowed_set_cannot_connect(open_socket_dir, test_user):
    process = Sidecar(open_socket_dir, "--socket-group", USER, "--allow-group", "root").start()
    try:
        result = run_as(USER, sys.executable, "-c", CALLER, str(process.socket),
                        str(process.process.pid))
        assert result.returncode == 0, result.stderr
        outcome = json.loads(result.stdout)
        assert outcome["own"] is None  # fail-open: the task ran, unobserved
        assert f"uid {test_user.pw_uid} is not allowed to connect" in result.stderr
        assert f"uid {test_user.pw_uid} is not allowed to connect" in process.log()
        assert process.status()["finished_tasks"] == 0
        # Root still may (its status call is the one connection now), and a
        # user named in --allow-uid may.
        assert process.status()["connected_clients"] == 1
    finally:
        process.stop()
    allowed = Sidecar(open_socket_dir, "--socket-group", USER, "--allow-group", "root",
                      "--allow-uid", USER).start()
    try:
        result = run_as(USER, sys.executable, "-c", CALLER, str(allowed.socket),
                        str(allowed.process.pid))
        assert json.loads(result.stdout)["own"]["state"] == "completed"
    finally:
        allowed.stop()


def test_the_admin_group_may_use_admin(open_socket_dir):
    from sidecar import TRACERCTL
    process = Sidecar(open_socket_dir, "--socket-group", USER, "--admin-group", USER).start()
    try:
        result = run_as(USER, str(TRACERCTL), "--socket", str(process.socket), "tasks", "--json")
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout) == {"tasks": []}
    finally:
        process.stop()


LIMITS = """
import contextlib, json, sys
from prefect_tracer.client import SidecarClient
client = SidecarClient(sys.argv[1], start_wait_ms=5000, finish_wait_ms=5000, connect_wait_ms=5000)
with client.flow_run(flow_run_id="limits", flow_name="limits") as flow:
    with contextlib.ExitStack() as stack:
        held = [stack.enter_context(flow.task(task_run_id=f"held-{n}")) for n in range(3)]
        errors = [task.error for task in held]
    with flow.task(task_run_id="after") as after:
        pass
print(json.dumps({"errors": errors, "after": after.report is not None}))
"""


def test_a_connection_holds_at_most_its_limit_of_live_scopes(tmp_path):
    process = Sidecar(tmp_path, "--max-scopes-per-connection", "3").start()
    try:
        result = subprocess.run([sys.executable, "-c", LIMITS, str(process.socket)],
                                capture_output=True, text=True, timeout=60, env=python_env())
        assert result.returncode == 0, result.stderr
        outcome = json.loads(result.stdout)
        # The flow run is one scope, so the third task is over the limit of 3.
        assert outcome["errors"][:2] == [None, None]
        assert "refused: task held-2: this connection" in outcome["errors"][2]
        assert "already holds 3 live scopes" in outcome["errors"][2]
        assert outcome["after"]  # once scopes end there is room again
    finally:
        assert process.stop() == 0


FLOOD = """
import sys
from prefect_tracer.client import SidecarClient
client = SidecarClient(sys.argv[1], start_wait_ms=10000, finish_wait_ms=10000, connect_wait_ms=5000)
reports = 0
with client.flow_run(flow_run_id="flood", flow_name="flood") as flow:
    for n in range(int(sys.argv[2])):
        with flow.task(task_run_id=f"flood-{n}") as task:
            pass
        reports += task.report is not None
print(reports)
"""


def test_a_client_over_its_call_rate_is_slowed_not_failed(tmp_path):
    process = Sidecar(tmp_path, "--max-calls-per-second", "100").start()
    try:
        # 150 tasks are 300 calls: a second's burst, then about two seconds at 100/s.
        flood = subprocess.Popen([sys.executable, "-c", FLOOD, str(process.socket), "150"],
                                 stdout=subprocess.PIPE, text=True, env=python_env())
        wait_until(lambda: "exceeds 100 calls/s" in process.log(), what="throttling")
        # A bystander on its own connection is not held back by the flooder's limit.
        status = process.status()
        assert status["live_flow_runs"] == 1
        out, _ = flood.communicate(timeout=60)
        assert flood.returncode == 0
        assert int(out) == 150  # every call answered, none refused
    finally:
        assert process.stop() == 0


HOLD_TASKS = """
import contextlib, json, sys
from prefect_tracer.client import SidecarClient
client = SidecarClient(sys.argv[1], start_wait_ms=5000, finish_wait_ms=5000, connect_wait_ms=5000)
with client.flow_run(flow_run_id=sys.argv[2], flow_name="quota") as flow:
    with contextlib.ExitStack() as stack:
        held = [stack.enter_context(flow.task(task_run_id=f"{sys.argv[2]}-{n}"))
                for n in range(int(sys.argv[3]))]
        print(json.dumps([task.error for task in held]), flush=True)
        sys.stdin.read()  # held until the test closes stdin
"""


def test_one_uid_holds_at_most_its_share_of_live_tasks_across_connections(open_socket_dir):
    """The kernel's task maps are the node's: a user's live tasks, over all its
    connections, stop at --max-live-tasks-per-uid; root's are not counted."""
    process = Sidecar(open_socket_dir, "--socket-group", USER,
                      "--max-live-tasks-per-uid", "2").start()
    holders = []
    try:
        def hold(*command):
            holder = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      text=True, env=python_env())
            holders.append(holder)
            return json.loads(holder.stdout.readline())

        first = hold("runuser", "-u", USER, "--", sys.executable, "-c", HOLD_TASKS,
                     str(process.socket), "first", "2")
        assert first == [None, None]
        # Another connection of the same user: over its uid's share.
        second = hold("runuser", "-u", USER, "--", sys.executable, "-c", HOLD_TASKS,
                      str(process.socket), "second", "1")
        assert "refused: uid" in second[0] and "(--max-live-tasks-per-uid)" in second[0]
        # Root is not held to it.
        assert hold(sys.executable, "-c", HOLD_TASKS, str(process.socket), "root", "3") == \
            [None, None, None]
        # Once the user lets go, it may start tasks again.
        holders[0].communicate("", timeout=30)
        third = hold("runuser", "-u", USER, "--", sys.executable, "-c", HOLD_TASKS,
                     str(process.socket), "third", "2")
        assert third == [None, None]
    finally:
        for holder in holders:
            if holder.poll() is None:
                holder.communicate("", timeout=30)
        assert process.stop() == 0
