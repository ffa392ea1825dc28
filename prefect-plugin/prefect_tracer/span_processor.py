"""Every Prefect task run, observed through Prefect's own OpenTelemetry spans.

Prefect starts a span per flow run and task run (prefect/telemetry/
run_telemetry.py) and adds an event to it at every state change, in the
thread that runs the task (`RunTelemetry.update_state`). The processor
watches those events, so what Tracer measures is the task's *execution*:

- a task is registered at its Running state, in its own thread, and finished
  at the state that ends the attempt; the wait for upstream futures,
  `wait_for`, tag-concurrency slots and retry delays before it are not part of
  it. Each attempt of a retried task is its own report (failed, then the next);
- tasks that never run (an upstream failed: Pending "NotReady") are never
  registered, so they are not reported at all, not as crashed work;
- the flow run announced is this process's own: the span whose run id is
  PREFECT__FLOW_RUN_ID (a worker's flow run) or, without it (`python
  flow.py`), the outermost flow span. A supervisor process that only starts
  the engine (`prefect flow-run execute`) runs no such span and announces
  nothing;
- ProcessPoolTaskRunner children and user subprocesses inherit
  PREFECT__FLOW_RUN_ID and run tasks of that flow run, but not its span: at
  the first such task they *join* the run the flow-run process opened
  (join_running_flow_run), so their tasks are in its one artifact set, and
  let go of it at exit. The children of a local run have no
  PREFECT__FLOW_RUN_ID and are not observed;
- a subflow's tasks belong to the announced flow run, named "subflow/task";
  a subflow's own span ends nothing;
- the flow run ends at its final state event; after a flow retry Prefect ends
  the span early, so the run then ends at exit with the state Prefect's API
  holds for it.

A task called inside another task (inline, or awaited) runs on its caller's
thread in its caller's flow of control: it is registered as nested in it, so
the sidecar counts the thread for the inner task until it ends, then for the
outer one again. Async tasks run at the same time on one event loop (each in
its own asyncio task) share the thread: the sidecar reports each with the
fields that count the thread unknown (docs/observer.md, "Tasks that share a
thread").

Subclassing the SDK's SpanProcessor is what keeps Span.end() working:
opentelemetry-sdk >= 1.40 calls `_on_ending` on every processor. Nothing here
raises into Prefect.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from typing import Any, Callable, Mapping, Optional

from opentelemetry.sdk.trace import SpanProcessor

from prefect_tracer import settings
from prefect_tracer.client import FlowScope, SidecarClient, TaskScope

logger = logging.getLogger("prefect_tracer")

# Prefect's final StateTypes, as Tracer's RunState names them.
FINAL_STATES = {"COMPLETED": "completed", "FAILED": "failed", "CRASHED": "crashed",
                "CANCELLED": "cancelled"}


def _state_type(attributes: Any) -> Optional[str]:
    """The "prefect.state.type" of a state-change event (a StateType enum or its text)."""
    value = (attributes or {}).get("prefect.state.type")
    return None if value is None else str(getattr(value, "value", value))


def watch_states(span: Any, on_state: Callable[[str], None]) -> None:
    """Calls on_state(state_type) after each state-change event Prefect adds
    to `span`, in the thread that adds it. The span behaves as before."""
    add_event = span.add_event

    def add_event_and_watch(name: str, attributes: Any = None, *args: Any, **kwargs: Any) -> Any:
        result = add_event(name, attributes, *args, **kwargs)
        try:
            state = _state_type(attributes)
            if state is not None:
                on_state(state)
        except Exception as error:  # noqa: BLE001 - never raise into Prefect
            logger.debug("tracer: state change not observed: %s", error)
        return result

    span.add_event = add_event_and_watch


def _flow_of_control() -> int:
    """The asyncio task running now on this thread, or 0 outside an event loop:
    within one thread, what a task called inside another shares with it."""
    try:
        return id(asyncio.current_task())
    except RuntimeError:  # no running event loop: the thread is the flow of control
        return 0


class ThreadTasks:
    """The task attempts running on each thread of this process, innermost
    last, with the flow of control each runs in.

    No lock: a thread changes only its own list (an attempt enters and leaves
    on its thread; at exit the threads are done), and a dict's single
    operations are atomic. Under the GIL a contended lock on the task path is a
    convoy: each hand-over waits for the GIL, and hundreds of task threads
    queue behind one another (see TaskSpanProcessor)."""

    def __init__(self) -> None:
        self._running: dict[int, list[tuple[int, str]]] = {}

    def enter(self, tid: int, flow_of_control: int, task_run_id: str) -> str:
        """Adds an attempt; returns the task run it is nested in ("" if none):
        the innermost one on the thread that runs in the same flow of control."""
        running = self._running.setdefault(tid, [])
        nested_in = next((run_id for control, run_id in reversed(running)
                          if control == flow_of_control), "")
        running.append((flow_of_control, task_run_id))
        return nested_in

    def leave(self, tid: int, task_run_id: str) -> None:
        running = self._running.get(tid, [])
        for i in range(len(running) - 1, -1, -1):
            if running[i][1] == task_run_id:
                del running[i]
                break
        if not running:
            self._running.pop(tid, None)


class TaskAttempts:
    """One Prefect task run: a Tracer task per attempt, from Running to the
    state that ends the attempt (Retrying, AwaitingRetry or a final state)."""

    def __init__(self, flow: FlowScope, info: dict[str, Any], threads: ThreadTasks) -> None:
        self._flow = flow
        self._info = info
        self._threads = threads
        self._scope: Optional[TaskScope] = None
        self._tid = 0

    def on_state(self, state: str) -> None:
        if state == "RUNNING":  # Running, or Retrying after a failed attempt
            self.finish("failed")
            self._start()
        elif state == "SCHEDULED":  # AwaitingRetry: the attempt failed
            self.finish("failed")
        elif state in FINAL_STATES:
            self.finish(FINAL_STATES[state])

    def _start(self) -> None:
        self._tid = threading.get_native_id()
        nested_in = self._threads.enter(self._tid, _flow_of_control(), self._info["task_run_id"])
        self._scope = self._flow.start_task(**self._info, nested_in=nested_in)

    def finish(self, state: str) -> None:
        scope, self._scope = self._scope, None
        if scope is not None:
            scope.finish(state)
            self._threads.leave(self._tid, self._info["task_run_id"])


def _task_info(span: Any) -> Optional[dict[str, Any]]:
    """TaskRunInfo from Prefect's TaskRunContext (set in the task's thread
    when its span starts), or None when the task cannot be observed alone."""
    from prefect.context import FlowRunContext, TaskRunContext

    context = TaskRunContext.get()
    if context is None or context.task is None:
        return None
    task = context.task
    name = task.name
    flow_context = FlowRunContext.get()
    return {"task_run_id": str(context.task_run.id), "task_name": name,
            "task_key": str(task.task_key),
            "tags": sorted(str(tag) for tag in span.attributes.get("prefect.tags", ()) or ()),
            "flow_run_id": str(context.task_run.flow_run_id),
            "flow_name": flow_context.flow.name if flow_context and flow_context.flow else ""}


def _flow_info(flow_run_id: str, declared: dict[str, Any]) -> Optional[dict[str, Any]]:
    """FlowRunInfo from what the environment declared (settings.declared_info)
    and Prefect's FlowRunContext; None while the flow's name is not known yet
    (a local run before its FlowRunContext is entered)."""
    from prefect.context import FlowRunContext

    info = dict(declared)
    context = FlowRunContext.get()
    run = context.flow_run if context else None
    if run is not None and str(run.id) == flow_run_id:
        if context.flow is not None:
            info["flow_name"] = context.flow.name
        if run.deployment_id and "deployment_id" not in info:
            info["deployment_id"] = str(run.deployment_id)
        if run.work_pool_name and "work_pool" not in info:
            info["work_pool"] = run.work_pool_name
    if not info.get("flow_name"):
        return None
    return dict(info, flow_run_id=flow_run_id)


def _final_state_in_prefect(flow_run_id: str) -> str:
    """The flow run's final state as Prefect's API holds it; crashed if unknown."""
    try:
        from uuid import UUID

        from prefect.client.orchestration import get_client

        with get_client(sync_client=True) as client:
            state = client.read_flow_run(UUID(flow_run_id)).state
        return FINAL_STATES.get(str(getattr(state.type, "value", state.type)), "crashed")
    except Exception as error:  # noqa: BLE001 - the sidecar still reports what it saw
        logger.debug("tracer: final state of flow run %s unknown: %s", flow_run_id, error)
        return "crashed"


class TaskSpanProcessor(SpanProcessor):
    """Announces this process's flow run and each task attempt to tracer-sidecar."""

    spans_seen = False  # by any processor of this process (telemetry._warn_if_bypassed)

    # No report is read, and a flow run's finish waits for no confirmation:
    # Prefect sets the run's final state inside the flow call, so any wait
    # there is the flow run's own time (it was up to 100 ms a run).
    def __init__(self, environ: Mapping[str, str] = os.environ,
                 connect: Callable[[], SidecarClient] = lambda: SidecarClient(
                     finish_wait_ms=0, flow_finish_wait_ms=0)
                 ) -> None:
        self._environ = environ
        self._connect = connect
        self._client: Optional[SidecarClient] = None
        self._declared: Optional[dict[str, Any]] = None
        # Taken to open (or join) the flow run and at exit, never on a task's
        # way once the run is open: with hundreds of task threads under the
        # GIL, a lock every task takes makes them queue (each hand-over waits
        # for the GIL).
        self._lock = threading.Lock()
        self._root_run_id: Optional[str] = None
        self._flow: Optional[FlowScope] = None
        self._joined: Optional[FlowScope] = None  # PREFECT__FLOW_RUN_ID's, run elsewhere
        self._running = False
        self._flow_ended_early = False
        self._tasks: dict[int, TaskAttempts] = {}  # by id(span); single dict operations are atomic
        self._threads = ThreadTasks()
        self._said: set[str] = set()

    # -- SpanProcessor --------------------------------------------------------

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        TaskSpanProcessor.spans_seen = True
        try:
            kind = (span.attributes or {}).get("prefect.run.type")
            if kind == "flow":
                self._on_flow_span(span)
            elif kind == "task":
                self._on_task_span(span)
        except Exception as error:  # noqa: BLE001 - never raise into Prefect
            logger.debug("tracer: span not observed: %s", error)

    def on_end(self, span: Any) -> None:
        try:
            attributes = span.attributes or {}
            if attributes.get("prefect.run.type") == "task":
                attempts = self._tasks.pop(id(span), None)
                if attempts is not None:  # no final state event: say how the span ended
                    attempts.finish("failed" if _span_failed(span) else "completed")
            elif attributes.get("prefect.run.id") == self._root_run_id and self._flow is not None:
                self._flow_ended_early = True  # a flow retry: the run goes on without its span
        except Exception as error:  # noqa: BLE001 - never raise into Prefect
            logger.debug("tracer: span end not observed: %s", error)

    def shutdown(self) -> None:
        """At exit: open attempts end crashed; a flow run whose span ended
        early ends with the state Prefect holds for it; a joined one is let go."""
        try:
            with self._lock:
                open_tasks, self._tasks = list(self._tasks.values()), {}
                joined, self._joined = self._joined, None
            for attempts in open_tasks:
                attempts.finish("crashed")
            if self._flow is not None:
                state = (_final_state_in_prefect(self._root_run_id or "") if self._flow_ended_early
                         else "crashed")
                self._end_flow(state)
            if joined is not None:
                # The sidecar ignores a joiner's state, unless it found no run to
                # join and opened one: then this process, exiting normally, ends it.
                joined.finish("completed")
        except Exception as error:  # noqa: BLE001
            logger.debug("tracer: shutdown: %s", error)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True

    # -- flow runs ------------------------------------------------------------

    def _is_root(self, run_id: str) -> bool:
        own = self._environ.get(settings.FLOW_RUN_ID)
        if own:
            return run_id == own
        from prefect.context import FlowRunContext

        return FlowRunContext.get() is None  # the outermost flow of `python flow.py`

    def _on_flow_span(self, span: Any) -> None:
        run_id = str(span.attributes.get("prefect.run.id", ""))
        if self._root_run_id is not None:
            self._announce()  # a subflow starts inside the announced run's context
            return
        if self._is_root(run_id):
            self._root_run_id = run_id
            watch_states(span, lambda state: self._on_flow_state(run_id, state))

    def _on_flow_state(self, run_id: str, state: str) -> None:
        if self._root_run_id != run_id:
            return
        if state == "RUNNING":
            self._running = True
            self._announce()
        elif state in FINAL_STATES:
            self._announce()
            self._end_flow(FINAL_STATES[state])

    def _announce(self) -> Optional[FlowScope]:
        """The running root flow run's scope, opened when its name is first known:
        at Running under a worker (PREFECT__FLOW_NAME), else in its FlowRunContext."""
        flow = self._flow
        if flow is not None:  # every task but the first: no lock (see below)
            return flow
        with self._lock:  # the first tasks of a run start in several threads at once
            if self._flow is None and self._running and self._root_run_id is not None:
                info = self._flow_run_info(self._root_run_id)
                if info is not None:
                    self._flow = self._open(info)
            return self._flow

    def _join(self, flow_run_id: str) -> Optional[FlowScope]:
        """PREFECT__FLOW_RUN_ID's flow run when this process runs a task of it
        but not its span (a ProcessPoolTaskRunner child, a subprocess): joined
        at the first such task, for the rest of the process."""
        own = self._environ.get(settings.FLOW_RUN_ID)
        if self._root_run_id is not None or not own or flow_run_id != own:
            return None
        if self._joined is not None:
            return self._joined
        with self._lock:
            if self._joined is None:
                # The run's FlowRunInfo is the opener's; this one counts only
                # if there is no run to join (so a name is not required).
                info = self._flow_run_info(own) or dict(self._declared or {}, flow_run_id=own)
                self._joined = self._open(dict(info, join_running_flow_run=True))
            return self._joined

    def _flow_run_info(self, flow_run_id: str) -> Optional[dict[str, Any]]:
        if self._declared is None:  # read once: a bad value is one warning
            self._declared = settings.declared_info(self._environ)
        return _flow_info(flow_run_id, self._declared)

    def _open(self, info: dict[str, Any]) -> FlowScope:
        if self._client is None:  # connected at the first flow run, never at import
            self._client = self._connect()
        return self._client.open_flow_run(**info)

    def _end_flow(self, state: str) -> None:
        flow, self._flow = self._flow, None
        self._root_run_id, self._running, self._flow_ended_early = None, False, False
        if flow is not None:
            flow.finish(state)

    # -- task runs ------------------------------------------------------------

    def _on_task_span(self, span: Any) -> None:
        info = _task_info(span)
        flow, flow_run_id = self._announce(), self._root_run_id
        if flow is None and info is not None:
            flow, flow_run_id = self._join(info["flow_run_id"]), info["flow_run_id"]
        if flow is None:
            self._say("no-flow", "tracer: task runs in this process are not observed: their flow "
                      "run is neither run here nor PREFECT__FLOW_RUN_ID (a local run's "
                      "ProcessPoolTaskRunner child or subprocess, or a task outside a flow)")
            return
        if info is None:
            return
        run_flow_id, run_flow_name = info.pop("flow_run_id"), info.pop("flow_name")
        if run_flow_id != flow_run_id and run_flow_name:
            info["task_name"] = f"{run_flow_name}/{info['task_name']}"
        attempts = TaskAttempts(flow, info, self._threads)
        self._tasks[id(span)] = attempts
        watch_states(span, attempts.on_state)

    def _say(self, key: str, message: str) -> None:
        if key not in self._said:
            self._said.add(key)
            logger.info(message)


def _span_failed(span: Any) -> bool:
    code = getattr(getattr(span, "status", None), "status_code", None)
    return getattr(code, "name", "") == "ERROR"
