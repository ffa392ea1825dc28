"""Memory-limited cgroups: OOM kills are counted, limits become the allocation."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from prefect_tracer.client import SidecarClient
from sidecar import WORKLOAD, observe_command, python_env

MEMORY_V1 = Path("/sys/fs/cgroup/memory")
CPU_V1 = Path("/sys/fs/cgroup/cpu")


@pytest.fixture
def memory_cgroup():
    if not (MEMORY_V1 / "cgroup.procs").exists():
        pytest.skip("no cgroup v1 memory controller on this machine")
    group = MEMORY_V1 / f"tracer-test-{os.getpid()}"
    group.mkdir()
    (group / "memory.limit_in_bytes").write_text(str(64 << 20))
    if (group / "memory.memsw.limit_in_bytes").exists():
        (group / "memory.memsw.limit_in_bytes").write_text(str(64 << 20))
    yield group
    # Move anything left back to the root before removing the group.
    for pid in (group / "cgroup.procs").read_text().split():
        (MEMORY_V1 / "cgroup.procs").write_text(pid)
    group.rmdir()


def test_oom_kill_is_counted_and_the_report_still_arrives(sidecar, memory_cgroup):
    client = SidecarClient(str(sidecar.socket), start_wait_ms=5000, finish_wait_ms=5000,
                           connect_wait_ms=5000)
    with client.flow_run(flow_run_id="oom", flow_name="oom") as flow:
        report, _, status = observe_command(
            flow, [str(WORKLOAD), "oom"], "oom",
            before_exec=lambda pid: (memory_cgroup / "cgroup.procs").write_text(str(pid)))
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == 9
    assert report["memory"]["oom_kills"] == 1
    assert report["memory"]["peak_rss_bytes"] <= 80 << 20
    assert report["events"]["lost"] == 0


ANNOUNCE = """
import json, sys
from prefect_tracer.client import SidecarClient
client = SidecarClient(sys.argv[1], start_wait_ms=5000, finish_wait_ms=5000, connect_wait_ms=5000)
with client.flow_run(flow_run_id="limited", flow_name="limits") as flow:
    with flow.task(task_run_id="t") as task:
        pass
print(json.dumps(task.report["allocation"]))
"""


def test_cgroup_limits_of_the_flow_run_process_are_its_allocation(sidecar, memory_cgroup):
    if not (CPU_V1 / "cgroup.procs").exists():
        pytest.skip("no cgroup v1 cpu controller on this machine")
    cpu_group = CPU_V1 / f"tracer-test-{os.getpid()}"
    cpu_group.mkdir()
    try:
        (cpu_group / "cpu.cfs_period_us").write_text("100000")
        (cpu_group / "cpu.cfs_quota_us").write_text("50000")
        # The flow-run process joins both groups before it announces the run.
        join = (f"echo $$ > {memory_cgroup}/cgroup.procs && echo $$ > {cpu_group}/cgroup.procs "
                f"&& exec {sys.executable} -c '{ANNOUNCE}' {sidecar.socket}")
        result = subprocess.run(["/bin/sh", "-c", join], capture_output=True, text=True,
                                env=python_env(), timeout=60)
        assert result.returncode == 0, result.stderr
        allocation = json.loads(result.stdout)
        assert allocation == {"cpu_cores": 0.5, "memory_bytes": 64 << 20,
                              "source": "cgroup", "memory_source": "cgroup"}
    finally:
        for pid in (cpu_group / "cgroup.procs").read_text().split():
            (CPU_V1 / "cgroup.procs").write_text(pid)
        cpu_group.rmdir()


def test_without_limits_the_host_is_the_allocation(sidecar):
    client = SidecarClient(str(sidecar.socket), start_wait_ms=5000, finish_wait_ms=5000,
                           connect_wait_ms=5000)
    with client.flow_run(flow_run_id="unlimited", flow_name="limits") as flow:
        with flow.task(task_run_id="t") as task:
            pass
    allocation = task.report["allocation"]
    assert allocation["source"] == "host" and allocation["cpu_cores"] == os.cpu_count()
    assert allocation["memory_source"] == "host"
    meminfo = Path("/proc/meminfo").read_text().split()
    assert allocation["memory_bytes"] == int(meminfo[meminfo.index("MemTotal:") + 1]) * 1024
