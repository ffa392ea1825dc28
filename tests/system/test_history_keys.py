"""Whose history a run adds to: Prefect makes a deployment's name unique only
within its flow, so a deployment is known by its id (report/run_keys.h). A
state directory written before, which keyed history by deployment name, is
carried over without handing one flow's runs to another."""

import json
import sqlite3
import subprocess
import time
import uuid

from prefect_tracer.client import SidecarClient
from sidecar import SIDECAR, Sidecar, wait_until

ETL_PROD = "3f2a9c1e-5b7d-4e21-9a0b-1c2d3e4f5a6b"
REPORT_PROD = "b04417d2-0c3e-4f6a-8d9e-7a6b5c4d3e2f"

# history.db as the sidecar wrote it before schema versions (PRAGMA
# user_version 0): a deployment's runs under its bare name.
VERSION_0_SCHEMA = """
CREATE TABLE task_runs (
    key TEXT NOT NULL, task TEXT NOT NULL, finished_at_ns INTEGER NOT NULL,
    flow TEXT, task_name TEXT, deployment TEXT, work_pool TEXT, tags TEXT,
    wall_ns INTEGER, cpu_ns INTEGER, p95_cores REAL, max_cores REAL,
    runqueue_ns INTEGER, blocked_io_ns INTEGER, sleep_ns INTEGER,
    peak_rss_bytes INTEGER, oom_kills INTEGER, short_lived INTEGER,
    allocated_cores REAL, allocated_bytes INTEGER, work_pool_type TEXT);
CREATE INDEX task_runs_by_task ON task_runs (key, task, finished_at_ns);
CREATE TABLE flow_runs (
    key TEXT NOT NULL, flow_run_id TEXT, finished_at_ns INTEGER NOT NULL,
    wall_ns INTEGER, state TEXT);
"""


def connect(sidecar):
    return SidecarClient(str(sidecar.socket), start_wait_ms=2000, finish_wait_ms=2000,
                         connect_wait_ms=2000)


def run(client, flow, deployment_id, deployment="prod", task="extract"):
    """One flow run of one task; its TaskReport."""
    with client.flow_run(flow_run_id=str(uuid.uuid4()), flow_name=flow,
                         deployment_id=deployment_id, deployment_name=deployment) as scope:
        with scope.task(task_run_id=str(uuid.uuid4()), task_name=task) as task_scope:
            pass
    assert task_scope.error is None, task_scope.error
    return task_scope.report


def recommendations(sidecar):
    listing = json.loads(sidecar.tracerctl("recommendations", "--json").stdout)
    return sorted((e["key"], e["flow"], e["deployment"], e["task"], e["recommendation"]["runs"])
                  for e in listing["recommendations"])


def local_artifacts(sidecar):
    """The artifacts' bodies as they would be posted (no Prefect API: they stay
    local; tests/prefect/ delivers them to a real server)."""
    return [json.loads(item["body"])
            for item in json.loads(sidecar.tracerctl("outbox", "--json").stdout)["artifacts"]]


def test_two_flows_with_a_prod_deployment_keep_their_own_history_and_artifacts(sidecar):
    client = connect(sidecar)
    etl = [run(client, "etl", ETL_PROD) for _ in range(2)]
    report = run(client, "report", REPORT_PROD)
    client.close()
    assert [r["recommendation"]["runs"] for r in etl] == [1, 2]
    assert report["recommendation"]["runs"] == 1  # not etl's third
    # Each task, and each deployment's flow runs as a whole (their footprint).
    assert recommendations(sidecar) == [
        (f"deployment:{ETL_PROD}", "etl", "prod", "(flow run)", 2),
        (f"deployment:{ETL_PROD}", "etl", "prod", "extract", 2),
        (f"deployment:{REPORT_PROD}", "report", "prod", "(flow run)", 1),
        (f"deployment:{REPORT_PROD}", "report", "prod", "extract", 1)]

    wait_until(lambda: len(local_artifacts(sidecar)) == 6, what="six artifacts")
    keys = {}
    for artifact in local_artifacts(sidecar):
        keys.setdefault(artifact["metadata_"]["flow"], set()).add(artifact["key"])
    assert keys == {"etl": {"tracer-etl-prod-3f2a9c1e", "tracer-etl-prod-3f2a9c1e-tasks"},
                    "report": {"tracer-report-prod-b04417d2", "tracer-report-prod-b04417d2-tasks"}}


def test_a_deployment_id_that_is_not_a_uuid_is_refused(sidecar):
    client = connect(sidecar)
    with client.flow_run(flow_run_id=str(uuid.uuid4()), flow_name="etl", deployment_id="prod",
                         deployment_name="prod") as flow:
        with flow.task(task_run_id=str(uuid.uuid4()), task_name="extract") as task:
            pass
    client.close()
    assert task.error is not None and 'deployment_id "prod" is not a UUID' in task.error


def write_version_0_history(path):
    """Rows as the previous sidecar recorded them: key = the deployment name
    (shared by every flow's "prod"), or "flow:<name>" without a deployment."""
    now = time.time_ns()

    def row(key, flow, deployment, age_s, task="extract"):
        return (key, task, now - age_s * 1_000_000_000, flow, task, deployment, "pool", "",
                2_000_000_000, 1_000_000_000, 0.5, 0.6, 0, 0, 0, 100 << 20, 0, 0, 2.0, 1 << 30,
                "process")

    rows = [row("prod", "etl", "prod", age) for age in (300, 200, 100)]
    rows += [row("prod", "report", "prod", age) for age in (250, 150)]
    rows.append(row("prod", "", "", 400))  # seeded from Prefect: no flow recorded
    rows.append(row("flow:etl", "etl", "", 50, task="local"))
    db = sqlite3.connect(path)
    db.executescript(VERSION_0_SCHEMA)
    db.executemany(f"INSERT INTO task_runs VALUES ({', '.join('?' * 21)})", rows)
    db.execute("INSERT INTO flow_runs VALUES ('prod', 'f1', ?, 1000, 'completed')", (now,))
    db.commit()
    assert db.execute("PRAGMA user_version").fetchone() == (0,)
    db.close()


def history_rows(path):
    db = sqlite3.connect(path)
    try:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        # Task runs only: flow run footprints (task "(flow run)") are newer than version 0.
        live = db.execute("SELECT key, flow, COUNT(*) FROM task_runs WHERE task != '(flow run)' "
                          "GROUP BY key, flow ORDER BY key, flow").fetchall()
        aside = db.execute("SELECT key, flow, COUNT(*) FROM version0_task_runs "
                           "GROUP BY key, flow ORDER BY key, flow").fetchall()
        return version, live, aside
    finally:
        db.close()


def test_history_kept_by_deployment_name_moves_to_the_deployment_id_of_its_own_flow(tmp_path):
    sidecar = Sidecar(tmp_path)
    sidecar.state_dir.mkdir()
    history = sidecar.state_dir / "history.db"
    write_version_0_history(history)

    sidecar.start()
    try:
        client = connect(sidecar)
        # etl's three earlier runs of "prod" are its own; report's two are not.
        assert run(client, "etl", ETL_PROD)["recommendation"]["runs"] == 4
        client.close()
        # Version 0 kept no flow run footprints: only this run's is there.
        assert recommendations(sidecar) == [
            (f"deployment:{ETL_PROD}", "etl", "prod", "(flow run)", 1),
            (f"deployment:{ETL_PROD}", "etl", "prod", "extract", 4),
            ("flow:etl", "etl", "", "local", 1)]
        assert (f"history of etl/prod: 3 runs kept under the deployment name by an earlier "
                f"version now under deployment:{ETL_PROD}") in sidecar.log()
    finally:
        assert sidecar.stop() == 0
    assert history_rows(history) == (
        2,
        [(f"deployment:{ETL_PROD}", "etl", 4), ("flow:etl", "etl", 1)],
        [("prod", "", 1), ("prod", "report", 2)])

    # After a restart, report's own "prod" takes back its two runs, and only those.
    sidecar.start()
    try:
        client = connect(sidecar)
        assert run(client, "report", REPORT_PROD)["recommendation"]["runs"] == 3
        assert run(client, "etl", ETL_PROD)["recommendation"]["runs"] == 5
        client.close()
    finally:
        assert sidecar.stop() == 0
    assert history_rows(history) == (
        2,
        [(f"deployment:{ETL_PROD}", "etl", 5), (f"deployment:{REPORT_PROD}", "report", 3),
         ("flow:etl", "etl", 1)],
        [("prod", "", 1)])


def test_a_version_1_history_becomes_records_with_its_numbers(tmp_path):
    """Version 1 had a column per field; version 2 keeps each run's TaskRow
    (the table artifact's row) as JSON: the upgrade carries every number over."""
    sidecar = Sidecar(tmp_path)
    sidecar.state_dir.mkdir()
    history = sidecar.state_dir / "history.db"
    write_version_0_history(history)
    db = sqlite3.connect(history)  # what version 1 made of it, minus the aside rows
    db.execute("CREATE TABLE version0_task_runs AS SELECT * FROM task_runs WHERE 0")
    db.execute("DELETE FROM task_runs WHERE key != 'flow:etl'")
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()

    sidecar.start()
    try:
        client = connect(sidecar)
        assert run(client, "etl", None, deployment="", task="local")["recommendation"]["runs"] == 2
        client.close()
    finally:
        assert sidecar.stop() == 0
    db = sqlite3.connect(history)
    try:
        assert db.execute("PRAGMA user_version").fetchone() == (2,)
        upgraded, new = [json.loads(r) for (r,) in db.execute(
            "SELECT row FROM task_runs WHERE key = 'flow:etl' AND task = 'local' "
            "ORDER BY finished_at_ns")]
        work_pool, work_pool_type = db.execute(
            "SELECT work_pool, work_pool_type FROM task_runs ORDER BY finished_at_ns").fetchone()
    finally:
        db.close()
    assert (work_pool, work_pool_type) == ("pool", "process")
    assert {k: upgraded[k] for k in ("task", "wall_s", "cpu_s", "p95_cores", "max_cores",
                                     "peak_rss_bytes", "allocated_cores", "allocated_bytes")} == {
        "task": "local", "wall_s": 2.0, "cpu_s": 1.0, "p95_cores": 0.5, "max_cores": 0.6,
        "peak_rss_bytes": 100 << 20, "allocated_cores": 2.0, "allocated_bytes": 1 << 30}
    assert new["task"] == "local" and new["state"] == "completed" and "sleep_s" in new


def test_a_history_from_a_newer_sidecar_is_refused(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    db = sqlite3.connect(state / "history.db")
    db.execute("PRAGMA user_version = 3")
    db.close()
    result = subprocess.run([str(SIDECAR), "--socket", str(tmp_path / "tracer.sock"),
                             "--state-dir", str(state)],
                            capture_output=True, text=True, timeout=10)
    assert result.returncode != 0
    assert ("history.db has history schema version 3, newer than this tracer-sidecar's 2"
            in result.stderr)
