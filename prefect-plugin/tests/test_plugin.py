"""prefect_tracer.plugin: the setup_environment hook Prefect calls in the worker."""

import sys
import types
from dataclasses import dataclass, field
from typing import Mapping, Optional

import pytest

from prefect_tracer import plugin


@pytest.fixture
def prefect_spec(monkeypatch):
    """Prefect cannot be installed here; this module has the shape of
    prefect/_experimental/plugins/spec.py (Prefect 3.x): SetupResult(env, note, required)."""

    @dataclass
    class SetupResult:
        env: Mapping[str, str] = field(default_factory=dict)
        note: Optional[str] = None
        required: bool = False

    for name in ["prefect", "prefect._experimental", "prefect._experimental.plugins"]:
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    spec = types.ModuleType("prefect._experimental.plugins.spec")
    spec.SetupResult = SetupResult
    monkeypatch.setitem(sys.modules, "prefect._experimental.plugins.spec", spec)
    return spec


def test_setup_environment_exports_the_socket(prefect_spec, monkeypatch, tmp_path):
    monkeypatch.setenv("TRACER_SOCKET", str(tmp_path / "tracer.sock"))
    result = plugin.setup_environment(ctx=None)
    assert result.env == {"TRACER_SOCKET": str(tmp_path / "tracer.sock")}
    assert result.required is False
    assert "not present" in result.note


def test_default_socket_path(prefect_spec, monkeypatch):
    monkeypatch.delenv("TRACER_SOCKET", raising=False)
    assert plugin.setup_environment(ctx=None).env["TRACER_SOCKET"] == "/run/tracer/tracer.sock"


def test_entry_point_is_declared():
    import importlib
    import tomllib
    from pathlib import Path

    pyproject = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    target = pyproject["project"]["entry-points"]["prefect.plugins"]["tracer"]
    assert target == "prefect_tracer.plugin"
    assert callable(importlib.import_module(target).setup_environment)


def test_flow_run_info_from_the_workers_environment():
    environ = {"PREFECT__FLOW_RUN_ID": "f-1", "PREFECT__FLOW_NAME": "etl",
               "PREFECT__DEPLOYMENT_NAME": "nightly", "PREFECT__WORKER_NAME": "w1",
               "TRACER_CPU": "1500m", "TRACER_MEMORY": "2Gi",
               "TRACER_WORK_POOL_TYPE": "kubernetes"}
    assert plugin.flow_run_info(environ) == {
        "flow_run_id": "f-1", "flow_name": "etl", "deployment_name": "nightly",
        "worker_name": "w1", "cpu_cores": 1.5, "memory_bytes": 2147483648,
        "work_pool_type": "kubernetes"}
    assert plugin.flow_run_info({}) == {}


def test_observing_a_flow_run_without_a_sidecar_never_raises(tmp_path, monkeypatch):
    monkeypatch.setenv("TRACER_SOCKET", str(tmp_path / "absent.sock"))
    assert plugin.observe_flow_run({"PREFECT__FLOW_RUN_ID": "f", "TRACER_CPU": "lots"}) is None


def test_quantities():
    assert plugin.parse_cpu("250m") == 0.25 and plugin.parse_cpu("2") == 2.0
    assert plugin.parse_memory("512Mi") == 512 << 20 and plugin.parse_memory("1G") == 10**9
    assert plugin.parse_memory("1048576") == 1 << 20
    with pytest.raises(ValueError):
        plugin.parse_memory("lots")
