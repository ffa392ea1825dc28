"""SidecarClient: announce Prefect flow runs and task runs to tracer-sidecar.

Fail-open: nothing here raises into user code or waits on the sidecar for more
than a few milliseconds. A task's start and finish are one-way: the calling
thread reads its own counters and hands the message to the library's thread.
If the sidecar is missing, slow or crashes, the blocks run exactly as they
would without Tracer; a warning is logged once per client and
`TaskScope.report` is None.
"""

from __future__ import annotations

import json
import logging
import threading
import weakref
from typing import Any, Optional

from prefect_tracer import _native

logger = logging.getLogger("prefect_tracer")

# How long a task's start waits for the sidecar's confirmation (milliseconds):
# not at all; the sidecar measures the task from the thread's own reading.
START_WAIT_MS = 0
# How long reading `TaskScope.report` waits for it, the first time.
FINISH_WAIT_MS = 5
# Once per flow run, at its end, how long to wait for the sidecar to confirm
# it: it does once the run's artifacts are stored, which for a run of
# thousands of tasks can take longer (no failure). The finish itself is out of
# the process before the call returns (the library waits for that), so a
# process that exits right after loses nothing either way.
FLOW_FINISH_WAIT_MS = 100
# Once, when the client is created: gives a local sidecar time to accept.
CONNECT_WAIT_MS = 50


class _Block:
    """A scope used as a block ends as the block does: `completed`, or
    `failed` when it raises (the exception propagates unchanged)."""

    __slots__ = ()

    def __enter__(self) -> Any:
        return self

    def __exit__(self, kind: Any, error: Any, traceback: Any) -> None:
        self.finish("completed" if kind is None else "failed")


class TaskScope(_Block):
    """One task run registered with the sidecar (the thread that opened it).
    Slots: it is made and dropped on every task's path."""

    __slots__ = ("_client", "_handle", "_report_handle", "_report", "error", "__weakref__")

    def __init__(self, client: "SidecarClient", handle: Optional[int], error: Optional[str]) -> None:
        self._client = client
        self._handle = handle
        self._report_handle: Optional[int] = None
        self._report: Optional[dict[str, Any]] = None
        self.error: Optional[str] = error

    @property
    def registered(self) -> bool:
        return self.error is None

    def finish(self, state: str = "completed") -> None:
        """Ends the task ("completed", "failed", "cancelled", "crashed")
        without waiting for the sidecar. Safe to call once; never raises."""
        handle, self._handle = self._handle, None
        self._report_handle = self._client._finish_task(handle, state, self)

    @property
    def report(self) -> Optional[dict[str, Any]]:
        """The TaskReport as a dict, or None: fetched when first read after
        finish(), waiting up to the client's finish_wait_ms for it."""
        handle, self._report_handle = self._report_handle, None
        if handle is not None:
            self._report = self._client._take_report(handle, self)
        return self._report

    def __del__(self) -> None:
        handle, self._report_handle = self._report_handle, None
        if handle is not None:
            self._client._free_report(handle)


class FlowScope(_Block):
    """One flow run; tasks started from it are attributed to it."""

    __slots__ = ("_client", "_handle")

    def __init__(self, client: "SidecarClient", handle: Optional[int]) -> None:
        self._client = client
        self._handle = handle

    def start_task(self, task_run_id: str, task_name: str = "",
                   tags: tuple[str, ...] | list[str] = (), **info: Any) -> TaskScope:
        """Registers the *calling thread* as task `task_run_id` until
        `finish()`. `info` takes the other TaskRunInfo fields (task_key, tid,
        start_time_ns, nested_in: the task run this one is called inside, on
        this thread). Never raises; a failure is in `.error`. As a block
        (`with flow.task(...)`), the task ends `completed`, or `failed` if the
        block raises (the exception propagates unchanged)."""
        info["task_run_id"], info["task_name"], info["tags"] = task_run_id, task_name, list(tags)
        return self._client._start_task(self._handle, info)

    task = start_task

    def finish(self, state: str = "completed") -> None:
        """Ends the flow run. Safe to call once; never raises."""
        handle, self._handle = self._handle, None
        self._client._finish_flow(handle, state)


class SidecarClient:
    """A connection to tracer-sidecar, shared by all threads of the process.

    `socket_path` defaults to $TRACER_SOCKET, then /run/tracer/tracer.sock.
    With `finish_wait_ms=0` no report is asked for: `TaskScope.report` stays
    None and the sidecar sends none; with `flow_finish_wait_ms=0` a flow
    run's finish waits for no confirmation (both the Prefect plugin's way)."""

    def __init__(
        self,
        socket_path: Optional[str] = None,
        *,
        start_wait_ms: int = START_WAIT_MS,
        finish_wait_ms: int = FINISH_WAIT_MS,
        connect_wait_ms: int = CONNECT_WAIT_MS,
        flow_finish_wait_ms: int = FLOW_FINISH_WAIT_MS,
    ) -> None:
        self._start_wait_ms = start_wait_ms
        self._finish_wait_ms = finish_wait_ms
        self._flow_finish_wait_ms = flow_finish_wait_ms
        self._warned = False
        self._warn_lock = threading.Lock()
        # Finished tasks whose reports are on their way and not read yet.
        self._unread: "weakref.WeakSet[TaskScope]" = weakref.WeakSet()
        self._unread_lock = threading.Lock()
        self._lib, reason = _native.load()
        self._client = None
        if self._lib is None:
            self._warn_once(reason)
            return
        self._client = self._lib.tracer_client_open(socket_path or None)
        if not self._lib.tracer_client_wait_connected(self._client, connect_wait_ms):
            self._warn_once(self._lib.tracer_last_error())

    @property
    def available(self) -> bool:
        """True when the native library loaded (the sidecar may still be away)."""
        return self._client is not None

    def close(self) -> None:
        """Closes the connection. Reports asked for and not read yet are
        fetched first (each within finish_wait_ms), so they stay readable."""
        with self._unread_lock:
            unread = list(self._unread)
        for scope in unread:
            scope.report  # noqa: B018 - fetches and keeps it
        if self._client is not None:
            self._lib.tracer_client_close(self._client)
            self._client = None

    def status(self, timeout_ms: int = 1000) -> Optional[dict[str, Any]]:
        """The sidecar's status (SidecarStatus as a dict), or None."""
        if self._client is None:
            return None
        text = self._lib.tracer_client_status(self._client, timeout_ms)
        return json.loads(text) if text is not None else None

    def open_flow_run(self, flow_run_id: str, flow_name: str = "", **info: Any) -> FlowScope:
        """Announces a flow run until `finish()`. `info` takes the other
        FlowRunInfo fields: deployment_id, deployment_name, work_pool,
        work_pool_type, worker_name, pid (default: this process), cpu_cores,
        memory_bytes. Never raises. As a block (`with client.flow_run(...)`),
        the run ends `completed`, or `failed` if the block raises."""
        info["flow_run_id"], info["flow_name"] = flow_run_id, flow_name
        return FlowScope(self, self._open_flow(info))

    flow_run = open_flow_run

    # The calls below never raise: a failure is a warning (once) and a None.

    def _open_flow(self, info: dict[str, Any]) -> Optional[int]:
        if self._client is None:
            return None
        try:
            handle = self._lib.tracer_flow_open(self._client, info)
        except Exception as error:  # noqa: BLE001 - fail-open
            self._warn_once(f"cannot announce flow run: {error}")
            return None
        if not handle:
            self._warn_once(f"cannot announce flow run: {self._lib.tracer_last_error()}")
        return handle

    def _finish_flow(self, handle: Optional[int], state: str) -> None:
        if handle is None:
            return
        if self._lib.tracer_flow_finish(handle, state, self._flow_finish_wait_ms) < 0:
            self._warn_once(self._lib.tracer_last_error())

    def _start_task(self, flow: Optional[int], info: dict[str, Any]) -> TaskScope:
        if flow is None:
            return TaskScope(self, None, "no flow run")
        try:
            handle = self._lib.tracer_task_start(flow, info, 0,
                                                 self._start_wait_ms)
        except Exception as error:  # noqa: BLE001 - fail-open
            self._warn_once(f"cannot register task: {error}")
            return TaskScope(self, None, f"cannot register task: {error}")
        if not handle:
            error = self._lib.tracer_last_error()
            self._warn_once(error)
            return TaskScope(self, None, error)
        error = None
        # After a wait, whether it was registered; one-way, nothing is known yet.
        if self._start_wait_ms > 0 and self._lib.tracer_task_status(handle) < 0:
            error = self._lib.tracer_last_error()
            self._warn_once(error)
        return TaskScope(self, handle, error)

    def dropped(self) -> int:
        """Task starts and flow runs dropped because the sidecar had not
        answered earlier ones (a stopped or overwhelmed sidecar): those ran
        unobserved."""
        return self._lib.tracer_client_dropped(self._client) if self._client is not None else 0

    def _finish_task(self, handle: Optional[int], state: str, scope: TaskScope) -> Optional[int]:
        """Sends the finish; returns the report's handle when one is wanted."""
        if handle is None:
            return None
        report = self._lib.tracer_task_finish(handle, state, self._finish_wait_ms > 0)
        if report < 0:
            scope.error = scope.error or self._lib.tracer_last_error()
            self._warn_once(scope.error)
            return None
        if not report:
            return None
        with self._unread_lock:
            self._unread.add(scope)
        return report

    def _take_report(self, handle: int, scope: TaskScope) -> Optional[dict[str, Any]]:
        with self._unread_lock:
            self._unread.discard(scope)
        try:
            text = self._lib.tracer_report_wait(handle, self._finish_wait_ms)
            if text is None:
                scope.error = scope.error or self._lib.tracer_last_error()
                self._warn_once(scope.error)
                return None
            return json.loads(text)
        finally:
            self._lib.tracer_report_free(handle)

    def _free_report(self, handle: int) -> None:
        if self._lib is not None:
            self._lib.tracer_report_free(handle)

    def _warn_once(self, message: str) -> None:
        # The lock only for the first: without a sidecar every task comes here,
        # and a lock each takes makes the task threads queue under the GIL.
        if not self._warned:
            with self._warn_lock:
                first, self._warned = not self._warned, True
            if first:
                logger.warning("tracer: sidecar unavailable, tasks run unobserved: %s", message)
                return
        logger.debug("tracer: %s", message)
