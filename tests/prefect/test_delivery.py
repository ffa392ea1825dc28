"""Artifacts reach a real Prefect server exactly once when one side goes
away: the server stopped for 30 s while flow runs keep finishing, and the
sidecar stopped (SIGTERM) with a flow run still live. Counted in the server
itself: the versions it holds per key, against what the sidecar produced."""

import sqlite3
import time
import uuid

from prefect_artifacts import (all_delivered, assert_stored_exactly_once, connect, create_deployment,
                               in_prefect, outbox, run_flow, unique)
from sidecar import Sidecar, wait_until

OUTAGE_SECONDS = 30
PRODUCE_EVERY = 6  # s: while the server is away, a flow run finishes this often
AT_ONCE = 3        # flow runs that finish as soon as the server is gone


def latest_retry_in(sidecar) -> float:
    """Seconds until the last pending artifact's next attempt, as the
    sidecar scheduled it (outbox.db; tracerctl outbox does not show it)."""
    with sqlite3.connect(f"file:{sidecar.state_dir / 'outbox.db'}?mode=ro", uri=True) as db:
        (latest,) = db.execute("SELECT MAX(next_attempt_ns) FROM outbox "
                               "WHERE status = 'pending'").fetchone()
    return 0.0 if latest is None else max(0.0, latest / 1e9 - time.time())


def test_a_30_s_server_outage_loses_nothing_and_duplicates_nothing(prefect_server, tmp_path):
    deployment = create_deployment(unique("outage"), "nightly")
    # The flow runs exist in the server before it goes away, as a worker's do.
    schedule = list(range(PRODUCE_EVERY, OUTAGE_SECONDS, PRODUCE_EVERY))
    runs = deployment.flow_runs(1 + AT_ONCE + len(schedule))
    sidecar = Sidecar(tmp_path / "node", env=prefect_server.env()).start()
    client = connect(sidecar)
    try:
        run_flow(client, deployment, runs[0])
        wait_until(lambda: all_delivered(sidecar, runs[:1], 2), what="delivery before the outage")

        prefect_server.stop()
        away = time.monotonic()
        assert not prefect_server.healthy()
        for flow_run_id in runs[1:1 + AT_ONCE]:
            run_flow(client, deployment, flow_run_id)
        for at, flow_run_id in zip(schedule, runs[1 + AT_ONCE:]):
            # Pacing, not waiting for a condition: flow runs keep finishing
            # throughout the outage, not only at its start.
            time.sleep(max(0.0, away + at - time.monotonic()))
            run_flow(client, deployment, flow_run_id)
        time.sleep(max(0.0, away + OUTAGE_SECONDS - time.monotonic()))

        # Nothing was lost to the outage so far: every artifact of those flow
        # runs waits in the outbox, tried and retried.
        during = [i for i in outbox(sidecar) if i["flow_run_id"] in runs[1:]]
        assert len(during) == 2 * (len(runs) - 1)
        assert {i["status"] for i in during} == {"pending"}
        assert all(i["attempts"] >= 1 and "Connection refused" in i["last_error"]
                   for i in during), during
        # Backing off, not hammering: 0.5-1, 1-2, 2-4... s apart (jittered), so
        # the oldest had 5 or 6 attempts in 30 s (7 if this check ran late).
        assert 5 <= max(i["attempts"] for i in during) <= 7

        prefect_server.start()  # the same port and database
        # The sidecar retries on its own schedule (exponential backoff to 60 s,
        # no flag to shorten it), and after 30 s away the oldest artifacts wait
        # up to 32 s. Bounded by that schedule, plus one request timeout (15 s)
        # for the delivery of everything due by then.
        bound = latest_retry_in(sidecar) + 15
        wait_until(lambda: all_delivered(sidecar, runs, 2 * len(runs)), timeout=bound,
                   interval=0.5, what="every artifact delivered after the outage")
        versions = assert_stored_exactly_once(sidecar, prefect_server.api_url, runs)
        assert sorted(versions.values()) == [len(runs), len(runs)]  # markdown and table keys
    finally:
        client.close()
        stopped = sidecar.stop()
        if not prefect_server.healthy():
            prefect_server.start()  # the rest of the session needs it
    assert stopped == 0, sidecar.log()[-3000:]


def test_sigterm_delivers_what_is_due_before_exiting(prefect_server, tmp_path):
    deployment = create_deployment(unique("drain"), "nightly")
    (flow_run_id,) = deployment.flow_runs(1)
    sidecar = Sidecar(tmp_path / "node", env=prefect_server.env()).start()
    client = connect(sidecar)
    try:
        with client.flow_run(flow_run_id=flow_run_id, **deployment.info) as flow:
            with flow.task(task_run_id=str(uuid.uuid4()), task_name="cut-short"):
                # The sidecar stops while the task is live: the task and its
                # flow run are ended, and their artifacts delivered before it exits.
                assert sidecar.stop() == 0
    finally:
        client.close()
    # In Prefect by the time the process has exited, once each: the flow
    # run's markdown and table artifacts, of a flow run the stop crashed.
    artifacts = in_prefect(prefect_server.api_url, [flow_run_id])
    assert sorted(a["type"] for a in artifacts) == ["markdown", "table"]
    assert len({a["metadata_"]["tracer_artifact_id"] for a in artifacts}) == 2
    assert {a["metadata_"]["flow_state"] for a in artifacts} == {"crashed"}
    log = sidecar.log()
    assert "draining" in log and "1 live tasks ended, 0 artifacts left pending" in log
