"""prefect_tracer.span_processor's pieces on real opentelemetry-sdk spans and
a real sidecar (how it follows Prefect itself: tests/prefect/)."""

import asyncio
import json
import threading

from opentelemetry.sdk.trace import SpanProcessor, TracerProvider

from prefect_tracer.client import SidecarClient
from prefect_tracer.span_processor import (TaskAttempts, TaskSpanProcessor, ThreadTasks,
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


def test_a_task_started_inside_another_on_its_thread_is_nested_in_it():
    threads = ThreadTasks()
    assert threads.enter(7, 0, "outer") == ""
    assert threads.enter(7, 0, "inner") == "outer"
    assert threads.enter(8, 0, "elsewhere") == ""  # another thread
    threads.leave(7, "inner")
    assert threads.enter(7, 0, "next") == "outer"


def test_async_tasks_of_one_loop_are_nested_only_in_their_own_asyncio_task():
    threads, nested = ThreadTasks(), {}

    async def attempt(name, inner=None):
        from prefect_tracer.span_processor import _flow_of_control
        nested[name] = threads.enter(1, _flow_of_control(), name)
        await asyncio.sleep(0.01)
        if inner:
            await attempt(inner)  # awaited inline: in this asyncio task
        threads.leave(1, name)

    async def main():
        await asyncio.gather(attempt("a", inner="a-inner"), attempt("b"), attempt("c"))

    asyncio.run(main())
    assert nested == {"a": "", "b": "", "c": "", "a-inner": "a"}


def _attempt_states(sidecar, states):
    client = SidecarClient(str(sidecar.socket), start_wait_ms=2000, finish_wait_ms=2000,
                           connect_wait_ms=2000)
    flow = client.open_flow_run(flow_run_id="f", flow_name="etl")
    attempts = TaskAttempts(flow, {"task_run_id": "t", "task_name": "load"}, ThreadTasks())
    for state in states:
        attempts.on_state(state)
    flow.finish("completed")
    return sidecar.tracerctl("reports").stdout


def test_each_attempt_is_a_report_from_running_to_its_end(sidecar):
    # Running, fails, AwaitingRetry, Retrying, Completed.
    reports = _attempt_states(sidecar, ["RUNNING", "SCHEDULED", "RUNNING", "COMPLETED"])
    assert reports.count("task load (t): failed") == 1
    assert reports.count("task load (t): completed") == 1


def test_a_task_that_never_runs_is_not_reported(sidecar):
    reports = _attempt_states(sidecar, ["PENDING"])
    assert "task load" not in reports


def test_a_task_called_inside_a_task_is_its_own_and_the_outer_says_so(sidecar):
    client = SidecarClient(str(sidecar.socket), start_wait_ms=2000, finish_wait_ms=2000,
                           connect_wait_ms=2000)
    flow = client.open_flow_run(flow_run_id="f", flow_name="etl")
    threads = ThreadTasks()
    outer = TaskAttempts(flow, {"task_run_id": "o", "task_name": "outer"}, threads)
    inner = TaskAttempts(flow, {"task_run_id": "i", "task_name": "inner"}, threads)
    other_thread = TaskAttempts(flow, {"task_run_id": "p", "task_name": "parallel"}, threads)
    outer.on_state("RUNNING")
    inner.on_state("RUNNING")
    # A task on another thread meanwhile is neither nested nor sharing.
    worker = threading.Thread(target=lambda: (other_thread.on_state("RUNNING"),
                                              other_thread.on_state("COMPLETED")))
    worker.start()
    worker.join()
    inner.on_state("COMPLETED")
    outer.on_state("COMPLETED")
    flow.finish("completed")
    reports = {r["task_name"]: r for r in json.loads(
        sidecar.tracerctl("reports", "--json").stdout)["reports"]}
    assert {name: r["state"] for name, r in reports.items()} == {
        "outer": "completed", "inner": "completed", "parallel": "completed"}
    assert reports["outer"]["thread"]["nested_tasks"] == 1
    assert reports["inner"]["thread"]["nested_tasks"] == 0
    assert all(r["thread"]["shared_with"] == 0 for r in reports.values())
