"""Deploying the flow corpus (tests/prefect/flows/corpus.py) to a real
Prefect, running it through a worker, and reading back what Prefect recorded:
final states, return values, task runs, artifacts. Uses Prefect's own client."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional
from uuid import UUID

from prefect import Flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.client.schemas.filters import (ArtifactFilter, ArtifactFilterFlowRunId,
                                            FlowRunFilter, FlowRunFilterId)
from prefect.deployments import run_deployment
from prefect.states import Cancelling

FLOWS_DIR = Path(__file__).resolve().parents[1] / "prefect" / "flows"


def create_process_pool(name: str, concurrency: int = 4) -> None:
    with get_client(sync_client=True) as client:
        client.create_work_pool(WorkPoolCreate(name=name, type="process",
                                               concurrency_limit=concurrency), overwrite=True)


def deploy(flow: Flow, pool: str, deployment: str, module: str = "corpus.py") -> UUID:
    """A deployment of `flow` (defined in FLOWS_DIR/module) on a process pool."""
    source = Flow.from_source(source=str(FLOWS_DIR), entrypoint=f"{module}:{flow.fn.__name__}")
    return source.deploy(name=deployment, work_pool_name=pool, build=False, push=False,
                         print_next_steps=False)


def start_runs(deployment_ids: dict[str, UUID],
               parameters: Optional[dict[str, dict]] = None) -> dict[str, UUID]:
    """One flow run of each deployment (with `parameters[name]`), not waited for."""
    return {name: run_deployment(str(deployment_id), timeout=0,
                                 parameters=(parameters or {}).get(name, {})).id
            for name, deployment_id in deployment_ids.items()}


def cancel_once_started(flow_run_id: UUID, started: Path, timeout: float = 300) -> None:
    """Cancels the flow run once its task has created `started`, so that every
    run of it is cancelled at the same point (the API may learn of the task's
    state later than that)."""
    deadline = time.monotonic() + timeout
    while not started.exists():
        assert time.monotonic() < deadline, f"the task of flow run {flow_run_id} never started"
        time.sleep(0.2)
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(flow_run_id, Cancelling(), force=True)


def wait_final(flow_run_ids: Iterable[UUID], timeout: float = 300) -> None:
    pending = set(flow_run_ids)
    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while pending:
            runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=list(pending))))
            pending -= {run.id for run in runs if run.state and run.state.is_final()}
            assert time.monotonic() < deadline, f"flow runs not final after {timeout}s: {pending}"
            if pending:
                time.sleep(0.5)


@dataclass(frozen=True)
class Outcome:
    """What Prefect recorded of one flow run, comparable across runs."""
    state: tuple[str, str]
    result: Any
    task_runs: Counter  # (task name, state type, state name, run count) -> how many
    # Shown, not compared: Prefect's word on the final state (e.g. why a run
    # crashed) and the run's name, which its worker's log lines carry.
    message: str = field(default="", compare=False)
    name: str = field(default="", compare=False)

    @property
    def task_run_count(self) -> int:
        return sum(self.task_runs.values())


# Prefect records a task run's states from the events its client sends, apart
# from the flow run's own state: read right after the flow run ended, a task
# run may have no state yet.
TASK_STATES_WAIT_S = 30


def outcome(flow_run_id: UUID) -> Outcome:
    deadline = time.monotonic() + TASK_STATES_WAIT_S
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(flow_run_id)
        while True:
            task_runs = client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
            if all(task_run.state for task_run in task_runs) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    state = run.state
    try:
        result = state.result(raise_on_failure=False)
        result = result if isinstance(result, (int, float, str)) else type(result).__name__
    except Exception as error:  # noqa: BLE001 - the kind of failure is the outcome
        result = type(error).__name__
    # A task run's name is the task's name and a random suffix (a subflow is a task run
    # of its parent too): keep the stable part.
    rows = Counter((task_run.name.rsplit("-", 1)[0],
                    task_run.state.type.value if task_run.state else "no state",
                    task_run.state.name if task_run.state else "", task_run.run_count)
                   for task_run in task_runs)
    return Outcome((state.type.value, state.name), result, rows, state.message or "", run.name)


def tracer_artifacts_of(flow_run_id: UUID) -> list:
    """The artifacts Tracer posted for a flow run (not Prefect's result artifacts)."""
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))
    return [artifact for artifact in artifacts if (artifact.key or "").startswith("tracer-")]
