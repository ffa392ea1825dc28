"""Every Prefect task run, observed through Prefect's own OpenTelemetry spans.

Prefect starts a span for each flow run and task run
(prefect/telemetry/run_telemetry.py, RunTelemetry.start_span) with the
attributes "prefect.run.type" ("task" or "flow"), "prefect.run.id",
"prefect.run.name" and "prefect.tags". A SpanProcessor on the global SDK
tracer provider sees `on_start` in the task's own thread, which is the thread
Tracer must register (threading.get_native_id() inside the client library),
and `on_end` when the run is over.

This module is duck-typed against opentelemetry-sdk's SpanProcessor
(on_start, on_end, shutdown, force_flush), so it imports nothing from
OpenTelemetry or Prefect at module level and cannot fail to import.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Optional

from prefect_tracer.client import FlowScope, TaskScope

logger = logging.getLogger("prefect_tracer")

# opentelemetry.trace.StatusCode.ERROR.value (opentelemetry/trace/status.py)
STATUS_CODE_ERROR = 2


def _state_of(span: Any) -> str:
    status = getattr(span, "status", None)
    code = getattr(getattr(status, "status_code", None), "value", None)
    return "failed" if code == STATUS_CODE_ERROR else "completed"


def _span_key(span: Any) -> Any:
    context = span.get_span_context() if hasattr(span, "get_span_context") else None
    return getattr(context, "span_id", None) or id(span)


def _task_key() -> str:
    """TaskRunContext.get().task.task_key (prefect/context.py), when Prefect
    is there and the span starts inside the task's context."""
    try:
        from prefect.context import TaskRunContext

        context = TaskRunContext.get()
        return str(context.task.task_key) if context is not None else ""
    except Exception:  # noqa: BLE001 - Prefect missing or changed: the key is optional
        return ""


class TaskSpanProcessor:
    """Starts a Tracer task for each Prefect task span; finishes the flow run
    with the flow span."""

    def __init__(self, flow: FlowScope) -> None:
        self._flow = flow
        self._tasks: dict[Any, TaskScope] = {}
        self._lock = threading.Lock()

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        try:
            attributes = getattr(span, "attributes", None) or {}
            if attributes.get("prefect.run.type") != "task":
                return
            scope = self._flow.start_task(
                task_run_id=str(attributes.get("prefect.run.id", "")),
                task_name=str(attributes.get("prefect.run.name", "")),
                tags=[str(tag) for tag in attributes.get("prefect.tags", ()) or ()],
                task_key=_task_key(),
            )
            with self._lock:
                self._tasks[_span_key(span)] = scope
        except Exception as error:  # noqa: BLE001 - never raise into Prefect
            logger.debug("tracer: task start not observed: %s", error)

    def on_end(self, span: Any) -> None:
        try:
            attributes = getattr(span, "attributes", None) or {}
            kind = attributes.get("prefect.run.type")
            if kind == "task":
                with self._lock:
                    scope = self._tasks.pop(_span_key(span), None)
                if scope is not None:
                    scope.finish(_state_of(span))
            elif kind == "flow":
                self._flow.finish(_state_of(span))
        except Exception as error:  # noqa: BLE001 - never raise into Prefect
            logger.debug("tracer: task end not observed: %s", error)

    def shutdown(self) -> None:
        """Tasks still open when the process shuts down end as crashed."""
        with self._lock:
            open_tasks, self._tasks = list(self._tasks.values()), {}
        for scope in open_tasks:
            scope.finish("crashed")

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def install(flow: FlowScope) -> Optional[TaskSpanProcessor]:
    """Adds a TaskSpanProcessor to the global SDK tracer provider, creating
    one only when none is set (a user's provider is never replaced). Without
    opentelemetry-sdk: logs once and returns None; the flow run is still
    observed as a whole."""
    try:
        from opentelemetry import trace
    except ImportError:
        logger.warning("tracer: opentelemetry is not installed: Prefect's task spans are not "
                       "available, so tasks are not observed one by one (the flow run is)")
        return None
    processor = TaskSpanProcessor(flow)
    provider = trace.get_tracer_provider()
    if hasattr(provider, "add_span_processor"):
        provider.add_span_processor(processor)
        return processor
    try:
        from opentelemetry.sdk.trace import TracerProvider
    except ImportError:
        logger.warning("tracer: opentelemetry-sdk is not installed: Prefect's task spans are "
                       "not recorded, so tasks are not observed one by one (the flow run is)")
        return None
    sdk_provider = TracerProvider()
    sdk_provider.add_span_processor(processor)
    trace.set_tracer_provider(sdk_provider)
    return processor
