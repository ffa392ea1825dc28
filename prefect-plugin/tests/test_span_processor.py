"""prefect_tracer.span_processor's pieces on real opentelemetry-sdk spans and
a real sidecar (how it follows Prefect itself: tests/prefect/)."""

import threading

from opentelemetry.sdk.trace import SpanProcessor, TracerProvider

from prefect_tracer.client import SidecarClient
from prefect_tracer.span_processor import (TaskAttempts, TaskSpanProcessor, ThreadClaims,
                                           watch_states)


def test_it_is_an_sdk_span_processor():
    """opentelemetry-sdk >= 1.40 calls _on_ending on every processor; a
    subclass inherits it, so Span.end() cannot raise."""
    processor = TaskSpanProcessor()
    assert isinstance(processor, SpanProcessor)
    provider = TracerProvider()
    provider.add_span_processor(processor)
    span = provider.get_tracer("test").start_span("task-run", attributes={"prefect.run.type": "task"})
    span.end()  # raised inside Prefect's handle_success before


def test_watch_states_sees_state_events_and_keeps_the_span_working():
    span = TracerProvider().get_tracer("test").start_span("run")
    seen = []
    watch_states(span, seen.append)
    span.add_event("Running", {"prefect.state.type": "RUNNING"})
    span.add_event("exception", {"exception.type": "ValueError"})
    span.add_event("Completed", {"prefect.state.type": "COMPLETED"})
    span.end()
    assert seen == ["RUNNING", "COMPLETED"]
    assert [event.name for event in span.events] == ["Running", "exception", "Completed"]


def test_a_failing_watcher_never_reaches_prefect():
    span = TracerProvider().get_tracer("test").start_span("run")

    def broken(state):
        raise RuntimeError("bug in the watcher")

    watch_states(span, broken)
    span.add_event("Running", {"prefect.state.type": "RUNNING"})
    assert len(span.events) == 1


def test_a_thread_is_claimed_once():
    claims = ThreadClaims()
    assert claims.claim(7) and not claims.claim(7)
    claims.release(7)
    assert claims.claim(7)


def _attempt_states(sidecar, states):
    client = SidecarClient(str(sidecar.socket), start_wait_ms=2000, finish_wait_ms=2000,
                           connect_wait_ms=2000)
    flow = client.open_flow_run(flow_run_id="f", flow_name="etl")
    shared = []
    attempts = TaskAttempts(flow, {"task_run_id": "t", "task_name": "load"}, ThreadClaims(),
                            shared.append)
    for state in states:
        attempts.on_state(state)
    flow.finish("completed")
    return sidecar.tracerctl("reports").stdout, shared


def test_each_attempt_is_a_report_from_running_to_its_end(sidecar):
    # Running, fails, AwaitingRetry, Retrying, Completed.
    reports, _ = _attempt_states(sidecar, ["RUNNING", "SCHEDULED", "RUNNING", "COMPLETED"])
    assert reports.count("task load (t): failed") == 1
    assert reports.count("task load (t): completed") == 1


def test_a_task_that_never_runs_is_not_reported(sidecar):
    reports, _ = _attempt_states(sidecar, ["PENDING"])
    assert "task load" not in reports


def test_a_task_on_a_thread_another_task_holds_is_not_registered(sidecar):
    client = SidecarClient(str(sidecar.socket), start_wait_ms=2000, finish_wait_ms=2000,
                           connect_wait_ms=2000)
    flow = client.open_flow_run(flow_run_id="f", flow_name="etl")
    claims, shared = ThreadClaims(), []
    outer = TaskAttempts(flow, {"task_run_id": "o", "task_name": "outer"}, claims, shared.append)
    inner = TaskAttempts(flow, {"task_run_id": "i", "task_name": "inner"}, claims, shared.append)
    outer.on_state("RUNNING")
    inner.on_state("RUNNING")
    inner.on_state("COMPLETED")
    outer.on_state("COMPLETED")
    other_thread = TaskAttempts(flow, {"task_run_id": "p", "task_name": "parallel"}, claims,
                                shared.append)
    worker = threading.Thread(target=lambda: (other_thread.on_state("RUNNING"),
                                              other_thread.on_state("COMPLETED")))
    worker.start()
    worker.join()
    flow.finish("completed")
    reports = sidecar.tracerctl("reports").stdout
    assert "task outer (o): completed" in reports and "task parallel (p): completed" in reports
    assert "inner" not in reports and shared == ["inner"]
