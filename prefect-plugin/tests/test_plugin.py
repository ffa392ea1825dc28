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
