"""The artifacts a flow run leaves: Prefect's ArtifactCreate shape, valid keys,
numbers that agree with the TaskReports. Without PREFECT_API_URL they stay in
the outbox as `local` (the embedded default)."""

import json
import re
import sqlite3
import subprocess
import uuid

from prefect_tracer.client import SidecarClient
from sidecar import WORKLOAD

ARTIFACT_CREATE_FIELDS = {"key", "type", "description", "data", "metadata_", "flow_run_id",
                          "task_run_id"}


# A task name that tries to put an image, HTML and a link on Prefect's page.
INJECTED = "![x](http://evil.example/x.png) <b>[click](http://evil.example)"


def test_a_flow_run_leaves_a_markdown_and_a_table_artifact(sidecar):
    client = SidecarClient(str(sidecar.socket), start_wait_ms=2000, finish_wait_ms=2000,
                           connect_wait_ms=2000)
    flow_run_id = str(uuid.uuid4())
    deployment_id = "3f2a9c1e-5b7d-4e21-9a0b-1c2d3e4f5a6b"
    reports = []
    with client.flow_run(flow_run_id=flow_run_id, flow_name="Nightly ETL!",
                         deployment_id=deployment_id, deployment_name="ETL / nightly",
                         cpu_cores=2, memory_bytes=1 << 30,
                         work_pool_type="kubernetes") as flow:
        for name in ["extract | raw", "transform", INJECTED]:
            with flow.task(task_run_id=str(uuid.uuid4()), task_name=name) as task:
                subprocess.run([str(WORKLOAD), "live", "20"], check=True)
            reports.append(task.report)

    items = json.loads(sidecar.tracerctl("outbox", "--json").stdout)["artifacts"]
    assert [(i["type"], i["status"]) for i in items] == [("table", "local"), ("markdown", "local")]
    bodies = {i["type"]: json.loads(i["body"]) for i in items}
    for body in bodies.values():
        assert set(body) <= ARTIFACT_CREATE_FIELDS
        assert re.fullmatch(r"[a-z0-9-]*", body["key"])
        assert body["flow_run_id"] == flow_run_id
        assert all(isinstance(v, str) and len(v) <= 500 for v in body["metadata_"].values())
    # Flow, deployment and the id's first group: another flow's "ETL / nightly" has its own.
    assert bodies["markdown"]["key"] == "tracer-nightly-etl-etl-nightly-3f2a9c1e"
    assert bodies["table"]["key"] == "tracer-nightly-etl-etl-nightly-3f2a9c1e-tasks"
    for body in bodies.values():  # the names in full, for people
        assert "Nightly ETL!/ETL / nightly" in body["description"]
        assert body["metadata_"]["deployment"] == "ETL / nightly"
        assert body["metadata_"]["deployment_id"] == deployment_id

    rows = json.loads(bodies["table"]["data"])  # a JSON *string* of a list of objects
    assert [r["task"] for r in rows] == ["extract | raw", "transform", INJECTED]
    for row, report in zip(rows, reports):
        assert row["task_run_id"] == report["task_run_id"]
        assert row["peak_rss_bytes"] == report["memory"]["peak_rss_bytes"]
        assert row["cpu_s"] == round((report["cpu"]["user_ns"] + report["cpu"]["system_ns"]) / 1e9, 6)
        assert row["sleep_s"] == round(report["sched"]["sleep_ns"] / 1e9, 6)
        assert row["max_cores"] == round(report["cpu"]["max_cores"], 3)

    markdown = bodies["markdown"]["data"]
    # Names are literal text: what could start markup is escaped.
    assert markdown.startswith("## Tracer: Nightly ETL\\! (completed,")
    assert f"Deployment **ETL / nightly** (`{deployment_id}`) of flow **Nightly ETL\\!**" in markdown
    assert "| extract \\| raw | completed |" in markdown  # a pipe in a name does not break the row
    # A name cannot put a link, an image or HTML into Prefect's page.
    assert "| \\!\\[x\\]\\(http\\://evil\\.example/x\\.png\\) \\<b\\>\\[click\\]" in markdown
    # (a code block's text, the gantt's labels, is not markdown)
    outside = re.sub(r"```.*?```", "", markdown, flags=re.S)
    assert "](http" not in outside and "<b>" not in outside and "http://" not in outside
    assert re.search(r"```mermaid\n%%\{init: \{.*\}\}%%\ngantt\n", markdown)
    assert "### Findings" in markdown
    assert sidecar.tracerctl("outbox", "--latest").stdout.strip() == markdown.strip()


def test_a_flow_run_id_that_is_not_a_uuid_is_not_sent_as_one(sidecar):
    client = SidecarClient(str(sidecar.socket), start_wait_ms=2000, finish_wait_ms=2000,
                           connect_wait_ms=2000)
    with client.flow_run(flow_run_id="not-a-uuid", flow_name="f") as flow:
        with flow.task(task_run_id="t"):
            pass
    items = json.loads(sidecar.tracerctl("outbox", "--json").stdout)["artifacts"]
    assert all(json.loads(i["body"])["flow_run_id"] is None for i in items)


def test_a_flow_run_of_5000_tasks_has_every_one_in_its_table_artifact(sidecar):
    """A flow run's reports stay with it until it ends: more task runs than the
    node's 1,000 recent reports are all in its table artifact; the markdown
    lists the longest 200 and says so."""
    client = SidecarClient(str(sidecar.socket), start_wait_ms=2000, finish_wait_ms=2000,
                           connect_wait_ms=2000)
    with client.flow_run(flow_run_id=str(uuid.uuid4()), flow_name="wide") as flow:
        for n in range(5000):
            with flow.task(task_run_id=f"t{n}", task_name=f"step {n}"):
                pass
    # A few MiB of table: past what one answer of `tracerctl outbox` carries,
    # so it says so and the body is read from the outbox itself.
    items = json.loads(sidecar.tracerctl("outbox", "--json").stdout)["artifacts"]
    table = next(i for i in items if i["type"] == "table")
    assert table["body_omitted"] is True and table["body"] == ""
    with sqlite3.connect(sidecar.state_dir / "outbox.db") as db:
        (body,) = db.execute("SELECT body FROM outbox WHERE id = ?", (table["id"],)).fetchone()
    rows = json.loads(json.loads(body)["data"])
    assert [r["task_run_id"] for r in rows] == [f"t{n}" for n in range(5000)]
    markdown = json.loads(next(i for i in items if i["type"] == "markdown")["body"])["data"]
    assert "(completed," in markdown and "5000 tasks)" in markdown
    assert "4800 shorter task runs are not listed here: the table artifact has all 5000." \
        in markdown
    assert markdown.count("| completed |") == 200
