"""The `prefect.plugins` entry point.

Prefect imports this module in every Prefect process when
PREFECT_PLUGINS_ENABLED=true, and calls `setup_environment` (pluggy, marker
project "prefect-experimental"; prefect/_experimental/plugins/spec.py).

- In the worker it hands the sidecar's socket path down to the flow-run
  processes the worker starts.
- In a flow-run process (the worker sets PREFECT__FLOW_RUN_ID and friends,
  prefect/workers/base.py) it announces the flow run to the sidecar and adds
  a TaskSpanProcessor, so every task run is observed.
"""

from __future__ import annotations

import logging
import os
import re
from typing import Any

DEFAULT_SOCKET = "/run/tracer/tracer.sock"

try:  # pluggy ships with Prefect; without it this module is inert.
    import pluggy

    hookimpl = pluggy.HookimplMarker("prefect-experimental")
except ImportError:  # pragma: no cover - only outside a Prefect install

    def hookimpl(function):  # type: ignore[no-redef]
        return function


def socket_path() -> str:
    return os.environ.get("TRACER_SOCKET") or DEFAULT_SOCKET


@hookimpl
def setup_environment(*, ctx: Any) -> Any:
    """Exports TRACER_SOCKET to flow runs. Never required: a missing sidecar
    must not stop Prefect from running anything."""
    from prefect._experimental.plugins.spec import SetupResult

    path = socket_path()
    present = os.path.exists(path)
    note = f"tracer sidecar socket {path}" + ("" if present else " (not present: tasks run unobserved)")
    return SetupResult(env={"TRACER_SOCKET": path}, note=note, required=False)


# Environment the worker gives every flow-run process (prefect/workers/base.py,
# BaseJobConfiguration._base_flow_run_environment and the process worker).
FLOW_RUN_ENV = {
    "flow_run_id": "PREFECT__FLOW_RUN_ID",
    "flow_name": "PREFECT__FLOW_NAME",
    "deployment_id": "PREFECT__DEPLOYMENT_ID",
    "deployment_name": "PREFECT__DEPLOYMENT_NAME",
    "worker_name": "PREFECT__WORKER_NAME",
}
# Set by the work pool's base job template (see examples/prefect): what the run
# was given, as Kubernetes-style quantities ("500m", "2", "512Mi", "1G").
DECLARED_ENV = {"cpu_cores": "TRACER_CPU", "memory_bytes": "TRACER_MEMORY",
                "work_pool": "TRACER_WORK_POOL", "work_pool_type": "TRACER_WORK_POOL_TYPE"}

_MEMORY_UNITS = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
                 "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


def parse_cpu(text: str) -> float:
    """Cores from "0.5" or millicores "500m"."""
    return int(text[:-1]) / 1000 if text.endswith("m") else float(text)


def parse_memory(text: str) -> int:
    """Bytes from "536870912", "512Mi", "1G"."""
    match = re.fullmatch(r"([0-9]+)([kMGT]i?|Ki)?", text.strip())
    if not match:
        raise ValueError(text)
    return int(match.group(1)) * _MEMORY_UNITS[match.group(2) or ""]


def flow_run_info(environ: Any = os.environ) -> dict[str, Any]:
    """FlowRunInfo for this process, from the worker's environment; {} outside a flow run."""
    if not environ.get(FLOW_RUN_ENV["flow_run_id"]):
        return {}
    info: dict[str, Any] = {key: environ[name] for key, name in FLOW_RUN_ENV.items()
                            if environ.get(name)}
    for key, name in DECLARED_ENV.items():
        value = environ.get(name)
        if not value:
            continue
        try:
            info[key] = (parse_cpu(value) if key == "cpu_cores"
                         else parse_memory(value) if key == "memory_bytes" else value)
        except ValueError:
            logging.getLogger("prefect_tracer").warning("tracer: ignoring %s=%r (not a number)",
                                                        name, value)
    return info


def observe_flow_run(environ: Any = os.environ) -> Any:
    """In a flow-run process: announces the run and installs the span
    processor. Returns the processor (None when not a flow run or without
    OpenTelemetry). Never raises."""
    try:
        info = flow_run_info(environ)
        if not info:
            return None
        from prefect_tracer.client import SidecarClient
        from prefect_tracer.span_processor import install

        flow = SidecarClient().open_flow_run(**info)
        return install(flow)
    except Exception as error:  # noqa: BLE001 - a Prefect run must never fail because of us
        logging.getLogger("prefect_tracer").warning("tracer: not observing this flow run: %s", error)
        return None


if os.environ.get(FLOW_RUN_ENV["flow_run_id"]):
    observe_flow_run()
