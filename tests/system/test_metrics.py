"""GET /metrics: Prometheus text format, valid for promtool."""

import re
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from prefect_tracer.client import SidecarClient
from sidecar import Sidecar


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape(port):
    # The sidecar is up once its socket is: its metrics listener, a moment later.
    deadline = time.monotonic() + 10
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
                assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
                return response.read().decode()
        except urllib.error.URLError as error:
            if not isinstance(error.reason, ConnectionRefusedError) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


RENDER_EVERY_S = 1.0  # MetricsEndpoint::RENDER_EVERY


def value(text, series):
    """The value of one series, e.g. 'tracer_live_tasks' or 'name{a="b"}'."""
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no series {series} in:\n{text}")


def test_metrics_are_valid_prometheus_text_and_count_runs(tmp_path):
    port = free_port()
    sidecar = Sidecar(tmp_path, "--metrics-listen", f"127.0.0.1:{port}").start()
    try:
        client = SidecarClient(str(sidecar.socket), start_wait_ms=2000, finish_wait_ms=2000,
                               connect_wait_ms=2000)
        with client.flow_run(flow_run_id="m", flow_name="metrics") as flow:
            for n in range(3):
                with flow.task(task_run_id=f"t{n}"):
                    pass
        text = scrape(port)
        assert 'tracer_tasks_total{end="finished"} 3' in text
        assert 'tracer_flow_runs_total{end="finished"} 1' in text
        assert 'tracer_outbox_artifacts{status="local"} 2' in text
        assert "tracer_events_lost_total 0" in text
        check = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                               text=True)
        assert check.returncode == 0, check.stdout + check.stderr
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/other", timeout=10)
            assert False, "expected 404"
        except urllib.error.HTTPError as error:
            assert error.code == 404
    finally:
        assert sidecar.stop() == 0


def test_fields_the_collector_cannot_measure_are_named_with_the_reason(tmp_path):
    port = free_port()
    sidecar = Sidecar(tmp_path, "--collector", "procfs", "--metrics-listen",
                      f"127.0.0.1:{port}").start()
    try:
        text = scrape(port)
        assert 'tracer_collector_degraded 1' in text
        assert ('tracer_report_field_unknown{field="net.tx_bytes",'
                'reason="forced with --collector procfs; exited children counted from '
                'taskstats v') in text
        check = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                               text=True)
        assert check.returncode == 0, check.stdout + check.stderr
    finally:
        assert sidecar.stop() == 0


def test_rpc_calls_tracked_threads_and_per_task_totals(tmp_path):
    port = free_port()
    sidecar = Sidecar(tmp_path, "--metrics-listen", f"127.0.0.1:{port}",
                      "--metrics-task-series", "2").start()
    try:
        client = SidecarClient(str(sidecar.socket), start_wait_ms=2000, finish_wait_ms=2000,
                               connect_wait_ms=2000)
        with client.flow_run(flow_run_id="m", flow_name="etl \"nightly\"") as flow:
            with flow.task(task_run_id="live", task_name="held") as held:
                # While a task is live its thread is tracked by the kernel observer.
                during = scrape(port)
                subprocess.run(["true"], check=True)
            others = []
            for name in ["extract", "load", "load", "report"]:
                with flow.task(task_run_id=f"run-{name}-{time.monotonic_ns()}",
                               task_name=name) as task:
                    subprocess.run(["true"], check=True)
                others.append(task)
        time.sleep(RENDER_EVERY_S)  # a scrape sooner gets the text `during` got
        text = scrape(port)
        assert value(during, "tracer_tracked_threads") >= 1
        assert value(during, "tracer_tracked_processes") >= 1
        assert value(during, "tracer_live_tasks") == 1
        assert value(text, "tracer_ringbuf_events_total") >= 5  # one `true` per task at least
        assert value(text, 'tracer_rpc_calls_total{method="Sidecar.openFlowRun",result="ok"}') == 1
        assert value(text, 'tracer_rpc_calls_total{method="FlowRunScope.startTask",result="ok"}') == 5
        assert value(text, 'tracer_rpc_calls_total{method="FlowRunScope.finishTask",result="ok"}') == 5
        assert value(text, 'tracer_rpc_call_duration_seconds_count{method="FlowRunScope.finishTask"}') == 5
        assert value(text, 'tracer_rpc_call_duration_seconds_bucket{method="FlowRunScope.finishTask",le="+Inf"}') == 5
        # Two (flow, task) pairs get their own series; the rest are summed as "other".
        flow = 'flow="etl \\"nightly\\""'
        assert value(text, f'tracer_task_runs_total{{{flow},task="held",state="completed"}}') == 1
        assert value(text, f'tracer_task_runs_total{{{flow},task="extract",state="completed"}}') == 1
        assert value(text, 'tracer_task_runs_total{flow="other",task="other",state="completed"}') == 3
        assert value(text, 'tracer_task_processes_total{flow="other",task="other"}') >= 3
        assert 'task="load"' not in text
        # Cost series have the same cap: held and extract, then "other" (the
        # loads, the report and the flow run's footprint), at the built-in prices.
        cost = lambda kind, task: value(  # noqa: E731
            text, f'tracer_cost_{kind}_total{{{flow},task="{task}",currency="USD"}}')
        for kind in ("used", "allocated"):
            assert cost(kind, "held") == pytest.approx(held.report["cost"][kind], rel=1e-6)
            assert cost(kind, "extract") == pytest.approx(others[0].report["cost"][kind], rel=1e-6)
            other = value(text, f'tracer_cost_{kind}_total{{flow="other",task="other",currency="USD"}}')
            assert other >= sum(t.report["cost"][kind] for t in others[1:]) > 0
        assert len(re.findall(r'^tracer_cost_used_total\{', text, re.M)) == 3
        assert value(text, 'tracer_policy_reloads_total{result="refused"}') == 0
        check = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                               text=True)
        assert check.returncode == 0, check.stdout + check.stderr
    finally:
        assert sidecar.stop() == 0


def test_scrapes_within_a_second_get_the_last_text(tmp_path):
    """Rendering reads every source; whoever reaches the port can scrape, so
    the sidecar renders at most once a second and serves the last text between."""
    port = free_port()
    sidecar = Sidecar(tmp_path, "--metrics-listen", f"127.0.0.1:{port}").start()
    try:
        first = scrape(port)
        again = [scrape(port) for _ in range(20)]  # well within a second
        assert all(text == first for text in again)
        time.sleep(RENDER_EVERY_S)
        later = scrape(port)
        assert value(later, 'tracer_metrics_scrapes_total{served="rendered"}') == 2  # this one
        assert value(later, 'tracer_metrics_scrapes_total{served="cached"}') == 20
    finally:
        assert sidecar.stop() == 0
