"""GET /metrics: Prometheus text format, valid for promtool."""

import socket
import subprocess
import urllib.request

from prefect_tracer.client import SidecarClient
from sidecar import Sidecar


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
            assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            text = response.read().decode()
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
