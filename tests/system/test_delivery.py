"""Artifacts reach the Prefect API, durably: outages, restarts, refusals."""

import json
import os
import signal
import time
import uuid

import pytest

from prefect_api import PrefectApi
from prefect_tracer.client import SidecarClient
from sidecar import Sidecar, wait_until


# The "nightly" deployment of flow "etl", as the plugin announces it: with its id.
NIGHTLY = {"flow_name": "etl", "deployment_id": "6c1f0e2a-93b4-4d5e-8f70-1a2b3c4d5e6f",
           "deployment_name": "nightly"}


def start_sidecar(tmp_path, api, **credentials):
    env = dict(os.environ, PREFECT_API_URL=api.url, **credentials)
    return Sidecar(tmp_path, env=env).start()


def run_flow(sidecar, tasks=2):
    client = SidecarClient(str(sidecar.socket), start_wait_ms=2000, finish_wait_ms=2000,
                           connect_wait_ms=2000)
    flow_run_id = str(uuid.uuid4())
    with client.flow_run(flow_run_id=flow_run_id, **NIGHTLY) as flow:
        for n in range(tasks):
            with flow.task(task_run_id=str(uuid.uuid4()), task_name=f"t{n}"):
                pass
    client.close()
    return flow_run_id


def outbox(sidecar):
    return json.loads(sidecar.tracerctl("outbox", "--json").stdout)["artifacts"]


def statuses(sidecar):
    return sorted(item["status"] for item in outbox(sidecar))


def test_artifacts_are_posted_valid_and_authenticated(tmp_path):
    api = PrefectApi(api_key="secret-key")
    sidecar = start_sidecar(tmp_path, api, PREFECT_API_KEY="secret-key")
    try:
        flow_run_id = run_flow(sidecar)
        wait_until(lambda: len(api.artifacts) == 2, what="two artifacts delivered")
        assert {a["type"] for a in api.artifacts} == {"markdown", "table"}
        assert all(a["flow_run_id"] == flow_run_id for a in api.artifacts)
        request = api.requests[0]
        assert request["headers"]["Authorization"] == "Bearer secret-key"
        assert request["headers"]["X-PREFECT-API-VERSION"]
        wait_until(lambda: statuses(sidecar) == ["delivered", "delivered"], what="outbox updated")
        assert "secret-key" not in sidecar.log()  # credentials are never logged
    finally:
        assert sidecar.stop() == 0
        api.stop()


def test_basic_auth_takes_precedence(tmp_path):
    api = PrefectApi(auth_string="admin:pass")
    sidecar = start_sidecar(tmp_path, api, PREFECT_API_AUTH_STRING="admin:pass",
                            PREFECT_API_KEY="ignored")
    try:
        run_flow(sidecar, tasks=1)
        wait_until(lambda: len(api.artifacts) == 2, what="artifacts delivered with basic auth")
        assert "admin:pass" not in sidecar.log()
    finally:
        assert sidecar.stop() == 0
        api.stop()


def test_a_refused_artifact_is_parked_and_can_be_retried(tmp_path):
    api = PrefectApi()
    api.faults = [(422, {}, "unprocessable: something Prefect did not like")]
    sidecar = start_sidecar(tmp_path, api)
    try:
        run_flow(sidecar)
        wait_until(lambda: statuses(sidecar) == ["delivered", "parked"], what="one parked")
        parked = [i for i in outbox(sidecar) if i["status"] == "parked"][0]
        assert "HTTP 422" in parked["last_error"] and "did not like" in parked["last_error"]
        assert "refused by Prefect and parked" in sidecar.log()
        assert "parked" in sidecar.tracerctl("outbox").stdout
        assert sidecar.alive()
        sidecar.tracerctl("outbox", "--retry-parked")
        run_flow(sidecar, tasks=1)  # new work wakes delivery, which takes the re-queued one too
        wait_until(lambda: statuses(sidecar).count("delivered") == 4, timeout=20,
                   what="the parked artifact delivered after --retry-parked")
    finally:
        assert sidecar.stop() == 0
        api.stop()


def test_server_errors_and_429_are_retried(tmp_path):
    api = PrefectApi()
    api.faults = [(503, {}, "busy"), (429, {"Retry-After": "1"}, "slow down")]
    sidecar = start_sidecar(tmp_path, api)
    try:
        run_flow(sidecar)
        wait_until(lambda: len(api.artifacts) == 2, timeout=30, what="delivery after retries")
        creates = [r["status"] for r in api.requests if r["path"] == "/api/artifacts/"]
        assert creates[:2] == [503, 429]
        assert len({a["key"] for a in api.artifacts}) == 2  # no duplicates
    finally:
        assert sidecar.stop() == 0
        api.stop()


def test_an_unanswered_attempt_that_arrived_is_not_sent_again(tmp_path):
    api = PrefectApi()
    api.hang_ups_after_storing = 1  # Prefect stores the first artifact; its answer is lost
    sidecar = start_sidecar(tmp_path, api)
    try:
        flow_run_id = run_flow(sidecar)
        wait_until(lambda: statuses(sidecar) == ["delivered", "delivered"], timeout=30,
                   what="both delivered")
        assert len(api.artifacts) == 2  # exactly one version each
        assert len({a["metadata_"]["tracer_artifact_id"] for a in api.artifacts}) == 2
        checks = [r for r in api.requests if r["path"] == "/api/artifacts/filter"]
        assert checks, "the unanswered attempt must be checked before sending again"
        assert "was stored by an unanswered attempt; not sending it again" in sidecar.log()
        assert f"flow_run_id={flow_run_id}" in sidecar.log()
    finally:
        assert sidecar.stop() == 0
        api.stop()


def test_sigterm_delivers_what_is_due_before_exiting(tmp_path):
    api = PrefectApi()
    sidecar = start_sidecar(tmp_path, api)
    client = SidecarClient(str(sidecar.socket), start_wait_ms=2000, finish_wait_ms=2000,
                           connect_wait_ms=2000)
    flow_run_id = str(uuid.uuid4())
    with client.flow_run(flow_run_id=flow_run_id, **NIGHTLY) as flow:
        with flow.task(task_run_id=str(uuid.uuid4()), task_name="cut-short"):
            # The sidecar stops while the task is live: the task and its flow
            # run are ended, and their artifacts delivered before it exits.
            assert sidecar.stop() == 0
    client.close()
    assert [a["flow_run_id"] for a in api.artifacts] == [flow_run_id, flow_run_id]
    assert "flow_state" in api.artifacts[0]["metadata_"]
    assert api.artifacts[0]["metadata_"]["flow_state"] == "crashed"
    log = sidecar.log()
    assert "draining" in log and "1 live tasks ended, 0 artifacts left pending" in log
    api.stop()


OUTAGE_SECONDS = 30  # as long as the issue asks


def test_an_outage_loses_nothing_and_duplicates_nothing(tmp_path):
    api = PrefectApi()
    sidecar = start_sidecar(tmp_path, api)
    try:
        api.stop()
        for _ in range(3):
            run_flow(sidecar)
        time.sleep(OUTAGE_SECONDS)
        assert statuses(sidecar) == ["pending"] * 6
        api.start()
        wait_until(lambda: len(api.artifacts) == 6, timeout=90, what="all six after the outage")
        wait_until(lambda: statuses(sidecar) == ["delivered"] * 6, what="outbox caught up")
        bodies = [json.dumps(a, sort_keys=True) for a in api.artifacts]
        assert len(set(bodies)) == 6
    finally:
        assert sidecar.stop() == 0
        api.stop()


def test_a_killed_sidecar_delivers_its_outbox_after_restart(tmp_path):
    api = PrefectApi()
    sidecar = start_sidecar(tmp_path, api)
    api.stop()
    run_flow(sidecar)
    assert statuses(sidecar) == ["pending", "pending"]
    sidecar.stop(signal.SIGKILL)
    api.start()
    restarted = start_sidecar(tmp_path, api)
    try:
        wait_until(lambda: len(api.artifacts) == 2, timeout=30, what="delivery after restart")
        wait_until(lambda: statuses(restarted) == ["delivered", "delivered"], what="outbox caught up")
    finally:
        assert restarted.stop() == 0
        api.stop()


def test_a_new_node_starts_from_the_history_other_nodes_left_in_prefect(tmp_path):
    """Node A's table artifacts seed node B's history: B's first run of the task
    is its fourth as far as the recommendation is concerned. Another flow's
    deployment of the same name is not seeded from them."""
    api = PrefectApi()
    node_a = start_sidecar(tmp_path / "a", api)
    try:
        for _ in range(3):
            run_flow(node_a, tasks=1)
        wait_until(lambda: len(api.artifacts) == 6, what="node A's artifacts delivered")
    finally:
        assert node_a.stop() == 0
    node_b = start_sidecar(tmp_path / "b", api)
    try:
        client = SidecarClient(str(node_b.socket), start_wait_ms=2000, finish_wait_ms=2000,
                               connect_wait_ms=2000)
        other_nightly = dict(NIGHTLY, flow_name="report",
                             deployment_id="0b9d8c7e-6f5a-4b3c-9d2e-1f0a9b8c7d6e")
        with client.flow_run(flow_run_id=str(uuid.uuid4()), **other_nightly):
            wait_until(lambda: "seeded the history of report/nightly" in node_b.log(),
                       what="node B asked for report/nightly")
        with client.flow_run(flow_run_id=str(uuid.uuid4()), **NIGHTLY) as flow:
            wait_until(lambda: "seeded the history of etl/nightly" in node_b.log(),
                       what="node B seeded from Prefect")
            with flow.task(task_run_id=str(uuid.uuid4()), task_name="t0") as task:
                pass
        rec = task.report["recommendation"]
        assert rec["runs"] == 4 and rec["ready"] is True
        log = node_b.log()
        for (owner, info, runs, key) in [("etl/nightly", NIGHTLY, 3, "etl-nightly-6c1f0e2a"),
                                         ("report/nightly", other_nightly, 0,
                                          "report-nightly-0b9d8c7e")]:
            assert (f"seeded the history of {owner} (deployment:{info['deployment_id']}) with "
                    f"{runs} runs from Prefect (tracer-{key}-tasks)") in log
        # Each node asked once per deployment, for its first flow run of it.
        filters = [r for r in api.requests if r["path"] == "/api/artifacts/filter"]
        assert [r["status"] for r in filters] == [200, 200, 200]
        assert (f"seeded the history of etl/nightly (deployment:{NIGHTLY['deployment_id']}) "
                "with 0 runs") in node_a.log()
    finally:
        assert node_b.stop() == 0
        api.stop()
