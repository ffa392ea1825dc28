"""tracerctl run: an exact, subprocess-aware /usr/bin/time."""

import json
import subprocess

from sidecar import TRACERCTL, WORKLOAD


def run(sidecar, *args):
    return subprocess.run([str(TRACERCTL), "--socket", str(sidecar.socket), "run", *args],
                          capture_output=True, text=True, timeout=60)


def test_json_report_on_stdout_and_the_commands_exit_status(sidecar):
    result = run(sidecar, "--json", "--name", "churn", "--flow", "nightly", "--tags", "a,b", "--",
                 "/bin/sh", "-c", f"{WORKLOAD} spawn 20 1 2; exit 7")
    assert result.returncode == 7
    report = json.loads(result.stdout)
    assert report["task_name"] == "churn"
    assert report["state"] == "failed"
    assert report["proc"]["spawned"] == 21  # sh's child, and its 20 children
    assert report["proc"]["execs"] == 22    # sh itself, the workload, its 20 children
    assert report["memory"]["shared_process"] is False
    assert report["events"]["lost"] == 0


def test_readable_report_on_stderr(sidecar):
    result = run(sidecar, "--", str(WORKLOAD), "live", "50")
    assert result.returncode == 0
    assert result.stdout == ""
    for label in ["wall", "cpu", "waiting for a CPU", "blocked on I/O", "peak memory",
                  "processes", "events lost"]:
        assert f"  {label}" in result.stderr, label
    assert "task test_workload (" in result.stderr and ": completed" in result.stderr


def test_signal_death_becomes_128_plus_signal(sidecar):
    result = run(sidecar, "--json", "--", "/bin/sh", "-c", "kill -TERM $$")
    assert result.returncode == 128 + 15
    assert json.loads(result.stdout)["state"] == "failed"


def test_a_command_that_cannot_run(sidecar):
    result = run(sidecar, "--", "/nonexistent/command")
    assert result.returncode == 127
    assert "cannot run /nonexistent/command: No such file or directory" in result.stderr


def test_names_with_quotes_and_control_characters_arrive_whole(sidecar):
    name = 'say "hi"\\ \x01\x1f\ttab'
    result = run(sidecar, "--json", "--name", name, "--flow", "fl\x02ow", "--", "/bin/true")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["task_name"] == name


def test_without_a_sidecar_the_command_still_runs(tmp_path):
    result = subprocess.run([str(TRACERCTL), "--socket", str(tmp_path / "absent.sock"), "run",
                             "--", "/bin/sh", "-c", "echo ran; exit 4"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 4
    assert result.stdout == "ran\n"
    assert "running unobserved" in result.stderr


def test_reports_lists_finished_tasks(sidecar):
    run(sidecar, "--name", "listed", "--", "/bin/true")
    listing = json.loads(sidecar.tracerctl("reports", "--json", "--limit", "5").stdout)
    assert listing["reports"][0]["task_name"] == "listed"
    assert "task listed (" in sidecar.tracerctl("reports").stdout


def test_call_reaches_any_admin_method_by_its_contract_name(sidecar):
    """One generic call through the dynamic API: params and results are the
    contract's JSON; a wrong method or param is refused by name."""
    sidecar.tracerctl("run", "--", "/bin/true")
    reports = json.loads(sidecar.tracerctl("call", "recent_reports", '{"limit": 1}').stdout)
    assert [r["task_name"] for r in reports["reports"]] == ["true"]
    assert json.loads(sidecar.tracerctl("call", "live_tasks").stdout) == {"tasks": []}
    wrong = sidecar.tracerctl("call", "recent_report", check=False)
    assert wrong.returncode != 0
    assert 'no Admin method "recent_report" (one of: live_tasks, recent_reports' in wrong.stderr
    typo = sidecar.tracerctl("call", "recent_reports", '{"limt": 1}', check=False)
    assert typo.returncode != 0 and "key = limt" in typo.stderr, typo.stderr
