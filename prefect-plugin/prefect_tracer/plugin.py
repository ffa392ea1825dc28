"""The `prefect.plugins` entry point.

Prefect imports this module during `import prefect` in every Prefect process
when PREFECT_PLUGINS_ENABLED=true (Prefect >= 3.7), and then calls
`setup_environment`. Importing it does nothing else: no connection, no tracer
provider, so PREFECT_PLUGINS_SAFE_MODE and a process that never runs a flow
cost nothing.

The hook hands the sidecar's socket path to the processes this one starts and
arranges for Prefect's run spans to reach a TaskSpanProcessor (telemetry.py),
which announces the flow run lazily, when it starts running.
"""

from __future__ import annotations

import logging
from typing import Any

from prefect_tracer import settings, telemetry

logger = logging.getLogger("prefect_tracer")

try:  # the public path from Prefect 3.7
    from prefect.plugins import SetupResult, register_hook
except ImportError as error:  # an older or a changed Prefect: say so, stay inert
    import pluggy

    register_hook = pluggy.HookimplMarker("prefect-experimental")
    SetupResult = None
    _unsupported = f"prefect.plugins has no SetupResult/register_hook ({error}); Tracer needs Prefect >= 3.7"
else:
    _unsupported = ""


@register_hook
def setup_environment(*, ctx: Any) -> Any:
    """Never required: a missing sidecar must not stop Prefect from running anything."""
    if SetupResult is None:
        logger.warning("tracer: task runs are not observed: %s", _unsupported)
        return None
    path = settings.socket_path()
    env = {"TRACER_SOCKET": path, **telemetry.observe_tasks()}
    note = f"tracer sidecar socket {path}"
    return SetupResult(env=env, note=note, required=False)
