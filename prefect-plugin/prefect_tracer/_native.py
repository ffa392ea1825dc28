"""Loads libtracer_client.so and declares its C ABI (see client/tracer_client.h in the repository)."""

from __future__ import annotations

import ctypes
import os
from pathlib import Path
from typing import Optional

LIBRARY_NAME = "libtracer_client.so"


def candidate_paths() -> list[Path]:
    """Where the library may be: $TRACER_CLIENT_LIB alone when it is set (an
    explicit choice is not second-guessed); otherwise next to this package
    (installed wheels), then the repository's build/lib (a source checkout)."""
    if os.environ.get("TRACER_CLIENT_LIB"):
        return [Path(os.environ["TRACER_CLIENT_LIB"])]
    here = Path(__file__).resolve().parent
    return [here / LIBRARY_NAME, here.parent.parent / "build" / "lib" / LIBRARY_NAME]


def _declare(lib: ctypes.CDLL) -> ctypes.CDLL:
    c_char_p, c_int, c_void_p = ctypes.c_char_p, ctypes.c_int, ctypes.c_void_p
    signatures = {
        "tracer_client_open": (c_void_p, [c_char_p]),
        "tracer_client_close": (None, [c_void_p]),
        "tracer_client_wait_connected": (c_int, [c_void_p, c_int]),
        # Returned strings are char* we must free: c_void_p keeps the pointer.
        "tracer_client_status": (c_void_p, [c_void_p, c_int]),
        "tracer_client_admin": (c_void_p, [c_void_p, c_char_p, c_char_p, c_int]),
        "tracer_flow_open": (c_void_p, [c_void_p, c_char_p]),
        "tracer_flow_finish": (c_int, [c_void_p, c_char_p, c_int]),
        "tracer_task_start": (c_void_p, [c_void_p, c_char_p, c_int, c_int]),
        "tracer_task_status": (c_int, [c_void_p]),
        "tracer_task_finish": (c_int, [c_void_p, c_char_p, ctypes.POINTER(c_void_p)]),
        "tracer_report_wait": (c_void_p, [c_void_p, c_int]),
        "tracer_report_free": (None, [c_void_p]),
        "tracer_client_dropped": (ctypes.c_ulonglong, [c_void_p]),
        "tracer_last_error": (c_char_p, []),
        "tracer_free": (None, [c_void_p]),
    }
    for name, (restype, argtypes) in signatures.items():
        function = getattr(lib, name)
        function.restype = restype
        function.argtypes = argtypes
    return lib


def load() -> tuple[Optional[ctypes.CDLL], str]:
    """The library, or None and the reason it could not be loaded."""
    tried = []
    for path in candidate_paths():
        if not path.exists():
            tried.append(f"{path} (missing)")
            continue
        try:
            return _declare(ctypes.CDLL(str(path))), ""
        except OSError as error:
            tried.append(f"{path} ({error})")
    return None, "libtracer_client.so not found: tried " + ", ".join(tried)


def take_string(lib: ctypes.CDLL, pointer: Optional[int]) -> Optional[str]:
    """Copies a char* returned by the library and frees it."""
    if not pointer:
        return None
    try:
        return ctypes.string_at(pointer).decode("utf-8")
    finally:
        lib.tracer_free(pointer)


def last_error(lib: ctypes.CDLL) -> str:
    return (lib.tracer_last_error() or b"").decode("utf-8", "replace")
