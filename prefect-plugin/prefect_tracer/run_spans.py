"""The plugin's own tracer provider, for a process where nobody configured
OpenTelemetry: Prefect's run spans as the TaskSpanProcessor needs them and
nothing more.

Why not the SDK's provider: an SDK span has a valid trace context, and Prefect
propagates a valid one (prefect/telemetry/run_telemetry.py): a
`__OTEL_TRACEPARENT` label on every flow run (one more API call at its start)
and on every task run, carried in each of its state events to the server.
Without the plugin, Prefect's spans come from OpenTelemetry's no-op provider
and have none of that. A RunSpan's context is invalid, as a no-op span's is,
so Prefect does the same work with the plugin as without it; besides, a
RunSpan keeps its attributes and status only, and exports nothing.

Tracers for anything but Prefect's runs are OpenTelemetry's no-op ones, as
they would be without the plugin. A user who configures a provider gets the
processor added to theirs instead (telemetry.py), with their propagation."""

from __future__ import annotations

import atexit
import contextlib
import logging
from typing import Any, Iterator, Optional

from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from prefect_tracer.span_processor import TaskSpanProcessor

logger = logging.getLogger("prefect_tracer")

# get_tracer("prefect", ...) in prefect/telemetry/run_telemetry.py
PREFECT_TRACER = "prefect"


class RunSpan(trace.Span):
    """A Prefect run's span: its name, attributes and status, seen by the
    processor at its start and end. Events are not kept: the processor
    watches add_event (span_processor.watch_states)."""

    def __init__(self, name: str, attributes: Any, processor: TaskSpanProcessor) -> None:
        self.name = name
        self.attributes = dict(attributes or {})
        self.status = Status(StatusCode.UNSET)
        self._processor = processor
        self._ended = False

    def get_span_context(self) -> trace.SpanContext:
        return trace.INVALID_SPAN_CONTEXT

    def is_recording(self) -> bool:
        return not self._ended

    def set_attributes(self, attributes: Any) -> None:
        self.attributes.update(attributes)

    def set_attribute(self, key: str, value: Any) -> None:
        self.attributes[key] = value

    def add_event(self, name: str, attributes: Any = None, timestamp: Optional[int] = None) -> None:
        pass

    def add_link(self, context: Any, attributes: Any = None) -> None:
        pass  # Prefect links a task's span to its inputs' states' traces: not kept

    def update_name(self, name: str) -> None:
        self.name = name

    def set_status(self, status: Any, description: Optional[str] = None) -> None:
        self.status = status if isinstance(status, Status) else Status(status, description)

    def record_exception(self, exception: BaseException, attributes: Any = None,
                         timestamp: Optional[int] = None, escaped: bool = False) -> None:
        pass

    def end(self, end_time: Optional[int] = None) -> None:
        if not self._ended:
            self._ended = True
            self._processor.on_end(self)


class RunTracer(trace.Tracer):
    """Starts RunSpans. A span that cannot be made (an OpenTelemetry whose Span
    wants more than this one has) is a no-op span and one warning: Prefect's
    run goes on, unobserved."""

    def __init__(self, processor: TaskSpanProcessor) -> None:
        self._processor = processor
        self._warned = False

    def start_span(self, name: str, context: Any = None, kind: Any = None, attributes: Any = None,
                   links: Any = None, start_time: Optional[int] = None,
                   record_exception: bool = True,
                   set_status_on_exception: bool = True) -> trace.Span:
        try:
            span = RunSpan(name, attributes, self._processor)
        except Exception as error:  # noqa: BLE001 - never raise into Prefect
            if not self._warned:
                self._warned = True
                logger.warning("tracer: task runs are not observed: cannot make a span: %s", error)
            return trace.INVALID_SPAN
        self._processor.on_start(span, context)
        return span

    @contextlib.contextmanager
    def start_as_current_span(self, name: str, context: Any = None, kind: Any = None,
                              attributes: Any = None, links: Any = None,
                              start_time: Optional[int] = None, record_exception: bool = True,
                              set_status_on_exception: bool = True,
                              end_on_exit: bool = True) -> Iterator[trace.Span]:
        span = self.start_span(name, context, kind, attributes, links, start_time,
                               record_exception, set_status_on_exception)
        with trace.use_span(span, end_on_exit=end_on_exit, record_exception=record_exception,
                            set_status_on_exception=set_status_on_exception) as current:
            yield current


class RunTracerProvider(trace.TracerProvider):
    """Prefect's tracer makes RunSpans for one TaskSpanProcessor, shut down at
    exit (open task attempts end crashed there, as with the SDK's provider)."""

    prefect_tracer = True  # ours: see telemetry._warn_if_bypassed

    def __init__(self, processor: Optional[TaskSpanProcessor] = None) -> None:
        self._processor = processor or TaskSpanProcessor()
        self._tracer = RunTracer(self._processor)
        atexit.register(self.shutdown)

    def get_tracer(self, instrumenting_module_name: str, *args: Any, **kwargs: Any) -> trace.Tracer:
        if instrumenting_module_name == PREFECT_TRACER:
            return self._tracer
        return trace.NoOpTracer()

    def shutdown(self) -> None:
        self._processor.shutdown()
