"""Policies end to end: the real sidecar advising real runs."""

import json
import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from sidecar import REPO, SIDECAR, TRACERCTL, WORKLOAD, Sidecar, wait_until

CATCH_ALL = """version: 1
policies:
  - name: {name}
    match: {{}}
    history: {{runs: 20, min_runs: {min_runs}}}
"""


def run_task(sidecar, *command, flow="nightly-etl", name="light"):
    result = subprocess.run([str(TRACERCTL), "--socket", str(sidecar.socket), "run", "--json",
                             "--flow", flow, "--name", name, "--", *command],
                            capture_output=True, text=True, timeout=120)
    return result, json.loads(result.stdout) if result.stdout else None


def policy_dir(tmp_path, name="first", min_runs=3):
    directory = tmp_path / "policies"
    directory.mkdir(exist_ok=True)
    (directory / "10-main.yaml").write_text(CATCH_ALL.format(name=name, min_runs=min_runs))
    return directory


def test_five_light_runs_recommend_less_than_the_allocation(tmp_path):
    sidecar = Sidecar(tmp_path, "--policies", str(REPO / "policies")).start()
    try:
        reports = [run_task(sidecar, str(WORKLOAD), "live", "30")[1] for _ in range(5)]
        first, last = reports[0], reports[-1]
        assert first["policy"] == "default"
        assert first["recommendation"]["ready"] is False
        assert first["recommendation"]["runs"] == 1
        rec = last["recommendation"]
        assert rec["ready"] is True
        assert rec["runs"] == 5
        assert rec["confidence"] == pytest.approx(5 / 20)
        assert rec["cpu_cores"] < last["allocation"]["cpu_cores"]
        # A task's use is not judged against the flow run's allocation, and its
        # own figures are no limits to set.
        kinds = {f["kind"] for f in last["findings"]}
        assert not kinds & {"cpu_over_allocation", "memory_over_allocation"}
        assert rec["job_variables"] == ""
        # tracerctl recommendations lists the task and the flow run's footprint,
        # keyed by flow (no deployment) and task; the job variables are the flow run's.
        listing = json.loads(sidecar.tracerctl("recommendations", "--json").stdout)
        by_task = {entry["task"]: entry for entry in listing["recommendations"]}
        assert set(by_task) == {"light", "(flow run)"}
        for entry in by_task.values():
            assert (entry["key"], entry["policy"]) == ("flow:nightly-etl", "default")
            assert entry["flow"] == "nightly-etl" and entry["deployment"] == ""
            assert entry["recommendation"]["runs"] == 5
        whole = by_task["(flow run)"]["recommendation"]
        assert whole["ready"] and whole["cpu_cores"] < last["allocation"]["cpu_cores"]
        assert "# process work pool" in whole["job_variables"]
        # tracerctl and the workload together held more than the workload alone.
        assert whole["memory_bytes"] >= rec["memory_bytes"]
        text = sidecar.tracerctl("recommendations").stdout
        assert "nightly-etl / light (policy default): " in text
        assert "nightly-etl / (flow run) (policy default): " in text
    finally:
        assert sidecar.stop() == 0


MEMORY_V1 = Path("/sys/fs/cgroup/memory")


def test_an_oom_kill_recommends_more_memory_than_the_run_had(tmp_path):
    if not (MEMORY_V1 / "cgroup.procs").exists():
        pytest.skip("no cgroup v1 memory controller on this machine")
    group = MEMORY_V1 / f"tracer-policy-test-{os.getpid()}"
    group.mkdir()
    try:
        (group / "memory.limit_in_bytes").write_text(str(64 << 20))
        sidecar = Sidecar(tmp_path, "--policies", str(policy_dir(tmp_path, min_runs=1))).start()
        try:
            # tracerctl is the flow-run process here: inside the group, so the run's
            # allocation is the group's limit, and so is the workload's.
            script = (f"echo $$ > {group}/cgroup.procs && exec {TRACERCTL} --socket "
                      f"{sidecar.socket} run --json --flow hungry --name oom -- {WORKLOAD} oom")
            result = subprocess.run(["/bin/sh", "-c", script], capture_output=True, text=True,
                                    timeout=120)
            report = json.loads(result.stdout)
            assert result.returncode == 128 + signal.SIGKILL
            assert report["memory"]["oom_kills"] == 1
            assert report["allocation"]["memory_bytes"] == 64 << 20
            assert report["allocation"]["memory_source"] == "cgroup"
            rec = report["recommendation"]
            assert rec["ready"] and rec["oom_seen"]
            assert rec["memory_bytes"] > report["allocation"]["memory_bytes"]
            assert any(f["kind"] == "memory_pressure" and f["severity"] == "critical"
                       for f in report["findings"])
        finally:
            assert sidecar.stop() == 0
    finally:
        for pid in (group / "cgroup.procs").read_text().split():
            (MEMORY_V1 / "cgroup.procs").write_text(pid)
        group.rmdir()


def test_a_bad_reload_keeps_the_last_good_set(tmp_path):
    directory = policy_dir(tmp_path, "first")
    sidecar = Sidecar(tmp_path, "--policies", str(directory)).start()
    try:
        assert run_task(sidecar, "/bin/true")[1]["policy"] == "first"

        (directory / "10-main.yaml").write_text(
            "version: 1\npolicies:\n  - name: second\n    memroy: {}\n")
        refused = sidecar.tracerctl("reload", check=False)
        assert refused.returncode != 0
        assert "10-main.yaml:4:5: unknown key 'memroy' in a policy (did you mean 'memory'?)" \
            in refused.stderr
        status = sidecar.status()
        assert "10-main.yaml:4:5: unknown key 'memroy'" in status["policy_reload_error"]
        assert "last reload refused" in sidecar.tracerctl("status").stdout
        assert run_task(sidecar, "/bin/true")[1]["policy"] == "first"
        assert sidecar.alive()

        (directory / "10-main.yaml").write_text(CATCH_ALL.format(name="second", min_runs=3))
        sidecar.process.send_signal(signal.SIGHUP)  # the other way to reload
        wait_until(lambda: sidecar.status()["policy_reload_error"] == "" and
                   run_task(sidecar, "/bin/true")[1]["policy"] == "second",
                   what="the fixed set to be picked up")
    finally:
        assert sidecar.stop() == 0


def test_a_bad_set_stops_the_sidecar_from_starting(tmp_path):
    directory = tmp_path / "policies"
    directory.mkdir()
    (directory / "bad.yaml").write_text("version: 1\npolicies:\n  - name: x\n    cpu: {min: 2GG}\n")
    result = subprocess.run([str(SIDECAR), "--socket", str(tmp_path / "s.sock"), "--state-dir",
                             str(tmp_path / "state"), "--policies", str(directory)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert "refusing to start with a bad policy set" in result.stderr
    assert "bad.yaml:4:16: cpu.min: '2GG' is not a CPU quantity" in result.stderr


def test_a_policy_asking_more_runs_than_the_history_keeps_is_refused(tmp_path):
    directory = policy_dir(tmp_path, "first")  # history.runs: 20, at 10-main.yaml:5:21
    result = subprocess.run([str(SIDECAR), "--socket", str(tmp_path / "s.sock"), "--state-dir",
                             str(tmp_path / "state"), "--policies", str(directory),
                             "--history-runs", "10"],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert ("10-main.yaml:5:21: history.runs (20) is more than the 10 runs of each task the "
            "history keeps (--history-runs)") in result.stderr

    sidecar = Sidecar(tmp_path, "--policies", str(directory), "--history-runs", "20").start()
    try:
        (directory / "10-main.yaml").write_text(
            "version: 1\npolicies:\n  - name: second\n    history: {min_runs: 3, runs: 21}\n")
        refused = sidecar.tracerctl("reload", check=False)
        assert refused.returncode != 0
        assert ("10-main.yaml:4:34: history.runs (21) is more than the 20 runs of each task the "
                "history keeps (--history-runs)") in refused.stderr
        assert run_task(sidecar, "/bin/true")[1]["policy"] == "first"
    finally:
        assert sidecar.stop() == 0


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL])
def test_history_survives_a_restart(tmp_path, stop):
    sidecar = Sidecar(tmp_path, "--policies", str(policy_dir(tmp_path))).start()
    for _ in range(2):
        run_task(sidecar, "/bin/true")  # each its own flow run, finished when this returns
    assert sidecar.stop(stop) == (0 if stop == signal.SIGTERM else -signal.SIGKILL)
    restarted = Sidecar(tmp_path, "--policies", str(policy_dir(tmp_path))).start()
    try:
        report = run_task(restarted, "/bin/true")[1]
        assert report["recommendation"]["runs"] == 3
        assert report["recommendation"]["ready"] is True
    finally:
        assert restarted.stop() == 0


def test_policy_check_for_ci(tmp_path):
    good = subprocess.run([str(TRACERCTL), "policy", "check", str(REPO / "examples" / "policies")],
                          capture_output=True, text=True)
    assert good.returncode == 0
    assert "4 policies OK" in good.stdout
    shutil.copytree(REPO / "examples" / "policies", tmp_path / "repo")
    (tmp_path / "repo" / "20-broken.yaml").write_text(
        "version: 1\npolicies:\n  - name: etl-default\n    match: {flow: 'etl-('}\n")
    bad = subprocess.run([str(TRACERCTL), "policy", "check", str(tmp_path / "repo")],
                         capture_output=True, text=True)
    assert bad.returncode == 1
    assert "20-broken.yaml:4:19: match.flow: invalid regular expression: missing ): etl-(" in bad.stderr


def test_policy_explain(tmp_path):
    result = subprocess.run([str(TRACERCTL), "policy", "explain", "--policies",
                             str(REPO / "examples" / "policies"), "--flow", "etl-sales", "--task",
                             "load", "--deployment", "nightly-eu", "--tags", "etl"],
                            capture_output=True, text=True)
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert lines[0].startswith("skipped  etl-nightly-heavy") and "tag 'heavy' is missing" in lines[0]
    assert lines[1].startswith("APPLIES  etl-default")
    assert "prices: 0.048 USD per core-hour, 0.0053 USD per GiB-hour (policy file " \
        f"{REPO / 'examples' / 'policies' / '10-etl.yaml'})" in lines


def test_policy_explain_shows_the_prices_of_the_runs_work_pool(tmp_path):
    (tmp_path / "p.yaml").write_text(
        "version: 1\npolicies:\n  - name: priced\n    cost:\n      cpu_core_hour: 0.04\n"
        "      memory_gib_hour: 0.005\n      source: our price list\n"
        "      work_pools: {gpu-pool: {cpu_core_hour: 0.5, memory_gib_hour: 0.01}}\n")

    def prices(*pool):
        explained = subprocess.run([str(TRACERCTL), "policy", "explain", "--policies", str(tmp_path),
                                    "--flow", "f", "--task", "t", *pool],
                                   capture_output=True, text=True)
        assert explained.returncode == 0, explained.stderr
        return [line for line in explained.stdout.splitlines() if line.startswith("prices: ")]

    assert prices() == ["prices: 0.04 USD per core-hour, 0.005 USD per GiB-hour (our price list)"]
    assert prices("--work-pool", "gpu-pool") == [
        "prices: 0.5 USD per core-hour, 0.01 USD per GiB-hour (work pool gpu-pool's; our price list)"]
    assert prices("--work-pool", "cpu-pool") == prices()


def test_policy_test_runs_recorded_cases(tmp_path):
    cases = REPO / "examples" / "policy-cases.yaml"
    passing = subprocess.run([str(TRACERCTL), "policy", "test", str(REPO / "examples" / "policies"),
                              str(cases)], capture_output=True, text=True)
    assert passing.returncode == 0, passing.stdout + passing.stderr
    assert "5 passed, 0 failed" in passing.stdout
    # A flow run's case is judged as the flow run: the same figures as a task
    # get the findings on the allocation.
    task_case = tmp_path / "task.yaml"
    task_case.write_text(cases.read_text().replace(
        "flow_run: {flow: etl-sales, deployment: nightly-eu, tags: [etl]}",
        "task: {flow: etl-sales, task: load, deployment: nightly-eu, tags: [etl]}"))
    judged = subprocess.run([str(TRACERCTL), "policy", "test", str(REPO / "examples" / "policies"),
                             str(task_case)], capture_output=True, text=True)
    assert "FAIL a light nightly flow run is over-allocated" in judged.stdout
    assert "got []" in judged.stdout
    wrong = tmp_path / "cases.yaml"
    wrong.write_text(cases.read_text().replace("policy: etl-nightly-heavy", "policy: etl-default"))
    failing = subprocess.run([str(TRACERCTL), "policy", "test", str(REPO / "examples" / "policies"),
                              str(wrong)], capture_output=True, text=True)
    assert failing.returncode == 1
    assert "FAIL heavy loads get their own policy, and an OOM is critical" in failing.stdout
    assert "expected policy etl-default, got etl-nightly-heavy" in failing.stdout
    broken = tmp_path / "broken.yaml"
    broken.write_text("cases:\n  - name: x\n    run: {wall: 10 minutes}\n")
    refused = subprocess.run([str(TRACERCTL), "policy", "test", str(REPO / "examples" / "policies"),
                              str(broken)], capture_output=True, text=True)
    assert refused.returncode == 1
    assert "broken.yaml:3:17: run.wall: '10 minutes' is not a duration" in refused.stderr
