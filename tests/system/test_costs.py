"""tracerctl costs against a real sidecar: bad options are refused in one
line before anything is asked, an empty history says so, and the costs a
history holds come back as a table and as the contract's JSON."""

import json
import sqlite3
import subprocess
import time

import pytest

from sidecar import TRACERCTL

ETL = "deployment:3f2a9c1e-5b7d-4e21-9a0b-1c2d3e4f5a6b"
HOUR = 3600 * 10**9


@pytest.mark.parametrize("args, error", [
    (["--since", "3x"], "--since: '3x' is not a duration (expected e.g. 500ms, 60s, 5m, 1h, 7d or 2w)"),
    (["--since", "-1d"], "--since: '-1d' is not a duration (expected e.g. 500ms, 60s, 5m, 1h, 7d or 2w)"),
    (["--since", "0"], "--since: '0' is not a duration (expected e.g. 500ms, 60s, 5m, 1h, 7d or 2w)"),
    (["--since", "0d"], "--since: '0d' is no window (expected a duration above 0, e.g. 7d)"),
    (["--since", "5300w"], "--since: '5300w' is longer than the 100 years a window may be"),
    (["--by", "owner"], "--by: 'owner' is not one of deployment, flow, task"),
])
def test_bad_options_get_one_line_and_status_2(tmp_path, args, error):
    # No sidecar: the options are checked before it is asked.
    refused = subprocess.run([str(TRACERCTL), "--socket", str(tmp_path / "absent.sock"), "costs",
                              *args], capture_output=True, text=True, timeout=30)
    assert (refused.returncode, refused.stdout, refused.stderr) == (
        2, "", f"tracerctl costs: {error}\n")


def test_an_empty_history(sidecar):
    shown = sidecar.tracerctl("costs")
    assert shown.stdout.startswith("costs by deployment of the runs that finished from ")
    assert "\n(no runs in the history in either window)\nnote: the window is partial: " \
        "no sidecar watched 7.0 d of it" in shown.stdout
    report = json.loads(sidecar.tracerctl("costs", "--json", "--by", "task", "--since", "2w").stdout)
    assert report["by"] == "task"
    assert report["rows"] == []
    assert report["window_end_ns"] - report["window_start_ns"] == 14 * 24 * HOUR
    assert "tasks' costs overlap" in report["notes"][0]


def test_a_new_sidecar_says_it_did_not_watch_the_windows(sidecar):
    """Runs of the days before the sidecar's first start are in no history:
    both windows are partial, and say so, in the JSON and in the table."""
    report = json.loads(sidecar.tracerctl("costs", "--json", "--since", "1d").stdout)
    start = report["window_start_ns"]
    with sqlite3.connect(sidecar.state_dir / "history.db") as db:
        [(started,)] = db.execute("SELECT since_ns FROM watched").fetchall()
    assert report["notes"] == [
        f"the window is partial: no sidecar watched 24.0 h of it (the longest stretch from "
        f"{utc_minute(start)} to {utc_minute(started)}): "
        "runs that finished then are not in the history",
        f"the previous window is partial: no sidecar watched 24.0 h of it (the longest stretch "
        f"from {utc_minute(start - 24 * HOUR)} to {utc_minute(start)}): runs that finished then "
        "are not in the history"]
    assert "the previous window is partial: no sidecar watched 24.0 h" in \
        sidecar.tracerctl("costs", "--since", "1d").stdout


def utc_minute(ns: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ns // 10**9))


def row(key, task, flow, deployment, finished_at_ns, used, allocated, waste, currency):
    record = {"task": task, "cost_used": used, "cost_allocated": allocated,
              "cost_waste": waste, "currency": currency}
    return (key, task, finished_at_ns, flow, deployment, "pool", "process", "",
            json.dumps(record))


def test_the_costs_a_history_holds(sidecar):
    """Rows written into the sidecar's own history.db, as the advisor writes
    them: one deployment's flow runs (one of three without a footprint), and a
    flow's in another currency, one run of it unpriced."""
    sidecar.stop()
    now = time.time_ns()
    with sqlite3.connect(sidecar.state_dir / "history.db") as db:
        db.executemany("INSERT INTO task_runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", [
            row(ETL, "(flow run)", "etl", "nightly", now - 1 * HOUR, 1.25, 4.0, 2.75, "USD"),
            row(ETL, "(flow run)", "etl", "nightly", now - 2 * HOUR, 0.75, 4.0, 3.25, "USD"),
            row(ETL, "(flow run)", "etl", "nightly", now - 200 * HOUR, 1.0, 4.0, 3.0, "USD"),
            row(ETL, "extract", "etl", "nightly", now - 1 * HOUR, 0.5, 1.0, 0.5, "USD"),
            row("flow:report", "(flow run)", "report", "", now - 3 * HOUR, 0.5, 2.0, 1.5, "EUR"),
            row("flow:report", "(flow run)", "report", "", now - 4 * HOUR, 0, 0, 0, ""),
        ])
        db.executemany("INSERT INTO flow_runs VALUES (?, ?, ?, ?, ?)", [
            (ETL, f"run-{hours}", now - hours * HOUR, HOUR, "completed") for hours in (1, 2, 3)])
        # A sidecar watched all that time: no stretch of either window is unwatched.
        db.execute("INSERT INTO watched VALUES (?, ?)", (now - 400 * HOUR, now))
    sidecar.start()

    rows = {(r["flow"], r["currency"]): r
            for r in json.loads(sidecar.tracerctl("costs", "--json").stdout)["rows"]}
    etl = rows[("etl", "USD")]
    assert (etl["deployment"], etl["key"], etl["runs"]) == ("nightly", ETL, 2)
    assert (etl["used"], etl["allocated"], etl["waste"]) == (2.0, 8.0, 6.0)
    assert (etl["previous_runs"], etl["previous_used"]) == (1, 1.0)
    assert etl["partial"] is True
    assert etl["partial_why"] == ["1 of 3 flow runs has no footprint"]
    assert etl["trend"] is None  # a partial window has no trend
    report = rows[("report", "EUR")]
    assert (report["runs"], report["used"], report["unpriced_runs"]) == (1, 0.5, 1)

    table = sidecar.tracerctl("costs").stdout
    assert "etl/nightly [1]  2     2.00 USD   8.00 USD   6.00 USD (75%)  1.00 USD  ?" in table
    assert "[1] partial: 1 of 3 flow runs has no footprint" in table
    assert "[2] 1 run without a cost, left out of the sums" in table
    assert ("total: used 2.00 USD, allocated 8.00 USD, waste 6.00 USD (75%); at least: [1] "
            "partial") in table
    assert ("total: used 0.500 EUR, allocated 2.00 EUR, waste 1.50 EUR (75%); at least: [2] "
            "partial") in table
    by_task = sidecar.tracerctl("costs", "--by", "task").stdout
    assert "etl/nightly / extract" in by_task and "total" not in by_task
