"""A deployment's CPU and memory advice comes from its flow run's footprint,
what all its processes held and used together, never from one task: four
thread tasks each holding 200 MiB at once get a memory recommendation of at
least 800 MiB above the process's baseline, and the same flow run under that
recommendation as its memory limit (a cgroup v1 memory group here; v2 in the
kernel matrix, tests/kernels) is not OOM-killed. A limit below the footprint
is: the cgroup's limit binds, so the test can fail. The run under that limit
has its cost in its artifact: that allocation over its wall time."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from prefect_artifacts import fetch_json, flow_run_markdown, sidecar_with_policy
from sidecar import wait_until

FLOW = Path(__file__).resolve().parent / "flows" / "footprint.py"
TASK_MIB = 200
MEMORY_V1 = Path("/sys/fs/cgroup/memory")
MIB = 1 << 20


def run_flow(server, sidecar, group: Path | None = None) -> subprocess.CompletedProcess:
    finished = sidecar.status()["finished_flow_runs"]
    command = [sys.executable, str(FLOW), str(TASK_MIB)]
    if group is not None:  # the flow-run process starts inside the group
        command = ["/bin/sh", "-c", f'echo $$ > {group}/cgroup.procs && exec "$0" "$@"',
                   *command]
    result = subprocess.run(command, capture_output=True, text=True, timeout=180,
                            env=server.env(PREFECT_PLUGINS_ENABLED="true",
                                           TRACER_SOCKET=str(sidecar.socket)))
    wait_until(lambda: sidecar.status()["finished_flow_runs"] + sidecar.status()[
        "crashed_flow_runs"] > finished, timeout=30, what="the flow run's end in the sidecar")
    return result


def prefect_flow_run(server, flow_run_id: str) -> dict:
    return fetch_json(f"{server.api_url}/flow_runs/{flow_run_id}")


def whole_run_advice(sidecar) -> dict:
    listing = json.loads(sidecar.tracerctl("recommendations", "--json").stdout)
    return next(e["recommendation"] for e in listing["recommendations"]
                if e["task"] == "(flow run)")


class MemoryGroup:
    """A cgroup v1 memory group limited to `limit` bytes, swap included."""

    def __init__(self, limit: int):
        self.path = MEMORY_V1 / f"tracer-footprint-{limit}"
        self.path.mkdir()
        (self.path / "memory.limit_in_bytes").write_text(str(limit))
        if (self.path / "memory.memsw.limit_in_bytes").exists():
            (self.path / "memory.memsw.limit_in_bytes").write_text(str(limit))

    def oom_kills(self) -> int:
        for line in (self.path / "memory.oom_control").read_text().splitlines():
            if line.startswith("oom_kill "):
                return int(line.split()[1])
        raise AssertionError("memory.oom_control has no oom_kill count")

    def remove(self) -> None:
        for pid in (self.path / "cgroup.procs").read_text().split():
            (MEMORY_V1 / "cgroup.procs").write_text(pid)
        self.path.rmdir()


def last_flow_run_id(sidecar) -> str:
    """The flow run the sidecar saw end last."""
    return json.loads(sidecar.tracerctl("reports", "--json", "--limit", "1").stdout)[
        "reports"][0]["flow_run_id"]


def latest_markdown(server, sidecar) -> str:
    """The markdown artifact in Prefect of the flow run the sidecar saw end last."""
    flow_run_id = last_flow_run_id(sidecar)
    return wait_until(lambda: flow_run_markdown(server.api_url, flow_run_id), timeout=30,
                      interval=0.5, what="the flow run's artifact")


COST_LINE = re.compile(r"This run had \*\*([0-9.]+) USD\*\* allocated \(([0-9.]+) cores and "
                       r"([0-9]+) MiB for ([0-9.]+) s\) and used \*\*([0-9.]+) USD\*\* of it: "
                       r"\*\*([0-9.]+) USD\*\*")


SAVINGS_LINE = re.compile(r"Its last 2 measured runs used ([0-9.]+) USD of ([0-9.]+) USD "
                          r"allocated \(at today's prices\)\.\n\nThe recommendation would save "
                          r"about \*\*([0-9.]+) USD a run\*\*; \*\*([0-9.]+) USD a month\*\* at the "
                          r"observed rate of ([0-9]+) runs a month \(2 runs over ([0-9.]+) (s|min|h)\)")
SECONDS_IN = {"s": 1, "min": 60, "h": 3600}
CORE_HOUR, GIB_HOUR = 0.04048, 0.004445  # the built-in prices: the policy sets none


def cost_line(text: str) -> tuple:
    """(allocated, cores, MiB, seconds, used, not used) of the run's Cost section."""
    found = COST_LINE.search(text)
    assert found, text[text.find("### Cost"):][:1500]
    return tuple(float(g) for g in found.groups())


def check_cost_section(text: str, flow_run: dict, memory_limit: int) -> None:
    """The run's cost, as Prefect has it, is its allocation over its wall time
    at the default prices: the memory is the cgroup's limit the test set, the
    cores this host's, the time within a second of what Prefect's own flow
    run took."""
    allocated, cores, mib, seconds, used, waste = cost_line(text)
    prefect_seconds = flow_run["total_run_time"]
    print(f"cost: {allocated} USD allocated for {cores} cores, {mib:.0f} MiB, {seconds} s "
          f"(Prefect: {prefect_seconds} s running); used {used}, not used {waste}")
    assert (cores, mib) == (os.cpu_count(), memory_limit // MIB)
    assert abs(seconds - prefect_seconds) < 1.0
    hours = seconds / 3600
    expected = cores * hours * CORE_HOUR + mib / 1024 * hours * GIB_HOUR
    assert allocated == pytest.approx(expected, rel=0.01)  # three significant digits
    assert 0 < used < allocated
    # Neither the CPU nor the memory went past the allocation: waste is the difference.
    assert waste == pytest.approx(allocated - used, rel=0.02)
    assert "Prices: 0.04048 USD per core-hour and 0.004445 USD per GiB-hour (AWS Fargate" in text


def check_savings(first: str, second: str, advice: dict, between_s: float) -> None:
    """The second run's artifact adds up both runs' costs, and prices what the
    recommendation leaves unallocated over their mean wall time, at the rate
    of one run per the seconds between their ends (Prefect's end times)."""
    runs = [cost_line(first), cost_line(second)]
    found = SAVINGS_LINE.search(second)
    assert found, second[second.find("### Cost"):][:1500]
    used, allocated, per_run, per_month, rate, span = (float(g) for g in found.groups()[:6])
    span_s = span * SECONDS_IN[found.group(7)]
    print(f"savings: last runs used {used} of {allocated} USD; {per_run} USD a run, "
          f"{per_month} USD a month at {rate} runs a month over {span_s} s "
          f"(Prefect: {between_s:.2f} s between their ends); advice {advice}")
    assert allocated == pytest.approx(runs[0][0] + runs[1][0], rel=0.01)
    assert used == pytest.approx(runs[0][4] + runs[1][4], rel=0.01)
    _, cores, mib, _, _, _ = runs[1]
    mean_hours = (runs[0][3] + runs[1][3]) / 2 / 3600
    spare_gib = max(0.0, mib * MIB - advice["memory_bytes"]) / (1 << 30)
    expected = mean_hours * (max(0.0, cores - advice["cpu_cores"]) * CORE_HOUR +
                             spare_gib * GIB_HOUR)
    assert per_run == pytest.approx(expected, rel=0.02)
    # The sidecar takes a run's end when it advises it, within a second of it.
    assert span_s == pytest.approx(between_s, abs=1.5)
    span_h = advice["span_hours"]  # the text's 0.1 s is too coarse for a rate
    assert span_h * 3600 == pytest.approx(span_s, rel=0.01, abs=0.051)
    assert rate == pytest.approx(730 / span_h, abs=1)
    assert per_month == pytest.approx(per_run * 730 / span_h, rel=0.02)


def test_the_deployment_is_advised_from_its_tasks_together(prefect_server, tmp_path):
    if not (MEMORY_V1 / "cgroup.procs").exists():
        pytest.fail("this test needs the cgroup v1 memory controller at /sys/fs/cgroup/memory "
                    "(CI's machine has it; cgroup v2 is checked in the kernel matrix)")
    sidecar = sidecar_with_policy(prefect_server, tmp_path, history="{runs: 20, min_runs: 1}")
    try:
        free = run_flow(prefect_server, sidecar)
        free_run_id = last_flow_run_id(sidecar)
        assert free.stdout.splitlines()[-1] == "Completed", free.stderr[-3000:]
        baseline = int(next(line.split()[1] for line in free.stdout.splitlines()
                            if line.startswith("baseline ")))
        advice = whole_run_advice(sidecar)
        print(f"baseline {baseline / MIB:.0f} MiB; the flow run needs "
              f"{advice['memory_bytes'] / MIB:.0f} MiB and {advice['cpu_cores']} cores")
        assert advice["ready"], advice
        assert advice["memory_bytes"] >= 4 * TASK_MIB * MIB + baseline, advice
        assert "memory" in advice["job_variables"] or "MiB" in advice["job_variables"], advice

        # The flow run's artifact in Prefect leads with that advice.
        text = latest_markdown(prefect_server, sidecar)
        assert (f"together need about **{advice['cpu_cores']:.2f} cores** and "
                f"**{advice['memory_bytes'] // MIB} MiB**") in text, text[:2000]

        # The same flow run under that advice as its memory limit completes.
        group = MemoryGroup(advice["memory_bytes"])
        try:
            limited = run_flow(prefect_server, sidecar, group.path)
            assert group.oom_kills() == 0
            assert limited.stdout.splitlines()[-1] == "Completed", limited.stderr[-3000:]
        finally:
            group.remove()
        reports = json.loads(sidecar.tracerctl("reports", "--json", "--limit", "4").stdout)[
            "reports"]
        assert {(r["allocation"]["memory_bytes"], r["allocation"]["memory_source"])
                for r in reports} == {(advice["memory_bytes"], "cgroup")}
        limited_text = latest_markdown(prefect_server, sidecar)
        check_cost_section(limited_text, prefect_flow_run(prefect_server, reports[0]["flow_run_id"]),
                           advice["memory_bytes"])
        ends = [datetime.fromisoformat(prefect_flow_run(prefect_server, r)["end_time"]
                                       .replace("Z", "+00:00"))
                for r in (free_run_id, reports[0]["flow_run_id"])]
        check_savings(text, limited_text, whole_run_advice(sidecar),
                      (ends[1] - ends[0]).total_seconds())

        # Below the footprint (three tasks' worth) the run is OOM-killed: the limit binds.
        group = MemoryGroup(3 * TASK_MIB * MIB + baseline)
        try:
            starved = run_flow(prefect_server, sidecar, group.path)
            assert group.oom_kills() >= 1
            assert starved.returncode != 0
        finally:
            group.remove()
    finally:
        assert sidecar.stop() == 0, sidecar.log()[-3000:]
