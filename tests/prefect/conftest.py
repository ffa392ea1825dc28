"""Fixtures for tests against a real Prefect: one `prefect server start` per
session, real tracer-sidecar processes, process workers with the plugin.

This process talks to the server with Prefect's own client, whose settings
are read when prefect is imported: the server's address is in os.environ
before any test module imports prefect."""

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))

from prefect_server import PrefectServer  # noqa: E402
from sidecar import sidecar  # noqa: E402,F401  (the fixture)

SERVER = PrefectServer(Path(tempfile.mkdtemp(prefix="tracer-prefect-")))
# The suite's own choices (TRACER_PREFECT_SCENARIOS, TRACER_PREFECT_SHAPES:
# tests/CMakeLists.txt) survive; any other Tracer, Prefect or OpenTelemetry
# setting of the caller's would reach the flows and workers, and does not.
_choices = {key: value for key, value in os.environ.items() if key.startswith("TRACER_PREFECT_")}
_environment = SERVER.env()
os.environ.clear()
os.environ.update(_environment, **_choices)


@pytest.fixture(scope="session")
def prefect_server():
    SERVER.start()
    yield SERVER
    SERVER.stop()
    shutil.rmtree(SERVER.directory, ignore_errors=True)
