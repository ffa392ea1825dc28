"""The `prefect.plugins` entry point.

Prefect imports this module in every Prefect process when
PREFECT_PLUGINS_ENABLED=true, and calls `setup_environment` (pluggy, marker
project "prefect-experimental"; prefect/_experimental/plugins/spec.py). In the
worker it hands the sidecar's socket path down to the flow-run processes the
worker starts.
"""

from __future__ import annotations

import os
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
