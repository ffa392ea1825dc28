"""Tracer's artifacts in a real Prefect server, beside what a sidecar
produced. Real deployments and flow runs, made with Prefect's own client, to
announce to a sidecar; the versions the server holds (POST
/api/artifacts/filter); the sidecar's outbox (tracerctl outbox --json); and
the comparison of the two: every artifact the sidecar produced is stored
exactly once, nothing else is."""

from __future__ import annotations

import json
import urllib.request
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional

from prefect.client.orchestration import get_client

from prefect_tracer.client import SidecarClient
from sidecar import Sidecar

FILTER_LIMIT = 200  # the server's default and largest page (PREFECT_API_DEFAULT_LIMIT)


def fetch_json(url: str, body=None, headers: Optional[dict] = None):
    """GET `url`, or POST `body` as JSON; the answer's JSON."""
    request = urllib.request.Request(url, data=None if body is None else json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json", **(headers or {})})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read())


@dataclass(frozen=True)
class Deployment:
    """A deployment in the real server, as the plugin announces its flow runs."""
    flow_name: str
    name: str
    id: str

    @property
    def info(self) -> dict:
        return {"flow_name": self.flow_name, "deployment_id": self.id,
                "deployment_name": self.name}

    def flow_runs(self, count: int) -> list[str]:
        """`count` new flow runs of it in the server (scheduled; nothing runs them:
        the test announces them to a sidecar itself)."""
        with get_client(sync_client=True) as client:
            return [str(client.create_flow_run_from_deployment(uuid.UUID(self.id)).id)
                    for _ in range(count)]


def create_deployment(flow_name: str, name: str) -> Deployment:
    """Flow `flow_name` and its deployment `name` in the server (the client's
    PREFECT_API_URL, set by tests/prefect/conftest.py)."""
    with get_client(sync_client=True) as client:
        flow_id = client.create_flow_from_name(flow_name)
        deployment_id = client.create_deployment(flow_id=flow_id, name=name)
    return Deployment(flow_name, name, str(deployment_id))


def unique(prefix: str) -> str:
    """A flow name no other test in the session uses (the server is shared)."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def connect(sidecar) -> SidecarClient:
    return SidecarClient(str(sidecar.socket), start_wait_ms=2000, finish_wait_ms=2000,
                         connect_wait_ms=2000)


def run_flow(client: SidecarClient, deployment: Deployment, flow_run_id: str,
             tasks: Iterable[str] = ("extract", "load")) -> list[dict]:
    """Announces flow run `flow_run_id` of `deployment` and runs `tasks` in it
    (each an empty task); their reports. Finishing it puts its two artifacts
    (markdown, table) in the sidecar's outbox."""
    reports = []
    with client.flow_run(flow_run_id=flow_run_id, **deployment.info) as flow:
        for name in tasks:
            with flow.task(task_run_id=str(uuid.uuid4()), task_name=name) as task:
                pass
            assert task.error is None, task.error
            reports.append(task.report)
    return reports


def outbox(sidecar) -> list[dict]:
    """The sidecar's outbox, newest first (its newest 100)."""
    return json.loads(sidecar.tracerctl("outbox", "--json").stdout)["artifacts"]


def identity(key: str, flow_run_id: str, metadata: Optional[dict]) -> tuple:
    """One artifact: its key, its flow run, and the id the sidecar gave it
    (metadata_.tracer_artifact_id, one per artifact, kept by every attempt)."""
    return (key, flow_run_id, (metadata or {}).get("tracer_artifact_id"))


def produced(sidecar, flow_run_ids: Iterable[str]) -> dict[tuple, str]:
    """The artifacts the sidecar made for these flow runs: identity -> status."""
    runs = set(flow_run_ids)
    found = {}
    for item in outbox(sidecar):
        if item["flow_run_id"] in runs:
            body = json.loads(item["body"])
            found[identity(body["key"], body["flow_run_id"], body.get("metadata_"))] = item["status"]
    return found


def in_prefect(api_url: str, flow_run_ids: Iterable[str], headers: Optional[dict] = None) -> list:
    """Every artifact version the server holds for these flow runs."""
    runs = sorted(set(flow_run_ids))
    found = fetch_json(f"{api_url}/artifacts/filter",
                       {"artifacts": {"flow_run_id": {"any_": runs}}, "limit": FILTER_LIMIT},
                       headers)
    assert len(found) < FILTER_LIMIT, "more versions than one page: narrow the filter"
    return found


def flow_run_markdown(api_url: str, flow_run_id: str) -> Optional[str]:
    """The text of the flow run's markdown artifact (the keyed one), or None
    while the server has none."""
    found = fetch_json(f"{api_url}/artifacts/filter",
                       {"artifacts": {"flow_run_id": {"any_": [flow_run_id]},
                                      "type": {"any_": ["markdown"]}}})
    return next((a["data"] for a in found if a["key"]), None)


def stored(api_url: str, flow_run_ids: Iterable[str], headers: Optional[dict] = None) -> Counter:
    """The versions the server holds for these flow runs, by identity."""
    return Counter(identity(a["key"], a["flow_run_id"], a["metadata_"])
                   for a in in_prefect(api_url, flow_run_ids, headers))


def all_delivered(sidecar, flow_run_ids: Iterable[str], expected: int) -> bool:
    """The sidecar made `expected` artifacts for these flow runs and reports
    every one delivered (for wait_until)."""
    statuses = list(produced(sidecar, flow_run_ids).values())
    return len(statuses) == expected and set(statuses) == {"delivered"}


def assert_stored_exactly_once(sidecar, api_url: str, flow_run_ids: Iterable[str],
                               headers: Optional[dict] = None) -> Counter:
    """Every artifact the sidecar produced for these flow runs is in the server
    as exactly one version; the server has no other. Returns versions per key."""
    runs = list(flow_run_ids)
    made = produced(sidecar, runs)
    versions = stored(api_url, runs, headers)
    lost = sorted(set(made) - set(versions))
    duplicated = sorted((artifact, n) for artifact, n in versions.items() if n > 1)
    foreign = sorted(set(versions) - set(made))
    assert (lost, duplicated, foreign) == ([], [], []), (
        f"lost {lost}, duplicated {duplicated}, not the sidecar's {foreign}; "
        f"outbox {sorted(made.values())}")
    per_key = Counter()
    for (key, _, _), n in versions.items():
        per_key[key] += n
    return per_key


def sidecar_with_policy(server, directory: Path, **sections: str) -> Sidecar:
    """A started sidecar delivering to `server` under one catch-all policy,
    each keyword a section of it as a YAML flow mapping
    (findings="{task_artifact: warning}")."""
    policies = directory / "policies"
    policies.mkdir()
    lines = "".join(f"    {key}: {value}\n" for key, value in sections.items())
    (policies / "default.yaml").write_text(
        f"version: 1\npolicies:\n  - name: test\n    match: {{}}\n{lines}")
    return Sidecar(directory / "sidecar", "--policies", str(policies), env=server.env()).start()
