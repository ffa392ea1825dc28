"""Shared history across nodes, through a real Prefect server: node A runs a
deployment's flow runs and leaves its table artifacts in the server; node B,
with an empty state directory, seeds its history from them on its first
flow run of that deployment (sidecar/prefect/history_seeder.h), so its
recommendation is ready at once. A deployment of the same name in another
flow is a different deployment (docs/policies.md, "History and artifact
keys"): nothing is seeded into it."""

import json
import uuid

from prefect_artifacts import (all_delivered, assert_stored_exactly_once, connect, create_deployment,
                               run_flow, unique)
from sidecar import Sidecar, wait_until

TASKS = ("extract", "load")
MIN_RUNS = 3  # policies/default.yaml (the built-in default): history.min_runs


def recommendations(sidecar) -> dict:
    """(history key, task) -> the recommendation entry, from tracerctl."""
    listing = json.loads(sidecar.tracerctl("recommendations", "--json").stdout)
    return {(e["key"], e["task"]): e for e in listing["recommendations"]}


def seeded(deployment, runs: int) -> str:
    """The line the seeder logs once it has read the deployment's table
    artifact from Prefect (the count is of task runs)."""
    key = f"tracer-{deployment.flow_name}-{deployment.name}-{deployment.id[:8]}-tasks"
    return (f"seeded the history of {deployment.flow_name}/{deployment.name} "
            f"(deployment:{deployment.id}) with {runs} runs from Prefect ({key})")


def test_a_new_node_seeds_its_history_from_the_table_artifacts_in_prefect(prefect_server, tmp_path):
    etl = create_deployment(unique("seed-etl"), "nightly")
    # Same deployment name, another flow: another deployment (another id).
    report = create_deployment(unique("seed-report"), "nightly")
    assert report.id != etl.id

    node_a = Sidecar(tmp_path / "a", env=prefect_server.env()).start()
    try:
        a_runs = etl.flow_runs(MIN_RUNS)
        client = connect(node_a)
        for flow_run_id in a_runs:
            reports = run_flow(client, etl, flow_run_id, TASKS)
        client.close()
        assert [r["recommendation"]["runs"] for r in reports] == [MIN_RUNS] * len(TASKS)
        wait_until(lambda: all_delivered(node_a, a_runs, 2 * MIN_RUNS), timeout=20,
                   what="node A's artifacts delivered")
        assert_stored_exactly_once(node_a, prefect_server.api_url, a_runs)
        on_a = recommendations(node_a)
        assert seeded(etl, 0) in node_a.log()  # A asked too, and found nothing yet
    finally:
        assert node_a.stop() == 0

    node_b = Sidecar(tmp_path / "b", env=prefect_server.env())
    assert not node_b.state_dir.exists()  # nothing local: all B knows comes from Prefect
    node_b.start()
    try:
        client = connect(node_b)
        # B's first flow run of the other flow's "nightly": nothing to seed from.
        (report_run,) = report.flow_runs(1)
        with client.flow_run(flow_run_id=report_run, **report.info) as flow:
            wait_until(lambda: seeded(report, 0) in node_b.log(), what="B asking for report/nightly")
            with flow.task(task_run_id=str(uuid.uuid4()), task_name="extract") as task:
                pass
        assert task.report["recommendation"]["runs"] == 1  # its own, none of etl's

        # B's first flow run of etl/nightly: seeded with A's runs, before any task of it ends.
        b_runs = etl.flow_runs(2)
        with client.flow_run(flow_run_id=b_runs[0], **etl.info) as flow:
            wait_until(lambda: seeded(etl, MIN_RUNS * len(TASKS)) in node_b.log(),
                       what="B seeding etl/nightly from Prefect")
            on_b = recommendations(node_b)
            for name in TASKS:
                a_entry, b_entry = on_a[(f"deployment:{etl.id}", name)], \
                    on_b[(f"deployment:{etl.id}", name)]
                assert (b_entry["flow"], b_entry["deployment"]) == (etl.flow_name, etl.name)
                a_rec, b_rec = a_entry["recommendation"], b_entry["recommendation"]
                assert b_rec["runs"] == MIN_RUNS and b_rec["ready"] is True
                # The figures came across, not just a count: peak memory is
                # exact in the table; CPU is rounded there to 0.001 core, which
                # can move the recommendation by one 50m step at most.
                assert b_rec["memory_bytes"] == a_rec["memory_bytes"] > 0
                assert abs(b_rec["cpu_cores"] - a_rec["cpu_cores"]) <= 0.05 + 1e-9
            assert (f"deployment:{report.id}", "extract") in on_b
            with flow.task(task_run_id=str(uuid.uuid4()), task_name="extract") as task:
                pass
        assert task.report["recommendation"]["runs"] == MIN_RUNS + 1
        # Asked once: B's next flow run of etl adds its own run and no second copy of A's.
        reports = run_flow(client, etl, b_runs[1], ["extract"])
        assert reports[0]["recommendation"]["runs"] == MIN_RUNS + 2
        assert node_b.log().count(f"seeded the history of {etl.flow_name}/") == 1
        assert recommendations(node_b)[(f"deployment:{report.id}", "extract")][
            "recommendation"]["runs"] == 1  # still nothing of etl's in report's
        client.close()
    finally:
        assert node_b.stop() == 0
