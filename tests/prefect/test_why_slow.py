"""Why a task was slow, from a real Prefect flow run with the plugin: thread
tasks that take turns on Python's GIL get `gil_contention`; the same tasks
doing work that releases the GIL, or sleeping, do not. Tasks waiting on a
server get `external_wait` naming it, and the flow run's table artifact in
Prefect has it. A policy that asks for it puts such a task's diagnosis on its
task run's page in Prefect."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from prefect_artifacts import fetch_json, sidecar_with_policy
from sidecar import wait_until

FLOW = Path(__file__).resolve().parent / "flows" / "contention.py"


def run_flow(server, sidecar, mode: str, output: list | None = None) -> list[dict]:
    finished = sidecar.status()["finished_tasks"]
    result = subprocess.run([sys.executable, str(FLOW), mode], capture_output=True, text=True,
                            timeout=180, env=server.env(PREFECT_PLUGINS_ENABLED="true",
                                                        TRACER_SOCKET=str(sidecar.socket)))
    assert result.stdout.splitlines()[-1] == "Completed", result.stderr[-3000:]
    if output is not None:
        output.extend(result.stdout.splitlines())
    wait_until(lambda: sidecar.status()["finished_tasks"] >= finished + 4, timeout=30,
               what="the four tasks to finish in the sidecar")
    reports = json.loads(sidecar.tracerctl("reports", "--json", "--limit", "4").stdout)["reports"]
    assert sorted(r["task_name"] for r in reports) == ["work"] * 4
    for report in reports:
        by = report["sched"]["sleep_by_cause"] or {}
        print(mode, report["task_run_id"], "cpu", report["cpu"]["avg_cores"],
              {k: round(v / 1e9, 2) for k, v in by.items()},
              [f["kind"] for f in report["findings"]], report["unknown_why"])
    return reports


def kinds(report: dict) -> set[str]:
    return {f["kind"] for f in report["findings"]}


def test_four_pure_python_thread_tasks_contend_for_the_gil(prefect_server, sidecar):
    reports = run_flow(prefect_server, sidecar, "python")
    assert all(r["memory"]["shared_process"] for r in reports)
    assert all("gil_contention" in kinds(r) for r in reports), [kinds(r) for r in reports]
    advice = next(f for f in reports[0]["findings"] if f["kind"] == "gil_contention")
    assert "process-based task runner" in advice["summary"]


@pytest.mark.parametrize("mode", ["hashlib", "sleep"])
def test_thread_tasks_that_release_the_gil_do_not(prefect_server, sidecar, mode):
    reports = run_flow(prefect_server, sidecar, mode)
    assert not any("gil_contention" in kinds(r) or "lock_wait" in kinds(r) for r in reports), \
        [kinds(r) for r in reports]


def test_tasks_waiting_on_a_server_name_it(prefect_server, sidecar):
    output: list[str] = []
    reports = run_flow(prefect_server, sidecar, "network", output)
    server = next(line.split()[1] for line in output if line.startswith("server "))
    # Without marked starts and ends (a kernel that refuses fentry, as this
    # project's build machine does) a task cannot list its endpoints, and says
    # so, when its registration arrived late enough that its thread used a
    # socket (Prefect's own API calls) or fell asleep meanwhile, or when its
    # finish arrived after its thread had started a thread or used a socket
    # for the next thing; every other task names the server.
    late = ("it used a socket", "it slept or blocked",
            "after it ended, before its finish reached the sidecar")
    named = []
    for report in reports:
        if "net.endpoints" in report["unknown"]:
            assert any(reason in why for why in report["unknown_why"] for reason in late), report
            continue
        top = report["net"]["endpoints"][0]
        assert f"{top['address']}:{top['port']}" == server, report["net"]
        assert top["wait_ns"] >= 0.95 * 1.5e9 and top["connections"] == 1, top
        advice = next(f for f in report["findings"] if f["kind"] == "external_wait")
        assert f"waiting on {server}" in advice["summary"], advice
        named.append(report["task_run_id"])
    print(f"{len(named)} of 4 tasks name the server")
    assert named, [r["unknown_why"] for r in reports]

    def table():
        found = fetch_json(f"{prefect_server.api_url}/artifacts/filter",
                           {"artifacts": {"flow_run_id": {"any_": [reports[0]["flow_run_id"]]},
                                          "type": {"any_": ["table"]}}})
        return found[0] if found else None

    artifact = wait_until(table, timeout=30, interval=0.5, what="the flow run's table artifact")
    rows = artifact["data"] if isinstance(artifact["data"], list) else json.loads(artifact["data"])
    assert sorted(row["task_run_id"] for row in rows if row["top_endpoint"] == server) == \
        sorted(named), rows


def test_a_task_with_a_warning_gets_an_artifact_on_its_task_run(prefect_server, tmp_path):
    sidecar = sidecar_with_policy(prefect_server, tmp_path, findings="{task_artifact: warning}")
    try:
        reports = run_flow(prefect_server, sidecar, "python")
        ids = [r["task_run_id"] for r in reports if r["task_artifact"]]
        assert ids, [kinds(r) for r in reports]

        def delivered():
            found = fetch_json(f"{prefect_server.api_url}/artifacts/filter",
                               {"artifacts": {"task_run_id": {"any_": ids}}})
            return found if len(found) == len(ids) else None

        artifacts = wait_until(delivered, timeout=30, interval=0.5,
                               what="the tasks' own artifacts in Prefect")
    finally:
        assert sidecar.stop() == 0, sidecar.log()[-3000:]
    for artifact in artifacts:
        assert artifact["key"].endswith("-task-work") and artifact["type"] == "markdown"
        assert "### Findings" in artifact["data"] and "### Where the time went" in artifact["data"]
        assert artifact["flow_run_id"] == reports[0]["flow_run_id"]
