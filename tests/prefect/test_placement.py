"""Which tasks belong on which work pool, from a real Prefect flow run with
the plugin: a task burning a CPU is `compute`, one waiting 2 s on a server
that answers late is `external`, and since the waiting one has the flow run's
allocation to itself for a good share of the run (2 s of some 5 s) the
flow run's markdown artifact in Prefect gets the Placement section and the
`separate_tasks` finding naming both. docs/policies.md, "Placement"."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from prefect_artifacts import flow_run_markdown, sidecar_with_policy
from sidecar import wait_until

FLOW = Path(__file__).resolve().parent / "flows" / "placement.py"


def test_a_compute_task_and_a_waiting_one_belong_on_two_work_pools(prefect_server, tmp_path):
    # min_runs 1: the deployment's recommendation, and so its shape, is ready at
    # once. On a machine shared with other work (a build beside the suite) a
    # task burning a CPU may get a fraction of one, and Prefect's start and end
    # of a flow run take longer: the policy asks less of both, through its
    # placement and findings keys.
    sidecar = sidecar_with_policy(prefect_server, tmp_path, history="{runs: 20, min_runs: 1}",
                                  placement="{compute_cores_above: 0.05}",
                                  findings="{separate_tasks: {light_wall_share_above: 0.1}}")
    try:
        finished = sidecar.status()["finished_flow_runs"]
        result = subprocess.run([sys.executable, str(FLOW)], capture_output=True, text=True,
                                timeout=180, env=prefect_server.env(
                                    PREFECT_PLUGINS_ENABLED="true",
                                    TRACER_SOCKET=str(sidecar.socket)))
        assert result.stdout.splitlines()[-1] == "Completed", result.stderr[-3000:]
        wait_until(lambda: sidecar.status()["finished_flow_runs"] > finished, timeout=30,
                   what="the flow run's end in the sidecar")
        reports = json.loads(sidecar.tracerctl("reports", "--json", "--limit", "5").stdout)[
            "reports"]
        profiles = {r["task_name"]: r["profile"] for r in reports}
        for report in reports:
            print(report["task_name"], report["profile"], report["wall_ns"] / 1e9,
                  report["cpu"]["avg_cores"], report["sched"]["sleep_by_cause"],
                  report["unknown_why"])
        assert profiles["crunch"] == "compute", profiles
        assert profiles["fetch"] == "external", profiles
        flow_run_id = next(r["flow_run_id"] for r in reports if r["task_name"] == "fetch")

        text = wait_until(lambda: flow_run_markdown(prefect_server.api_url, flow_run_id),
                          timeout=30, interval=0.5, what="the flow run's artifact")
        print(text[text.find("### Placement"):][:1500])
        assert "### Placement" in text, text[:3000]
        assert "**Heavy tasks, a larger work pool**: crunch (compute)" in text
        assert "**Light tasks, a small work pool**: fetch (external)" in text
        assert "Shape: the deployment needs " in text and "GiB per core (" in text
        finding = next(line for line in text.splitlines() if "`separate_tasks`" in line
                       and line.startswith("- "))
        assert "fetch waits on external systems and has the allocation to itself" in finding
        assert "run it on a small work pool, and crunch" in finding
    finally:
        assert sidecar.stop() == 0, sidecar.log()[-3000:]
