"""prefect_tracer.run_spans: the plugin's own provider, on OpenTelemetry's real
API (how Prefect uses it: tests/prefect/test_local_runs.py)."""

import logging

from opentelemetry import propagate, trace
from opentelemetry.trace import Status, StatusCode

from prefect_tracer import run_spans
from prefect_tracer.run_spans import RunTracerProvider


class Recorder:
    """A TaskSpanProcessor's two calls, recorded."""

    def __init__(self):
        self.calls = []

    def on_start(self, span, parent_context=None):
        self.calls.append(("start", span.name, dict(span.attributes)))

    def on_end(self, span):
        self.calls.append(("end", span.name, span.status.status_code))

    def shutdown(self):
        self.calls.append(("shutdown",))


def test_prefects_spans_reach_the_processor_with_their_attributes_and_status():
    recorder = Recorder()
    tracer = RunTracerProvider(recorder).get_tracer("prefect", "3.9.1")
    span = tracer.start_span("load-1", attributes={"prefect.run.type": "task", "prefect.tags": ["a"]})
    span.set_attribute("prefect.run.name", "load-2")
    span.set_status(Status(StatusCode.ERROR, "boom"))
    span.end()
    span.end()  # a second end is no second on_end
    assert recorder.calls == [
        ("start", "load-1", {"prefect.run.type": "task", "prefect.tags": ["a"]}),
        ("end", "load-1", StatusCode.ERROR)]
    assert span.attributes["prefect.run.name"] == "load-2"
    assert not span.is_recording()


def test_a_link_is_dropped_without_a_warning(recwarn):
    """Prefect links a task's span to the traces of its inputs' states; the
    API's default add_link warns."""
    span = RunTracerProvider(Recorder()).get_tracer("prefect").start_span("task")
    span.add_link(trace.SpanContext(1, 2, is_remote=True))
    assert len(recwarn) == 0


def test_its_spans_carry_no_trace_context_to_propagate():
    """What Prefect's RunTelemetry.traceparent_from_span does: with the SDK's
    spans it finds a traceparent and labels every run with it."""
    span = RunTracerProvider(Recorder()).get_tracer("prefect").start_span("flow")
    carrier = {}
    propagate.inject(carrier, context=trace.set_span_in_context(span))
    assert carrier == {}
    assert not span.get_span_context().is_valid


def test_other_tracers_are_no_ops_as_without_the_plugin():
    recorder = Recorder()
    provider = RunTracerProvider(recorder)
    span = provider.get_tracer("httpx").start_span("GET")
    assert not span.is_recording() and recorder.calls == []
    with provider.get_tracer("prefect").start_as_current_span("flow") as current:
        assert trace.get_current_span() is current
    assert [call[0] for call in recorder.calls] == ["start", "end"]


def test_a_span_that_cannot_be_made_is_a_no_op_span_and_one_warning(monkeypatch, caplog):
    def unmakeable(*args):
        raise TypeError("Can't instantiate abstract class RunSpan")

    monkeypatch.setattr(run_spans, "RunSpan", unmakeable)
    tracer = RunTracerProvider(Recorder()).get_tracer("prefect")
    with caplog.at_level(logging.WARNING, logger="prefect_tracer"):
        spans = [tracer.start_span("task") for _ in range(3)]
    assert all(span is trace.INVALID_SPAN for span in spans)
    assert [record.getMessage() for record in caplog.records] == [
        "tracer: task runs are not observed: cannot make a span: "
        "Can't instantiate abstract class RunSpan"]


def test_shutdown_reaches_the_processor():
    recorder = Recorder()
    RunTracerProvider(recorder).shutdown()
    assert recorder.calls == [("shutdown",)]
