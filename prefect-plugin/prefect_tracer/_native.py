"""Loads the plugin's binding of libtracer_client.so: `_tracer_client`, a
CPython extension beside the library (prefect-plugin/native/), whose
functions are the C ABI's (client/tracer_client.h in the repository) with
ints for handles and str for strings."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from types import ModuleType
from typing import Optional

LIBRARY_NAME = "libtracer_client.so"
BINDING_NAME = "_tracer_client.abi3.so"


def candidate_paths() -> list[Path]:
    """Where the library may be: $TRACER_CLIENT_LIB alone when it is set (an
    explicit choice is not second-guessed); otherwise next to this package
    (installed wheels), then the repository's build/lib (a source checkout).
    The binding is looked for beside it."""
    if os.environ.get("TRACER_CLIENT_LIB"):
        return [Path(os.environ["TRACER_CLIENT_LIB"])]
    here = Path(__file__).resolve().parent
    return [here / LIBRARY_NAME, here.parent.parent / "build" / "lib" / LIBRARY_NAME]


def load() -> tuple[Optional[ModuleType], str]:
    """The binding, or None and the reason it could not be loaded."""
    tried = []
    for library in candidate_paths():
        binding = library.with_name(BINDING_NAME)
        missing = [path.name for path in (library, binding) if not path.exists()]
        if missing:
            tried.append(f"{library.parent} (no {' or '.join(missing)})")
            continue
        try:
            spec = importlib.util.spec_from_file_location("prefect_tracer._tracer_client", binding)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            return module, ""
        except (ImportError, OSError) as error:
            tried.append(f"{binding} ({error})")
    return None, "libtracer_client.so not found: tried " + ", ".join(tried)
