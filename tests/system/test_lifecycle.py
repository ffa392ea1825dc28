"""A sidecar's life with real clients: round trips, crashes, restarts, hangs."""

import json
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from prefect_tracer import _native
from prefect_tracer.client import SidecarClient
from sidecar import SIDECAR, Sidecar, python_env, wait_until


def patient_client(sidecar):
    return SidecarClient(str(sidecar.socket), start_wait_ms=2000, finish_wait_ms=2000,
                         connect_wait_ms=2000)


def test_python_round_trip_shows_in_status(sidecar):
    client = patient_client(sidecar)
    with client.flow_run(flow_run_id="flow-1", flow_name="etl", work_pool="pool") as flow:
        with flow.task(task_run_id="task-1", task_name="extract", tags=("etl",)) as task:
            subprocess.run(["/bin/true"], check=True)
        with flow.task(task_run_id="task-2", task_name="load") as second:
            pass
    client.close()

    assert task.error is None
    assert task.report["task_run_id"] == "task-1"
    assert task.report["flow_run_id"] == "flow-1"
    assert task.report["state"] == "completed"
    assert task.report["wall_ns"] > 0
    assert (task.report["proc"]["spawned"], task.report["proc"]["execs"]) == (1, 1)
    assert (second.report["proc"]["spawned"], second.report["proc"]["execs"]) == (0, 0)

    status = sidecar.status()
    assert status["finished_flow_runs"] == 1
    assert status["finished_tasks"] == 2
    assert status["crashed_tasks"] == 0
    assert status["live_tasks"] == 0
    assert status["events_lost"] == 0
    assert status["collector"] == "bpf"


def test_human_status_names_the_counts(sidecar):
    text = sidecar.tracerctl("status").stdout
    assert "collector     bpf" in text
    assert "tasks         0 live, 0 finished, 0 crashed" in text


def test_failed_task_block_reports_failed_and_reraises(sidecar):
    client = patient_client(sidecar)
    with client.flow_run(flow_run_id="flow-f", flow_name="etl") as flow:
        try:
            with flow.task(task_run_id="task-f", task_name="boom") as task:
                raise ValueError("user error")
        except ValueError as error:
            assert str(error) == "user error"
    assert task.report["state"] == "failed"


CRASHING_CLIENT = """
import sys, time
from prefect_tracer.client import SidecarClient
client = SidecarClient(sys.argv[1], start_wait_ms=2000, connect_wait_ms=2000)
with client.flow_run(flow_run_id="doomed-flow", flow_name="etl") as flow:
    with flow.task(task_run_id="doomed-task", task_name="t") as task:
        print("registered" if task.registered else task.error, flush=True)
        time.sleep(60)
"""


def test_client_killed_mid_task_is_reported_crashed(sidecar):
    child = subprocess.Popen([sys.executable, "-c", CRASHING_CLIENT, str(sidecar.socket)],
                             stdout=subprocess.PIPE, text=True, env=python_env())
    assert child.stdout.readline().strip() == "registered"
    assert sidecar.status()["live_tasks"] == 1
    child.kill()
    child.wait()

    status = wait_until(lambda: (s := sidecar.status())["crashed_tasks"] == 1 and s,
                        what="the killed client's task to end")
    assert status["crashed_flow_runs"] == 1
    assert status["live_tasks"] == 0 and status["live_flow_runs"] == 0
    # ... and the sidecar keeps serving.
    client = patient_client(sidecar)
    with client.flow_run(flow_run_id="after", flow_name="etl") as flow:
        with flow.task(task_run_id="after-task") as task:
            pass
    assert task.report["state"] == "completed"


# A flow run's process that exits the moment its finish call returns, waiting
# for no answer (timeout 0): the call returns once the finish is in the socket.
# Its task's report is awaited first: the sidecar takes a flow run only from a
# process still running, so the opening must have been read.
EXITING_AT_FINISH = """
import json, os, sys
from prefect_tracer import _native
lib, _ = _native.load()
client = lib.tracer_client_open(sys.argv[1])
flow = lib.tracer_flow_open(client, json.dumps({"flow_run_id": sys.argv[2], "flow_name": "exits"}))
task = lib.tracer_task_start(flow, '{"task_run_id": "t"}', 0, 5000)
report = lib.tracer_task_finish(task, "completed", True)
assert report > 0
assert lib.tracer_report_wait(report, 5000) is not None
assert lib.tracer_flow_finish(flow, "completed", 0) in (0, 1)
os._exit(0)
"""


def test_a_flow_runs_finish_is_out_before_its_process_exits(sidecar):
    runs = 40
    for batch in range(0, runs, 10):
        children = [subprocess.Popen([sys.executable, "-c", EXITING_AT_FINISH, str(sidecar.socket),
                                      f"exits-{i}"], env=python_env())
                    for i in range(batch, batch + 10)]
        assert [child.wait() for child in children] == [0] * 10
    status = wait_until(lambda: (s := sidecar.status())["live_flow_runs"] == 0 and s,
                        what="every flow run to end")
    assert (status["finished_flow_runs"], status["crashed_flow_runs"]) == (runs, 0)


def test_sigterm_stops_cleanly_and_removes_the_socket(tmp_path):
    process = Sidecar(tmp_path).start()
    assert process.stop(signal.SIGTERM) == 0
    assert not process.socket.exists()
    assert "stopping on signal 15" in process.log()


def test_stale_socket_file_is_replaced(tmp_path):
    first = Sidecar(tmp_path).start()
    first.stop(signal.SIGKILL)  # leaves the socket file behind
    assert first.socket.exists()
    second = Sidecar(tmp_path).start()
    assert second.status()["version"]
    assert second.stop() == 0


def test_second_sidecar_on_a_live_socket_is_refused(sidecar, tmp_path):
    result = subprocess.run([str(SIDECAR), "--socket", str(sidecar.socket),
                             "--state-dir", str(tmp_path / "other-state")],
                            capture_output=True, text=True, timeout=10)
    assert result.returncode != 0
    assert "another tracer-sidecar is already serving this socket" in result.stderr
    assert sidecar.status()["version"]


def test_client_reconnects_after_sidecar_restart(tmp_path):
    process = Sidecar(tmp_path).start()
    client = patient_client(process)
    with client.flow_run(flow_run_id="before", flow_name="etl") as flow:
        with flow.task(task_run_id="before-task") as task:
            pass
    assert task.report is not None

    process.stop(signal.SIGKILL)
    restarted = Sidecar(tmp_path).start()
    # The library retries with backoff (50 ms doubling to 2 s): within a few seconds
    # a new task is observed without the caller doing anything.
    def observed():
        with client.flow_run(flow_run_id="after", flow_name="etl") as flow:
            with flow.task(task_run_id="after-task") as task:
                pass
        return task.report
    report = wait_until(observed, timeout=10, interval=0.1, what="the client to reconnect")
    assert report["task_run_id"] == "after-task"
    assert restarted.status()["finished_tasks"] == 1
    assert restarted.stop() == 0


def test_a_hung_sidecar_costs_a_task_only_milliseconds(sidecar):
    client = SidecarClient(str(sidecar.socket))  # default, task-path timeouts
    with client.flow_run(flow_run_id="warm", flow_name="etl") as flow:
        with flow.task(task_run_id="warm-task"):
            pass
    sidecar.process.send_signal(signal.SIGSTOP)
    try:
        with client.flow_run(flow_run_id="hung", flow_name="etl") as flow:
            started = time.perf_counter()
            for i in range(20):
                with flow.task(task_run_id=f"hung-{i}") as task:
                    pass
                assert task.report is None
            per_task = (time.perf_counter() - started) / 20
    finally:
        sidecar.process.send_signal(signal.SIGCONT)
    # A start and a finish wait for nothing; reading the report waits 5 ms at most.
    assert per_task < 0.020, f"{per_task * 1000:.1f} ms per task with a hung sidecar"
    assert "did not answer within" in task.error



# The client's caps on what a hung sidecar can make it hold (client/pending_requests.h).
MAX_PENDING_FLOW_RUNS = 256
MAX_PENDING_CALLS = 64


@pytest.fixture
def wedged_sidecar(tmp_path):
    """A socket that reads every request and answers none: a wedged sidecar.
    (A stopped one stops reading too, and once the socket is full each flow
    run's finish waits its second to leave the process.)"""
    path = tmp_path / "wedged.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen()

    def read_all():
        connection, _ = server.accept()
        with connection:
            while connection.recv(65536):
                pass

    threading.Thread(target=read_all, daemon=True).start()
    lib, why = _native.load()
    assert lib is not None, why
    client = lib.tracer_client_open(str(path))
    assert lib.tracer_client_wait_connected(client, 2000), lib.tracer_last_error()
    yield lib, client
    lib.tracer_client_close(client)
    server.close()


def test_a_wedged_sidecar_is_told_of_a_bounded_number_of_flow_runs(wedged_sidecar):
    lib, client = wedged_sidecar
    past_the_cap = 20
    for i in range(MAX_PENDING_FLOW_RUNS + past_the_cap):
        info = json.dumps({"flow_run_id": f"wedged-{i}", "flow_name": "etl"})
        flow = lib.tracer_flow_open(client, info)
        assert flow, lib.tracer_last_error()
        started = time.perf_counter()
        finished = lib.tracer_flow_finish(flow, "completed", 0)
        assert time.perf_counter() - started < 0.5
    # The runs past the cap were never announced, and are counted.
    assert finished == -1
    assert (f"has not answered the last {MAX_PENDING_FLOW_RUNS} flow-run requests"
            in lib.tracer_last_error())
    assert lib.tracer_client_dropped(client) == past_the_cap


def test_a_wedged_sidecar_fails_status_calls_past_the_cap_at_once(wedged_sidecar):
    lib, client = wedged_sidecar
    for _ in range(MAX_PENDING_CALLS):
        assert lib.tracer_client_status(client, 0) is None
        assert "did not answer within" in lib.tracer_last_error()
    started = time.perf_counter()
    assert lib.tracer_client_status(client, 1000) is None
    assert time.perf_counter() - started < 0.5
    assert f"has not answered the last {MAX_PENDING_CALLS} calls" in lib.tracer_last_error()
    assert lib.tracer_client_dropped(client) == 0  # a call is not an observation
