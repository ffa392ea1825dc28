"""prefect_tracer.span_processor, fed with objects shaped like the spans
Prefect's RunTelemetry starts (prefect/telemetry/run_telemetry.py) and like
opentelemetry-sdk's ReadableSpan (opentelemetry/sdk/trace/__init__.py):
`attributes`, `status.status_code.value`, `get_span_context().span_id`."""

import logging
import sys
import threading
import time
import types
from dataclasses import dataclass, field
from enum import Enum

import pytest

from prefect_tracer.client import SidecarClient
from prefect_tracer.span_processor import TaskSpanProcessor, install


class StatusCode(Enum):  # opentelemetry/trace/status.py
    UNSET = 0
    OK = 1
    ERROR = 2


@dataclass
class Status:
    status_code: StatusCode = StatusCode.UNSET


@dataclass
class SpanContext:
    span_id: int


@dataclass
class Span:
    span_id: int
    attributes: dict = field(default_factory=dict)
    status: Status = field(default_factory=Status)

    def get_span_context(self):
        return SpanContext(self.span_id)


def task_span(span_id, run_id, name, tags=("etl",)):
    return Span(span_id, {"prefect.run.type": "task", "prefect.run.id": run_id,
                          "prefect.run.name": name, "prefect.tags": list(tags)})


@pytest.fixture
def flow(sidecar):
    client = SidecarClient(str(sidecar.socket), start_wait_ms=2000, finish_wait_ms=2000,
                           connect_wait_ms=2000)
    return client.open_flow_run(flow_run_id="otel-flow", flow_name="otel")


def test_task_spans_become_tasks_of_their_own_thread(flow, sidecar):
    processor = TaskSpanProcessor(flow)
    reports = {}

    def run(span_id, spin):
        span = task_span(span_id, f"run-{span_id}", f"task-{span_id}")
        processor.on_start(span)  # in the task's own thread, as Prefect does
        until = time.thread_time() + spin
        while time.thread_time() < until:
            pass
        scope = processor._tasks[span_id]
        processor.on_end(span)
        reports[span_id] = scope.report

    threads = [threading.Thread(target=run, args=(1, 0.3)), threading.Thread(target=run, args=(2, 0))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    busy, idle = reports[1], reports[2]
    assert busy["task_run_id"] == "run-1" and busy["task_name"] == "task-1"
    assert busy["cpu"]["user_ns"] + busy["cpu"]["system_ns"] >= 0.28e9
    assert idle["cpu"]["user_ns"] + idle["cpu"]["system_ns"] < 0.05e9
    assert busy["state"] == "completed"


def test_a_failed_span_fails_the_task_and_the_flow_span_ends_the_flow(flow, sidecar):
    processor = TaskSpanProcessor(flow)
    span = task_span(7, "boom", "boom")
    processor.on_start(span)
    scope = processor._tasks[7]
    span.status = Status(StatusCode.ERROR)
    processor.on_end(span)
    assert scope.report["state"] == "failed"

    flow_span = Span(8, {"prefect.run.type": "flow", "prefect.run.id": "otel-flow"})
    processor.on_start(flow_span)  # flows are not tasks
    processor.on_end(flow_span)
    status = sidecar.status()
    assert status["finished_flow_runs"] == 1 and status["finished_tasks"] == 1


def test_shutdown_ends_open_tasks_as_crashed(flow, sidecar):
    processor = TaskSpanProcessor(flow)
    processor.on_start(task_span(9, "left-open", "t"))
    processor.shutdown()
    assert sidecar.status()["crashed_tasks"] == 1


def test_bad_spans_never_raise(flow):
    processor = TaskSpanProcessor(flow)
    processor.on_start(object())
    processor.on_end(None)
    processor.on_start(Span(1, {"prefect.run.type": "task", "prefect.tags": 42}))


@pytest.fixture
def fake_otel(monkeypatch):
    """opentelemetry.trace with an SDK provider (add_span_processor), or without."""
    def make(with_sdk_provider):
        added = []
        provider = types.SimpleNamespace()
        if with_sdk_provider:
            provider.add_span_processor = added.append
        trace = types.ModuleType("opentelemetry.trace")
        trace.get_tracer_provider = lambda: provider
        package = types.ModuleType("opentelemetry")
        package.trace = trace
        monkeypatch.setitem(sys.modules, "opentelemetry", package)
        monkeypatch.setitem(sys.modules, "opentelemetry.trace", trace)
        monkeypatch.setitem(sys.modules, "opentelemetry.sdk", None)  # sdk not importable
        monkeypatch.setitem(sys.modules, "opentelemetry.sdk.trace", None)
        return added
    return make


def test_install_adds_to_the_existing_sdk_provider(fake_otel, flow):
    added = fake_otel(with_sdk_provider=True)
    processor = install(flow)
    assert added == [processor]


def test_install_without_the_sdk_logs_and_carries_on(fake_otel, flow, caplog):
    fake_otel(with_sdk_provider=False)
    caplog.set_level(logging.WARNING, logger="prefect_tracer")
    assert install(flow) is None
    assert "opentelemetry-sdk is not installed" in caplog.text
