"""Forced onto the /proc collector: the same report, with what it cannot know
marked unknown (null), never zero."""

import time

from prefect_tracer.client import SidecarClient
from sidecar import Sidecar, WORKLOAD, observe_command


def test_forced_procfs_collector_reports_what_it_can(tmp_path):
    sidecar = Sidecar(tmp_path, "--collector", "procfs").start()
    try:
        status = sidecar.status()
        assert status["collector"] == "procfs"
        assert "forced with --collector procfs" in status["collector_note"]
        assert "using /proc" in sidecar.log()

        client = SidecarClient(str(sidecar.socket), start_wait_ms=5000, finish_wait_ms=5000,
                               connect_wait_ms=5000)
        with client.flow_run(flow_run_id="procfs", flow_name="procfs") as flow:
            with flow.task(task_run_id="spin") as task:
                until = time.thread_time() + 0.3
                while time.thread_time() < until:
                    pass
        report = task.report
        assert report["collector"] == "procfs"
        cpu = report["cpu"]["user_ns"] + report["cpu"]["system_ns"]
        assert 0.28e9 <= cpu <= 0.4e9
        for group, field in [("net", "tx_bytes"), ("net", "rx_bytes"), ("proc", "spawned"),
                             ("sched", "blocked_io_ns"), ("memory", "oom_kills")]:
            assert report[group][field] is None, (group, field)
            assert f"{group}.{field}" in report["unknown"]
        assert report["proc"]["top"] is None
        assert report["memory"]["peak_rss_bytes"] > 0
    finally:
        assert sidecar.stop() == 0
