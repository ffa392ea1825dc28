"""prefect_tracer.client: the contract (capnp/tracer.capnp) and fail-open behaviour."""

import json
import logging
import os
import statistics
import subprocess
import sys
import threading
import time

from prefect_tracer.client import SidecarClient
from sidecar import python_env


def patient(sidecar):
    return SidecarClient(str(sidecar.socket), start_wait_ms=2000, finish_wait_ms=2000,
                         connect_wait_ms=2000)


def test_socket_defaults_to_tracer_socket_env(sidecar, monkeypatch):
    monkeypatch.setenv("TRACER_SOCKET", str(sidecar.socket))
    client = SidecarClient(start_wait_ms=2000, finish_wait_ms=2000, connect_wait_ms=2000)
    assert client.status()["version"]


def test_report_uses_contract_field_names(sidecar):
    client = patient(sidecar)
    with client.flow_run(flow_run_id="f", flow_name="etl", deployment_name="nightly",
                         work_pool="k8s", cpu_cores=2.0, memory_bytes=1 << 30) as flow:
        with flow.task(task_run_id="t", task_name="extract", tags=["a", "b"],
                       task_key="extract-1") as task:
            pass
    # TaskReport's fields, by their contract (snake_case JSON) names.
    assert set(task.report) == {"task_run_id", "flow_run_id", "task_name", "state", "wall_ns",
                                "collector", "cpu", "sched", "memory", "io", "net", "proc",
                                "allocation", "events", "unknown", "policy", "findings",
                                "task_artifact", "recommendation", "start_time_ns", "task_key",
                                "unobserved_ns", "unknown_why", "thread", "cost", "profile",
                                "placement"}
    assert task.report["policy"] == "built-in-default"
    assert set(task.report["cost"]) == {"allocated", "used", "waste", "cpu_core_hour",
                                        "memory_gib_hour", "currency", "price_source"}
    assert set(task.report["cpu"]) == {"user_ns", "system_ns", "avg_cores", "p95_cores",
                                       "max_cores"}
    assert set(task.report["sched"]) == {"runqueue_wait_ns", "blocked_io_ns", "sleep_ns",
                                         "sleep_by_cause"}
    assert set(task.report["memory"]) == {"peak_rss_bytes", "oom_kills", "shared_process",
                                          "own_peak_rss_bytes"}
    assert set(task.report["io"]) == {"read_bytes", "write_bytes", "rchar", "wchar"}
    assert set(task.report["net"]) == {"tx_bytes", "rx_bytes", "endpoints", "other_endpoints"}
    assert set(task.report["proc"]) == {"spawned", "execs", "short_lived", "max_concurrent",
                                        "top", "outliving"}
    assert task.report["allocation"] == {"cpu_cores": 2.0, "memory_bytes": 1 << 30,
                                         "source": "declared", "memory_source": "declared"}
    assert task.report["memory"]["shared_process"] is True
    assert task.report["events"] == {"lost": 0}
    assert task.registered


def test_threads_are_separate_tasks(sidecar):
    client = patient(sidecar)
    reports = {}

    def run(name, spawn):
        with flow.task(task_run_id=name) as task:
            for _ in range(spawn):
                subprocess.run(["/bin/true"], check=True)
        reports[name] = task.report

    with client.flow_run(flow_run_id="f", flow_name="threads") as flow:
        threads = [threading.Thread(target=run, args=(f"t{n}", n)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert {name: r["proc"]["spawned"] for name, r in reports.items()} == \
        {"t0": 0, "t1": 1, "t2": 2, "t3": 3}


def test_a_report_asked_for_stays_readable_after_close(sidecar):
    """Start and finish are one-way; a report is fetched when first read, and
    close() fetches those not read yet rather than lose them."""
    client = patient(sidecar)
    with client.flow_run(flow_run_id="f", flow_name="etl") as flow:
        with flow.task(task_run_id="closed", task_name="t") as task:
            pass
    client.close()
    assert task.report is not None and task.report["task_run_id"] == "closed"


def test_the_plugins_way_asks_for_no_report(sidecar):
    client = SidecarClient(str(sidecar.socket), start_wait_ms=0, finish_wait_ms=0,
                           connect_wait_ms=2000)
    with client.flow_run(flow_run_id="f", flow_name="etl") as flow:
        with flow.task(task_run_id="unread", task_name="t") as task:
            pass
    assert task.report is None and task.error is None
    assert client.dropped() == 0
    client.close()


def test_unknown_info_key_is_reported_not_raised(sidecar, caplog):
    client = patient(sidecar)
    with client.flow_run(flow_run_id="f", flow_name="etl") as flow:
        with flow.task(task_run_id="t", colour="blue") as task:
            ran = True
    assert ran and task.report is None
    assert "unknown key" in task.error and "colour" in task.error


def test_info_text_reaches_the_sidecar_exactly(sidecar):
    # The binding writes the info dict as JSON itself (not json.dumps): what
    # JSON must escape, and what it must not mangle, comes back unchanged.
    name = 'say "hi"\\ to\nthe\tworld\x01 - é€ 🚀'
    client = patient(sidecar)
    with client.flow_run(flow_run_id="f", flow_name=name) as flow:
        with flow.task(task_run_id="t/\"1\"", task_name=name, tags=["q\"", "ü"],
                       task_key=name * 50) as task:
            pass
    assert (task.report["task_run_id"], task.report["task_name"],
            task.report["task_key"]) == ('t/"1"', name, name * 50)


def test_an_info_value_of_another_type_is_an_error_not_raised(sidecar, caplog):
    client = patient(sidecar)
    with client.flow_run(flow_run_id="f", flow_name="etl") as flow:
        with flow.task(task_run_id="t", tags=[1]) as task:
            ran = True
        with flow.task(task_run_id="u", task_key={"a": 1}) as other:
            pass
    assert ran and task.report is None and other.report is None
    assert "info lists hold str, not 1" in task.error
    assert "an info value is str, a number, bool, None or a list of str" in other.error


def test_fork_child_opens_its_own_connection(sidecar):
    client = patient(sidecar)
    with client.flow_run(flow_run_id="parent-flow", flow_name="fork") as flow:
        with flow.task(task_run_id="before-fork") as before:
            pass
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: same client object, same flow scope
            try:
                with flow.task(task_run_id="in-child") as child_task:
                    pass
                os.write(write_end, json.dumps(child_task.report).encode())
            finally:
                os._exit(0)
        os.close(write_end)
        child_report = json.loads(os.read(read_end, 65536))
        os.waitpid(pid, 0)
        with flow.task(task_run_id="after-fork") as after:
            pass
    assert before.report["task_run_id"] == "before-fork"
    assert child_report["task_run_id"] == "in-child"
    assert child_report["flow_run_id"] == "parent-flow"
    assert after.report["task_run_id"] == "after-fork"


def test_no_sidecar_runs_user_code_and_warns_once(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="prefect_tracer")
    client = SidecarClient(str(tmp_path / "absent.sock"))
    results = []
    with client.flow_run(flow_run_id="f", flow_name="etl") as flow:
        for n in range(5):
            with flow.task(task_run_id=f"t{n}") as task:
                results.append(n)
            assert task.report is None
    assert results == [0, 1, 2, 3, 4]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "sidecar unavailable" in warnings[0].getMessage()
    assert "absent.sock" in warnings[0].getMessage()


def test_no_sidecar_adds_under_a_millisecond_per_task(tmp_path):
    client = SidecarClient(str(tmp_path / "absent.sock"))

    def work():
        return sum(range(100))

    bare, traced = [], []
    with client.flow_run(flow_run_id="f", flow_name="etl") as flow:
        for n in range(300):
            started = time.perf_counter()
            work()
            bare.append(time.perf_counter() - started)
            started = time.perf_counter()
            with flow.task(task_run_id=f"t{n}"):
                work()
            traced.append(time.perf_counter() - started)
    added = statistics.median(traced) - statistics.median(bare)
    print(f"fail-open cost per task: {added * 1e6:.1f} us (median of 300)")
    assert added < 0.001


def test_missing_native_library_is_fail_open(tmp_path):
    script = """
import logging, sys
logging.basicConfig()
from prefect_tracer.client import SidecarClient
client = SidecarClient()
with client.flow_run(flow_run_id="f") as flow:
    with flow.task(task_run_id="t") as task:
        print("ran")
print(client.available, task.report)
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            env=python_env(TRACER_CLIENT_LIB=str(tmp_path / "nope.so")))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["ran", "False", "None"]
    assert "libtracer_client.so not found" in result.stderr
