"""A flow run that lasts gets a live artifact in Prefect while it runs: one
artifact without a key on the flow run, showing the task running now and what
it waits on, updated in place at the policy's interval (findings.live_artifact)
and a last time when the run ends."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from prefect_artifacts import fetch_json, sidecar_with_policy
from sidecar import wait_until

FLOW = Path(__file__).resolve().parent / "flows" / "contention.py"


def live_artifacts(server, flow_run_id: str) -> list[dict]:
    found = fetch_json(f"{server.api_url}/artifacts/filter",
                       {"artifacts": {"flow_run_id": {"any_": [flow_run_id]}}})
    return [a for a in found if a["key"] is None
            and (a.get("metadata_") or {}).get("tracer_artifact_id")]


def test_a_lasting_flow_run_shows_what_runs_now(prefect_server, tmp_path):
    sidecar = sidecar_with_policy(prefect_server, tmp_path, findings="{live_artifact: 2s}")
    # Four tasks one after another, each waiting 3 s on a server.
    log = (tmp_path / "flow.log").open("w")
    flow = subprocess.Popen([sys.executable, str(FLOW), "network", "3"], stdout=subprocess.PIPE,
                            stderr=log, text=True,
                            env=prefect_server.env(PREFECT_PLUGINS_ENABLED="true",
                                                   TRACER_SOCKET=str(sidecar.socket)))
    try:
        def running_task():
            tasks = json.loads(sidecar.tracerctl("top", "--json").stdout)["tasks"]
            return tasks[0] if tasks else None

        flow_run_id = wait_until(running_task, timeout=60, interval=0.2,
                                 what="a task of the flow run in tracerctl top")["flow_run_id"]
        server = wait_until(lambda: next((line.split()[1] for line in [flow.stdout.readline()]
                                          if line.startswith("server ")), None),
                            timeout=30, what="the flow's server address")

        def showing_a_wait():
            found = live_artifacts(prefect_server, flow_run_id)
            return found if found and f"network {server}" in found[0]["data"] else None

        found = wait_until(showing_a_wait, timeout=30, interval=0.2,
                           what="the live artifact showing a task waiting on the server")
        assert flow.poll() is None, "the flow run ended before its live artifact showed"
        print(found[0]["data"])
        assert "is running" in found[0]["data"] and "| work |" in found[0]["data"]
        live_id = found[0]["id"]
        first_update = found[0]["updated"]

        def updated():
            now = live_artifacts(prefect_server, flow_run_id)
            return now if now and now[0]["updated"] != first_update else None

        wait_until(updated, timeout=10, interval=0.2, what="the live artifact updated in place")
        flow.communicate(timeout=120)
        assert flow.returncode == 0, (tmp_path / "flow.log").read_text()[-3000:]

        def ended():
            now = live_artifacts(prefect_server, flow_run_id)
            return now if now and "ended (completed)" in now[0]["data"] else None

        final = wait_until(ended, timeout=30, interval=0.5, what="the live artifact's last form")
        assert [a["id"] for a in final] == [live_id], "one live artifact, updated in place"
    finally:
        if flow.poll() is None:
            flow.kill()
        assert sidecar.stop() == 0, sidecar.log()[-3000:]
