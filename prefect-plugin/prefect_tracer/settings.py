"""What a flow-run process is told through its environment: the run the worker
started (PREFECT__*) and the allocation the work pool's job template declared
(TRACER_CPU, TRACER_MEMORY as Kubernetes quantities).

A bad value is one warning that names the variable; the run is observed
without it. Nothing here raises."""

from __future__ import annotations

import logging
import math
import os
import re
from typing import Any, Mapping, Optional

logger = logging.getLogger("prefect_tracer")

DEFAULT_SOCKET = "/run/tracer/tracer.sock"

# Set by every Prefect worker for the flow-run process (prefect/workers/base.py).
FLOW_RUN_ID = "PREFECT__FLOW_RUN_ID"
WORKER_ENV = {
    "flow_name": "PREFECT__FLOW_NAME",
    "deployment_id": "PREFECT__DEPLOYMENT_ID",
    "deployment_name": "PREFECT__DEPLOYMENT_NAME",
    "worker_name": "PREFECT__WORKER_NAME",
}
# Set by the work pool's base job template (examples/prefect).
DECLARED_TEXT = {"work_pool": "TRACER_WORK_POOL", "work_pool_type": "TRACER_WORK_POOL_TYPE"}
CPU = "TRACER_CPU"
MEMORY = "TRACER_MEMORY"

# Kubernetes quantity suffixes (k8s.io/apimachinery resource.Quantity).
_MEMORY_UNITS = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15,
                 "E": 10**18, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40,
                 "Pi": 2**50, "Ei": 2**60}
_CPU = re.compile(r"([0-9]+(?:\.[0-9]+)?)(m?)")
_MEMORY = re.compile(r"([0-9]+(?:\.[0-9]+)?)(|[kMGTPE]|[KMGTPE]i)")


def socket_path(environ: Mapping[str, str] = os.environ) -> str:
    return environ.get("TRACER_SOCKET") or DEFAULT_SOCKET


def parse_cpu(text: str) -> float:
    """Cores from "0.5", "2" or millicores "500m"; ValueError otherwise."""
    match = _CPU.fullmatch(text.strip())
    if not match:
        raise ValueError("not a CPU quantity such as 2, 0.5 or 500m")
    cores = float(match.group(1)) / (1000 if match.group(2) else 1)
    if not math.isfinite(cores) or cores <= 0:
        raise ValueError("must be more than 0 cores")
    return cores


def parse_memory(text: str) -> int:
    """Bytes from "536870912", "512Mi", "1G", "1.5Gi"; ValueError otherwise."""
    match = _MEMORY.fullmatch(text.strip())
    if not match:
        raise ValueError("not a memory quantity such as 512Mi, 2Gi or 1G")
    size = int(float(match.group(1)) * _MEMORY_UNITS[match.group(2)])
    if size <= 0:
        raise ValueError("must be more than 0 bytes")
    return size


def _declared(environ: Mapping[str, str], name: str, parse: Any) -> Optional[Any]:
    text = environ.get(name)
    if not text:
        return None
    try:
        return parse(text)
    except ValueError as error:
        logger.warning("tracer: ignoring %s=%r: %s; the run is observed without it",
                       name, text, error)
        return None


def declared_info(environ: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """FlowRunInfo fields the worker and the job template put in the environment."""
    info: dict[str, Any] = {key: environ[name] for key, name in {**WORKER_ENV, **DECLARED_TEXT}.items()
                            if environ.get(name)}
    cpu = _declared(environ, CPU, parse_cpu)
    if cpu is not None:
        info["cpu_cores"] = cpu
    memory = _declared(environ, MEMORY, parse_memory)
    if memory is not None:
        info["memory_bytes"] = memory
    return info
