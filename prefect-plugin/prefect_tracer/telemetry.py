"""Where the plugin meets OpenTelemetry: Prefect starts a span per flow run
and task run from the global tracer provider (prefect/telemetry/
run_telemetry.py), and a TaskSpanProcessor on that provider observes them.

The plugin never takes the global provider away from the user:
- a provider that is already configured (set in code before `import prefect`,
  or named by OTEL_PYTHON_TRACER_PROVIDER) gets the processor added;
- otherwise the plugin sets OTEL_PYTHON_TRACER_PROVIDER=prefect_tracer, and
  OpenTelemetry calls `tracer_provider()` below (an entry point) only when
  something first asks for a tracer, which is Prefect starting a run. A
  provider the user sets after `import prefect` and before that wins; it
  needs the processor added by hand (docs/prefect.md), and the plugin says
  so at exit if it was not.

Every reason tasks would go unobserved is said once, as a warning."""

from __future__ import annotations

import atexit
import logging
import os
from typing import Any, Mapping

logger = logging.getLogger("prefect_tracer")

PROVIDER_VARIABLE = "OTEL_PYTHON_TRACER_PROVIDER"
PROVIDER_ENTRY_POINT = "prefect_tracer"
# Sampler.get_description() of ALWAYS_ON and of the SDK's default, ParentBased(ALWAYS_ON).
SAMPLES_EVERYTHING = ("AlwaysOnSampler", "ParentBased{root:AlwaysOnSampler")


def tracer_provider() -> Any:
    """The `opentelemetry_tracer_provider` entry point: the plugin's own
    provider (run_spans.py), which hands Prefect's run spans to a
    TaskSpanProcessor, propagates no trace context and exports nothing."""
    from prefect_tracer.run_spans import RunTracerProvider

    return RunTracerProvider()


def _warn_if_bypassed() -> None:
    """At exit of a process where the plugin left the provider to
    OpenTelemetry's first use: a provider set in code after `import prefect`
    came first, and unless a TaskSpanProcessor was added to it, no task run
    of this process was observed. Said once, here, because nothing else
    would say it."""
    try:
        from opentelemetry import trace

        from prefect_tracer.span_processor import TaskSpanProcessor

        if TaskSpanProcessor.spans_seen:
            return
        provider = trace.get_tracer_provider()
        if getattr(provider, "prefect_tracer", False) or not hasattr(provider, "add_span_processor"):
            return
        logger.warning("tracer: task runs were not observed: the tracer provider set after "
                       "`import prefect` has no Tracer processor; add "
                       "prefect_tracer.span_processor.TaskSpanProcessor() to it (docs/prefect.md)")
    except Exception as error:  # noqa: BLE001 - at exit, never a traceback of ours
        logger.debug("tracer: %s", error)


def _orchestration_telemetry_enabled() -> bool:
    try:
        from prefect.settings import get_current_settings

        return bool(get_current_settings().cloud.enable_orchestration_telemetry)
    except Exception:  # noqa: BLE001 - a Prefect without the setting records spans
        return True


def observe_tasks(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """Arranges for Prefect's spans to reach a TaskSpanProcessor. Returns the
    environment the plugin hook should set (possibly empty). Never raises."""
    try:
        if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
            logger.warning("tracer: OTEL_SDK_DISABLED=true: Prefect records no task spans, "
                           "so task runs are not observed")
            return {}
        if not _orchestration_telemetry_enabled():
            logger.warning("tracer: PREFECT_CLOUD_ENABLE_ORCHESTRATION_TELEMETRY is off: "
                           "Prefect starts no task spans, so task runs are not observed")
            return {}
        try:
            from opentelemetry import trace
            from opentelemetry.sdk.trace import TracerProvider  # noqa: F401 - is the SDK there?
        except ImportError as error:
            logger.warning("tracer: opentelemetry-sdk is not importable (%s): Prefect's spans are "
                           "not recorded, so task runs are not observed", error)
            return {}
        if environ.get(PROVIDER_VARIABLE) == PROVIDER_ENTRY_POINT:
            return {}  # inherited from the worker: the provider it names carries the processor
        provider = trace.get_tracer_provider()
        if isinstance(provider, trace.ProxyTracerProvider):  # nothing configured yet
            atexit.register(_warn_if_bypassed)
            return {PROVIDER_VARIABLE: PROVIDER_ENTRY_POINT}
        if not hasattr(provider, "add_span_processor"):
            logger.warning("tracer: the tracer provider %s takes no span processors: task runs "
                           "are not observed", type(provider).__name__)
            return {}
        from prefect_tracer.span_processor import TaskSpanProcessor

        provider.add_span_processor(TaskSpanProcessor())
        sampler = getattr(provider, "sampler", None)
        description = sampler.get_description() if hasattr(sampler, "get_description") else ""
        if description and not description.startswith(SAMPLES_EVERYTHING):
            logger.warning("tracer: the tracer provider samples spans (%s): task runs whose spans "
                           "are not sampled are not observed", sampler)
        return {}
    except Exception as error:  # noqa: BLE001 - a Prefect process must never fail because of us
        logger.warning("tracer: task runs are not observed: %s", error)
        return {}
